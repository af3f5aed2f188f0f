"""The records rendered as a Terraform plan: type and attribute names from the SDK (plus the two tested tables),
blocks and maps in Terraform's shapes, and references where a value is another resource's id or ARN."""

from __future__ import annotations

import json

import pytest

from infra.records import StackRecords
from infra.sdk import args_class, fields
from plan.evaluate import REGION
from tests.policy._examples import res, stack
from tools.audit.terraform import (
    BLOCK_RENAMES,
    MODULE_PREFIX,
    PLURAL_IN_TERRAFORM,
    TYPE_OVERRIDES,
    render_plan,
    renderable,
    tf_name,
    tf_type,
)

BUCKET = "aws:s3/bucket:Bucket"
BPA = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
TABLE = "aws:dynamodb/table:Table"


@pytest.mark.parametrize(("token", "expected"), [
    ("aws:s3/bucketPolicy:BucketPolicy", "aws_s3_bucket_policy"),
    ("aws:cloudwatch/logGroup:LogGroup", "aws_cloudwatch_log_group"),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "aws_lambda_event_source_mapping"),
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws_vpc_security_group_ingress_rule"),
    ("aws:ec2/vpc:Vpc", "aws_vpc"),
    ("aws:ec2/securityGroup:SecurityGroup", "aws_security_group"),
    ("aws:rds/instance:Instance", "aws_db_instance"),
    ("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup", "aws_db_proxy_default_target_group"),
    ("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "aws_s3_bucket_replication_configuration"),
])
def test_terraform_type_names(token: str, expected: str) -> None:
    assert tf_type(token) == expected


def test_the_type_tables_hold_only_real_exceptions() -> None:
    """An override that the default derivation already produces is noise; every token in the tables is the SDK's."""
    for token, name in TYPE_OVERRIDES.items():
        assert args_class(token) is not None, token
        module, cls = token.split(":")[1].split("/")[0], token.split(":")[2]
        assert name != "_".join(p for p in ("aws", MODULE_PREFIX.get(module, module), cls.lower()) if p)
    for token, _path in [*BLOCK_RENAMES, *PLURAL_IN_TERRAFORM]:
        assert args_class(token) is not None, token


def test_block_renames_name_real_sdk_blocks() -> None:
    for (token, path), name in BLOCK_RENAMES.items():
        schema = fields(args_class(token))  # type: ignore[arg-type]
        *outer, last = path.split(".")
        for part in outer:
            schema = fields(schema[part].nested)  # type: ignore[arg-type]
        field = schema[last]
        assert field.kind == "blocks" and field.name.endswith("s") and not name.endswith("s"), (token, path)


def _walk(token: str, inputs: dict, schema: dict, path: str, seen: set) -> None:
    for key, value in inputs.items():
        if key.startswith("__") or value is None:
            continue
        assert key in schema, f"{token}: input {path + key} is not a property of the SDK's type"
        field = schema[key]
        if field.kind in ("block", "blocks") and field.nested is not None:
            if field.kind == "blocks" and field.name.endswith("s"):
                seen.add((token, path + key))
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    _walk(token, item, fields(field.nested), f"{path}{key}.", seen)


def test_every_recorded_input_is_an_sdk_property_and_every_plural_block_is_decided(stack: StackRecords) -> None:
    """snake_case names come from the SDK; a pluralised repeated block must be in one of the two tables."""
    plural: set = set()
    for rec in stack:
        if renderable(rec):
            schema_class = args_class(rec.type)
            assert schema_class is not None, f"{rec.type} is not in the pulumi-aws SDK"
            tf_type(rec.type)
            _walk(rec.type, rec.inputs, fields(schema_class), "", plural)
    undecided = plural - set(BLOCK_RENAMES) - PLURAL_IN_TERRAFORM
    assert not undecided, f"repeated blocks neither renamed nor known plural in Terraform: {sorted(undecided)}"


