"""Rotation of the master credentials on prod's recorded wiring, against moto and the real PostgreSQL, and core.db's
re-read of a rotated URL.

Only prod rotates (dev asserts the rotation is absent: ``test_wired_handlers.py``). Every name comes from prod's
records through the harness: the credentials and URL secrets, the rotation function and its ``URL_SECRETS``, the RDS
instance (identifier, master user, database; built in moto, served by the embedded server) and the grants every step
is authorised against, ``rds:DescribeDBInstances`` and ``rds:ModifyDBInstance`` of the first run included.

The session server trusts every local login; this module makes every role except ``postgres`` authenticate with
scram-sha-256 (restored afterwards), so a wrong password really fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pg8000.dbapi
import pytest
from core import db, secrets
from db_credentials_rotation import handler as rotation
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from tools.harness.world import DatabaseInstance, World

REGION = "us-east-1"
SECRET = "macrodb-credentials"
"""The recorded credentials secret whose rotation these tests run (the data plane's database)."""
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _port(pg) -> int:
    return urlsplit(pg.url).port


def _admin_exec(pg, template: str, *args: str) -> None:
    """Runs a utility statement whose identifiers/literals the server quotes (``format`` with %I / %L)."""
    statement = pg.query(f"SELECT format('{template}', {', '.join(['%s::text'] * len(args))})", *args)[0][0]
    pg.query(statement)


def _can_login(pg, user: str, password: str) -> bool:
    try:
        pg8000.dbapi.connect(user=user, password=password, host="127.0.0.1", port=_port(pg),
                             database="macrodb", ssl_context=False).close()
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


@dataclass
class Rotating:
    """prod's recorded rotation of :data:`SECRET`: the world, the secret's ARN, its rotation function (record name),
    the instance it holds the master credentials of and the URL secrets the function rewrites (ARN -> host)."""

    world: World
    master: str
    function: str
    instance: DatabaseInstance
    url_secrets: dict[str, str]

    @property
    def sm(self) -> Any:
        return self.world.client("secretsmanager")

    @property
    def role(self) -> str:
        return self.instance.username

    def start(self) -> str:
        return self.world.start_rotation(self.master)

    def step(self, token: str, step: str) -> None:
        """One step as Secrets Manager invokes the recorded rotation function for the recorded secret."""
        self.world.invoke(self.function, {"SecretId": self.master, "ClientRequestToken": token, "Step": step})

    def value(self, arn: str, **version: str) -> str:
        return self.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT", **version)["SecretString"]

    def master_value(self, **version: str) -> dict:
        return json.loads(self.sm.get_secret_value(SecretId=self.master, **version)["SecretString"])

    def stages(self) -> dict[str, list[str]]:
        return self.sm.describe_secret(SecretId=self.master).get("VersionIdsToStages", {})

    def version_count(self, arn: str) -> int:
        return len(self.sm.list_secret_version_ids(SecretId=arn)["Versions"])

    def consumer(self) -> str:
        """A recorded function that connects with one of the URL secrets the rotation rewrites (its record name)."""
        return next(f.record.name for f in self.world.functions.values()
                    if f.environment.get(db.DATABASE_SECRET_ENV) in self.url_secrets)


def _rotating(world: World) -> Rotating:
    fn = world.rotation_function(SECRET)
    world.ensure_master_roles()
    return Rotating(world, world.secret_arn(SECRET), fn.record.name, world.rotated_instance(SECRET),
                    json.loads(fn.environment[rotation.URL_SECRETS_ENV]))


@pytest.fixture
def rotating(wired_world: Callable[[str], World], password_auth) -> Rotating:
    """prod as the records make it, the credentials holding the instance's master credentials (as the first
    rotation leaves them); the URL secrets hold the server's admin URL until a rotation rewrites them."""
    return _rotating(wired_world("prod"))


@pytest.fixture
def first_rotation(wired_world_unseeded: Callable[[str], World], password_auth, monkeypatch) -> Rotating:
    """prod as the program leaves it: the credentials and URL secrets have no value; the first rotation seeds them."""
    monkeypatch.setattr(rotation, "SEED_SSLMODE", "disable")  # the embedded server has no TLS
    return _rotating(wired_world_unseeded("prod"))


@pytest.mark.parametrize("runs", [1, 2], ids=["once", "every-step-twice"])
def test_rotation_changes_the_password_everywhere(rotating, pg, runs):
    r = rotating
    old_current = next(v for v, stages in r.stages().items() if "AWSCURRENT" in stages)
    token = r.start()
    pending_values = []
    for step in STEPS:
        for _ in range(runs):
            r.step(token, step)
            if step == "createSecret":
                pending_values.append(r.master_value(VersionId=token))

    assert r.world.denied_calls() == []
    assert all(value == pending_values[0] for value in pending_values)  # a retried createSecret keeps its password
    new = r.master_value(VersionStage="AWSCURRENT")
    new_password = new["password"]
    assert new_password != r.instance.password and len(new_password) == rotation.PASSWORD_LENGTH
    assert not set(new_password) & set("/@\"'\\ ")
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in r.master_value(VersionId=old_current).items() if k != "password"
    }
    assert r.stages()[token] == ["AWSCURRENT"]
    assert r.stages()[old_current] == ["AWSPREVIOUS"]
    assert not _can_login(pg, r.role, r.instance.password)
    assert _can_login(pg, r.role, new_password)
    assert r.instance.password_changes == []  # an ordinary rotation changes the password with SQL, not through RDS

    assert len(r.url_secrets) == 2  # the direct and the proxy URL
    for arn, host in r.url_secrets.items():
        url = urlsplit(r.value(arn))
        assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", host, _port(pg), "/macrodb")
        assert (unquote(url.username), unquote(url.password)) == (r.role, new_password)
        assert parse_qs(url.query) == {"sslmode": ["disable"]}
        assert r.version_count(arn) == 2  # one new version however often finishSecret ran
        db.connect_url(r.value(arn)).close()


