"""The data plane's world in moto, built from one stack's recorded resources, with the real handlers run in-process.

``World.build(records)`` (inside ``mock_aws``) creates what the program records — buckets with versioning and
notification configuration, queues with visibility and redrive, tables with keys and indexes, secrets and their
values, topics and subscriptions, event rules with patterns and targets, RDS instances (in moto at the first RDS
call) — and reads the functions, their roles' policies, event source mappings, async invoke configs, resource
policies and DLQ alarms. Mock output values (ARNs,
URLs, names) are mapped to what moto created from the same record, so a function gets exactly its recorded
environment with every reference pointing at a real moto resource.

Events reach a handler only through the recorded triggers: moto's S3 notification and EventBridge pattern matching
decide what is delivered (the harness intercepts moto's Lambda invocation, which would need Docker), SNS lambda
subscriptions deliver topic messages, event source mappings poll queues in the recorded batch size, and moto's
redrive moves a message to the recorded DLQ after the recorded max receive count. ``invoke`` checks that the event
it is given is one a recorded trigger delivers; every AWS call is authorised by :mod:`tools.harness.authz`.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import dataclasses
import fnmatch
import functools
import importlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote_plus, urlsplit

import boto3
import pg8000.dbapi

from infra.records import ResourceRecord, StackRecords
from tools.harness.authz import ACCOUNT, Authorizer, Call, Enforcer, Identity

REGION = "us-east-1"
LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
# What the Lambda runtime's environment holds besides the function's variables (from the process, when set).
_PROCESS_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "PYTHONPATH",
                "PYTHONDONTWRITEBYTECODE")

T_BUCKET = "aws:s3/bucket:Bucket"
T_FUNCTION = "aws:lambda/function:Function"


class WiringError(AssertionError):
    """The records describe a data plane that cannot work (AWS would reject it, or an event has no route)."""


class UnwiredEvent(WiringError):
    """An event was handed to a function that no recorded trigger delivers it to."""


class FunctionTimedOut(RuntimeError):
    pass


@dataclass
class Function:
    record: ResourceRecord
    name: str
    module: str
    """The handler's package in ``lambdas/`` (``text_extractor``)."""
    handler: str
    arn: str
    timeout: float
    memory: int
    environment: dict[str, str]
    """The recorded variables with every mock value resolved to its moto value."""
    identity: Identity
    retries: int = 2
    on_failure: str | None = None
    """ARN of the on-failure destination for asynchronous invocations."""


@dataclass
class QueueMapping:
    """An SQS event source mapping as recorded."""

    record: ResourceRecord
    queue_url: str
    queue_arn: str
    function: Function
    batch_size: int
    window: float
    reports_failures: bool
    has_dlq: bool
    enabled: bool = True


@dataclass
class Alarm:
    name: str
    queue: str
    threshold: float
    comparison: str
    actions: list[str]
    description: str


@dataclass
class DatabaseInstance:
    """A recorded RDS instance as moto holds it; ``served`` when the embedded server holds its database, so that its
    master role and the passwords ``ModifyDBInstance`` sets act on that server."""

    record: ResourceRecord
    identifier: str
    arn: str
    username: str
    db_name: str
    engine: str
    port: int
    password: str = field(repr=False)
    """The recorded master password the instance was created with (Pulumi's generated one, a mock value here)."""
    served: bool
    password_changes: list[str] = field(default_factory=list, repr=False)
    """Every ``MasterUserPassword`` a ``ModifyDBInstance`` call set, in order."""

    @property
    def current_password(self) -> str:
        return (self.password_changes or [self.password])[-1]


