"""Life after the first deploy, decided from the records: rotations that are never rolled back, replacements that do
not collide with their own names, consumers that fit the database's connections, network interfaces without the
managed VPC role, events the extractor never needed."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.events.models import EventPattern

from infra import capacity
from infra.records import ResourceRecord, StackRecords
from policy import types as T
from policy.helpers import resolve
from policy.rules import RULES, run_rule
from policy.rules_lifecycle import fixed_name, replacement_needs_a_plan, rotation_owned

ROOT = Path(__file__).resolve().parents[2]
ROTATED = "ROTATED-by-the-rotation-function"


def shared_dir() -> Path:
    """``<repo>/../shared`` (CI), else ``/work/shared``; ``MACRO_SHARED`` overrides."""
    candidates = [Path(os.environ["MACRO_SHARED"])] if "MACRO_SHARED" in os.environ else []
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    return next(p for p in candidates if p.exists())


# --- Issue 8 §3: credentials that rotate and never roll back --------------------------------------------------------


def up_after_rotations_and_refresh(records: StackRecords) -> dict[str, str]:
    """Replays the scenario against moto's Secrets Manager and returns each secret's AWSCURRENT value at the end.

    1. First ``up``: every Secret, then every SecretVersion the program declares (PutSecretValue, AWSCURRENT).
    2. The rotations run: the rotation function writes every secret it owns, many times.
    3. Secrets Manager drops versions without stages and ``pulumi refresh`` removes every SecretVersion from state.
    4. ``up`` again: the engine creates whatever the program declares and the state lacks, i.e. every SecretVersion.
    """
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    names = {s.urn: s.inputs["name"] for s in records.of_type(T.SECRET)}
    for name in names.values():
        sm.create_secret(Name=name)
    versions = [(names[resolve(records, v.inputs["secretId"], [T.SECRET], via=v).urn], v.inputs["secretString"])
                for v in records.of_type(T.SECRET_VERSION)]
    for name, value in versions:  # 1
        sm.put_secret_value(SecretId=name, SecretString=value)
    owned = [names[s.urn] for s in rotation_owned(records)[0]]
    for rotation in range(3):  # 2
        for name in owned:
            sm.put_secret_value(SecretId=name, SecretString=f"{ROTATED}-{rotation}")
    for name, value in versions:  # 3 + 4
        sm.put_secret_value(SecretId=name, SecretString=value)
    current = {}
    for name in names.values():
        try:
            current[name] = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"]
        except sm.exceptions.ResourceNotFoundException:
            current[name] = ""
    return current


def test_rotated_credentials_survive_a_lost_version_and_the_next_up(prod: StackRecords) -> None:
    secrets, instances = rotation_owned(prod)
    owned = {s.inputs["name"] for s in secrets}
    assert owned == {f"macro/prod/{key}" for key in ("macrodb_credentials", "macro_db_secret_key",
                                                     "macro_db_proxy_secret_key", "contacts_db_credentials",
                                                     "contacts_db_secret_key")}
    with mock_aws():
        current = up_after_rotations_and_refresh(prod)
    assert {name: current[name] for name in owned} == {name: f"{ROTATED}-2" for name in owned}
    # Nothing the program declares writes into them at all, and the instances never take the password back.
    assert not [v.name for v in prod.of_type(T.SECRET_VERSION)
                if resolve(prod, v.inputs["secretId"], [T.SECRET], via=v) in secrets]
    assert {i.name for i in instances} == {"macrodb-instance", "contactsdb-instance"}
    assert all(i.ignore_changes == ("password",) for i in instances)
    assert run_rule(RULES["DEPLOY-ROTATION-ROLLBACK"], prod) == []


def test_the_scenario_catches_the_old_design(dev: StackRecords, prod: StackRecords) -> None:
    """The first-version design (a SecretVersion with ignore_changes on a rotated secret) fails the same replay and
    the rule: the test and the rule can fail."""
    credentials = prod.named("macrodb-credentials")
    first_value = replace(dev.named("macrodb-credentials-value"), urn="urn:old-design",
                          inputs={**dev.named("macrodb-credentials-value").inputs,
                                  "secretId": credentials.inputs["name"]}, ignore_changes=("secretString",))
    old = StackRecords(stack="prod", records=(*prod.records, first_value), outputs=prod.outputs)
    with mock_aws():
        current = up_after_rotations_and_refresh(old)
    assert current[credentials.inputs["name"]] == first_value.inputs["secretString"], "the old password is back"
    found = run_rule(RULES["DEPLOY-ROTATION-ROLLBACK"], old)
    assert [v.resource_name for v in found] == ["macrodb-credentials-value"]


def test_dev_stores_values_because_nothing_rotates_them(dev: StackRecords) -> None:
    assert rotation_owned(dev) == ([], [])
    assert {"macrodb-credentials-value", "macrodb-url-value", "macrodb-proxy-url-value"} <= {
        v.name for v in dev.of_type(T.SECRET_VERSION)}
    assert all(not v.ignore_changes for v in dev.of_type(T.SECRET_VERSION))


# --- Replacement safety ---------------------------------------------------------------------------------------------


def test_named_resources_are_replaced_delete_first_unless_protected(stack: StackRecords) -> None:
    named = [r for r in stack if fixed_name(r)]
    assert len(named) > 200
    create_first = {r.name for r in named if not r.delete_before_replace}
    assert create_first == {r.name for r in replacement_needs_a_plan(stack)}
    if stack.stack == "dev":
        assert create_first == set()
    else:
        assert {"macrodb-instance", "search-domain", "documents-bucket", "macrodb-credentials"} <= create_first
        assert all(stack.by_urn(u).protect for u in (stack.named(n).urn for n in create_first))


def test_plan_lists_the_replacements_that_need_a_plan_and_the_seeded_secrets(prod: StackRecords) -> None:
    from plan.__main__ import pending_secrets, planned_replacements, seeded_secrets

    assert "macrodb-instance (macrodb-prod)" in planned_replacements(prod)
    assert "macro/prod/macrodb_credentials" in seeded_secrets(prod)
    assert not set(seeded_secrets(prod)) & set(pending_secrets(prod))


# --- The database's connections -------------------------------------------------------------------------------------


def test_queue_consumers_fit_the_connection_budget(stack: StackRecords) -> None:
    instance = stack.named("macrodb-instance")
    group = stack.named("macrodb-proxy-target-group")
    budget = capacity.function_connection_budget(instance.inputs["instanceClass"],
                                                 int(group.inputs["connectionPoolConfig"]["maxConnectionsPercent"]))
    caps = [m.inputs["scalingConfig"]["maximumConcurrency"] for m in stack.of_type(T.ESM)]
    assert len(caps) == 4 and all(cap >= 2 for cap in caps)
    assert sum(caps) <= budget < sum(caps) + len(caps), "the share is used, not left idle"
    assert {"dev": 12, "prod": 202}[stack.stack] == caps[0]


def test_proxy_borrow_timeout_is_below_every_clients_timeout(stack: StackRecords) -> None:
    borrow = stack.named("macrodb-proxy-target-group").inputs["connectionPoolConfig"]["connectionBorrowTimeout"]
    clients = [f for f in stack.of_type(T.FUNCTION) if "DATABASE_SECRET_ARN" in f.inputs["environment"]["variables"]]
    assert len(clients) == 9 and borrow < min(f.inputs["timeout"] for f in clients)


# --- Network interfaces without AWSLambdaVPCAccessExecutionRole -----------------------------------------------------


def eni_statements(stack: StackRecords, function: ResourceRecord) -> dict[str, tuple[set[str], list[str]]]:
    policy = stack.named(function.name.replace("-function", "-access-policy"))
    doc = json.loads(policy.inputs["policy"])
    return {s["Sid"]: (set(s["Action"]), s["Resource"]) for s in doc["Statement"]
            if any(a.startswith("ec2:") for a in s["Action"])}


def test_vpc_functions_manage_only_their_network_interfaces(stack: StackRecords) -> None:
    prefix = "arn:aws:ec2:us-east-1:123456789012:"
    functions = [f for f in stack.of_type(T.FUNCTION) if f.inputs.get("vpcConfig")]
    assert len(functions) == {"dev": 9, "prod": 11}[stack.stack]
    for fn in functions:
        subnets, [group] = fn.inputs["vpcConfig"]["subnetIds"], fn.inputs["vpcConfig"]["securityGroupIds"]
        assert len(subnets) == 3
        assert list(eni_statements(stack, fn).values()) == [
            ({"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}, ["*"]),
            ({"ec2:CreateNetworkInterface"},
             [f"{prefix}network-interface/*", *[f"{prefix}subnet/{s}" for s in subnets],
              f"{prefix}security-group/{group}"]),
            ({"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"},
             [f"{prefix}network-interface/*"]),
        ], fn.name
    assert not [a for a in stack.of_type(T.ROLE_POLICY_ATTACHMENT) if "AWSLambdaVPCAccess" in a.inputs["policyArn"]]


# --- Events and topics ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "wakes_the_extractor"), [
    ("user%40macro.com/3f2a/1.pdf", True), ("docx-parts/9f86d081884c7d65", False), ("temp_files/upload.pdf", False),
])
def test_extractor_rule_skips_docx_parts_and_temp_files(stack: StackRecords, key: str,
                                                        wakes_the_extractor: bool) -> None:
    rule = stack.named("text-extractor-trigger-rule")
    event = json.loads((shared_dir() / "events/awsdocs-s3/ev-events.object-created.json").read_text())
    event["detail"]["bucket"]["name"] = stack.named("documents-bucket").outputs["bucket"]
    event["detail"]["object"]["key"] = key
    assert EventPattern.load(rule.inputs["eventPattern"]).matches_event(event) is wakes_the_extractor


def test_cloudwatch_may_use_the_on_call_key_without_a_condition(stack: StackRecords) -> None:
    """AWS's documented statement for services publishing to an encrypted topic carries no condition."""
    doc = json.loads(stack.named("on-call-key").inputs["policy"])
    publishers = [s for s in doc["Statement"] if "cloudwatch.amazonaws.com" in s["Principal"].get("Service", [])]
    assert len(publishers) == 1 and "Condition" not in publishers[0]
    assert set(publishers[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_search_domain_accepts_explicit_index_in_bulk_bodies(stack: StackRecords) -> None:
    options = stack.named("search-domain").inputs["advancedOptions"]
    assert options == {"rest.action.multi.allow_explicit_index": "true"}


def test_force_ssl_applies_on_reboot_whether_static_or_dynamic(stack: StackRecords) -> None:
    for db in ("macrodb", "contactsdb"):
        params = {p["name"]: p for p in stack.named(f"{db}-parameters").inputs["parameters"]}
        assert params["rds.force_ssl"]["value"] == "1"
        assert params["rds.force_ssl"]["applyMethod"] == "pending-reboot"


# --- Zones by ID ----------------------------------------------------------------------------------------------------

NETWORK_PROGRAM = '''
from components.network import Network, NetworkArgs
Network("network", NetworkArgs(stack="dev", nat_gateways="single", flow_logs=False, zone_ids={zone_ids!r}))
'''


def test_network_places_subnets_in_the_zone_ids_it_is_given(tmp_path: Path) -> None:
    from plan.evaluate import evaluate_program

    program = tmp_path / "__main__.py"
    program.write_text(NETWORK_PROGRAM.format(zone_ids=("use1-az4", "use1-az6", "use1-az1")))
    records = evaluate_program("dev", {}, [], program=program)
    # Registration order varies between runs: order the subnets by their (indexed) names.
    private = sorted((s for s in records.of_type(T.SUBNET) if s.inputs["tags"]["tier"] == "private"),
                     key=lambda s: s.name)
    assert [s.inputs["availabilityZoneId"] for s in private] == ["use1-az4", "use1-az6", "use1-az1"]

    program.write_text(NETWORK_PROGRAM.format(zone_ids=("use1-az1", "use1-az2", "us-east-1a")))
    with pytest.raises(Exception, match=r"zone IDs \['us-east-1a'\] are not available"):
        evaluate_program("dev", {}, [], program=program)


@pytest.mark.parametrize(("instance_class", "connections"), [
    ("db.t4g.micro", 112), ("db.t4g.large", 901), ("db.r7g.large", 1802), ("db.m7g.2xlarge", 3604),
    ("db.r7g.16xlarge", 5000),
])
def test_max_connections_follow_rds_default_formula(instance_class: str, connections: int) -> None:
    assert capacity.max_connections(instance_class) == connections


def test_capacity_refuses_what_it_cannot_size() -> None:
    with pytest.raises(ValueError, match="instance class 'db.x2iezn.metal'"):
        capacity.max_connections("db.x2iezn.metal")
    with pytest.raises(ValueError, match="budget of 7 cannot give 4 SQS consumers 2"):
        capacity.consumer_concurrency(7, 4)
    assert capacity.consumer_concurrency(10_000, 4) == capacity.MAX_CONSUMER_CONCURRENCY
