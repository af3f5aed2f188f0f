"""An on-demand, encrypted DynamoDB table whose attribute list is derived from its keys, so the schema cannot drift."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import stateful
from components.encryption_keys import grant_decrypt
from infra import iam


@dataclass(frozen=True, kw_only=True)
class GlobalIndex:
    name: str
    hash_key: str
    range_key: str | None = None
    projection: str = "ALL"

    def __post_init__(self) -> None:
        if len(self.name) < 3:
            raise ValueError(f"index name {self.name!r} must have at least 3 characters")


@dataclass(frozen=True, kw_only=True)
class TableArgs:
    table_name: str
    """Physical name, e.g. ``bulk-upload-dev``."""
    hash_key: str = "PK"
    range_key: str | None = "SK"
    indexes: tuple[GlobalIndex, ...] = ()
    ttl_attribute: str | None = None
    """Items whose epoch-seconds value in this attribute has passed are deleted by DynamoDB."""
    point_in_time_recovery: bool = True
    deletion_protection: bool = True
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key (CKV_AWS_119); ``None`` = the AWS-owned key. Readers and writers then get the key's use
    through DynamoDB only (``kms:ViaService``) from the grant helpers."""
    region: str | None = None
    """Region of the table, for the ``kms:ViaService`` condition; required with ``kms_key_arn``."""
    protect: bool = False

    def __post_init__(self) -> None:
        if self.kms_key_arn is not None and not self.region:
            raise ValueError(f"table {self.table_name}: kms_key_arn needs region (grants name dynamodb.<region>)")


class Table(pulumi.ComponentResource):
    TYPE = "macro:data:Table"
    table: aws.dynamodb.Table

    def __init__(self, name: str, args: TableArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        self._name = name
        self.args = args
        keys = [args.hash_key] + ([args.range_key] if args.range_key else [])
        for index in args.indexes:
            keys += [index.hash_key] + ([index.range_key] if index.range_key else [])
        attributes = list(dict.fromkeys(keys))  # every key string-typed, each once: DynamoDB's own rule

        self.table = aws.dynamodb.Table(
            f"{name}-table", name=args.table_name, billing_mode="PAY_PER_REQUEST", hash_key=args.hash_key,
            range_key=args.range_key,
            attributes=[aws.dynamodb.TableAttributeArgs(name=a, type="S") for a in attributes],
            global_secondary_indexes=[aws.dynamodb.TableGlobalSecondaryIndexArgs(
                name=i.name, projection_type=i.projection, key_schemas=[
                    aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=key, key_type=key_type)
                    for key, key_type in ((i.hash_key, "HASH"), (i.range_key, "RANGE")) if key])
                for i in args.indexes] or None,
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True,
                                                                              kms_key_arn=args.kms_key_arn),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=args.point_in_time_recovery),
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=args.ttl_attribute, enabled=True)
            if args.ttl_attribute else None,
            deletion_protection_enabled=args.deletion_protection,
            opts=stateful(self, args.protect))
        self.register_outputs({"table_name": self.table.name, "table_arn": self.table.arn})

    def _arns(self) -> list[pulumi.Input[str]]:
        return [self.table.arn, pulumi.Output.concat(self.table.arn, "/index/*")]

    def grant_read(self, grants: iam.Grants) -> None:
        grants.allow(f"read {self.args.table_name}",
                     ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
                      "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"], self._arns())
        self._grant_key(grants, encrypt=False)

    def grant_read_write(self, grants: iam.Grants) -> None:
        self.grant_read(grants)
        grants.allow(f"write {self.args.table_name}",
                     ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"],
                     [self.table.arn])
        self._grant_key(grants, encrypt=True)

    def _grant_key(self, grants: iam.Grants, *, encrypt: bool) -> None:
        if self.args.kms_key_arn is not None:
            assert self.args.region is not None
            grant_decrypt(grants, self.args.kms_key_arn, "dynamodb", self.args.region,
                          "tables write" if encrypt else "tables read", encrypt=encrypt)
