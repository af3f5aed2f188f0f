"""Rotation of the master credentials against moto Secrets Manager and the real PostgreSQL, and core.db's re-read.

The session server trusts every local login; this module makes every role except ``postgres`` authenticate with
scram-sha-256 (restored afterwards), so a wrong password really fails.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pg8000.dbapi
import pytest
from core import db, secrets
from db_credentials_rotation import handler as rotation
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends

from tools.harness.world import World

REGION = "us-east-1"
ROLE = "rotation-app"  # needs quoting as an identifier
OLD_PASSWORD = "old:Pa55%w?rd#"  # URL-special characters: URLs must encode them
PROXY_HOST = "proxy.test.internal"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _port(pg) -> int:
    return urlsplit(pg.url).port


def _admin_exec(pg, template: str, *args: str) -> None:
    """Runs a utility statement whose identifiers/literals the server quotes (``format`` with %I / %L)."""
    statement = pg.query(f"SELECT format('{template}', {', '.join(['%s::text'] * len(args))})", *args)[0][0]
    pg.query(statement)


def _login(pg, user: str, password: str) -> pg8000.dbapi.Connection:
    return pg8000.dbapi.connect(user=user, password=password, host="127.0.0.1", port=_port(pg), database="macrodb")


def _can_login(pg, user: str, password: str) -> bool:
    try:
        _login(pg, user, password).close()
    except pg8000.dbapi.DatabaseError as exc:
        assert db.sqlstate(exc) == db.INVALID_PASSWORD, exc
        return False
    return True


@pytest.fixture(scope="module")
def password_auth(pg) -> Iterator[None]:
    hba_file = pg.query("SHOW hba_file")[0][0]
    with open(hba_file) as f:
        original = f.read()
    rules = "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    with open(hba_file, "w") as f:
        f.write(rules + original)
    _admin_exec(pg, "CREATE ROLE %I LOGIN PASSWORD %L", "rotation-probe", "probe")
    try:
        pg.query("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 5
        while _can_login(pg, "rotation-probe", "wrong"):  # the reload is asynchronous
            assert time.monotonic() < deadline, "pg_hba.conf reload did not take effect"
            time.sleep(0.02)
        yield
    finally:
        with open(hba_file, "w") as f:
            f.write(original)
        pg.query("SELECT pg_reload_conf()")
        _admin_exec(pg, "DROP ROLE IF EXISTS %I", "rotation-probe")


@pytest.fixture
def app_role(pg, password_auth) -> Iterator[str]:
    _admin_exec(pg, "CREATE ROLE %I LOGIN PASSWORD %L", ROLE, OLD_PASSWORD)
    yield ROLE
    _admin_exec(pg, "DROP ROLE IF EXISTS %I", ROLE)


@dataclass
class Secrets:
    sm: Any
    master: str
    direct: str
    proxy: str

    def value(self, arn: str, **version: str) -> str:
        return self.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT", **version)["SecretString"]

    def master_value(self, **version: str) -> dict:
        return json.loads(self.sm.get_secret_value(SecretId=self.master, **version)["SecretString"])

    def stages(self) -> dict[str, list[str]]:
        return self.sm.describe_secret(SecretId=self.master)["VersionIdsToStages"]

    def version_count(self, arn: str) -> int:
        return len(self.sm.list_secret_version_ids(SecretId=arn)["Versions"])


@pytest.fixture
def rotation_secrets(aws, pg, app_role, monkeypatch) -> Secrets:
    """The JSON master secret with rotation enabled and both URL secrets, as the program creates them."""
    sm = boto3.client("secretsmanager", region_name=REGION)
    suffix = uuid.uuid4().hex[:8]
    master = {
        "username": ROLE,
        "password": OLD_PASSWORD,
        "engine": "postgres",
        "host": "127.0.0.1",
        "port": _port(pg),
        "dbname": "macrodb",
        "sslmode": "disable",
    }
    master_arn = sm.create_secret(Name=f"macrodb-master-{suffix}", SecretString=json.dumps(master))["ARN"]
    old = rotation.Credentials.parse(json.dumps(master), "test")
    direct = sm.create_secret(Name=f"macrodb-url-{suffix}", SecretString=old.url("127.0.0.1"))["ARN"]
    proxy = sm.create_secret(Name=f"macrodb-proxy-url-{suffix}", SecretString=old.url(PROXY_HOST))["ARN"]
    # Without a Lambda ARN moto enables rotation and re-labels a copy of the value AWSCURRENT; nothing is invoked.
    sm.rotate_secret(SecretId=master_arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    monkeypatch.setenv("URL_SECRETS", json.dumps({direct: "127.0.0.1", proxy: PROXY_HOST}))
    return Secrets(sm, master_arn, direct, proxy)


def start_rotation(arn: str) -> str:
    """What Secrets Manager does before createSecret: a version with the token, staged AWSPENDING, and no value.

    moto does this only inside ``rotate_secret`` with a Lambda it can invoke (Docker), so it is done on its backend.
    """
    token = str(uuid.uuid4())
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    return token


def run(arn: str, token: str, step: str, context) -> None:
    rotation.handler({"SecretId": arn, "ClientRequestToken": token, "Step": step}, context)


@pytest.fixture
def recorded_rotation(wired_world, pg, app_role) -> tuple[World, Secrets, str, dict[str, str]]:
    """prod's recorded rotation: the master secret and the URL secrets its function's URL_SECRETS names (with the
    host each gets), the master holding the test role's credentials. Returns the world, the secrets (``direct`` and
    ``proxy`` by host order), the rotation function's record name and URL_SECRETS."""
    world = wired_world("prod")
    master_arn = world.secret_arn("macrodb-credentials")
    master = {"username": ROLE, "password": OLD_PASSWORD, "engine": "postgres", "host": "127.0.0.1",
              "port": _port(pg), "dbname": "macrodb", "sslmode": "disable"}
    sm = world.client("secretsmanager")
    sm.put_secret_value(SecretId=master_arn, SecretString=json.dumps(master))
    function = next(f for f in world.functions.values() if f.arn == world.rotations[master_arn])
    url_secrets = json.loads(function.environment["URL_SECRETS"])
    direct, proxy = sorted(url_secrets)
    return world, Secrets(sm, master_arn, direct, proxy), function.record.name, url_secrets