@dataclass
class Invocation:
    """One run of a handler: what triggered it, how long it took, what it called and how it ended."""

    function: str
    via: str
    started: float
    duration_ms: float
    outcome: str
    result: Any = None
    error: BaseException | None = None
    calls: list[Call] = field(default_factory=list)


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    deadline: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "harness"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _num(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


class _MotoState:
    """A copy of every moto backend in use (moto keeps its state in plain objects per account and region)."""

    def __init__(self, backends: list[tuple[Any, str, str, Any]]) -> None:
        self.backends = backends

    @staticmethod
    def empty() -> bool:
        from moto.core.base_backend import BackendDict

        return not BackendDict._instances  # type: ignore[misc]

    @classmethod
    def capture(cls) -> _MotoState:
        from moto.core.base_backend import BackendDict

        with _copyable_locks():
            return cls([(backends, account, region, copy.deepcopy(backend))
                        for backends in list(BackendDict._instances)  # type: ignore[misc]
                        for account, region, backend in backends.iter_backends()])

    def restore(self) -> None:
        with _copyable_locks():
            for backends, account, region, backend in self.backends:
                backends[account][region] = copy.deepcopy(backend)


@contextlib.contextmanager
def _copyable_locks() -> Iterator[None]:
    """moto's queues hold a lock (in a Condition, which also keeps the lock's bound methods): a copy shares the
    original's lock, as a new lock would leave the Condition half on each. The harness runs on one thread. Registered
    only while copying."""
    kinds = (type(threading.Lock()), type(threading.RLock()))
    saved = {kind: copyreg.dispatch_table.get(kind) for kind in kinds}
    for kind in kinds:
        copyreg.dispatch_table[kind] = _same_lock
    try:
        yield
    finally:
        _LOCKS.clear()
        for kind, reducer in saved.items():
            if reducer is None:
                copyreg.dispatch_table.pop(kind, None)
            else:
                copyreg.dispatch_table[kind] = reducer


_LOCKS: dict[int, Any] = {}


def _same_lock(lock: Any) -> tuple[Callable[[int], Any], tuple[int]]:
    _LOCKS[id(lock)] = lock  # the lock itself cannot be an argument: deepcopy would copy it
    return _LOCKS.__getitem__, (id(lock),)


_TEMPLATES: dict[tuple[int, str | None, bool], tuple[StackRecords, World, _MotoState]] = {}
"""(id of the records, database URL, rotated secrets left empty) -> (the records, the world as built, moto as built);
the records are held so that their id is not reused."""
_MAX_TEMPLATES = 4

_ACTIVE: Enforcer | None = None
_ADMIN_CLIENTS: dict[tuple[str, str], Any] = {}
"""Unrestricted clients, made once per process: moto intercepts every client, whenever it was created."""


@functools.cache
def _admin_session() -> boto3.session.Session:
    return boto3.session.Session()


def _keep_params(**kwargs: Any) -> None:
    if _ACTIVE is not None:
        _ACTIVE._keep_params(**kwargs)


def _authorise(**kwargs: Any) -> Any:
    return _ACTIVE._authorise(**kwargs) if _ACTIVE is not None else None


_ACTIVE_WORLD: World | None = None
"""The world whose RDS instances the first RDS call builds in moto (see ``World.ensure_rds``)."""


def _rds_called(**_: Any) -> None:
    if _ACTIVE_WORLD is not None:
        _ACTIVE_WORLD.ensure_rds()


def _forget_world(world: World) -> None:
    global _ACTIVE_WORLD
    if _ACTIVE_WORLD is world:
        _ACTIVE_WORLD = None


def _install_hooks() -> None:
    """Module-level hooks on the default session (registered once; they act for the world that is active)."""
    events = boto3._get_default_session().events
    events.register("before-parameter-build", _keep_params, unique_id="macro-harness-params")
    events.register("before-call", _authorise, unique_id="macro-harness-authorise")


class World:
    """One stack's data plane in moto. Build it inside ``mock_aws`` with :meth:`build`, use it as a context manager."""

    def __init__(self, records: StackRecords) -> None:
        self.records = records
        self.stack = records.stack
        self.values: dict[str, str] = {}
        """Mock output value -> the value of the moto resource created from the same record (only where they differ)."""
        self.authorizer = Authorizer()
        self.enforcer = Enforcer(self.authorizer)
        self.functions: dict[str, Function] = {}
        self.mappings: list[QueueMapping] = []
        self.alarms: list[Alarm] = []
        self.rotations: dict[str, str] = {}
        """Secret ARN -> ARN of the function that rotates it."""
        self.pending: list[tuple[Function, dict[str, Any], str]] = []
        self.timeline: list[Invocation] = []
        self.database_url: str | None = None
        self._patches = contextlib.ExitStack()
        self._secret_values: dict[str, str] = {}
        self._lambda_clients: dict[str, Any] = {}
        self._replaceable_cache: tuple[int, list[str]] = (-1, [])
        self.build_seconds = 0.0
        self.databases: dict[str, DatabaseInstance] = {}
        """Instance identifier -> the recorded RDS instance built in moto."""
        self.empty_rotated_secrets = False
        """Leave the secrets a recorded rotation owns without a value, as the program does in a rotating stack."""
        self.rds_apply_delay: float | None = 0.0
        """Seconds until the embedded server has a master password set through ``ModifyDBInstance`` (RDS applies it
        asynchronously); ``None``: not until :meth:`apply_master_passwords`."""
        self._unapplied: list[tuple[DatabaseInstance, str]] = []
        self._appliers: list[threading.Timer] = []
        self._rds_addresses: dict[str, str] = {}
        self._rds_in_moto = False
        self._master_roles_ready = False

    # --- lookups --------------------------------------------------------------------------------------------------

    def record(self, type_token: str, name: str, *suffixes: str) -> ResourceRecord:
        """The record of ``type_token`` named ``name`` or ``name-<suffix>`` (``documents``: ``documents-bucket``)."""
        for candidate in (name, *(f"{name}-{s}" for s in suffixes)):
            found = [r for r in self.records.of_type(type_token) if r.name == candidate]
            if len(found) == 1:
                return found[0]
        names = sorted(r.name for r in self.records.of_type(type_token))
        raise KeyError(f"stack {self.stack} records no {type_token} named {name!r}; it records {names}")

    def bucket(self, name: str) -> str:
        """Physical name of the recorded bucket ``name`` (logical name, with or without ``-bucket``)."""
        return self.resolve(_out(self.record(T_BUCKET, name, "bucket"), "bucket"))

    def queue_url(self, name: str) -> str:
        return self.resolve(_out(self.record("aws:sqs/queue:Queue", name, "queue"), "url"))

    @staticmethod
    def url_of_queue_arn(arn: str) -> str:
        return _queue_url(arn.rsplit(":", 1)[1])

    def dlq_url(self, name: str) -> str:
        """URL of the DLQ the recorded redrive policy of queue ``name`` points at."""
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(name), AttributeNames=["RedrivePolicy"])
        if "RedrivePolicy" not in attributes.get("Attributes", {}):
            raise WiringError(f"queue {name} has no redrive policy in stack {self.stack}")
        target = json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
        return self.sqs.get_queue_url(QueueName=target.rsplit(":", 1)[1])["QueueUrl"]

    def table(self, name: str) -> str:
        return self.resolve(_out(self.record("aws:dynamodb/table:Table", name, "table"), "name"))

    def topic_arn(self, name: str) -> str:
        return self.resolve(_out(self.record("aws:sns/topic:Topic", name, "topic"), "arn"))

    def secret_arn(self, name: str) -> str:
        return self.resolve(_out(self.record("aws:secretsmanager/secret:Secret", name), "arn"))

    def function(self, name: str) -> Function:
        """By handler package (``text_extractor``), logical record name or function name."""
        if name in self.functions:
            return self.functions[name]
        found = [f for f in self.functions.values() if name in (f.module, f.name)]
        if len(found) == 1:
            return found[0]
        raise KeyError(f"stack {self.stack}: {len(found)} functions match {name!r} "
                       f"(functions: {sorted(f.record.name for f in self.functions.values())})")

    def has_function(self, name: str) -> bool:
        try:
            self.function(name)
        except KeyError:
            return False
        return True

    def env(self, name: str) -> dict[str, str]:
        return dict(self.function(name).environment)

    def set_env(self, name: str, variable: str, value: str) -> None:
        """Change one variable the program sets on function ``name`` (a limit lowered for a test); a variable the
        program does not set is a WiringError, so a test cannot invent one the handler will never see."""
        self._recorded_environment(name, variable)[variable] = value

    def unset_env(self, name: str, variable: str) -> None:
        """Drop one variable the program sets on function ``name`` (a stack configured without that feature); a
        variable the program does not set is a WiringError."""
        del self._recorded_environment(name, variable)[variable]

    def _recorded_environment(self, name: str, variable: str) -> dict[str, str]:
        environment = self.function(name).environment
        if variable not in environment:
            raise WiringError(f"stack {self.stack} sets no {variable} on {name}; it sets {sorted(environment)}")
        return environment

    def resolve(self, value: Any) -> Any:
        """A recorded value with mock outputs replaced by their moto values (in strings, JSON, lists and maps)."""
        if isinstance(value, str):
            if value in self.values:
                return self.values[value]
            for mocked in self._replaceable():
                if mocked in value:
                    value = value.replace(mocked, self.values[mocked])
            return value
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        return value

    def _replaceable(self) -> list[str]:
        """Mock values that may sit inside a longer string (ARNs, hosts), longest first; recomputed when values grow
        (they only grow)."""
        if self._replaceable_cache[0] != len(self.values):
            self._replaceable_cache = (len(self.values), sorted(
                (m for m in self.values if ":" in m or "." in m), key=len, reverse=True))
        return self._replaceable_cache[1]

    # --- clients --------------------------------------------------------------------------------------------------

    def client(self, service: str, region: str = REGION) -> Any:
        """An unrestricted client (the test's or operator's view; handlers' calls go through their role)."""
        if (service, region) not in _ADMIN_CLIENTS:
            _ADMIN_CLIENTS[service, region] = _admin_session().client(service, region_name=region)
        return _ADMIN_CLIENTS[service, region]

    def _service_client(self, service: str) -> Any:
        """A client of the Lambda service's own calls (queue polling, destinations), made with the function's role."""
        if service not in self._lambda_clients:
            self._lambda_clients[service] = boto3._get_default_session().client(service, region_name=REGION)
        return self._lambda_clients[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    # --- building -------------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, records: StackRecords, *, database_url: str | None = None,
              empty_rotated_secrets: bool = False) -> World:
        """Build the world of ``records``. The first build of the same records in empty moto backends is kept as a
        template: later builds in empty backends restore a copy of it (~5 ms instead of ~50 ms; every test builds
        one). Builds into backends that already hold something are made from scratch and not kept."""
        started = time.perf_counter()
        key = (id(records), database_url, empty_rotated_secrets)
        template = _TEMPLATES.get(key)
        if template is not None and template[0] is records and _MotoState.empty():
            template[2].restore()
            world = template[1]._clone()
        else:
            empty = _MotoState.empty()
            world = cls(records)
            world.database_url = database_url
            world.empty_rotated_secrets = empty_rotated_secrets
            world._build()
            if database_url is not None:
                world.attach_database(database_url)
            if empty:
                _TEMPLATES[key] = (records, world._clone(), _MotoState.capture())
                while len(_TEMPLATES) > _MAX_TEMPLATES:
                    del _TEMPLATES[next(iter(_TEMPLATES))]
        world.build_seconds = time.perf_counter() - started
        return world

    def _clone(self) -> World:
        """A world as this one was built, sharing only the records and copying the rest (policies too: a test may
        edit one to show a denial). A field added to ``__init__`` that a build fills must be copied here too."""
        twin = World(self.records)
        twin.values = dict(self.values)
        twin.authorizer = copy.deepcopy(self.authorizer)
        twin.enforcer = Enforcer(twin.authorizer)
        twin.functions = {key: dataclasses.replace(fn, environment=dict(fn.environment),
                                                   identity=copy.deepcopy(fn.identity))
                          for key, fn in self.functions.items()}
        by_name = {fn.name: twin.functions[key] for key, fn in self.functions.items()}
        twin.mappings = [dataclasses.replace(m, function=by_name[m.function.name]) for m in self.mappings]
        twin.alarms = copy.deepcopy(self.alarms)
        twin.rotations = dict(self.rotations)
        twin.database_url = self.database_url
        twin._secret_values = dict(self._secret_values)
        twin.databases = {key: dataclasses.replace(db, password_changes=list(db.password_changes))
                          for key, db in self.databases.items()}
        twin.empty_rotated_secrets = self.empty_rotated_secrets
        twin._rds_addresses = dict(self._rds_addresses)
        return twin

    def _remember(self, record: ResourceRecord, **moto_values: str) -> None:
        for key, moto_value in moto_values.items():
            mocked = record.outputs.get(key)
            if isinstance(mocked, str) and mocked and mocked != moto_value:
                self.values[mocked] = moto_value

    def _build(self) -> None:
        if str(LAMBDAS) not in sys.path:
            sys.path.insert(0, str(LAMBDAS))
        self._map_database_hosts()
        self._build_keys()
        self._build_buckets()
        self._build_queues()
        self._build_tables()
        self._build_secrets()
        self._build_databases()
        self._build_topics()
        self._build_rules()
        self._build_notifications()
        self._build_functions()
        self._build_mappings()
        self._build_alarms()

    def _map_database_hosts(self) -> None:
        """With a database attached, the recorded instance and proxy endpoints are the embedded server."""
        if self.database_url is None:
            return
        port = self.database_url.split("@127.0.0.1:", 1)[1].split("/", 1)[0]
        for record in self.records.of_type("aws:rds/instance:Instance") + self.records.of_type("aws:rds/proxy:Proxy"):
            for key in ("address", "endpoint"):
                value = record.outputs.get(key)
                if isinstance(value, str) and value:
                    self.values[value] = f"127.0.0.1:{port}" if value.endswith(":5432") else "127.0.0.1"

    def _build_keys(self) -> None:
        # KMS keys stay in record space: keys are referenced (by secrets, buckets, policies) by their recorded ARN.
        for key in self.records.of_type("aws:kms/key:Key"):
            if isinstance(key.inputs.get("policy"), str):
                self.authorizer.key_policies[_out(key, "arn")] = json.loads(key.inputs["policy"])
        for kp in self.records.of_type("aws:kms/keyPolicy:KeyPolicy"):
            key_id = kp.inputs.get("keyId")
            arns = [_out(k, "arn") for k in self.records.of_type("aws:kms/key:Key")
                    if key_id in (k.outputs.get("arn"), k.outputs.get("keyId"), k.outputs.get("id"))]
            for arn in arns:
                self.authorizer.key_policies[arn] = json.loads(kp.inputs["policy"])

    def _build_buckets(self) -> None:
        from moto.s3.models import s3_backends

        backend: Any = s3_backends[ACCOUNT]["aws"]
        for record in self.records.of_type(T_BUCKET):
            name = _out(record, "bucket")
            backend.create_bucket(name, record.inputs.get("region") or REGION)
            self._remember(record, bucket=name, arn=f"arn:aws:s3:::{name}", name=name)
        for record in self.records.of_type("aws:s3/bucketVersioning:BucketVersioning"):
            status = (record.inputs.get("versioningConfiguration") or {}).get("status")
            if status:
                backend.put_bucket_versioning(self.resolve(record.inputs["bucket"]), status)
        for record in self.records.of_type("aws:s3/bucketServerSideEncryptionConfiguration:"
                                           "BucketServerSideEncryptionConfiguration"):
            for rule in record.inputs.get("rules") or []:
                default = rule.get("applyServerSideEncryptionByDefault") or {}
                if default.get("sseAlgorithm") in {"aws:kms", "aws:kms:dsse"} and default.get("kmsMasterKeyId"):
                    self.authorizer.bucket_keys[self.resolve(record.inputs["bucket"])] = default["kmsMasterKeyId"]
        for record in self.records.of_type("aws:s3/bucketPolicy:BucketPolicy"):
            arn = f"arn:aws:s3:::{self.resolve(record.inputs['bucket'])}"
            self._resource_policy(arn, record)

    def _resource_policy(self, arn: str, record: ResourceRecord) -> None:
        self.authorizer.resource_policies.setdefault(arn, []).append(json.loads(self.resolve(record.inputs["policy"])))

    def _build_queues(self) -> None:
        from moto.sqs.models import sqs_backends

        backend: Any = sqs_backends[ACCOUNT][REGION]
        queues = self.records.of_type("aws:sqs/queue:Queue")
        for record in queues:
            name = _out(record, "name")
            attributes = {"FifoQueue": "true"} if record.inputs.get("fifoQueue") else {}
            for key, attribute in (("visibilityTimeoutSeconds", "VisibilityTimeout"),
                                   ("messageRetentionSeconds", "MessageRetentionPeriod"),
                                   ("delaySeconds", "DelaySeconds"), ("maxMessageSize", "MaximumMessageSize")):
                if isinstance(record.inputs.get(key), int | float):
                    attributes[attribute] = str(int(record.inputs[key]))
            if record.inputs.get("contentBasedDeduplication"):
                attributes["ContentBasedDeduplication"] = "true"
            backend.create_queue(name, **attributes)
            url = _queue_url(name)
            self._remember(record, url=url, arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", name=name, id=url)
        redrives: list[tuple[Any, Any]] = [(r.outputs.get("url"), r.inputs.get("redrivePolicy")) for r in queues]
        redrives += [(r.inputs.get("queueUrl"), r.inputs.get("redrivePolicy"))
                     for r in self.records.of_type("aws:sqs/redrivePolicy:RedrivePolicy")]
        for queue_url, policy in redrives:
            if queue_url and policy:
                backend.set_queue_attributes(self.resolve(queue_url).rsplit("/", 1)[1],
                                             {"RedrivePolicy": self.resolve(policy)})
        for record in self.records.of_type("aws:sqs/queuePolicy:QueuePolicy"):
            name = self.resolve(record.inputs["queueUrl"]).rsplit("/", 1)[1]
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            self._resource_policy(arn, record)

    def _build_tables(self) -> None:
        ddb = self.client("dynamodb")
        for record in self.records.of_type("aws:dynamodb/table:Table"):
            i = record.inputs
            name = _out(record, "name")
            args: dict[str, Any] = {
                "TableName": name, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]}
                                         for a in i.get("attributes") or []],
                "KeySchema": _key_schema(i),
            }
            indexes = [{"IndexName": g["name"], "KeySchema": _key_schema(g), "Projection": _projection(g)}
                       for g in i.get("globalSecondaryIndexes") or []]
            if indexes:
                args["GlobalSecondaryIndexes"] = indexes
            local = [{"IndexName": x["name"], "KeySchema": [*_key_schema(i)[:1], {"AttributeName": x["rangeKey"],
                      "KeyType": "RANGE"}], "Projection": _projection(x)} for x in i.get("localSecondaryIndexes") or []]
            if local:
                args["LocalSecondaryIndexes"] = local
            arn = ddb.create_table(**args)["TableDescription"]["TableArn"]
            self._remember(record, name=name, arn=arn, id=name)

    def _build_secrets(self) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        backend: Any = secretsmanager_backends[ACCOUNT][REGION]
        values = {v.inputs.get("secretId"): v.inputs.get("secretString")
                  for v in self.records.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
        for record in self.records.of_type("aws:secretsmanager/secret:Secret"):
            name = record.inputs.get("name") or _out(record, "name")
            value = values.get(record.outputs.get("arn"))
            backend.create_secret(name=name, secret_string=None, secret_binary=None, description=None, tags=None,
                                  kms_key_id=None, client_request_token=None, replica_regions=[],
                                  force_overwrite=False)
            arn = backend.secrets[name].arn
            self._remember(record, arn=arn, id=arn)
            self.authorizer.secret_arns[name] = arn
            if record.inputs.get("kmsKeyId"):
                self.authorizer.secret_keys[arn] = record.inputs["kmsKeyId"]
            if isinstance(value, str):
                self._secret_values[arn] = value
        for arn, value in self._secret_values.items():  # after every ARN is known: values may reference others
            backend.put_secret_value(secret_id=arn, secret_string=self.resolve(value), secret_binary=None,
                                     client_request_token=None, version_stages=["AWSCURRENT"])
        for record in self.records.of_type("aws:secretsmanager/secretRotation:SecretRotation"):
            secret = self.resolve(record.inputs["secretId"])
            secret = self.authorizer.secret_arns.get(secret, secret)
            self.rotations[secret] = self.resolve(record.inputs["rotationLambdaArn"])
            stored: Any = backend.secrets[secret]
            stored.rotation_requested = stored.rotation_enabled = True
            stored.rotation_lambda_arn = self.rotations[secret]
            stored.auto_rotate_after_days = int(_num((record.inputs.get("rotationRules") or {}).get(
                "automaticallyAfterDays"), 30))

    def _build_topics(self) -> None:
        from moto.sns.models import sns_backends

        backend: Any = sns_backends[ACCOUNT][REGION]
        for record in self.records.of_type("aws:sns/topic:Topic"):
            attributes = {"FifoTopic": "true"} if record.inputs.get("fifoTopic") else {}
            arn = backend.create_topic(_out(record, "name"), attributes=attributes).arn
            self._remember(record, arn=arn, id=arn)
        for record in self.records.of_type("aws:sns/topicSubscription:TopicSubscription"):
            subscription = backend.subscribe(self.resolve(record.inputs["topic"]),
                                             self.resolve(record.inputs["endpoint"]), record.inputs["protocol"])
            for key, attribute in (("filterPolicy", "FilterPolicy"), ("rawMessageDelivery", "RawMessageDelivery")):
                if record.inputs.get(key):
                    value = record.inputs[key]
                    backend.set_subscription_attributes(subscription.arn, attribute,
                                                        "true" if value is True else str(value))
        for record in self.records.of_type("aws:sns/topicPolicy:TopicPolicy"):
            arn = self.resolve(record.inputs["arn"])
            self._resource_policy(arn, record)

    def _build_rules(self) -> None:
        from moto.events.models import events_backends

        backend: Any = events_backends[ACCOUNT][REGION]
        rules = {}
        for record in self.records.of_type("aws:cloudwatch/eventRule:EventRule"):
            i = record.inputs
            rule = backend.put_rule(_out(record, "name"), event_pattern=self.resolve(i.get("eventPattern")) or None,
                                    scheduled_expression=i.get("scheduleExpression") or None,
                                    state=i.get("state") or "ENABLED", event_bus_arn=i.get("eventBusName") or None)
            rules[rule.name] = rule
            self._remember(record, arn=rule.arn)
        for record in self.records.of_type("aws:cloudwatch/eventTarget:EventTarget"):
            i = record.inputs
            target: dict[str, Any] = {"Id": i.get("targetId") or record.name, "Arn": self.resolve(i["arn"])}
            if i.get("input"):
                target["Input"] = i["input"]
            if (i.get("deadLetterConfig") or {}).get("arn"):
                target["DeadLetterConfig"] = {"Arn": self.resolve(i["deadLetterConfig"]["arn"])}
            rule_name = self.resolve(i["rule"])
            if rule_name not in rules:
                raise WiringError(f"target {record.name} names rule {rule_name!r}, which the stack does not record")
            rules[rule_name].put_targets([target])

    def _build_notifications(self) -> None:
        for record in self.records.of_type("aws:s3/bucketNotification:BucketNotification"):
            i = record.inputs
            config: dict[str, Any] = {}
            if i.get("eventbridge"):
                config["EventBridgeConfiguration"] = {}
            for key, moto_key, arn_key, moto_arn in (
                    ("lambdaFunctions", "LambdaFunctionConfigurations", "lambdaFunctionArn", "LambdaFunctionArn"),
                    ("queues", "QueueConfigurations", "queueArn", "QueueArn"),
                    ("topics", "TopicConfigurations", "topicArn", "TopicArn")):
                entries = []
                for n in i.get(key) or []:
                    rules = [{"Name": kind, "Value": n[f"filter{kind.title()}"]} for kind in ("prefix", "suffix")
                             if n.get(f"filter{kind.title()}")]
                    entry: dict[str, Any] = {moto_arn: self.resolve(n[arn_key]), "Events": n["events"]}
                    if rules:
                        entry["Filter"] = {"Key": {"FilterRules": rules}}
                    entries.append(entry)
                if entries:
                    config[moto_key] = entries
            self.client("s3", i.get("region") or REGION).put_bucket_notification_configuration(
                Bucket=self.resolve(i["bucket"]), NotificationConfiguration=config)

    def _build_functions(self) -> None:
        roles = self.records.of_type("aws:iam/role:Role")
        role_policies = self.records.of_type("aws:iam/rolePolicy:RolePolicy")
        managed = {_out(p, "arn"): p for p in self.records.of_type("aws:iam/policy:Policy")}
        attachments = self.records.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        for record in self.records.of_type(T_FUNCTION):
            i = record.inputs
            role_arn = i["role"]
            role = next((r for r in roles if r.outputs.get("arn") == role_arn), None)
            role_ids = {role_arn} | ({role.outputs.get("name"), role.outputs.get("id"), role.inputs.get("name")}
                                     if role else set())
            documents = [json.loads(p.inputs["policy"]) for p in role_policies if p.inputs.get("role") in role_ids]
            if role is not None:
                documents += [json.loads(p["policy"]) for p in role.inputs.get("inlinePolicies") or []
                              if isinstance(p, dict) and p.get("policy")]
            documents += [json.loads(managed[a.inputs["policyArn"]].inputs["policy"]) for a in attachments
                          if a.inputs.get("role") in role_ids and a.inputs.get("policyArn") in managed]
            name = _out(record, "name")
            handler = i["handler"]
            env = {k: str(self.resolve(v)) for k, v in ((i.get("environment") or {}).get("variables") or {}).items()}
            identity = Identity(function_name=name, role_arn=role_arn, policies=self.resolve(documents))
            self.functions[record.name] = Function(
                record=record, name=name, module=handler.split(".", 1)[0], handler=handler, arn=_out(record, "arn"),
                timeout=_num(i.get("timeout"), 3), memory=int(_num(i.get("memorySize"), 128)), environment=env,
                identity=identity)
        for record in self.records.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"):
            fn = self._function_by_reference(record.inputs["functionName"])
            fn.retries = int(_num(record.inputs.get("maximumRetryAttempts"), 2))
            destination = ((record.inputs.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
            fn.on_failure = self.resolve(destination) if destination else None

    def _function_by_reference(self, reference: str) -> Function:
        for fn in self.functions.values():
            if reference in (fn.arn, fn.name, fn.record.outputs.get("arn")):
                return fn
        raise WiringError(f"stack {self.stack}: no recorded function {reference!r}")

    def _build_mappings(self) -> None:
        from moto.sqs.models import sqs_backends

        for record in self.records.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
            i = record.inputs
            source = self.resolve(i.get("eventSourceArn") or "")
            if ":sqs:" not in source:
                continue
            fn = self._function_by_reference(i["functionName"])
            queue_name = source.rsplit(":", 1)[1]
            url = _queue_url(queue_name)
            queue: Any = sqs_backends[ACCOUNT][REGION].get_queue(queue_name)
            visibility = float(queue.visibility_timeout)
            if visibility < fn.timeout:  # CreateEventSourceMapping refuses this (deploy rule 1)
                raise WiringError(f"{fn.name}: queue {queue_name} visibility {visibility:g}s < timeout {fn.timeout:g}s")
            self.mappings.append(QueueMapping(
                record=record, queue_url=url, queue_arn=source, function=fn,
                batch_size=int(_num(i.get("batchSize"), 10)), window=_num(i.get("maximumBatchingWindowInSeconds"), 0),
                reports_failures="ReportBatchItemFailures" in (i.get("functionResponseTypes") or []),
                has_dlq=bool(queue.redrive_policy),
                enabled=i.get("enabled", True) is not False))

    def _build_alarms(self) -> None:
        for record in self.records.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
            i = record.inputs
            queue = (i.get("dimensions") or {}).get("QueueName")
            if i.get("namespace") == "AWS/SQS" and queue:
                self.alarms.append(Alarm(
                    name=i.get("name") or record.name, queue=queue, threshold=_num(i.get("threshold"), 0),
                    comparison=i.get("comparisonOperator", ""), actions=list(i.get("alarmActions") or []),
                    description=i.get("alarmDescription", "")))

    def attach_database(self, url: str) -> None:
        """Point every database URL secret at ``url`` (the embedded server): those whose recorded value is a
        PostgreSQL URL, and those a recorded rotation owns (``URL_SECRETS`` of its function; in prod the program
        stores no value there and the rotation's first run seeds them — here they are seeded as that run would, the
        credentials secret with its instance's master credentials, unless the world is built with
        ``empty_rotated_secrets``)."""
        self.database_url = url
        sm = self.client("secretsmanager")
        url_secrets = {self.resolve(record.inputs["secretId"])
                       for record in self.records.of_type("aws:secretsmanager/secretVersion:SecretVersion")
                       if str(record.inputs.get("secretString") or "").startswith(("postgresql://", "postgres://"))}
        rotation_functions = set(self.rotations.values())
        for fn in self.functions.values():
            if fn.arn in rotation_functions and "URL_SECRETS" in fn.environment and not self.empty_rotated_secrets:
                url_secrets.update(json.loads(fn.environment["URL_SECRETS"]))
        for secret in sorted(url_secrets):
            sm.put_secret_value(SecretId=secret, SecretString=url)
        if not self.empty_rotated_secrets:
            self._seed_master_secrets()

    # --- the world's life -----------------------------------------------------------------------------------------

    def __enter__(self) -> World:
        global _ACTIVE
        from moto.events.models import Rule
        from moto.s3 import notifications
        from moto.sns.models import Subscription

        world = self
        original_send: Any = Rule.send_to_targets
        original_publish: Any = Subscription.publish

        def send_to_targets(rule: Any, event: dict[str, Any], transform_input: bool = True) -> None:
            if not rule.event_pattern.get_pattern():
                return  # a schedule rule: moto's empty pattern would match every event; AWS matches none
            targets = rule.targets
            rule.targets = [t for t in targets if ":lambda:" not in t["Arn"]]  # moto delivers the others
            try:
                original_send(rule, event, transform_input)
            finally:
                rule.targets = targets
            if rule.event_pattern.matches_event(event):
                for target in targets:
                    if ":lambda:" in target["Arn"]:
                        world._enqueue(target["Arn"], json.loads(json.dumps(event)), f"EventBridge rule {rule.name}",
                                      ("events.amazonaws.com", rule.arn))

        def publish(subscription: Any, message: str, message_id: str, **kwargs: Any) -> None:
            if subscription.protocol != "lambda":
                original_publish(subscription, message, message_id, **kwargs)
                return
            matcher = subscription._filter_policy_matcher  # moto's filter policy matching decides
            if matcher is not None and not matcher.matches(kwargs.get("message_attributes"), message):
                return
            world._enqueue(subscription.endpoint, _sns_event(subscription, message, message_id, kwargs),
                           f"SNS topic {subscription.topic.name}", ("sns.amazonaws.com", subscription.topic.arn))

        def invoke_lambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            bucket = event_body["Records"][0]["s3"]["bucket"]["name"]
            world._enqueue(fn_arn, event_body, f"S3 notification on {bucket}",
                           ("s3.amazonaws.com", f"arn:aws:s3:::{bucket}"))

        self._patches.enter_context(mock.patch.object(Rule, "send_to_targets", send_to_targets))
        self._patches.enter_context(mock.patch.object(Subscription, "publish", publish))
        self._patches.enter_context(mock.patch.object(notifications, "_invoke_awslambda", invoke_lambda))
        _install_hooks()
        self._patch_databases()
        _ACTIVE = self.enforcer
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        _ACTIVE = None
        self._patches.close()
        self._stop_appliers()

    def _enqueue(self, fn_arn: str, event: dict[str, Any], via: str, caller: tuple[str, str]) -> None:
        """Queue an asynchronous invocation, if the function's recorded resource policy lets the caller invoke it
        (``lambda:InvokeFunction`` for the service principal from that source ARN); otherwise AWS refuses it, which
        the timeline shows. Raising here would vanish: moto swallows errors of its notification delivery."""
        fn = self._function_by_reference(fn_arn)
        principal, source = caller
        allowed = any(p.inputs.get("function") in (fn.name, fn.arn) and p.inputs.get("principal") == principal
                      and p.inputs.get("action", "lambda:InvokeFunction") in ("lambda:InvokeFunction", "lambda:*")
                      and fnmatch.fnmatchcase(source, self.resolve(p.inputs.get("sourceArn") or "*"))
                      for p in self.records.of_type("aws:lambda/permission:Permission"))
        if not allowed:
            self.timeline.append(Invocation(
                function=fn.module, via=via, started=time.time(), duration_ms=0,
                outcome=f"not invoked: no recorded permission lets {principal} invoke {fn.name} from {source}"))
            return
        self.pending.append((fn, event, via))

    @contextlib.contextmanager
    def acting_as(self, name: str, *, environment: bool = True) -> Iterator[Function]:
        """Run the block as the function: its recorded environment only, fresh clients, its role's permissions."""
        fn = self.function(name)
        saved = dict(os.environ)
        if environment:
            os.environ.clear()
            os.environ.update({k: saved[k] for k in _PROCESS_ENV if k in saved})
            os.environ.update({
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory), "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_ACCESS_KEY_ID": "ASIAHARNESS" + fn.identity.role_arn[-8:].upper().replace("-", "X"),
                "AWS_SECRET_ACCESS_KEY": "harness", "AWS_SESSION_TOKEN": "harness", "_HANDLER": fn.handler,
            })
            os.environ.update(fn.environment)
            _fresh_logger(fn.environment.get("POWERTOOLS_SERVICE_NAME", fn.name))
        _clear_handler_caches()
        previous = self.enforcer.acting
        self.enforcer.acting = fn.identity
        try:
            yield fn
        finally:
            self.enforcer.acting = previous
            if environment:
                os.environ.clear()
                os.environ.update(saved)
            _clear_handler_caches()

    def run(self, name: str, event: Any, *, via: str = "direct call") -> Any:
        """Call the handler as the function would run, without checking that a trigger delivers ``event``."""
        fn = self.function(name)
        if fn.arn in self.rotations.values():
            self.ensure_master_roles()
        module = importlib.import_module(fn.handler.rsplit(".", 1)[0])
        entry: Callable[[Any, Any], Any] = getattr(module, fn.handler.rsplit(".", 1)[1])
        first_call = len(self.enforcer.calls)
        started = time.monotonic()
        context = LambdaContext(fn.name, fn.memory, fn.arn, started + fn.timeout)
        invocation = Invocation(function=fn.module, via=via, started=time.time(), duration_ms=0, outcome="ok")
        self.timeline.append(invocation)
        try:
            with self.acting_as(name):
                result = entry(event, context)
            elapsed = time.monotonic() - started
            if elapsed > fn.timeout:
                raise FunctionTimedOut(f"{fn.name} ran {elapsed:.1f}s, over its {fn.timeout:g}s timeout")
        except BaseException as exc:
            invocation.outcome, invocation.error = f"failed: {type(exc).__name__}: {exc}"[:300], exc
            raise
        finally:
            invocation.duration_ms = (time.monotonic() - started) * 1000
            invocation.calls = self.enforcer.calls[first_call:]
        invocation.result = result
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if failures:
            invocation.outcome = f"{len(failures)} record(s) reported failed"
        return result

    def invoke(self, name: str, event: Any, *, via: str = "test") -> Any:
        """Call the handler with ``event`` after checking that a recorded trigger delivers such an event to it."""
        self.check_route(name, event)
        return self.run(name, event, via=via)

    # --- triggers -------------------------------------------------------------------------------------------------

    def check_route(self, name: str, event: Any) -> None:
        """UnwiredEvent unless a recorded trigger of the function delivers ``event`` (moto's matchers decide)."""
        fn = self.function(name)
        if not isinstance(event, dict):
            raise UnwiredEvent(f"{fn.name}: no trigger delivers a {type(event).__name__}")
        records = event.get("Records")
        if isinstance(records, list) and records:
            source = records[0].get("eventSource") or records[0].get("EventSource")
            if source == "aws:sqs":
                self._check_sqs_route(fn, records)
            elif source == "aws:s3":
                for record in records:
                    s3 = record["s3"]
                    key = unquote_plus(s3["object"]["key"])
                    if not self._s3_notifies(fn, s3["bucket"]["name"], f"s3:{record.get('eventName', '')}", key):
                        raise UnwiredEvent(f"{fn.name}: no notification of bucket {s3['bucket']['name']} "
                                           f"delivers {record.get('eventName')} for key {key!r}")
            elif source == "aws:sns":
                for record in records:
                    topic = record["Sns"]["TopicArn"]
                    if not self._sns_subscribed(fn, topic):
                        raise UnwiredEvent(f"{fn.name} is not subscribed to {topic}")
            else:
                raise UnwiredEvent(f"{fn.name}: no recorded trigger delivers {source} records")
        elif event.get("Event") == "s3:TestEvent":
            if not self._s3_notifies(fn, event.get("Bucket", ""), None, None):
                raise UnwiredEvent(f"{fn.name}: bucket {event.get('Bucket')} has no notification to it")
        elif "detail-type" in event:
            if not self._rules_delivering(fn, event):
                raise UnwiredEvent(f"{fn.name}: no recorded EventBridge rule that targets it matches this event "
                                   f"({event.get('source')} / {event.get('detail-type')})")
        elif "SecretId" in event and "Step" in event:
            secret = self.authorizer.secret_arns.get(event["SecretId"], event["SecretId"])
            if secret is None or self.rotations.get(secret) != fn.arn:
                raise UnwiredEvent(f"{fn.name} does not rotate {secret}")
        else:
            raise UnwiredEvent(f"{fn.name}: no recorded trigger delivers an event with keys {sorted(event)[:8]}")

    def _check_sqs_route(self, fn: Function, records: list[dict[str, Any]]) -> None:
        sources = {r.get("eventSourceARN") for r in records}
        mappings = [m for m in self.mappings if m.function is fn and m.queue_arn in sources and m.enabled]
        if len(mappings) != len(sources):
            raise UnwiredEvent(f"{fn.name}: no event source mapping from {sorted(map(str, sources))}")
        if len(records) > mappings[0].batch_size:
            raise UnwiredEvent(f"{fn.name}: {len(records)} records, the mapping delivers at most "
                               f"{mappings[0].batch_size}")

    def _s3_notifies(self, fn: Function, bucket_name: str, event_name: str | None, key: str | None) -> bool:
        from moto.s3.models import s3_backends

        try:
            bucket: Any = s3_backends[ACCOUNT]["aws"].get_bucket(bucket_name)
        except Exception:
            return False
        configuration = bucket.notification_configuration
        if configuration is None:
            return False
        return any(n.arn == fn.arn and (event_name is None or n.matches(event_name, key))
                   for n in configuration.cloud_function)

    def _sns_subscribed(self, fn: Function, topic: str) -> bool:
        from moto.sns.models import sns_backends

        subscriptions = sns_backends[ACCOUNT][REGION].subscriptions.values()
        return any(s.topic.arn == topic and s.protocol == "lambda" and s.endpoint == fn.arn for s in subscriptions)

    def _rules_delivering(self, fn: Function, event: dict[str, Any]) -> list[str]:
        from moto.events.models import events_backends

        backend: Any = events_backends[ACCOUNT][REGION]
        matched = []
        for bus in backend.event_buses.values():
            for rule in bus.rules.values():
                if not any(t["Arn"] == fn.arn for t in rule.targets):
                    continue
                scheduled = rule.scheduled_expression and rule.arn in (event.get("resources") or [])
                pattern = rule.event_pattern.get_pattern()
                if scheduled or (pattern and rule.event_pattern.matches_event(event)):
                    matched.append(rule.name)
        return matched

    def put_object(self, bucket: str, key: str, body: bytes | str, **extra: Any) -> dict[str, Any]:
        """Upload as a user would (S3 notifications and EventBridge fire; nothing runs until :meth:`settle`)."""
        return dict(self.s3.put_object(Bucket=self.bucket(bucket), Key=key, Body=body, **extra))

    def deliver_s3(self, bucket: str, key: str, event_name: str = "s3:ObjectCreated:Put") -> list[Invocation]:
        """Replay S3's notifications for an existing object (moto builds and filters them), then settle."""
        from moto.s3 import notifications
        from moto.s3.models import s3_backends

        backend: Any = s3_backends[ACCOUNT]["aws"]
        physical = self.bucket(bucket)
        notifications.send_event(ACCOUNT, notifications.S3NotificationEvent(event_name),
                                 backend.get_bucket(physical), backend.get_object(physical, key))
        return self.settle()

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any], *,
                  resources: list[str] | None = None) -> list[Invocation]:
        """An event on the default bus (moto's EventBridge matches the recorded rules), then settle."""
        self.client("events").put_events(Entries=[{"Source": source, "DetailType": detail_type,
                                                   "Detail": json.dumps(detail), "Resources": resources or []}])
        return self.settle()

    def publish(self, topic: str, message: str, **extra: Any) -> list[Invocation]:
        self.client("sns").publish(TopicArn=self.topic_arn(topic), Message=message, **extra)
        return self.settle()

    def send_message(self, queue: str, body: str, attributes: dict[str, str] | None = None) -> str:
        """A message on a recorded queue, as a producer would send it (String attributes)."""
        return str(self.sqs.send_message(
            QueueUrl=self.queue_url(queue), MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()},
        )["MessageId"])

    def scheduled_event(self, rule: str) -> dict[str, Any]:
        """The Scheduled Event EventBridge sends to the targets of the recorded schedule rule ``rule``."""
        record = self.record("aws:cloudwatch/eventRule:EventRule", rule, "schedule-rule", "rule")
        if not record.inputs.get("scheduleExpression"):
            raise WiringError(f"rule {record.name} is not a schedule")
        arn = self.client("events").describe_rule(Name=_out(record, "name"))["Arn"]
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
                "resources": [arn], "detail": {}}

    def schedule(self, rule: str) -> list[Invocation]:
        """Fire a recorded schedule rule: its Scheduled Event to each of its Lambda targets, then settle."""
        event = self.scheduled_event(rule)
        name = event["resources"][0].rsplit("/", 1)[1]
        expression = self.client("events").describe_rule(Name=name).get("ScheduleExpression")
        for target in self.client("events").list_targets_by_rule(Rule=name)["Targets"]:
            if ":lambda:" in target["Arn"]:
                self._enqueue(target["Arn"], event, f"schedule {name} ({expression})",
                              ("events.amazonaws.com", event["resources"][0]))
        return self.settle()

    def rotate(self, secret: str) -> list[Invocation]:
        """Secrets Manager's rotation of a recorded secret: a pending version, then the four steps to its recorded
        rotation function (moto does this only with a Lambda it can run in Docker, so it is staged on its backend)."""
        arn = self.secret_arn(secret)
        token = self.start_rotation(secret)
        fn = self.rotation_function(secret)
        first = len(self.timeline)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            self.invoke(fn.record.name, {"SecretId": arn, "ClientRequestToken": token, "Step": step},
                        via=f"Secrets Manager rotation of {secret} ({step})")
        return self.timeline[first:]

    def settle(self, *, max_rounds: int = 40) -> list[Invocation]:
        """Run what the triggers deliver until nothing moves: async invocations (with the recorded retries and
        on-failure destination) and queue polls by the event source mappings. Returns the invocations it ran."""
        first = len(self.timeline)
        for _ in range(max_rounds):
            moved = False
            while self.pending:
                fn, event, via = self.pending.pop(0)
                self._run_async(fn, event, via)
                moved = True
            for mapping in self.mappings:
                moved = self._poll(mapping) or moved
            if not moved:
                return self.timeline[first:]
        raise WiringError(f"the data plane did not settle after {max_rounds} rounds")

    def poll(self, queue: str) -> Invocation | None:
        """One poll of the recorded mapping on ``queue``: one batch delivered to its function (None if empty)."""
        url = self.queue_url(queue)
        mapping = next((m for m in self.mappings if m.queue_url == url), None)
        if mapping is None:
            raise WiringError(f"no recorded event source mapping consumes {queue} in stack {self.stack}")
        first = len(self.timeline)
        self._poll(mapping)
        return self.timeline[first] if len(self.timeline) > first else None

    def _run_async(self, fn: Function, event: dict[str, Any], via: str) -> None:
        self.check_route(fn.record.name, event)
        error: BaseException | None = None
        for attempt in range(1 + fn.retries):
            try:
                self.run(fn.record.name, event, via=via if not attempt else f"{via} (retry {attempt})")
                return
            except Exception as exc:
                error = exc
        if fn.on_failure is None:
            return
        record = {"version": "1.0", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                  "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": f"{fn.arn}:$LATEST",
                                     "condition": "RetriesExhausted", "approximateInvokeCount": 1 + fn.retries},
                  "requestPayload": event,
                  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                  "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)}}
        # Lambda sends to the destination with the function's execution role.
        with self.acting_as(fn.record.name, environment=False):
            self._service_client("sqs").send_message(
                QueueUrl=_queue_url(fn.on_failure.rsplit(":", 1)[1]), MessageBody=json.dumps(record, default=str))

    def _poll(self, mapping: QueueMapping) -> bool:
        """One poll of the mapping's queue as Lambda's SQS poller does it, with the function's role."""
        if not mapping.enabled or not self._visible_messages(mapping.queue_arn):
            return False
        fn = mapping.function
        sqs = self._service_client("sqs")
        with self.acting_as(fn.record.name, environment=False):
            messages: list[dict[str, Any]] = []
            while len(messages) < mapping.batch_size and self._visible_messages(mapping.queue_arn):
                got = sqs.receive_message(QueueUrl=mapping.queue_url, AttributeNames=["All"],
                                          MessageAttributeNames=["All"],
                                          MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)))
                if not got.get("Messages"):
                    break
                messages += got["Messages"]
        if not messages:
            return False
        cycling = [m for m in messages if int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")) > 10]
        if cycling and not mapping.has_dlq:
            raise WiringError(f"message {cycling[0]['MessageId']} on {mapping.queue_arn} was received "
                              f"{cycling[0]['Attributes']['ApproximateReceiveCount']} times and its queue has no "
                              "redrive policy: it would come back until its retention period ends")
        event = {"Records": [_lambda_sqs_record(m, mapping.queue_arn) for m in messages]}
        queue = mapping.queue_arn.rsplit(":", 1)[1]
        failed: set[str]
        try:
            result = self.run(fn.record.name, event, via=f"SQS {queue} (batch of {len(messages)}, "
                                                          f"mapping batch size {mapping.batch_size})")
            reported = result.get("batchItemFailures", []) if isinstance(result, dict) else []
            failed = {f["itemIdentifier"] for f in reported} if mapping.reports_failures else set()
            self._check_batch_fits(mapping, len(messages))
        except Exception:
            failed = {m["MessageId"] for m in messages}
        with self.acting_as(fn.record.name, environment=False):
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"])
        for message in messages:  # the world's clock moves past the visibility timeout: failed records reappear
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=mapping.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=0)
        return True

    @staticmethod
    def _visible_messages(queue: str) -> bool:
        """Whether a receive from ``queue`` (name or ARN) would return anything, read from moto's queue: empty
        receives (a settle polls every mapping each round) are skipped rather than made, most of a settle's calls."""
        from moto.sqs.models import sqs_backends

        found: Any = sqs_backends[ACCOUNT][REGION].get_queue(queue.rsplit(":", 1)[-1])
        return bool(found.messages)

    def _check_batch_fits(self, mapping: QueueMapping, records: int) -> None:
        """A full batch at the per-record time just measured must finish within the timeout: Lambda may hand the
        function ``batch_size`` records at once, and test-sized records are the cheapest it will ever see."""
        run = self.timeline[-1]
        projected = run.duration_ms / 1000 / records * mapping.batch_size
        if projected > mapping.function.timeout:
            message = (f"{mapping.function.name}: a full batch of {mapping.batch_size} records would take "
                       f"~{projected:.0f}s at the {run.duration_ms / records:.0f} ms per record measured here, "
                       f"over the {mapping.function.timeout:g}s timeout")
            run.outcome, run.error = f"timed out: {message}", FunctionTimedOut(message)
            raise run.error

    # --- databases and credentials rotation -----------------------------------------------------------------------

    def _build_databases(self) -> None:
        """The recorded RDS instances: identifier, engine, database, master user and password as recorded. With a
        database attached, the instance whose database the embedded server holds is that server: its endpoint is the
        server's, its master role is created there (:meth:`ensure_master_roles`) and a ``ModifyDBInstance`` that
        sets the master password sets it there (after :attr:`rds_apply_delay`). They are created in moto's RDS at
        the first RDS call (:meth:`ensure_rds`): moto's RDS backend costs ~0.15 s a world to create and reset, and
        only the credentials rotation calls RDS."""
        served = urlsplit(self.database_url) if self.database_url else None
        for record in self.records.of_type("aws:rds/instance:Instance"):
            i = record.inputs
            identifier = _out(record, "identifier")
            is_served = served is not None and served.path.strip("/") == i.get("dbName")
            self.databases[identifier] = DatabaseInstance(
                record=record, identifier=identifier,
                arn=record.outputs.get("arn") or f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{identifier}",
                username=str(i.get("username")), db_name=str(i.get("dbName")), engine=str(i.get("engine")),
                port=served.port or 5432 if served else int(_num(i.get("port"), 5432)),
                password=str(i.get("password")), served=is_served)
            if served is not None and isinstance(record.outputs.get("address"), str):
                self._rds_addresses[identifier] = self.resolve(record.outputs["address"])

    def ensure_rds(self) -> None:
        """The recorded instances in moto's RDS, and the hooks that make it act as :meth:`_build_databases` says
        (done once, at the world's first RDS call or when a test asks)."""
        if self._rds_in_moto:
            return
        self._rds_in_moto = True
        from moto.rds.models import DBInstance, RDSBackend, rds_backends

        world = self
        address: Any = DBInstance.address
        modify: Any = RDSBackend.modify_db_instance

        def served_address(instance: Any) -> str:
            return world._rds_addresses.get(instance.db_instance_identifier) or address.fget(instance)

        def modify_db_instance(backend: Any, identifier: str, db_kwargs: dict[str, Any]) -> Any:
            database = modify(backend, identifier, db_kwargs)
            password = db_kwargs.get("master_user_password") or db_kwargs.get("MasterUserPassword")
            if password and database.db_instance_identifier in world.databases:
                world._master_password_set(world.databases[database.db_instance_identifier], password)
            return database

        self._patches.enter_context(mock.patch.object(DBInstance, "address", property(served_address)))
        self._patches.enter_context(mock.patch.object(RDSBackend, "modify_db_instance", modify_db_instance))
        backend: Any = rds_backends[ACCOUNT][REGION]
        for instance in self.databases.values():
            i = instance.record.inputs
            backend.create_db_instance({
                "db_instance_identifier": instance.identifier, "engine": instance.engine,
                "db_instance_class": i.get("instanceClass") or "db.t4g.micro",
                "engine_version": i.get("engineVersion") or None, "db_name": instance.db_name,
                "master_username": instance.username, "master_user_password": instance.password,
                "port": instance.port, "allocated_storage": int(_num(i.get("allocatedStorage"), 20)),
                "storage_encrypted": bool(i.get("storageEncrypted")), "multi_az": bool(i.get("multiAz")),
                "publicly_accessible": bool(i.get("publiclyAccessible")),
                "deletion_protection": bool(i.get("deletionProtection"))})

    def database(self, name: str) -> DatabaseInstance:
        """The recorded RDS instance by identifier or logical name (``macrodb``: ``macrodb-instance``)."""
        if name in self.databases:
            return self.databases[name]
        return self.databases[_out(self.record("aws:rds/instance:Instance", name, "instance"), "identifier")]

    def master_credentials(self, instance: DatabaseInstance) -> dict[str, Any]:
        """The credentials JSON a rotation's first run writes for ``instance`` from its description (``sslmode``
        disable: the embedded server has no TLS), with the password it has now as the records and RDS calls tell."""
        return {"username": instance.username, "password": instance.current_password, "engine": instance.engine,
                "host": self._rds_addresses.get(instance.identifier, ""), "port": instance.port,
                "dbname": instance.db_name, "sslmode": "disable"}

    def rotation_function(self, secret: str) -> Function:
        """The recorded function that rotates secret ``secret`` (logical name or ARN)."""
        arn = secret if secret.startswith("arn:") else self.secret_arn(secret)
        if arn not in self.rotations:
            raise WiringError(f"stack {self.stack} records no rotation for secret {secret}")
        return self._function_by_reference(self.rotations[arn])

    def rotated_instance(self, secret: str) -> DatabaseInstance:
        """The instance whose credentials ``secret`` holds: the one its rotation function's environment names."""
        fn = self.rotation_function(secret)
        found = [self.databases[v] for v in fn.environment.values() if v in self.databases]
        if len(found) != 1:
            raise WiringError(f"{fn.name}: its environment names {len(found)} recorded RDS instances")
        return found[0]

    def start_rotation(self, secret: str) -> str:
        """What Secrets Manager does before createSecret: a version with a new token, staged AWSPENDING, no value
        (moto does this only in ``rotate_secret`` with a Lambda it can run in Docker, so it is done on its backend)."""
        from moto.secretsmanager.models import secretsmanager_backends

        arn = secret if secret.startswith("arn:") else self.secret_arn(secret)
        token = str(uuid.uuid4())
        stored: Any = secretsmanager_backends[ACCOUNT][REGION].secrets[arn]
        stored.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
        return token

    def _seed_master_secrets(self) -> None:
        """Each rotated credentials secret holds its instance's master credentials, as the rotation's first run
        would leave it (the URL secrets keep the server's admin URL: every handler reaches the embedded server)."""
        sm = self.client("secretsmanager")
        for secret in self.rotations:
            instance = self.rotated_instance(secret)
            if instance.served:
                sm.put_secret_value(SecretId=secret, SecretString=json.dumps(self.master_credentials(instance)))

    def _admin_connection(self) -> pg8000.dbapi.Connection:
        url = urlsplit(self.database_url or "")
        connection = pg8000.dbapi.connect(user=url.username or "postgres", host=url.hostname or "127.0.0.1",
                                          port=url.port or 5432, database=url.path.strip("/"), ssl_context=False)
        connection.autocommit = True
        return connection

    def _set_role_password(self, instance: DatabaseInstance, password: str) -> None:
        """The embedded server's master role of ``instance`` logs in with ``password`` (created if missing)."""
        connection = self._admin_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (instance.username,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L', %s::text, %s::text)",
                           (instance.username, password))
            cursor.execute(cursor.fetchone()[0])
        finally:
            connection.close()

    def ensure_master_roles(self) -> None:
        """The master role of each served instance exists with the instance's password (once per world: roles
        outlive the tests on the shared server). Done on first need, so that worlds without rotation pay nothing."""
        if self._master_roles_ready:
            return
        self._master_roles_ready = True
        for instance in self.databases.values():
            if instance.served:
                self._set_role_password(instance, instance.current_password)

    def _master_password_set(self, instance: DatabaseInstance, password: str) -> None:
        instance.password_changes.append(password)
        if not instance.served:
            return
        if self.rds_apply_delay is None:
            self._unapplied.append((instance, password))
        elif self.rds_apply_delay <= 0:
            self._set_role_password(instance, password)
        else:
            timer = threading.Timer(self.rds_apply_delay, self._set_role_password, (instance, password))
            self._appliers.append(timer)
            timer.start()

    def apply_master_passwords(self) -> None:
        """RDS catches up: the master passwords held back (``rds_apply_delay = None``) take effect now."""
        while self._unapplied:
            self._set_role_password(*self._unapplied.pop(0))

    def _stop_appliers(self) -> None:
        for timer in self._appliers:
            timer.join()

    def _patch_databases(self) -> None:
        """RDS is built in moto at the first RDS call (:meth:`ensure_rds`); and Secrets Manager labels a first
        AWSCURRENT without ``RemoveFromVersionId`` as AWS does (moto fails with IndexError when no version holds it)."""
        from moto.secretsmanager.models import SecretsManagerBackend

        update_stage: Any = SecretsManagerBackend.update_secret_version_stage

        def first_current(backend: Any, secret_id: str, version_stage: str, remove_from_version_id: str | None,
                          move_to_version_id: str | None) -> Any:
            secret = backend.secrets[secret_id]
            if version_stage == "AWSCURRENT" and not remove_from_version_id and move_to_version_id and not any(
                    "AWSCURRENT" in v["version_stages"] for v in secret.versions.values()):
                secret.versions[move_to_version_id]["version_stages"].append("AWSCURRENT")
                secret.default_version_id = move_to_version_id
                return secret.arn, secret.name
            return update_stage(backend, secret_id, version_stage, remove_from_version_id, move_to_version_id)

        self._patches.enter_context(mock.patch.object(SecretsManagerBackend, "update_secret_version_stage",
                                                      first_current))
        global _ACTIVE_WORLD
        _ACTIVE_WORLD = self
        self._patches.callback(_forget_world, self)
        for session in (boto3._get_default_session(), _admin_session()):  # once: unique ids make it idempotent
            session.events.register("before-call.rds", _rds_called, unique_id="macro-harness-rds")

    # --- observations ---------------------------------------------------------------------------------------------

    def messages(self, queue_url: str, *, delete: bool = True) -> list[dict[str, Any]]:
        """Every visible message on a queue (the test's view)."""
        found: list[dict[str, Any]] = []
        while self._visible_messages(queue_url.rsplit("/", 1)[1]):
            got = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                           AttributeNames=["All"], VisibilityTimeout=30 if delete else 0)
            batch = got.get("Messages", [])
            if not batch:
                return found
            found += batch
            if not delete:
                return found
            self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
        return found

    def alarms_firing(self) -> list[Alarm]:
        """The recorded SQS alarms whose metric (visible messages) is past the threshold right now."""
        firing = []
        for alarm in self.alarms:
            try:
                url = self.sqs.get_queue_url(QueueName=alarm.queue)["QueueUrl"]
            except Exception:
                continue
            visible = float(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                            ["Attributes"]["ApproximateNumberOfMessages"])
            compare = {"GreaterThanThreshold": visible > alarm.threshold,
                       "GreaterThanOrEqualToThreshold": visible >= alarm.threshold}
            if compare.get(alarm.comparison, False):
                firing.append(alarm)
        return firing

    def denied_calls(self) -> list[Call]:
        return [c for c in self.enforcer.calls if c.denied is not None]


