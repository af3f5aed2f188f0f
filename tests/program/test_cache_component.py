"""RedisCache under mocks: a tiny program builds a Network and the cache in a dev and a prod shape; the tests read the
recorded resources. Each shape is evaluated once per module."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from components.cache import (
    TOKEN_SPECIALS,
    CacheAlarmThresholds,
    RedisCacheArgs,
    check_auth_token,
    connection_url,
)
from components.secrets import SecretSettings
from infra.records import ResourceRecord, StackRecords
from plan.evaluate import MOCK_SECRET_MARKER, evaluate_program

TOPIC = "arn:aws:sns:us-east-1:123456789012:on-call-test"
RG = "aws:elasticache/replicationGroup:ReplicationGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SHAPES = {"dev": {"nodes": 1, "snapshots": 0, "protect": False}, "prod": {"nodes": 2, "snapshots": 7, "protect": True}}

PROGRAM = f'''
import pulumi
from components.cache import CacheAlarmThresholds, RedisCache, RedisCacheArgs
from components.network import Network, NetworkArgs
from components.secrets import SecretSettings
from infra import iam

stack = pulumi.get_stack()
shape = {SHAPES!r}[stack]
network = Network("network", NetworkArgs(stack=stack, nat_gateways="single", flow_logs=False))
clients = network.security_group("clients-sg", description="clients of the data stores")
outsiders = network.security_group("outsiders-sg", description="must not reach Redis")
cache = RedisCache("cache", RedisCacheArgs(
    stack=stack, account_id="123456789012", network=network,
    secrets=SecretSettings(stack=stack, recovery_window_days=7 if shape["protect"] else 0, protect=shape["protect"]),
    alarm_topic_arn={TOPIC!r}, allowed_from=[clients], nodes=shape["nodes"],
    snapshot_retention_days=shape["snapshots"], log_retention_days=30,
    thresholds=CacheAlarmThresholds(cpu_percent=65, memory_percent=85), protect=shape["protect"]))
grants = iam.Grants("test-service")
cache.grant_connect(grants)
pulumi.export("grants", grants.document())
'''


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StackRecords]:
    program = tmp_path_factory.mktemp("cache_program") / "__main__.py"
    program.write_text(PROGRAM)
    return {stack: evaluate_program(stack, {}, [], program=program) for stack in SHAPES}


def _one(records: StackRecords, type_token: str) -> ResourceRecord:
    found = records.of_type(type_token)
    assert len(found) == 1, f"expected one {type_token}, found {len(found)}"
    return found[0]


def _token(records: StackRecords) -> str:
    token = _one(records, "random:index/randomPassword:RandomPassword").outputs["result"]
    assert MOCK_SECRET_MARKER in token
    return token


def test_dev_is_one_node_without_failover_multi_az_or_snapshots(stacks: dict[str, StackRecords]) -> None:
    rg = _one(stacks["dev"], RG).inputs
    assert rg["numCacheClusters"] == 1
    assert rg["automaticFailoverEnabled"] is False
    assert rg["multiAzEnabled"] is False
    assert rg["snapshotRetentionLimit"] == 0
    assert not rg.get("finalSnapshotIdentifier")


def test_prod_has_replicas_with_failover_multi_az_and_snapshots(stacks: dict[str, StackRecords]) -> None:
    rg = _one(stacks["prod"], RG).inputs
    assert rg["numCacheClusters"] >= 2
    assert rg["automaticFailoverEnabled"] is True
    assert rg["multiAzEnabled"] is True
    assert rg["snapshotRetentionLimit"] == 7
    assert rg["snapshotWindow"] and rg["snapshotWindow"] != rg["maintenanceWindow"]
    assert rg["finalSnapshotIdentifier"] == "macro-cache-prod-final"


@pytest.mark.parametrize("stack", SHAPES)
def test_encrypted_in_transit_and_at_rest_with_auth_token(stacks: dict[str, StackRecords], stack: str) -> None:
    record = _one(stacks[stack], RG)
    rg = record.inputs
    assert rg["engine"] == "redis" and rg["engineVersion"].startswith("7.")
    assert rg["transitEncryptionEnabled"] is True
    assert rg["transitEncryptionMode"] == "required"
    assert rg["atRestEncryptionEnabled"] is True
    assert rg["autoMinorVersionUpgrade"] is True
    assert rg["port"] == 6379
    assert "authToken" in record.secret_inputs, "the AUTH token must reach the engine as a secret"
    assert rg["authToken"] == _token(stacks[stack])


def test_auth_token_is_generated_within_elasticache_rules(stacks: dict[str, StackRecords]) -> None:
    spec = _one(stacks["prod"], "random:index/randomPassword:RandomPassword").inputs
    assert 16 <= spec["length"] <= 128
    assert spec["special"] is True
    assert set(spec["overrideSpecial"]) <= set("!&#$^<>-")
    assert not set(spec["overrideSpecial"]) & set('@"/ ')


@pytest.mark.parametrize("stack", SHAPES)
def test_token_appears_only_in_the_replication_group_and_the_secret(stacks: dict[str, StackRecords],
                                                                     stack: str) -> None:
    places = []
    for record in stacks[stack]:
        for key, value in record.inputs.items():
            if MOCK_SECRET_MARKER in json.dumps(value, default=str):
                places.append((record.type, key))
                assert key in record.secret_inputs, f"{record.name}.{key} carries the token as a plain value"
    assert sorted(places) == sorted([(RG, "authToken"),
                                     ("aws:secretsmanager/secretVersion:SecretVersion", "secretString")])
    assert MOCK_SECRET_MARKER not in json.dumps(stacks[stack].outputs, default=str)


@pytest.mark.parametrize("stack", SHAPES)
def test_url_secret_holds_the_rediss_url_with_the_encoded_token(stacks: dict[str, StackRecords], stack: str) -> None:
    records = stacks[stack]
    secret = _one(records, "aws:secretsmanager/secret:Secret")
    assert secret.inputs["name"] == f"macro/{stack}/macro_cache_secret_key"
    version = _one(records, "aws:secretsmanager/secretVersion:SecretVersion")
    primary = _one(records, RG).outputs["primaryEndpointAddress"]
    token = _token(records)
    assert "secretString" in version.secret_inputs
    assert version.inputs["secretString"] == f"rediss://:{quote(token, safe='')}@{primary}:6379"
    assert secret.urn in version.dependencies


@pytest.mark.parametrize("stack", SHAPES)
def test_security_group_admits_6379_only_from_the_named_group(stacks: dict[str, StackRecords], stack: str) -> None:
    records = stacks[stack]
    rg = _one(records, RG).inputs
    assert rg["securityGroupIds"] == ["cache-sg"]
    rules = [r.inputs for r in records.of_type(INGRESS) if r.inputs["securityGroupId"] == "cache-sg"]
    assert rules == [{**rules[0], "referencedSecurityGroupId": "clients-sg", "fromPort": 6379, "toPort": 6379,
                      "ipProtocol": "tcp"}]
    assert "cidrIpv4" not in rules[0] and "cidrIpv6" not in rules[0]
    egress = [r for r in records.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
              if r.inputs["securityGroupId"] == "cache-sg"]
    assert egress == []


def test_subnet_group_spans_every_private_subnet(stacks: dict[str, StackRecords]) -> None:
    records = stacks["dev"]
    group = _one(records, "aws:elasticache/subnetGroup:SubnetGroup").inputs
    private = [r.name for r in records.of_type("aws:ec2/subnet:Subnet") if r.inputs["tags"]["tier"] == "private"]
    assert len(private) == 3 and sorted(group["subnetIds"]) == sorted(private)
    assert _one(records, RG).inputs["subnetGroupName"] == group["name"]


@pytest.mark.parametrize("stack", SHAPES)
def test_cpu_and_memory_alarms_per_node_notify_the_topic(stacks: dict[str, StackRecords], stack: str) -> None:
    alarms = [r.inputs for r in stacks[stack].of_type(ALARM)]
    nodes = SHAPES[stack]["nodes"]
    expected = {("EngineCPUUtilization", f"macro-cache-{stack}-{n:03d}", 65) for n in range(1, nodes + 1)} | {
        ("DatabaseMemoryUsagePercentage", f"macro-cache-{stack}-{n:03d}", 85) for n in range(1, nodes + 1)}
    assert {(a["metricName"], a["dimensions"]["CacheClusterId"], a["threshold"]) for a in alarms} == expected
    assert len(alarms) == 2 * nodes
    for a in alarms:
        assert a["namespace"] == "AWS/ElastiCache"
        assert a["alarmActions"] == [TOPIC] and a["okActions"] == [TOPIC] and a["actionsEnabled"] is True


def test_slow_log_goes_to_a_log_group_with_retention(stacks: dict[str, StackRecords]) -> None:
    records = stacks["prod"]
    group = _one(records, "aws:cloudwatch/logGroup:LogGroup").inputs
    assert group["retentionInDays"] == 30
    [delivery] = _one(records, RG).inputs["logDeliveryConfigurations"]
    assert delivery == {"logType": "slow-log", "destination": group["name"], "destinationType": "cloudwatch-logs",
                        "logFormat": "json"}
    policy = json.loads(_one(records, "aws:cloudwatch/logResourcePolicy:LogResourcePolicy").inputs["policyDocument"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_prod_protects_the_stateful_children_and_dev_does_not(stacks: dict[str, StackRecords]) -> None:
    for stack, protect in (("prod", True), ("dev", False)):
        for type_token in (RG, "aws:secretsmanager/secret:Secret"):
            record = _one(stacks[stack], type_token)
            assert (record.protect, record.retain_on_delete) == (protect, protect), f"{stack} {type_token}"


def test_children_are_parented_to_the_component(stacks: dict[str, StackRecords]) -> None:
    records = stacks["prod"]
    component = _one(records, "macro:cache:RedisCache")
    children = {r.type for r in records.children_of(component)}
    assert {RG, "aws:elasticache/subnetGroup:SubnetGroup", "aws:ec2/securityGroup:SecurityGroup",
            "random:index/randomPassword:RandomPassword", "aws:secretsmanager/secret:Secret", ALARM} <= children


def test_grant_connect_reads_only_the_url_secret(stacks: dict[str, StackRecords]) -> None:
    records = stacks["prod"]
    secret_arn = _one(records, "aws:secretsmanager/secret:Secret").outputs["arn"]
    document = json.loads(records.outputs["grants"])
    [statement] = document["Statement"]
    assert statement["Resource"] == [secret_arn]
    assert statement["Action"] == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]


def _args(**overrides: Any) -> RedisCacheArgs:
    values: dict[str, Any] = {"stack": "dev", "account_id": "123456789012", "network": None,
                              "secrets": SecretSettings(stack="dev", recovery_window_days=0), "alarm_topic_arn": TOPIC}
    return RedisCacheArgs(**{**values, **overrides})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"nodes": 0}, "nodes must be 1-6"),
    ({"nodes": 7}, "nodes must be 1-6"),
    ({"nodes": 1, "automatic_failover": True}, "automatic failover needs at least 2 nodes"),
    ({"auth_token_length": 15}, "AUTH token length must be 16-128"),
    ({"auth_token_length": 129}, "AUTH token length must be 16-128"),
    ({"engine_version": "6.2"}, "must be Redis OSS 7.x"),
    ({"snapshot_retention_days": 36}, "snapshot retention must be 0-35"),
    ({"base_name": "Macro_Cache"}, "must be 1-40 of a-z"),
    ({"base_name": "macro-cache-with-a-name-far-too-long-for-aws"}, "must be 1-40 of a-z"),
])
def test_args_reject_what_elasticache_would_reject(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _args(**overrides)


def test_args_derive_failover_from_node_count() -> None:
    assert _args(nodes=1).failover is False
    assert _args(nodes=2).failover is True
    assert _args(nodes=3, automatic_failover=False).failover is False
    assert _args(thresholds=CacheAlarmThresholds(cpu_percent=50)).thresholds.cpu_percent == 50


@pytest.mark.parametrize("token", ["short-Token1!", "a" * 129, "has@at-sign-0123456789", 'quote"0123456789abcdef',
                                   "slash/0123456789abcdef", "space 0123456789abcdef", "percent%0123456789abcdef"])
def test_check_auth_token_rejects_tokens_elasticache_refuses(token: str) -> None:
    with pytest.raises(ValueError, match="AUTH token"):
        check_auth_token(token)


def test_connection_url_percent_encodes_every_special() -> None:
    token = "Ab1" + TOKEN_SPECIALS + "x" * 10
    url = connection_url(token, "master.example")
    assert url.startswith("rediss://:Ab1%21%26%23%24%5E%3C%3E-")
    assert url.endswith("@master.example:6379")