def invoke_step(rotating: tuple[World, Secrets, str, dict[str, str]], token: str, step: str) -> None:
    """One rotation step as Secrets Manager invokes prod's recorded rotation function for its master secret."""
    world, s, function, _ = rotating
    world.invoke(function, {"SecretId": s.master, "ClientRequestToken": token, "Step": step})


@pytest.mark.parametrize("runs", [1, 2], ids=["once", "every-step-twice"])
def test_rotation_changes_the_password_everywhere(recorded_rotation, pg, runs):
    world, s, function, url_secrets = recorded_rotation
    old_current = next(v for v, stages in s.stages().items() if "AWSCURRENT" in stages)
    token = start_rotation(s.master)
    pending_values = []
    for step in STEPS:
        for _ in range(runs):
            world.invoke(function, {"SecretId": s.master, "ClientRequestToken": token, "Step": step})
            if step == "createSecret":
                pending_values.append(s.master_value(VersionId=token))

    assert world.denied_calls() == []
    assert all(value == pending_values[0] for value in pending_values)  # a retried createSecret keeps its password
    new = s.master_value(VersionStage="AWSCURRENT")
    new_password = new["password"]
    assert new_password != OLD_PASSWORD and len(new_password) == rotation.PASSWORD_LENGTH
    assert not set(new_password) & set("/@\"'\\ ")
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in s.master_value(VersionId=old_current).items() if k != "password"
    }
    assert s.stages()[token] == ["AWSCURRENT"]
    assert s.stages()[old_current] == ["AWSPREVIOUS"]
    assert not _can_login(pg, ROLE, OLD_PASSWORD)
    assert _can_login(pg, ROLE, new_password)

    for arn in (s.direct, s.proxy):
        url = urlsplit(s.value(arn))
        assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", url_secrets[arn], _port(pg), "/macrodb")
        assert (unquote(url.username), unquote(url.password)) == (ROLE, new_password)
        assert parse_qs(url.query) == {"sslmode": ["disable"]}
        assert s.version_count(arn) == 2  # one new version however often finishSecret ran
    db.connect_url(s.value(s.direct)).close()