def _plan(*specs: dict) -> tuple[dict, dict]:
    plan = render_plan(stack(*specs), REGION)
    values = {r["address"]: r["values"] for r in plan["planned_values"]["root_module"]["resources"]}
    expressions = {r["address"]: r["expressions"] for r in plan["configuration"]["root_module"]["resources"]}
    return values, expressions


def test_blocks_become_lists_maps_stay_maps_and_numbers_are_integers() -> None:
    values, _ = _plan(res(TABLE, "t", name="t-dev", billingMode="PAY_PER_REQUEST", hashKey="PK",
                          attributes=[{"name": "PK", "type": "S"}], tags={"team": "docs"},
                          serverSideEncryption={"enabled": True, "kmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"},
                          ttl={"attributeName": "exp", "enabled": True}, readCapacity=5.0))
    table = values["aws_dynamodb_table.t"]
    assert table["attribute"] == [{"name": "PK", "type": "S"}]
    assert table["server_side_encryption"] == [{"enabled": True, "kms_key_arn": "arn:aws:kms:us-east-1:1:key/k"}]
    assert table["ttl"] == [{"attribute_name": "exp", "enabled": True}]
    assert table["tags"] == {"team": "docs"} and table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["read_capacity"] == 5 and isinstance(table["read_capacity"], int)


def test_a_value_that_is_a_dependency_s_id_becomes_a_reference() -> None:
    """As in a first terraform plan: the bucket's id is unknown, the configuration names the bucket."""
    values, expressions = _plan(
        res(BUCKET, "docs", bucket="docs-dev", out={"id": "docs-dev"}),
        res("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "own", deps=("docs",), bucket="docs-dev",
            rule={"objectOwnership": "BucketOwnerEnforced"}, out={"id": "docs-dev"}),
        res(BPA, "bpa", deps=("docs", "own"), bucket="docs-dev", blockPublicAcls=True, out={"id": "docs-dev"}))
    assert values["aws_s3_bucket_public_access_block.bpa"]["bucket"] is None
    # The ownership controls echo the bucket's name too; the reference names the bucket it comes from.
    assert expressions["aws_s3_bucket_public_access_block.bpa"]["bucket"] == {
        "references": ["aws_s3_bucket.docs.id", "aws_s3_bucket.docs"]}
    assert values["aws_s3_bucket.docs"]["bucket"] == "docs-dev" and expressions["aws_s3_bucket.docs"] == {}


def test_references_inside_blocks_and_lists_keep_their_place() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/0f"
    values, expressions = _plan(
        res("aws:kms/key:Key", "k", out={"arn": key}),
        res("aws:ec2/securityGroup:SecurityGroup", "sg", out={"id": "sg-1"}),
        res(TABLE, "t", deps=("k",), name="t", serverSideEncryption={"enabled": True, "kmsKeyArn": key}),
        res("aws:rds/proxy:Proxy", "p", deps=("sg",), name="p", vpcSecurityGroupIds=["sg-1", "sg-external"]))
    assert values["aws_dynamodb_table.t"]["server_side_encryption"] == [{"enabled": True, "kms_key_arn": None}]
    assert expressions["aws_dynamodb_table.t"]["server_side_encryption"] == [
        {"kms_key_arn": {"references": ["aws_kms_key.k.arn", "aws_kms_key.k"]}}]
    assert values["aws_db_proxy.p"]["vpc_security_group_ids"] == [None, "sg-external"]
    # A resource's own name is a literal, even when a dependency's name is the same string.
    assert values["aws_db_proxy.p"]["name"] == "p"


def test_names_are_valid_terraform_identifiers() -> None:
    assert tf_name("app-secrets-jwt_secret_key") == "app-secrets-jwt_secret_key"
    assert tf_name("a.b/c") == "a_b_c" and tf_name("1st") == "_1st"


def test_both_stacks_render_every_aws_resource_as_json(stack: StackRecords) -> None:
    plan = render_plan(stack, REGION)
    addresses = [r["address"] for r in plan["planned_values"]["root_module"]["resources"]]
    assert len(addresses) == len(set(addresses)) == sum(1 for r in stack if renderable(r))
    assert json.loads(json.dumps(plan)) == plan