def test_core_db_reconnects_after_a_rotation(rotating, pg):
    """A warm function holding the pre-rotation URL connects once the rotation wrote the new one."""
    r = rotating
    r.world.rotate(SECRET)  # the URL secrets now hold the master user's URL
    consumer = r.consumer()
    with r.world.acting_as(consumer) as fn:
        db.connect().close()
        warm = dict(secrets._cache)
    stale = warm[fn.environment[db.DATABASE_SECRET_ENV]]
    r.world.rotate(SECRET)
    assert not _can_login(pg, r.role, unquote(urlsplit(stale).password))
    with r.world.acting_as(consumer):
        secrets._cache.update(warm)  # the execution environment outlived the rotation
        conn = db.connect()
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == r.role
        finally:
            conn.close()
        assert secrets._cache[fn.environment[db.DATABASE_SECRET_ENV]] != stale


def test_connect_rereads_a_stale_secret_once(rotating, pg, monkeypatch):
    r = rotating
    consumer = r.consumer()
    arn = r.world.function(consumer).environment[db.DATABASE_SECRET_ENV]
    creds = r.world.master_credentials(r.instance)

    def url(password: str, dbname: str = creds["dbname"]) -> str:
        return (f"postgresql://{quote(creds['username'], safe='')}:{quote(password, safe='')}@{creds['host']}:"
                f"{creds['port']}/{dbname}?sslmode=disable")

    old = "old:Pa55%w?rd#"  # URL-special characters: the URL must encode them
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", r.role, old)
    r.sm.put_secret_value(SecretId=arn, SecretString=url(old))
    with r.world.acting_as(consumer):
        db.connect().close()
        _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", r.role, "new-password")
        r.sm.put_secret_value(SecretId=arn, SecretString=url("new-password"))
        assert "old%3A" in secrets.get_secret_string(arn)  # the cached value is stale now

        conn = db.connect()
        conn.close()
        assert "new-password" in secrets.get_secret_string(arn)

        # A secret that is wrong after the re-read is an error, not a loop; other errors do not touch the cache.
        r.sm.put_secret_value(SecretId=arn, SecretString=url("wrong"))
        _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", r.role, "newer-password")
        reads: list[int] = []
        monkeypatch.setattr(secrets, "clear_cache", lambda: reads.append(1) or secrets._cache.clear())
        with pytest.raises(pg8000.dbapi.DatabaseError) as raised:
            db.connect()
        assert db.sqlstate(raised.value) == db.INVALID_PASSWORD and reads == [1]
        r.sm.put_secret_value(SecretId=arn, SecretString=url("newer-password", "missing"))
        secrets._cache.clear()
        with pytest.raises(pg8000.dbapi.DatabaseError) as raised:
            db.connect()
        assert db.sqlstate(raised.value) == "3D000" and reads == [1]
    assert r.world.denied_calls() == []


