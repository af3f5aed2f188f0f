"""Our keys where the controls ask for them (issue 8 §4): the search domain and the cache in both stacks, Performance
Insights and the DynamoDB tables in prod; each key usable by the account only through the service that stores the
data, and the roles that read or write the tables granted the key through DynamoDB."""

from __future__ import annotations

import pytest

from infra.iam import KEY_USE_ACTIONS
from infra.records import StackRecords
from tests.program.conftest import policy

KEY = "aws:kms/key:Key"
DOMAIN = "aws:opensearch/domain:Domain"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
DB = "aws:rds/instance:Instance"
TABLE = "aws:dynamodb/table:Table"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def key_arn(records: StackRecords, purpose: str) -> str:
    return records.named(f"keys-{purpose}", KEY).outputs["arn"]


def test_search_and_cache_use_their_own_keys_in_both_stacks(stack: StackRecords) -> None:
    (domain,) = stack.of_type(DOMAIN)
    assert domain.inputs["encryptAtRest"] == {"enabled": True, "kmsKeyId": key_arn(stack, "search")}
    (group,) = stack.of_type(CACHE)
    assert group.inputs["atRestEncryptionEnabled"] is True
    assert group.inputs["kmsKeyId"] == key_arn(stack, "cache")


def test_prod_tables_and_performance_insights_use_our_keys(prod: StackRecords) -> None:
    tables = prod.of_type(TABLE)
    assert len(tables) == 3
    for table in tables:
        assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key_arn(prod, "tables")}
    databases = prod.of_type(DB)
    assert len(databases) == 2
    for db in databases:
        assert db.inputs["performanceInsightsEnabled"] is True
        assert db.inputs["performanceInsightsKmsKeyId"] == key_arn(prod, "performance-insights")


def test_dev_keeps_the_aws_owned_table_key_and_has_no_performance_insights_key(dev: StackRecords) -> None:
    """Dev differs on purpose: its tables are disposable and CKV_AWS_119 is a prod control; PI is off in dev."""
    for table in dev.of_type(TABLE):
        assert table.inputs["serverSideEncryption"] == {"enabled": True}
    for db in dev.of_type(DB):
        assert not db.inputs.get("performanceInsightsEnabled") and "performanceInsightsKmsKeyId" not in db.inputs
    names = {r.name for r in dev.of_type(KEY)}
    assert {"keys-search", "keys-cache"} <= names
    assert not {"keys-tables", "keys-performance-insights"} & names


@pytest.mark.parametrize(("purpose", "service"), [
    ("search", "es"), ("cache", "elasticache"), ("performance-insights", "rds"), ("tables", "dynamodb")])
def test_data_store_keys_are_usable_only_through_their_service(prod: StackRecords, purpose: str,
                                                              service: str) -> None:
    key = prod.named(f"keys-{purpose}", KEY)
    statements = {s["Sid"]: s for s in policy(key)["Statement"]}
    admin = statements["AccountAdministersKey"]
    assert not set(admin["Action"]) & set(KEY_USE_ACTIONS), "the account could use the key outside its service"
    use = statements["AccountUsesKeyOnlyThroughService"]
    assert use["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert set(use["Action"]) == set(KEY_USE_ACTIONS)
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": f"{service}.us-east-1.amazonaws.com",
                                                 "kms:CallerAccount": "123456789012"}}
    others = set(statements) - {"AccountAdministersKey", "AccountUsesKeyOnlyThroughService"}
    assert others == ({"DynamoDBDescribesKey"} if purpose == "tables" else set())
    assert key.inputs["enableKeyRotation"] is True and key.protect


def test_dynamodb_may_only_describe_the_tables_key(prod: StackRecords) -> None:
    (describe,) = [s for s in policy(prod.named("keys-tables", KEY))["Statement"]
                   if s["Sid"] == "DynamoDBDescribesKey"]
    assert describe["Principal"] == {"Service": "dynamodb.amazonaws.com"}
    assert not any(a in KEY_USE_ACTIONS for a in describe["Action"])


def test_every_role_that_uses_a_prod_table_may_use_its_key_through_dynamodb(prod: StackRecords) -> None:
    table_arns = {t.outputs["arn"] for t in prod.of_type(TABLE)}
    tables_key = key_arn(prod, "tables")
    users = 0
    for rp in prod.of_type(ROLE_POLICY):
        doc = policy(rp)["Statement"]
        writes = any(set(s["Resource"]) & table_arns and "dynamodb:PutItem" in s["Action"] for s in doc)
        reads = any(set(s["Resource"]) & table_arns for s in doc)
        key_grants = [s for s in doc if tables_key in s["Resource"]]
        assert bool(key_grants) == reads, rp.name
        if reads:
            users += 1
            granted = set().union(*(s["Action"] for s in key_grants))
            assert granted == ({"kms:Decrypt", "kms:GenerateDataKey"} if writes else {"kms:Decrypt"}), rp.name
            assert all(s["Condition"] == {"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}}
                       for s in key_grants)
    assert users >= 2