def _queue_url(name: str) -> str:
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def _out(record: ResourceRecord, key: str) -> str:
    value = record.outputs.get(key) or record.inputs.get(key)
    if not isinstance(value, str) or not value:
        raise WiringError(f"record {record.name} ({record.type}) has no {key}")
    return value


def _key_schema(spec: dict[str, Any]) -> list[dict[str, str]]:
    if spec.get("keySchemas"):
        return [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in spec["keySchemas"]]
    schema = [{"AttributeName": spec["hashKey"], "KeyType": "HASH"}]
    if spec.get("rangeKey"):
        schema.append({"AttributeName": spec["rangeKey"], "KeyType": "RANGE"})
    return schema


def _projection(spec: dict[str, Any]) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": spec.get("projectionType") or "ALL"}
    if spec.get("nonKeyAttributes"):
        projection["NonKeyAttributes"] = list(spec["nonKeyAttributes"])
    return projection


def _lambda_sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received message as Lambda's SQS event source hands it to the function."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                            "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes", {}), "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
            "awsRegion": REGION}


def _sns_event(subscription: Any, message: str, message_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The event Lambda receives for an SNS message (the documented shape, with the real topic and subscription)."""
    attributes = {name: {"Type": v.get("DataType", "String"), "Value": v.get("StringValue", v.get("Value"))}
                  for name, v in (kwargs.get("message_attributes") or {}).items()}
    return {"Records": [{
        "EventVersion": "1.0", "EventSubscriptionArn": subscription.arn, "EventSource": "aws:sns",
        "Sns": {"SignatureVersion": "1", "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "Signature": "EXAMPLE", "SigningCertUrl": "EXAMPLE", "MessageId": message_id,
                "Message": message, "MessageAttributes": attributes, "Type": "Notification",
                "UnsubscribeUrl": "EXAMPLE",
                "TopicArn": subscription.topic.arn, "Subject": kwargs.get("subject")},
    }]}


def _fresh_logger(service: str) -> None:
    """The data plane's one Powertools logger, as a new execution environment of this function would create it:
    in-process, every handler shares the instance the first import made (its service, keys of the last invocation)."""
    try:
        from core.logging import logger
    except ImportError:
        return
    logger.clear_state()
    logger.append_keys(service=service)


def _clear_handler_caches() -> None:
    """What must not outlive one function's execution environment: cached secret values (another function reading
    them from the cache would skip its own GetSecretValue). boto3 clients may stay: calls are authorised by the
    function acting when they are made, not by the credentials a client was created with."""
    try:
        from core import secrets as core_secrets
    except ImportError:
        return
    core_secrets.clear_cache()
