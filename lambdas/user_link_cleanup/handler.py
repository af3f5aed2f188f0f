"""Deletes account-link attempts that were never finished (every 8 hours; rows older than 24 hours).

Idempotent by nature: a second run finds nothing older than the cut-off. The age can be changed with
``USER_LINK_MAX_AGE_HOURS`` (default 24) without a deploy of code.
"""

from __future__ import annotations

from typing import Any

from core import db
from core.config import env_int
from core.logging import logger

DEFAULT_MAX_AGE_HOURS = 24
TABLES = ("in_progress_user_link", "in_progress_email_link")


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    max_age = env_int("USER_LINK_MAX_AGE_HOURS", DEFAULT_MAX_AGE_HOURS, minimum=1)
    counts: dict[str, int] = {}
    with db.connection() as conn, db.transaction(conn) as cur:
        for table in TABLES:
            cur.execute(f"DELETE FROM {table} WHERE created_at < now() - make_interval(hours => %s)", (max_age,))
            counts[table] = max(cur.rowcount, 0)
    logger.info("expired user links deleted", extra=counts)
    return counts
