"""Dispatches items soft-deleted long enough ago: search removals plus deletion jobs, each item once.

Runs on a schedule (every 4 hours). Selects projects, chats and documents whose ``deletedAt`` is older than
``DELETED_ITEM_MIN_AGE_DAYS`` (default 30), a page at a time (keyset on id), skipping items recorded in
``"DeletionDispatch"`` within the last ``DELETED_ITEM_REDISPATCH_HOURS`` (default 72: a job that vanished, e.g. into a
DLQ that was purged, is sent again after that). An item is recorded only after all of its messages were accepted;
failed entries are retried, and the run raises at the end naming every item still failing, so the error alarm fires.

Projects have no deletion worker: after their search removal is accepted their rows are hard-deleted here, as in the
reference system (their documents and chats carry their own ``deletedAt`` and follow their own path).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core import db
from core.config import env_int, env_str
from core.logging import logger
from core.sqs import Message, send_all

DEFAULT_MIN_AGE_DAYS = 30
DEFAULT_REDISPATCH_HOURS = 72
DEFAULT_PAGE_SIZE = 500
PROJECTS_PER_MESSAGE = 100

# Item type → (table, recorded type). Table names come from this fixed map, never from input.
_TABLES = {"project": "Project", "chat": "Chat", "document": "Document"}


class DispatchError(RuntimeError):
    """Some items could not be dispatched; the message names them (they are retried on the next run)."""


def _pages(conn: Any, item_type: str, min_age_days: int, redispatch_hours: int, page_size: int) -> Iterator[list[str]]:
    table = _TABLES[item_type]
    last = ""
    while True:
        with db.transaction(conn) as cur:
            cur.execute(
                f'SELECT t.id FROM "{table}" t WHERE t."deletedAt" <= now() - make_interval(days => %s) '
                'AND t.id > %s AND NOT EXISTS (SELECT 1 FROM "DeletionDispatch" d WHERE d."itemType" = %s '
                'AND d."itemId" = t.id AND d."dispatchedAt" > now() - make_interval(hours => %s)) '
                "ORDER BY t.id LIMIT %s",
                (min_age_days, last, item_type, redispatch_hours, page_size),
            )
            ids = [row[0] for row in cur.fetchall()]
        if not ids:
            return
        yield ids
        if len(ids) < page_size:
            return
        last = ids[-1]


def _record(conn: Any, item_type: str, ids: list[str]) -> None:
    if not ids:
        return
    with db.transaction(conn) as cur:
        cur.execute(
            'INSERT INTO "DeletionDispatch" ("itemType", "itemId") SELECT %s, unnest(CAST(%s AS text[])) '
            'ON CONFLICT ("itemType", "itemId") DO UPDATE SET "dispatchedAt" = now()',
            (item_type, ids),
        )
        if item_type == "project":
            cur.execute('DELETE FROM "Project" WHERE id = ANY(CAST(%s AS text[])) AND "deletedAt" IS NOT NULL', (ids,))


def _prune(conn: Any) -> None:
    """Forget dispatch records of items that no longer exist, so the table stays as small as the backlog."""
    with db.transaction(conn) as cur:
        for item_type, table in _TABLES.items():
            cur.execute(
                f'DELETE FROM "DeletionDispatch" d WHERE d."itemType" = %s '
                f'AND NOT EXISTS (SELECT 1 FROM "{table}" t WHERE t.id = d."itemId")',
                (item_type,),
            )


def _messages(item_type: str, ids: list[str]) -> tuple[list[Message], list[Message]]:
    """(search messages, deletion-job messages); each message's key names the item(s) it covers."""
    if item_type == "project":
        search = []
        for start in range(0, len(ids), PROJECTS_PER_MESSAGE):
            chunk = ids[start : start + PROJECTS_PER_MESSAGE]
            key = "project:" + ",".join(chunk)
            search.append(Message.json(key, {"BulkRemoveProjectMessage": {"project_ids": chunk}}))
        return search, []
    if item_type == "chat":
        return (
            [Message.json(f"chat:{i}", {"RemoveChatMessage": {"chat_id": i, "message_id": None}}) for i in ids],
            [Message(key=f"chat:{i}", body=i, attributes={"chat_id": i}) for i in ids],
        )
    return (
        [Message.json(f"document:{i}", {"RemoveDocument": {"document_id": i}}) for i in ids],
        [Message(key=f"document:{i}", body=i, attributes={"document_id": i}) for i in ids],
    )


def _failed_ids(failures: dict[str, str]) -> set[str]:
    ids: set[str] = set()
    for key in failures:
        ids.update(key.split(":", 1)[1].split(","))
    return ids


def run(conn: Any) -> dict[str, Any]:
    min_age = env_int("DELETED_ITEM_MIN_AGE_DAYS", DEFAULT_MIN_AGE_DAYS)
    redispatch = env_int("DELETED_ITEM_REDISPATCH_HOURS", DEFAULT_REDISPATCH_HOURS, minimum=1)
    page_size = env_int("DELETED_ITEM_PAGE_SIZE", DEFAULT_PAGE_SIZE, minimum=1)
    search_queue = env_str("SEARCH_QUEUE_URL")
    job_queues = {"chat": env_str("DELETE_CHAT_QUEUE_URL"), "document": env_str("DELETE_DOCUMENT_QUEUE_URL")}

    _prune(conn)
    summary: dict[str, Any] = {"project": 0, "chat": 0, "document": 0}
    failures: dict[str, str] = {}
    for item_type in _TABLES:
        for ids in _pages(conn, item_type, min_age, redispatch, page_size):
            search, jobs = _messages(item_type, ids)
            page_failures = send_all(search_queue, search)
            if jobs:
                page_failures.update(send_all(job_queues[item_type], jobs))
            bad = _failed_ids(page_failures)
            sent = [i for i in ids if i not in bad]
            _record(conn, item_type, sent)
            summary[item_type] += len(sent)
            failures.update(page_failures)
    summary["failed"] = sorted(failures)
    logger.info("deleted items dispatched", extra=summary)
    if failures:
        shown = "; ".join(f"{key} ({reason})" for key, reason in sorted(failures.items())[:20])
        raise DispatchError(f"{len(failures)} messages not sent; their items will be retried next run: {shown}")
    return summary


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with db.connection() as conn:
        return run(conn)
