"""The platform's customer-managed KMS keys: secrets, log groups, the functions' environment, document objects
(with a twin in the DR region for the replica), and one key per data store: the OpenSearch domain, the Redis
replication group, Performance Insights and the DynamoDB tables. Each key's policy admits the account's IAM
administrators and only the AWS service that encrypts with it; principals that read data get ``kms:Decrypt`` from the
grant helpers of the data's owner, limited to that service with ``kms:ViaService``. The data-store keys go further:
the account may use them only through their service, never directly.
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
    search: bool = True
    """Create the OpenSearch domain's key (``encrypt_at_rest.kms_key_id``, CKV_AWS_247)."""
    cache: bool = True
    """Create the Redis replication group's key (``kms_key_id``, CKV_AWS_191)."""
    performance_insights: bool = False
    """Create the Performance Insights key of the databases (CKV_AWS_354; only where PI is on)."""
    tables: bool = False
    """Create the DynamoDB tables' key (``server_side_encryption.kms_key_arn``, CKV_AWS_119; prod)."""
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
    search: aws.kms.Key | None
    cache: aws.kms.Key | None
    performance_insights: aws.kms.Key | None
    tables: aws.kms.Key | None

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
        # Data stores: the account uses each key only through the service that stores the data.
        self.search = self._key("search", "the OpenSearch domain's data at rest", used_via="es") \
            if args.search else None
        self.cache = self._key("cache", "the Redis replication group's data at rest and snapshots",
                               used_via="elasticache") if args.cache else None
        self.performance_insights = self._key("performance-insights", "the databases' Performance Insights data",
                                              used_via="rds") if args.performance_insights else None
        # DynamoDB's documented statement: the service itself reads the key's metadata to watch its state.
        self.tables = self._key("tables", "the DynamoDB tables", [{
            "Sid": "DynamoDBDescribesKey", "Effect": "Allow", "Principal": {"Service": "dynamodb.amazonaws.com"},
            "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListGrants",
                       "kms:ListKeyPolicies", "kms:ListResourceTags"], "Resource": "*",
        }], used_via="dynamodb") if args.tables else None
        self.register_outputs({"secrets_key_arn": self.secrets.arn, "logs_key_arn": self.logs.arn})

    def _key(self, purpose: str, what: str, service_statements: list[dict] | None = None, *,
             region: str | None = None, used_via: str | None = None) -> aws.kms.Key:
        regional = {"region": region} if region else {}
        via = f"{used_via}.{region or self.args.region}.amazonaws.com" if used_via else None
        key = aws.kms.Key(f"{self._name}-{purpose}", description=f"Encrypts {what} ({self.args.stack})",
                          enable_key_rotation=True, deletion_window_in_days=self.args.deletion_window_days,
                          policy=iam.key_policy(self.args.account_id, service_statements or [], used_via=via),
                          **regional, opts=stateful(self, self.args.protect))
        aws.kms.Alias(f"{self._name}-{purpose}-alias", name=f"alias/macro-{purpose}-{self.args.stack}",
                      target_key_id=key.key_id, **regional, opts=child(self))
        return key


def grant_decrypt(grants: iam.Grants, key_arn: pulumi.Input[str], service: str, region: str, label: str,
                  *, encrypt: bool = False) -> None:
    """Use a key only through one AWS service (``kms:ViaService``), e.g. to read secrets or S3 objects."""
    actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if encrypt else [])
    grants.allow(f"use {label} key", actions, [key_arn],
                 {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}})
