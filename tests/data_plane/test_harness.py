"""The harness itself: every reference in a function's recorded environment resolves to a resource the world built
from the same records; events no recorded trigger delivers are refused; the recorded bucket policy's TLS-only deny
applies to a handler's call over plain HTTP."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.base_backend import BackendDict

from plan.evaluate import evaluate_stack
from tools.harness import world as world_module
from tools.harness.world import UnwiredEvent, WiringError, World


def test_every_reference_in_a_functions_environment_exists(world: World):
    sqs, s3 = world.sqs, world.s3
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    tables = set(world.client("dynamodb").list_tables()["TableNames"])
    secrets = {s["ARN"] for s in world.client("secretsmanager").list_secrets()["SecretList"]}
    checked = 0
    for function in world.functions.values():
        for name, value in function.environment.items():
            if value.startswith("https://sqs."):
                sqs.get_queue_attributes(QueueUrl=value, AttributeNames=["QueueArn"])  # raises if it does not exist
            elif value.startswith("arn:aws:secretsmanager:"):
                assert value in secrets, f"{function.name} {name}"
            elif name.endswith("_BUCKET"):
                assert value in buckets, f"{function.name} {name}"
            elif name.endswith("_TABLE"):
                assert value in tables, f"{function.name} {name}"
            else:
                continue
            checked += 1
    assert checked >= 15


def test_an_event_no_trigger_delivers_is_refused(world: World):
    foreign_queue = f"arn:aws:sqs:us-east-1:123456789012:{world.queue_url('search-event').rsplit('/', 1)[1]}"
    with pytest.raises(UnwiredEvent, match="no event source mapping"):
        world.invoke("delete_chat", {"Records": [{"eventSource": "aws:sqs", "eventSourceARN": foreign_queue}]})
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:aws:events:x"]}
    with pytest.raises(UnwiredEvent, match="no recorded EventBridge rule"):
        world.invoke("user_link_cleanup", scheduled)
    with pytest.raises(UnwiredEvent):
        world.invoke("email_suppression", {"Records": [{"EventSource": "aws:sns", "Sns": {
            "TopicArn": world.topic_arn("on-call")}}]})


def test_a_call_over_plain_http_is_denied_by_the_bucket_policy(world: World):
    bucket = world.bucket("documents")
    world.s3.put_object(Bucket=bucket, Key="u/d/1.txt", Body=b"x")
    with world.acting_as("text_extractor"):
        secure = boto3.client("s3", region_name="us-east-1")
        assert secure.get_object(Bucket=bucket, Key="u/d/1.txt")["Body"].read() == b"x"
        plain = boto3.client("s3", region_name="us-east-1", endpoint_url="http://s3.amazonaws.com")
        with pytest.raises(ClientError, match="AccessDenied"):
            plain.get_object(Bucket=bucket, Key="u/d/1.txt")
    [denied] = world.denied_calls()
    assert denied.denied is not None and denied.denied.action == "s3:GetObject"


def test_a_world_restored_from_its_first_build_starts_as_built(pg):
    """Worlds after the first of a stack are copies of its first build (moto and the world's own state): nothing a
    test did to an earlier world (objects, messages, table items, an environment change, a timeline) shows in a
    later one. Three worlds: the second is a copy for certain, and what it changed must not reach the third."""
    records = evaluate_stack("dev")
    frecency = records.named("frecency-table", "aws:dynamodb/table:Table").inputs
    worlds = []
    for _ in range(3):
        BackendDict.reset()  # what each test starts with
        world = World.build(records, database_url=pg.url)
        assert (id(records), pg.url, False) in world_module._TEMPLATES
        with world:
            assert world.s3.list_object_versions(Bucket=world.bucket("documents")).get("Versions") is None
            assert world.messages(world.queue_url("search-event")) == []
            assert world.client("dynamodb").scan(TableName=world.table("frecency"))["Items"] == []
            variable = min(world.env("text_extractor"))  # any variable the program sets
            assert world.env("text_extractor")[variable] != "changed" and world.timeline == []
            earlier = {id(fn) for w in worlds for fn in w.functions.values()}
            assert not {id(fn) for fn in world.functions.values()} & earlier
            world.put_object("documents", "u/d/1.txt", b"x")
            world.send_message("search-event", "{}")
            world.client("dynamodb").put_item(TableName=world.table("frecency"),
                                              Item={frecency[key]: {"S": "k"} for key in ("hashKey", "rangeKey")})
            world.set_env("text_extractor", variable, "changed")
            world.schedule("user-link-cleanup")
            assert world.timeline
        worlds.append(world)


def test_a_test_changes_only_variables_the_program_sets(world: World):
    variable = min(world.env("user_link_cleanup"))  # one the program sets
    with pytest.raises(WiringError, match=f"sets no {variable}_TYPO on user_link_cleanup"):
        world.set_env("user_link_cleanup", f"{variable}_TYPO", "1")
    with pytest.raises(WiringError, match=f"sets no {variable}_TYPO on user_link_cleanup"):
        world.unset_env("user_link_cleanup", f"{variable}_TYPO")
    world.set_env("user_link_cleanup", variable, "1")
    assert world.env("user_link_cleanup")[variable] == "1"


def test_the_recorded_database_instances_are_in_moto(world: World, pg):
    """Each recorded RDS instance, as recorded; the one whose database the embedded server holds is served there
    (its endpoint is the server's), and in prod the rotated credentials hold its master credentials."""
    described = {d["DBInstanceIdentifier"]: d for d in world.client("rds").describe_db_instances()["DBInstances"]}
    records = world.records.of_type("aws:rds/instance:Instance")
    assert sorted(described) == sorted(r.inputs["identifier"] for r in records) and len(records) == 2
    for record in records:
        instance = described[record.inputs["identifier"]]
        assert (instance["Engine"], instance["MasterUsername"], instance["DBName"]) == (
            record.inputs["engine"], record.inputs["username"], record.inputs["dbName"])
    served = [d for d in world.databases.values() if d.served]
    assert [d.db_name for d in served] == ["macrodb"]
    endpoint = described[served[0].identifier]["Endpoint"]
    assert (endpoint["Address"], endpoint["Port"]) == ("127.0.0.1", pg.port)
    sm = world.client("secretsmanager")
    for secret in world.rotations:
        instance = world.rotated_instance(secret)
        if instance.served:
            value = sm.get_secret_value(SecretId=secret)["SecretString"]
            assert value == json.dumps(world.master_credentials(instance))
    assert bool(world.rotations) == (world.stack == "prod")