def test_finish_updates_every_url_secret_it_can_and_a_retry_completes(rotating):
    r = rotating
    direct, proxy = sorted(r.url_secrets)
    token = r.start()
    for step in STEPS[:3]:
        r.step(token, step)
    missing = direct[: direct.rindex("-")] + "-gone-AbCdEf"  # a URL secret that no longer exists
    r.world.set_env(r.function, rotation.URL_SECRETS_ENV,
                    json.dumps({missing: r.url_secrets[direct], proxy: r.url_secrets[proxy]}))
    with pytest.raises(rotation.RotationError, match=f"{r.master}.*finishSecret.*{missing}"):
        r.step(token, "finishSecret")
    assert "AWSCURRENT" in r.stages()[token]
    new_password = r.master_value(VersionStage="AWSCURRENT")["password"]
    assert unquote(urlsplit(r.value(proxy)).password) == new_password  # the failure did not stop the others

    r.world.set_env(r.function, rotation.URL_SECRETS_ENV, json.dumps(r.url_secrets))
    r.step(token, "finishSecret")
    assert unquote(urlsplit(r.value(direct)).password) == new_password
    assert r.version_count(proxy) == 2


def test_a_pending_value_that_exists_is_kept(rotating, pg):
    r = rotating
    token = "0c4b6f8e-6b0e-4c43-9a8e-1d5f0b7c2a11"
    pending = r.master_value(VersionStage="AWSCURRENT") | {"password": "chosen-Pa55word"}
    r.sm.put_secret_value(
        SecretId=r.master, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=["AWSPENDING"]
    )
    for step in STEPS:
        r.step(token, step)
    assert _can_login(pg, r.role, "chosen-Pa55word")


def test_set_secret_says_when_no_credentials_work(rotating, pg):
    r = rotating
    token = r.start()
    r.step(token, "createSecret")
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", r.role, "changed-out-of-band")
    with pytest.raises(rotation.RotationError, match=f"{r.master} failed at setSecret: neither the current"):
        r.step(token, "setSecret")
    with pytest.raises(rotation.RotationError, match="testSecret: the database rejects the pending password"):
        r.step(token, "testSecret")


def test_unknown_token_and_unstaged_version_are_rejected(rotating):
    r = rotating
    unknown = "5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"
    with pytest.raises(rotation.RotationError, match=f"{r.master} failed at createSecret: token {unknown} is not a"):
        r.step(unknown, "createSecret")
    first = next(v for v, stages in r.stages().items() if "AWSCURRENT" in stages)
    token = r.start()
    for step in STEPS:  # the seeded value becomes AWSPREVIOUS
        r.step(token, step)
    assert "AWSPREVIOUS" in r.stages()[first]
    with pytest.raises(rotation.RotationError, match="setSecret: version .* is not staged AWSPENDING"):
        r.step(first, "setSecret")
    with pytest.raises(rotation.RotationError, match="unknown step"):
        r.step(r.start(), "deleteSecret")
    current = next(v for v, stages in r.stages().items() if "AWSCURRENT" in stages)
    r.step(current, "setSecret")  # already current: nothing to do