def test_core_db_reconnects_after_a_rotation(rotation_secrets, monkeypatch, lambda_context):
    """A warm function holding the pre-rotation URL connects once the rotation wrote the new one."""
    s = rotation_secrets
    monkeypatch.setenv("DATABASE_SECRET_ARN", s.direct)
    db.connect().close()  # caches the old URL
    token = start_rotation(s.master)
    for step in STEPS:
        run(s.master, token, step, lambda_context)
    conn = db.connect()
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == ROLE
    finally:
        conn.close()


def test_connect_rereads_a_stale_secret_once(aws, pg, app_role, monkeypatch):
    sm = boto3.client("secretsmanager", region_name=REGION)
    url = f"postgresql://{ROLE}:{{}}@127.0.0.1:{_port(pg)}/macrodb?sslmode=disable"
    arn = sm.create_secret(Name="macrodb-stale", SecretString=url.format("old%3APa55%25w%3Frd%23"))["ARN"]
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    db.connect().close()
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", ROLE, "new-password")
    sm.put_secret_value(SecretId=arn, SecretString=url.format("new-password"))
    assert "old%3A" in secrets.get_secret_string(arn)  # the cached value is stale now

    conn = db.connect()
    conn.close()
    assert "new-password" in secrets.get_secret_string(arn)

    # A secret that is wrong after the re-read is an error, not a loop; other errors do not touch the cache.
    sm.put_secret_value(SecretId=arn, SecretString=url.format("wrong"))
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", ROLE, "newer-password")
    reads = []
    monkeypatch.setattr(secrets, "clear_cache", lambda: reads.append(1) or secrets._cache.clear())
    with pytest.raises(pg8000.dbapi.DatabaseError) as raised:
        db.connect()
    assert db.sqlstate(raised.value) == db.INVALID_PASSWORD and reads == [1]
    sm.put_secret_value(SecretId=arn, SecretString=url.format("newer-password").replace("/macrodb", "/missing"))
    secrets._cache.clear()
    with pytest.raises(pg8000.dbapi.DatabaseError) as raised:
        db.connect()
    assert db.sqlstate(raised.value) == "3D000" and reads == [1]


def test_finish_updates_every_url_secret_it_can_and_a_retry_completes(recorded_rotation):
    world, s, function, url_secrets = recorded_rotation
    token = start_rotation(s.master)
    for step in STEPS[:3]:
        invoke_step(recorded_rotation, token, step)
    missing = s.direct[: s.direct.rindex("-")] + "-gone-AbCdEf"  # a URL secret that no longer exists
    world.set_env(function, "URL_SECRETS", json.dumps({missing: "127.0.0.1", s.proxy: url_secrets[s.proxy]}))
    with pytest.raises(rotation.RotationError, match=f"{s.master}.*finishSecret.*{missing}"):
        invoke_step(recorded_rotation, token, "finishSecret")
    assert "AWSCURRENT" in s.stages()[token]
    new_password = s.master_value(VersionStage="AWSCURRENT")["password"]
    assert unquote(urlsplit(s.value(s.proxy)).password) == new_password  # the failure did not stop the others

    world.set_env(function, "URL_SECRETS", json.dumps(url_secrets))
    invoke_step(recorded_rotation, token, "finishSecret")
    assert unquote(urlsplit(s.value(s.direct)).password) == new_password
    assert s.version_count(s.proxy) == 2


def test_a_pending_value_that_exists_is_kept(recorded_rotation, pg):
    _, s, _, _ = recorded_rotation
    token = str(uuid.uuid4())
    pending = s.master_value(VersionStage="AWSCURRENT") | {"password": "chosen-Pa55word"}
    s.sm.put_secret_value(
        SecretId=s.master, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
    )
    for step in STEPS:
        invoke_step(recorded_rotation, token, step)
    assert _can_login(pg, ROLE, "chosen-Pa55word")


def test_set_secret_says_when_no_credentials_work(recorded_rotation, pg):
    _, s, _, _ = recorded_rotation
    token = start_rotation(s.master)
    invoke_step(recorded_rotation, token, "createSecret")
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", ROLE, "changed-out-of-band")
    with pytest.raises(rotation.RotationError, match=f"{s.master} failed at setSecret: neither the current"):
        invoke_step(recorded_rotation, token, "setSecret")
    with pytest.raises(rotation.RotationError, match="testSecret: the database rejects the pending password"):
        invoke_step(recorded_rotation, token, "testSecret")


