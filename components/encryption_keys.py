"""The platform's customer-managed KMS keys: secrets, log groups, the functions' environment, and document objects
(with a twin in the DR region for the replica). Each key's policy admits the account's IAM administrators and only
the AWS service that encrypts with it; principals that read data get ``kms:Decrypt`` from the grant helpers of the
data's owner, limited to that service with ``kms:ViaService``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child, stateful
from infra import iam


@dataclass(frozen=True, kw_only=True)
class EncryptionKeysArgs:
    stack: str
    account_id: pulumi.Input[str]
    region: str
    documents: bool = True
    """Create the document-object key (SSE-KMS on the document buckets, S3.17)."""
    dr_region: str | None = None
    """Also create a document key in this region for the cross-region replica."""
    deletion_window_days: int = 30
    protect: bool = False
    """Protect and retain the keys (prod): deleting one would make every object, secret or log it encrypts
    unreadable once the deletion window ends."""


class EncryptionKeys(pulumi.ComponentResource):
    secrets: aws.kms.Key
    logs: aws.kms.Key
    functions: aws.kms.Key
    documents: aws.kms.Key | None
    documents_replica: aws.kms.Key | None

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:security:EncryptionKeys", name, None, opts)
        self._name = name
        self.args = args
        log_group_arns = pulumi.Output.concat("arn:aws:logs:", args.region, ":", args.account_id, ":log-group:*")
        self.secrets = self._key("secrets", "Secrets Manager secrets")
        self.logs = self._key("logs", "CloudWatch log groups", [{
            "Sid": "CloudWatchLogsEncrypts", "Effect": "Allow",
            "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                       "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_group_arns}},
        }])
        self.functions = self._key("functions", "the data-plane functions' environment variables")
        self.documents = self._key("documents", "document objects in S3") if args.documents else None
        self.documents_replica = None
        if args.documents and args.dr_region:
            self.documents_replica = self._key("documents-replica", "replicated document objects",
                                               region=args.dr_region)
        self.register_outputs({"secrets_key_arn": self.secrets.arn, "logs_key_arn": self.logs.arn})

    def _key(self, purpose: str, what: str, service_statements: list[dict] | None = None, *,
             region: str | None = None) -> aws.kms.Key:
        regional = {"region": region} if region else {}
        key = aws.kms.Key(f"{self._name}-{purpose}", description=f"Encrypts {what} ({self.args.stack})",
                          enable_key_rotation=True, deletion_window_in_days=self.args.deletion_window_days,
                          policy=iam.key_policy(self.args.account_id, service_statements or []), **regional,
                          opts=stateful(self, self.args.protect))
        aws.kms.Alias(f"{self._name}-{purpose}-alias", name=f"alias/macro-{purpose}-{self.args.stack}",
                      target_key_id=key.key_id, **regional, opts=child(self))
        return key


def grant_decrypt(grants: iam.Grants, key_arn: pulumi.Input[str], service: str, region: str, label: str,
                  *, encrypt: bool = False) -> None:
    """Use a key only through one AWS service (``kms:ViaService``), e.g. to read secrets or S3 objects."""
    actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if encrypt else [])
    grants.allow(f"use {label} key", actions, [key_arn],
                 {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}})