def test_secret_without_rotation_and_bad_config_fail_before_any_change(rotating):
    """Each failure comes before a pending value exists: the recorded environment with one value changed, a current
    value that lacks a key, the recorded secret with its rotation turned off, an event without a step."""
    r = rotating
    token = r.start()
    versions = r.version_count(r.master)
    r.world.set_env(r.function, rotation.URL_SECRETS_ENV, "")
    with pytest.raises(rotation.RotationError, match=f"{rotation.URL_SECRETS_ENV} is required"):
        r.step(token, "createSecret")
    r.world.set_env(r.function, rotation.URL_SECRETS_ENV, '{"arn:x": "host/with/slash"}')
    with pytest.raises(rotation.RotationError, match=f"{rotation.URL_SECRETS_ENV} must map"):
        r.step(token, "createSecret")
    r.world.set_env(r.function, rotation.URL_SECRETS_ENV, json.dumps(r.url_secrets))

    r.sm.put_secret_value(SecretId=r.master, SecretString=json.dumps({"username": "u", "password": "p"}))
    with pytest.raises(rotation.RotationError, match="createSecret: ValueError: the AWSCURRENT value needs .*'host'"):
        r.step(token, "createSecret")
    r.sm.cancel_rotate_secret(SecretId=r.master)
    with pytest.raises(rotation.RotationError, match=f"{r.master} failed at createSecret: rotation is not enabled"):
        r.step(token, "createSecret")

    assert r.version_count(r.master) == versions + 1  # the broken value the test wrote; no pending value
    with pytest.raises(r.sm.exceptions.ResourceNotFoundException):
        r.sm.get_secret_value(SecretId=r.master, VersionId=token)
    with pytest.raises(rotation.RotationError, match="no Step"):  # no trigger sends this: run, not invoke
        r.world.run(r.function, {"SecretId": r.master, "ClientRequestToken": token})
    assert r.world.denied_calls() == []


def test_password_never_reaches_logs_or_errors(rotating, pg, caplog):
    r = rotating
    token = r.start()
    for step in STEPS[:2]:
        r.step(token, step)
    _admin_exec(pg, "ALTER ROLE %I PASSWORD %L", r.role, "out-of-band")
    with pytest.raises(rotation.RotationError) as raised:
        r.step(token, "testSecret")
    pending = r.master_value(VersionId=token)
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "rotation step done" in logged and "rotation step failed" in logged
    texts = (logged, str(raised.value), repr(rotation.Credentials.parse(json.dumps(pending), "x")))
    for text in texts:
        assert pending["password"] not in text and r.instance.password not in text


def test_rotation_on_the_recorded_prod_wiring(rotating, pg):
    """Secrets Manager runs the recorded rotation function for the recorded secret; every step is authorised by the
    function's recorded policy and the secret's key, and the URL secrets it rewrites are the ones its env names."""
    r = rotating
    runs = r.world.rotate(SECRET)

    assert [run.outcome for run in runs] == ["ok"] * 4 and r.world.denied_calls() == []
    rotated = r.master_value(VersionStage="AWSCURRENT")
    assert rotated["password"] != r.instance.password
    assert _can_login(pg, r.role, rotated["password"]) and not _can_login(pg, r.role, r.instance.password)
    for arn in r.url_secrets:
        assert unquote(urlsplit(r.value(arn)).password or "") == rotated["password"]


# --- First run: the program stores no value in prod, the first rotation seeds every secret --------------------------