def test_unknown_token_and_unstaged_version_are_rejected(recorded_rotation):
    _, s, _, _ = recorded_rotation
    unknown = str(uuid.uuid4())
    with pytest.raises(rotation.RotationError, match=f"{s.master} failed at createSecret: token {unknown} is not a"):
        invoke_step(recorded_rotation, unknown, "createSecret")
    first = next(v for v, stages in s.stages().items() if "AWSCURRENT" in stages)
    token = start_rotation(s.master)
    for step in STEPS:  # the value the test put becomes AWSPREVIOUS
        invoke_step(recorded_rotation, token, step)
    assert "AWSPREVIOUS" in s.stages()[first]
    with pytest.raises(rotation.RotationError, match="setSecret: version .* is not staged AWSPENDING"):
        invoke_step(recorded_rotation, first, "setSecret")
    with pytest.raises(rotation.RotationError, match="unknown step"):
        invoke_step(recorded_rotation, start_rotation(s.master), "deleteSecret")
    current = next(v for v, stages in s.stages().items() if "AWSCURRENT" in stages)
    invoke_step(recorded_rotation, current, "setSecret")  # already current: nothing to do


def test_secret_without_rotation_and_bad_config_fail_before_any_change(aws, monkeypatch, lambda_context):
    sm = boto3.client("secretsmanager", region_name=REGION)
    arn = sm.create_secret(Name="no-rotation", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
    token = start_rotation(arn)
    monkeypatch.setenv("URL_SECRETS", "{}")
    with pytest.raises(rotation.RotationError, match=f"{arn} failed at createSecret: rotation is not enabled"):
        run(arn, token, "createSecret", lambda_context)

    sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    token = start_rotation(arn)  # moto's rotate_secret dropped the earlier AWSPENDING label
    monkeypatch.delenv("URL_SECRETS")
    with pytest.raises(rotation.RotationError, match="URL_SECRETS is required"):
        run(arn, token, "createSecret", lambda_context)
    monkeypatch.setenv("URL_SECRETS", '{"arn:x": "host/with/slash"}')
    with pytest.raises(rotation.RotationError, match="URL_SECRETS must map"):
        run(arn, token, "createSecret", lambda_context)
    monkeypatch.setenv("URL_SECRETS", "{}")
    with pytest.raises(rotation.RotationError, match="createSecret: ValueError: the AWSCURRENT value needs .*'host'"):
        run(arn, token, "createSecret", lambda_context)
    versions = sm.list_secret_version_ids(SecretId=arn)["Versions"]
    assert len(versions) == 4  # original, first placeholder, moto's copy, placeholder: no pending value was written
    with pytest.raises(rotation.RotationError, match="no Step"):
        rotation.handler({"SecretId": arn, "ClientRequestToken": token}, lambda_context)


def test_password_never_reaches_logs_or_errors(recorded_rotation, pg, caplog):
    _, s, _, _ = recorded_rotation
    token = start_rotation(s.master)
    for step in STEPS[:2]:
        invoke_step(recorded_rotation, token, step)
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", ROLE, "out-of-band")
    with pytest.raises(rotation.RotationError) as raised:
        invoke_step(recorded_rotation, token, "testSecret")
    pending = s.master_value(VersionId=token)
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "rotation step done" in logged and "rotation step failed" in logged
    texts = (logged, str(raised.value), repr(rotation.Credentials.parse(json.dumps(pending), "x")))
    for text in texts:
        assert pending["password"] not in text and OLD_PASSWORD not in text


# --- First run: the program stores no value in prod, the first rotation seeds every secret --------------------------

INSTANCE = "macrodb-test"


class FakeRds:
    """The two RDS calls seeding makes, acting on the real PostgreSQL: ``ModifyDBInstance`` sets the master password
    like RDS does, asynchronously (after ``apply_after`` more describe/login rounds), so the wait is exercised."""

    def __init__(self, pg, apply_after: float = 0.3) -> None:
        self.pg, self.apply_after, self.modified = pg, apply_after, []

    def describe_db_instances(self, DBInstanceIdentifier: str) -> dict:  # noqa: N803 (boto3 parameter names)
        assert DBInstanceIdentifier == INSTANCE
        return {"DBInstances": [{
            "DBInstanceIdentifier": INSTANCE, "Engine": "postgres", "MasterUsername": ROLE, "DBName": "macrodb",
            "Endpoint": {"Address": "127.0.0.1", "Port": _port(self.pg)}, "DBInstanceStatus": "available"}]}

    def modify_db_instance(self, DBInstanceIdentifier: str, MasterUserPassword: str,  # noqa: N803
                           ApplyImmediately: bool) -> dict:
        assert DBInstanceIdentifier == INSTANCE and ApplyImmediately
        self.modified.append(MasterUserPassword)
        if self.apply_after is not None:
            import threading

            threading.Timer(self.apply_after, _admin_exec,
                            (self.pg, "ALTER ROLE %I PASSWORD %L", ROLE, MasterUserPassword)).start()
        return {}


_moto_update_stage = SecretsManagerBackend.update_secret_version_stage


def _first_current_allowed(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
    """moto fails (IndexError) to attach AWSCURRENT when no version holds it; AWS requires RemoveFromVersionId only
    when another version holds the label, so this does what AWS does in that one case."""
    secret = self.secrets[secret_id]
    if version_stage == "AWSCURRENT" and not remove_from_version_id and not any(
            "AWSCURRENT" in v["version_stages"] for v in secret.versions.values()):
        secret.versions[move_to_version_id]["version_stages"].append("AWSCURRENT")
        secret.default_version_id = move_to_version_id
        return secret.arn, secret.name
    return _moto_update_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)


@pytest.fixture
def empty_secrets(aws, pg, app_role, monkeypatch) -> tuple[Secrets, FakeRds]:
    """The secrets as the program creates them when credentials rotate: names only, no value; rotation enabled."""
    sm = boto3.client("secretsmanager", region_name=REGION)
    suffix = uuid.uuid4().hex[:8]
    master, direct, proxy = (sm.create_secret(Name=f"{kind}-{suffix}")["ARN"] for kind in ("master", "url", "proxy"))
    sm.rotate_secret(SecretId=master, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    monkeypatch.setenv("URL_SECRETS", json.dumps({direct: "127.0.0.1", proxy: PROXY_HOST}))
    monkeypatch.setenv(rotation.INSTANCE_ENV, INSTANCE)
    monkeypatch.setattr(rotation, "SEED_SSLMODE", "disable")  # the test server has no TLS
    rds = FakeRds(pg)
    clients = rotation.aws.client
    monkeypatch.setattr(SecretsManagerBackend, "update_secret_version_stage", _first_current_allowed)
    monkeypatch.setattr(rotation.aws, "client", lambda service: rds if service == "rds" else clients(service))
    return Secrets(sm, master, direct, proxy), rds


def test_first_rotation_seeds_the_empty_secrets_from_the_instance(empty_secrets, pg, lambda_context):
    """The scenario of issue 8 §3: nothing Pulumi wrote exists; the rotation alone creates every value."""
    s, rds = empty_secrets
    token = start_rotation(s.master)
    for step in STEPS:
        run(s.master, token, step, lambda_context)

    seeded = s.master_value(VersionStage="AWSCURRENT")
    assert {k: v for k, v in seeded.items() if k != "password"} == {
        "username": ROLE, "engine": "postgres", "host": "127.0.0.1", "port": _port(pg), "dbname": "macrodb",
        "sslmode": "disable"}
    assert rds.modified == [seeded["password"]], "the password is set through RDS exactly once"
    assert s.stages() == {token: ["AWSCURRENT"]}
    assert _can_login(pg, ROLE, seeded["password"]) and not _can_login(pg, ROLE, OLD_PASSWORD)
    for arn, host in ((s.direct, "127.0.0.1"), (s.proxy, PROXY_HOST)):
        url = urlsplit(s.value(arn))
        assert (url.hostname, unquote(url.password)) == (host, seeded["password"])
        assert s.version_count(arn) == 1

    # The next rotation is an ordinary one: SQL with the seeded credentials, RDS untouched.
    token = start_rotation(s.master)
    for step in STEPS:
        run(s.master, token, step, lambda_context)
    rotated = s.master_value(VersionStage="AWSCURRENT")["password"]
    assert rotated != seeded["password"] and rds.modified == [seeded["password"]]
    assert _can_login(pg, ROLE, rotated) and not _can_login(pg, ROLE, seeded["password"])
    assert unquote(urlsplit(s.value(s.proxy)).password) == rotated


def test_seeding_survives_a_first_value_labelled_current_at_once(empty_secrets, pg, lambda_context):
    """Secrets Manager labels a secret's first version AWSCURRENT: the rotation must still set the password."""
    s, rds = empty_secrets
    token = start_rotation(s.master)
    run(s.master, token, "createSecret", lambda_context)
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[s.master]
    secret.versions[token]["version_stages"] = ["AWSPENDING", "AWSCURRENT"]
    secret.default_version_id = token
    for step in STEPS[1:]:
        run(s.master, token, step, lambda_context)
    password = s.master_value(VersionStage="AWSCURRENT")["password"]
    assert rds.modified == [password] and _can_login(pg, ROLE, password)
    assert s.stages() == {token: ["AWSCURRENT"]}


def test_a_seed_rds_has_not_applied_yet_fails_the_step_and_the_retry_completes(
        empty_secrets, pg, lambda_context, monkeypatch):
    s, rds = empty_secrets
    rds.apply_after = None  # RDS is slow: nothing happens within the wait
    monkeypatch.setattr(rotation, "SEED_WAIT_SECONDS", 0)
    token = start_rotation(s.master)
    run(s.master, token, "createSecret", lambda_context)
    with pytest.raises(rotation.RotationError, match=f"setSecret: RDS has not applied .* of {INSTANCE} yet"):
        run(s.master, token, "setSecret", lambda_context)
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", ROLE, rds.modified[0])  # RDS catches up
    for step in STEPS[1:]:
        run(s.master, token, step, lambda_context)
    assert rds.modified == [s.master_value(VersionStage="AWSCURRENT")["password"]]


def test_seeding_needs_the_instance_and_fails_before_any_change(empty_secrets, lambda_context, monkeypatch):
    s, rds = empty_secrets
    monkeypatch.delenv(rotation.INSTANCE_ENV)
    token = start_rotation(s.master)
    with pytest.raises(rotation.RotationError, match=f"createSecret: .*{rotation.INSTANCE_ENV} is required"):
        run(s.master, token, "createSecret", lambda_context)
    assert s.stages() == {token: ["AWSPENDING"]} and rds.modified == []
    with pytest.raises(s.sm.exceptions.ResourceNotFoundException):
        s.sm.get_secret_value(SecretId=s.master, VersionId=token)


def test_rotation_on_the_recorded_prod_wiring(wired_world, pg, app_role):
    """Secrets Manager runs the recorded rotation function for the recorded secret; every step is authorised by the
    function's recorded policy and the secret's key, and the URL secrets it rewrites are the ones its env names."""
    world = wired_world("prod")
    master_arn = world.secret_arn("macrodb-credentials")
    master = {"username": ROLE, "password": OLD_PASSWORD, "engine": "postgres", "host": "127.0.0.1",
              "port": _port(pg), "dbname": "macrodb", "sslmode": "disable"}
    world.client("secretsmanager").put_secret_value(SecretId=master_arn, SecretString=json.dumps(master))

    runs = world.rotate("macrodb-credentials")

    assert [r.outcome for r in runs] == ["ok"] * 4 and world.denied_calls() == []
    sm = world.client("secretsmanager")
    rotated = json.loads(sm.get_secret_value(SecretId=master_arn, VersionStage="AWSCURRENT")["SecretString"])
    assert rotated["password"] != OLD_PASSWORD
    assert _can_login(pg, ROLE, rotated["password"]) and not _can_login(pg, ROLE, OLD_PASSWORD)
    function = [f for f in world.functions.values() if world.rotations[master_arn] == f.arn][0]
    url_secrets = json.loads(function.environment["URL_SECRETS"])
    assert len(url_secrets) == 2
    for arn in url_secrets:
        url = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        assert unquote(urlsplit(url).password or "") == rotated["password"]
