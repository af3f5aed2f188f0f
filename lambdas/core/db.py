"""PostgreSQL connections through the RDS Proxy, from the URL stored in the secret named by ``DATABASE_SECRET_ARN``.

TLS is on unless the URL says ``sslmode=disable`` (tests against a loopback server). Unlike libpq, ``require`` here
also verifies the certificate against the system trust store: RDS Proxy presents an ACM certificate that the
Lambda runtime already trusts, so verification costs nothing and stops a man in the middle.

The secret's password changes when the master credentials rotate; a warm function still holds the old URL in the
secret cache, so ``connect()`` re-reads the secret once when the server rejects the password (SQLSTATE 28P01).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.dbapi

from core import secrets
from core.config import env_str
from core.logging import logger

DATABASE_SECRET_ENV = "DATABASE_SECRET_ARN"
_TLS_MODES = {"require", "verify-ca", "verify-full"}
INVALID_PASSWORD = "28P01"


class DatabaseConfigError(ValueError):
    """The database URL is unusable; the message never contains the password."""


def connect_url(url: str, *, timeout: int = 10) -> pg8000.dbapi.Connection:
    """A DB-API connection (autocommit off) to ``postgresql://user:password@host:port/db?sslmode=...``."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise DatabaseConfigError(f"database URL scheme must be postgresql, got {parts.scheme!r}")
    if not parts.hostname or not parts.username or not parts.path.strip("/"):
        raise DatabaseConfigError("database URL needs a user, a host and a database name")
    query = parse_qs(parts.query)
    sslmode = query.get("sslmode", ["require"])[-1]
    if sslmode == "disable":  # False, not None: pg8000 reads None as "prefer" (tries TLS, builds a context)
        ssl_context: ssl.SSLContext | bool = False
    elif sslmode in _TLS_MODES:
        ssl_context = ssl.create_default_context()
    else:
        raise DatabaseConfigError(f"unsupported sslmode {sslmode!r}; use disable, require, verify-ca or verify-full")
    try:
        port = parts.port or 5432
    except ValueError:
        raise DatabaseConfigError("database URL has an invalid port") from None
    return pg8000.dbapi.connect(
        user=unquote(parts.username),
        password=unquote(parts.password) if parts.password is not None else None,
        host=parts.hostname,
        port=port,
        database=unquote(parts.path.lstrip("/")),
        ssl_context=ssl_context,
        timeout=timeout,
        application_name=env_str("AWS_LAMBDA_FUNCTION_NAME", "macro-data-plane"),
    )


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL error code of a pg8000 server error (``None`` for anything else, e.g. a network error)."""
    if isinstance(exc, pg8000.dbapi.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C")
    return None


def connect() -> pg8000.dbapi.Connection:
    """A new connection from the URL in the secret whose ARN is in ``DATABASE_SECRET_ARN``.

    A rejected password means the cached URL may predate a rotation: the secret is fetched again and the connection
    retried once. A second rejection is raised as is (the secret itself is wrong).
    """
    arn = env_str(DATABASE_SECRET_ENV)
    try:
        return connect_url(secrets.get_secret_string(arn))
    except pg8000.dbapi.DatabaseError as exc:
        if sqlstate(exc) != INVALID_PASSWORD:
            raise
    logger.warning("database rejected the cached password; re-reading the secret once", extra={"secret_arn": arn})
    secrets.clear_cache()
    return connect_url(secrets.get_secret_string(arn))


@contextlib.contextmanager
def transaction(conn: pg8000.dbapi.Connection) -> Iterator[Any]:
    """A cursor inside one transaction: committed when the block succeeds, rolled back when it raises."""
    cursor = conn.cursor()
    try:
        yield cursor
        conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):  # a dead connection must not hide the original error
            conn.rollback()
        raise
    finally:
        cursor.close()


@contextlib.contextmanager
def connection() -> Iterator[pg8000.dbapi.Connection]:
    """``connect()`` closed at the end of the block, for handlers that open one connection per invocation."""
    conn = connect()
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()
