"""Hard-deletes a soft-deleted chat and everything that points at it, one chat per SQS message.

Message: body = chat id, attribute ``chat_id``. Idempotent: a chat already gone is success, so a redelivery after a
committed delete does not end in the DLQ (the reference system's defect). A chat that is not soft-deleted is kept:
the message is stale (the chat was restored) and deleting it would lose user data.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from core import db
from core.batch import item_id, process_sqs
from core.logging import logger


def delete_chat(conn: Any, chat_id: str) -> str:
    """Delete the chat in one transaction; returns ``deleted``, ``absent`` or ``not_soft_deleted``."""
    with db.transaction(conn) as cur:
        # FOR UPDATE: a concurrent restore (deletedAt = NULL) either commits before us or waits for us.
        cur.execute('SELECT "deletedAt" FROM "Chat" WHERE id = %s FOR UPDATE', (chat_id,))
        row = cur.fetchone()
        if row is None:
            return "absent"
        if row[0] is None:
            return "not_soft_deleted"
        cur.execute('DELETE FROM "Pin" WHERE "pinnedItemId" = %s AND "pinnedItemType" = %s', (chat_id, "chat"))
        cur.execute('DELETE FROM "UserHistory" WHERE "itemId" = %s AND "itemType" = %s', (chat_id, "chat"))
        cur.execute(
            'DELETE FROM "SharePermission" WHERE id IN '
            '(SELECT "sharePermissionId" FROM "ChatPermission" WHERE "chatId" = %s)',
            (chat_id,),
        )
        cur.execute('DELETE FROM "UserItemAccess" WHERE "itemId" = %s AND "itemType" = %s', (chat_id, "chat"))
        # Messages and remaining ChatPermission rows go by ON DELETE CASCADE.
        cur.execute('DELETE FROM "Chat" WHERE id = %s', (chat_id,))
        return "deleted"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with db.connection() as conn:

        def record_handler(record: SQSRecord) -> None:
            chat_id = item_id(record, "chat_id")
            outcome = delete_chat(conn, chat_id)
            log = logger.warning if outcome == "not_soft_deleted" else logger.info
            log("delete chat", extra={"chat_id": chat_id, "outcome": outcome, "message_id": record.message_id})

        return process_sqs(event, context, record_handler)
