"""Secrets Manager rotation (single-user strategy) of the PostgreSQL master credentials of an RDS instance.

Secrets Manager invokes the four steps in order with one token and retries a step that fails, so every step first
checks what is already done. The JSON secret ``{"username", "password", "engine", "host", "port", "dbname"}`` is the
source of truth (RDS Proxy authenticates with it); the connection-URL secrets listed in ``URL_SECRETS`` are rewritten
from it in finishSecret, because clients that read a URL would otherwise keep the old password. Single user means the
old password stops working at setSecret: clients holding it reconnect after re-reading their secret (``core.db``).

First run (seeding): in a stack whose credentials rotate, the program never writes a value into the credentials or
URL secrets (a Pulumi-managed version could be re-created with a stale password after a refresh), so the first rotation
finds no AWSCURRENT value. createSecret then builds the credentials from the instance's description
(``DB_INSTANCE_IDENTIFIER``) and a new password, and setSecret sets that password through RDS (``ModifyDBInstance``),
since no credentials the rotation could log in with exist yet. Every later rotation changes it with SQL.

Logs and error messages carry ARNs, the token, the step and outcomes, never a password or a URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pg8000.dbapi
from botocore.exceptions import ClientError
from core import aws, db
from core.config import ConfigError, env_str
from core.logging import logger

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

URL_SECRETS_ENV = "URL_SECRETS"
"""JSON object ``{"<URL secret ARN>": "<host for that URL>"}``; required (``{}`` when there are none), so a deploy
that forgot it fails at createSecret, before the password changes, not silently after."""
INSTANCE_ENV = "DB_INSTANCE_IDENTIFIER"
"""The RDS instance whose master credentials the secret holds; read only when seeding a secret that has no value."""
CA_BUNDLE_ENV = "DATABASE_CA_BUNDLE"
"""Optional path of a PEM bundle (e.g. the RDS global bundle shipped in the artifact) used to verify the instance."""

# RDS rejects / @ " ' and space in master passwords; a backslash would depend on standard_conforming_strings.
# Everything else is allowed: URLs percent-encode the password.
EXCLUDED_CHARACTERS = "/@\"'\\"
PASSWORD_LENGTH = 32
CONNECT_TIMEOUT_SECONDS = 5
SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+$")
SEED_SSLMODE = "require"
"""sslmode of seeded credentials (RDS enforces TLS with rds.force_ssl)."""
SEED_WAIT_SECONDS = 40
"""How long setSecret waits for RDS to apply a seeded master password (under the function's 60 s timeout); a step
that runs out raises, and the retried step finds the password set."""


class RotationError(RuntimeError):
    """A rotation step cannot complete; the message names the secret and the step, never a secret value."""


@dataclass(frozen=True)
class Credentials:
    """One version of the JSON secret, validated."""

    username: str
    password: str = field(repr=False)
    host: str
    port: int
    dbname: str
    sslmode: str

    @classmethod
    def parse(cls, raw: str | None, what: str) -> Credentials:
        """``what`` names the version in errors (``AWSCURRENT``, ``version <token>``)."""
        try:
            value = json.loads(raw or "")
        except json.JSONDecodeError:
            raise ValueError(f"the {what} value is not JSON") from None
        if not isinstance(value, dict):
            raise ValueError(f"the {what} value is not a JSON object")
        for key in ("username", "password", "host", "dbname"):
            if not isinstance(value.get(key), str) or not value[key]:
                raise ValueError(f"the {what} value needs a non-empty string {key!r}")
        if value.get("engine", "postgres") != "postgres":
            raise ValueError(f"the {what} value has engine {value['engine']!r}; this function rotates postgres only")
        sslmode = value.get("sslmode", "require")
        if sslmode not in SSL_MODES:
            raise ValueError(f"the {what} value has sslmode {sslmode!r}; use one of {', '.join(SSL_MODES)}")
        try:
            port = int(value.get("port", 5432))
        except (TypeError, ValueError):
            raise ValueError(f"the {what} value has an invalid port") from None
        return cls(value["username"], value["password"], value["host"], port, value["dbname"], sslmode)

    def url(self, host: str) -> str:
        """The connection URL for ``host`` (instance or proxy) with these credentials; user, password, db encoded."""
        user, password, dbname = (quote(part, safe="") for part in (self.username, self.password, self.dbname))
        return f"postgresql://{user}:{password}@{host}:{self.port}/{dbname}?sslmode={self.sslmode}"


def url_secrets_from_env() -> dict[str, str]:
    raw = env_str(URL_SECRETS_ENV)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigError(f"environment variable {URL_SECRETS_ENV} is not JSON") from None
    if not isinstance(value, dict) or not all(
        isinstance(arn, str) and arn and isinstance(host, str) and _HOST.match(host) for arn, host in value.items()
    ):
        raise ConfigError(f"environment variable {URL_SECRETS_ENV} must map secret ARNs to host names")
    return value


def _ssl_context(sslmode: str) -> ssl.SSLContext | bool:
    """libpq meanings, except that ``require`` also verifies when a CA bundle is configured.

    Without a bundle ``require`` only encrypts: the instance presents an RDS-CA certificate that the Lambda trust
    store does not hold, so verifying against it would fail every rotation. ``disable`` is False, not None: pg8000
    reads None as "prefer" (it builds a TLS context and asks the server for TLS first).
    """
    if sslmode == "disable":
        return False
    cafile = os.environ.get(CA_BUNDLE_ENV) or None
    context = ssl.create_default_context(cafile=cafile)
    if sslmode == "require" and cafile is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif sslmode != "verify-full":
        context.check_hostname = False
    return context


def _connect(creds: Credentials) -> pg8000.dbapi.Connection:
    return pg8000.dbapi.connect(
        user=creds.username,
        password=creds.password,
        host=creds.host,
        port=creds.port,
        database=creds.dbname,
        ssl_context=_ssl_context(creds.sslmode),
        timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="db-credentials-rotation",
    )


@contextlib.contextmanager
def _login(creds: Credentials) -> Iterator[pg8000.dbapi.Connection | None]:
    """A connection, or ``None`` when the server rejects the password; other failures (network, TLS) raise."""
    try:
        conn = _connect(creds)
    except pg8000.dbapi.DatabaseError as exc:
        if db.sqlstate(exc) != db.INVALID_PASSWORD:
            raise
        yield None
        return
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _is_not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class Rotation:
    """The four steps for one secret and token."""

    def __init__(self, sm: Any, arn: str, token: str, url_secrets: dict[str, str]) -> None:
        self.sm, self.arn, self.token, self.url_secrets = sm, arn, token, url_secrets

    def _raw(self, **version: str) -> str | None:
        return self.sm.get_secret_value(SecretId=self.arn, **version).get("SecretString")

    def current(self) -> tuple[str | None, Credentials]:
        raw = self._raw(VersionStage=CURRENT)
        return raw, Credentials.parse(raw, CURRENT)

    def has_current(self) -> bool:
        """Whether credentials other than this rotation's exist. A secret the program created empty has none until
        its first rotation; should Secrets Manager label the first value it receives AWSCURRENT at once (it does so
        for a secret's first version), that value is still this rotation's own and the rotation still seeds."""
        try:
            current = self.sm.get_secret_value(SecretId=self.arn, VersionStage=CURRENT)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
            return False
        return current.get("VersionId") != self.token

    def pending(self) -> Credentials:
        return Credentials.parse(self._raw(VersionId=self.token, VersionStage=PENDING), f"{PENDING} version")

    def create_secret(self) -> str:
        seeding = not self.has_current()
        raw_current = None if seeding else self.current()[0]  # validates the current value before deriving from it
        try:
            self.pending()
            return "pending value already exists"
        except ClientError as exc:
            if not _is_not_found(exc):
                raise
        # Either way the JSON keeps engine, host, port, dbname, sslmode (and any other key); only the password changes.
        value = seed_value(self.rds()) if seeding else json.loads(raw_current or "")
        value["password"] = self.sm.get_random_password(
            PasswordLength=PASSWORD_LENGTH,
            ExcludeCharacters=EXCLUDED_CHARACTERS,
            IncludeSpace=False,
            RequireEachIncludedType=True,
        )["RandomPassword"]
        self.sm.put_secret_value(
            SecretId=self.arn, ClientRequestToken=self.token, SecretString=json.dumps(value), VersionStages=[PENDING]
        )
        return "first value created from the instance" if seeding else "pending value created"

    def rds(self) -> RdsInstance:
        return RdsInstance(aws.client("rds"), env_str(INSTANCE_ENV))

    def set_secret(self) -> str:
        pending = self.pending()
        with _login(pending) as conn:
            if conn is not None:
                return "pending password already set"
        if not self.has_current():
            return self.seed_password(pending)
        _, current = self.current()
        if (current.username, current.host, current.port) != (pending.username, pending.host, pending.port):
            raise RotationError("the pending version changes username, host or port; single-user rotation may not")
        candidates = [current]
        with contextlib.suppress(ClientError, ValueError):  # no previous version, or an unusable one
            candidates.append(Credentials.parse(self._raw(VersionStage=PREVIOUS), PREVIOUS))
        for creds in candidates:
            with _login(creds) as conn:
                if conn is None:
                    continue
                conn.autocommit = True
                cursor = conn.cursor()
                # Utility statements take no bind parameters: the server quotes both (%I, %L) for itself.
                # pg8000 leaves % inside string literals alone, so no %% here.
                cursor.execute(
                    "SELECT format('ALTER USER %I WITH PASSWORD %L', %s::text, %s::text)",
                    (pending.username, pending.password),
                )
                cursor.execute(cursor.fetchone()[0])
                return "password changed"
        raise RotationError("neither the current nor the previous credentials can log in to the database")

    def seed_password(self, pending: Credentials) -> str:
        """No credentials exist to log in with: RDS sets the master password, which takes effect after a moment."""
        instance = self.rds()
        described = instance.describe()
        if (pending.username, pending.host, pending.port) != (
            described["MasterUsername"], described["Endpoint"]["Address"], int(described["Endpoint"]["Port"])
        ):
            raise RotationError(f"the pending version does not name the master user and endpoint of {instance.id}")
        instance.set_master_password(pending.password)
        deadline = time.monotonic() + SEED_WAIT_SECONDS
        while True:
            with _login(pending) as conn:
                if conn is not None:
                    return "master password set through RDS"
            if time.monotonic() >= deadline:
                raise RotationError(f"RDS has not applied the new master password of {instance.id} yet; retry the step")
            time.sleep(1)

    def test_secret(self) -> str:
        with _login(self.pending()) as conn:
            if conn is None:
                raise RotationError("the database rejects the pending password")
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
            if row is None or row[0] != 1:
                raise RotationError("SELECT 1 with the pending credentials returned an unexpected row")
        return "pending credentials work"

    def finish_secret(self, versions: dict[str, list[str]]) -> str:
        """Moves AWSCURRENT (and drops AWSPENDING), then syncs the URL secrets; each part is skipped when done."""
        outcome = "already current"
        current_version = next((version for version, stages in versions.items() if CURRENT in stages), None)
        if current_version != self.token:
            move: dict[str, str] = {"MoveToVersionId": self.token}
            if current_version is not None:
                move["RemoveFromVersionId"] = current_version
            self.sm.update_secret_version_stage(SecretId=self.arn, VersionStage=CURRENT, **move)
            outcome = "AWSCURRENT moved"
        if PENDING in versions[self.token]:
            # Either end state is valid for Secrets Manager; no AWSPENDING at all is unambiguous for the next rotation.
            self.sm.update_secret_version_stage(SecretId=self.arn, VersionStage=PENDING, RemoveFromVersionId=self.token)
        creds = Credentials.parse(self._raw(VersionId=self.token), f"version {self.token}")
        updated = self.sync_url_secrets(creds)
        return f"{outcome}; {updated} URL secret(s) updated"

    def sync_url_secrets(self, creds: Credentials) -> int:
        """Writes a new version of every URL secret whose URL differs; tries all before reporting failures."""
        updated, failed = 0, []
        for url_arn, host in self.url_secrets.items():
            wanted = creds.url(host)
            try:
                try:
                    existing = self.sm.get_secret_value(SecretId=url_arn, VersionStage=CURRENT).get("SecretString")
                except ClientError as exc:
                    if not _is_not_found(exc):
                        raise
                    existing = None
                if existing == wanted:
                    continue
                self.sm.put_secret_value(SecretId=url_arn, SecretString=wanted)
                updated += 1
                logger.info("URL secret updated", extra={"secret_arn": self.arn, "url_secret_arn": url_arn})
            except Exception as exc:
                logger.error("URL secret not updated", extra={"url_secret_arn": url_arn, "error": _describe(exc)})
                failed.append(url_arn)
        if failed:
            raise RotationError(f"could not update URL secret(s) {', '.join(failed)} (see log)")
        return updated


@dataclass(frozen=True)
class RdsInstance:
    """The instance whose master credentials the secret holds, through the RDS API (seeding only)."""

    client: Any
    id: str

    def describe(self) -> dict[str, Any]:
        instances = self.client.describe_db_instances(DBInstanceIdentifier=self.id)["DBInstances"]
        if len(instances) != 1:
            raise RotationError(f"RDS describes {len(instances)} instances named {self.id}")
        return instances[0]

    def set_master_password(self, password: str) -> None:
        self.client.modify_db_instance(DBInstanceIdentifier=self.id, MasterUserPassword=password, ApplyImmediately=True)


def seed_value(instance: RdsInstance) -> dict[str, Any]:
    """The credentials JSON of ``instance`` (no password yet): what the program would have stored, from RDS itself."""
    described = instance.describe()
    if described.get("Engine") != "postgres":
        raise RotationError(f"{instance.id} runs {described.get('Engine')!r}; this function rotates postgres only")
    endpoint = described.get("Endpoint") or {}
    if not endpoint.get("Address") or not described.get("DBName"):
        status = described.get("DBInstanceStatus")
        raise RotationError(f"{instance.id} has no endpoint or database name yet (status {status})")
    return {"username": described["MasterUsername"], "engine": "postgres", "host": endpoint["Address"],
            "port": int(endpoint["Port"]), "dbname": described["DBName"], "sslmode": SEED_SSLMODE}


def _describe(exc: BaseException) -> str:
    """A reason for logs and errors; pg8000 server errors reduced to SQLSTATE and message."""
    code = db.sqlstate(exc)
    if code is not None:
        return f"database error {code}: {exc.args[0].get('M', '')}"
    return f"{type(exc).__name__}: {exc}"


def _event_field(event: Any, key: str) -> str:
    value = event.get(key) if isinstance(event, dict) else None
    if not isinstance(value, str) or not value:
        raise RotationError(f"rotation event has no {key}")
    return value


def handler(event: dict[str, Any], context: Any) -> None:
    arn = _event_field(event, "SecretId")
    token = _event_field(event, "ClientRequestToken")
    step = _event_field(event, "Step")
    log = {"secret_arn": arn, "token": token, "step": step}
    try:
        if step not in STEPS:
            raise RotationError(f"unknown step; expected one of {', '.join(STEPS)}")
        rotation = Rotation(aws.client("secretsmanager"), arn, token, url_secrets_from_env())
        metadata = rotation.sm.describe_secret(SecretId=arn)
        if not metadata.get("RotationEnabled"):
            raise RotationError("rotation is not enabled for this secret")
        versions: dict[str, list[str]] = metadata.get("VersionIdsToStages", {})
        if token not in versions:
            raise RotationError(f"token {token} is not a version of this secret")
        if step == "finishSecret":
            if CURRENT not in versions[token] and PENDING not in versions[token]:
                raise RotationError(f"version {token} is neither {PENDING} nor {CURRENT}")
            outcome = rotation.finish_secret(versions)  # also completes a finish that stopped half-way
        elif CURRENT in versions[token] and PENDING not in versions[token]:
            outcome = "version already AWSCURRENT; nothing to do"
        elif PENDING not in versions[token]:
            raise RotationError(f"version {token} is not staged {PENDING}")
        elif step == "createSecret":
            outcome = rotation.create_secret()
        elif step == "setSecret":
            outcome = rotation.set_secret()
        else:
            outcome = rotation.test_secret()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RotationError | ConfigError) else _describe(exc)
        logger.error("rotation step failed", extra={**log, "error": reason})
        raise RotationError(f"rotation of secret {arn} failed at {step}: {reason}") from exc
    logger.info("rotation step done", extra={**log, "outcome": outcome})