def test_first_rotation_seeds_the_empty_secrets_from_the_instance(first_rotation, pg):
    """The scenario of issue 8 §3: nothing Pulumi wrote exists; the rotation alone creates every value, reading the
    recorded instance from RDS and setting its password through RDS (which applies it after a moment)."""
    r = first_rotation
    assert r.stages() == {} and all(r.version_count(arn) == 0 for arn in r.url_secrets)
    r.world.rds_apply_delay = 0.3  # RDS applies the password asynchronously: setSecret's wait is exercised
    token = r.start()
    for step in STEPS:
        r.step(token, step)

    seeded = r.master_value(VersionStage="AWSCURRENT")
    assert {k: v for k, v in seeded.items() if k != "password"} == {
        "username": r.role, "engine": "postgres", "host": "127.0.0.1", "port": _port(pg),
        "dbname": r.instance.db_name, "sslmode": "disable"}
    assert r.instance.password_changes == [seeded["password"]], "the password is set through RDS exactly once"
    assert r.stages() == {token: ["AWSCURRENT"]}
    assert _can_login(pg, r.role, seeded["password"]) and not _can_login(pg, r.role, r.instance.password)
    for arn, host in r.url_secrets.items():
        url = urlsplit(r.value(arn))
        assert (url.hostname, unquote(url.password)) == (host, seeded["password"])
        assert r.version_count(arn) == 1
    assert r.world.denied_calls() == []
    assert {"rds:DescribeDBInstances", "rds:ModifyDBInstance"} <= {c.operation for c in r.world.enforcer.calls}

    # The next rotation is an ordinary one: SQL with the seeded credentials, RDS untouched.
    r.world.rotate(SECRET)
    rotated = r.master_value(VersionStage="AWSCURRENT")["password"]
    assert rotated != seeded["password"] and r.instance.password_changes == [seeded["password"]]
    assert _can_login(pg, r.role, rotated) and not _can_login(pg, r.role, seeded["password"])
    assert all(unquote(urlsplit(r.value(arn)).password) == rotated for arn in r.url_secrets)


def test_seeding_survives_a_first_value_labelled_current_at_once(first_rotation, pg):
    """Secrets Manager labels a secret's first version AWSCURRENT: the rotation must still set the password."""
    r = first_rotation
    token = r.start()
    r.step(token, "createSecret")
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[r.master]
    secret.versions[token]["version_stages"] = ["AWSPENDING", "AWSCURRENT"]
    secret.default_version_id = token
    for step in STEPS[1:]:
        r.step(token, step)
    password = r.master_value(VersionStage="AWSCURRENT")["password"]
    assert r.instance.password_changes == [password] and _can_login(pg, r.role, password)
    assert r.stages() == {token: ["AWSCURRENT"]}


def test_a_seed_rds_has_not_applied_yet_fails_the_step_and_the_retry_completes(first_rotation, pg, monkeypatch):
    r = first_rotation
    r.world.rds_apply_delay = None  # RDS is slow: nothing happens within the wait
    monkeypatch.setattr(rotation, "SEED_WAIT_SECONDS", 0)
    token = r.start()
    r.step(token, "createSecret")
    with pytest.raises(rotation.RotationError,
                       match=f"setSecret: RDS has not applied .* of {r.instance.identifier} yet"):
        r.step(token, "setSecret")
    r.world.apply_master_passwords()  # RDS catches up
    for step in STEPS[1:]:
        r.step(token, step)
    assert r.instance.password_changes == [r.master_value(VersionStage="AWSCURRENT")["password"]]


def test_seeding_needs_the_instance_and_fails_before_any_change(first_rotation):
    r = first_rotation
    r.world.set_env(r.function, rotation.INSTANCE_ENV, "")
    token = r.start()
    with pytest.raises(rotation.RotationError, match=f"createSecret: .*{rotation.INSTANCE_ENV} is required"):
        r.step(token, "createSecret")
    assert r.stages() == {token: ["AWSPENDING"]} and r.instance.password_changes == []
    with pytest.raises(r.sm.exceptions.ResourceNotFoundException):
        r.sm.get_secret_value(SecretId=r.master, VersionId=token)
