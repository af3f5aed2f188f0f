"""Purges the stored attachments of deleted email messages from ``ATTACHMENTS_BUCKET`` (on a schedule).

For each attachment of a message with ``deletedAt`` set and no ``purgedAt`` yet: delete every version and delete
marker of its object, then set ``purgedAt``. A missing object is success; an attachment whose delete fails keeps
``purgedAt`` NULL and is retried next run, and the run raises naming it, so the error alarm fires.
"""

from __future__ import annotations

from typing import Any

from core import db, s3
from core.config import env_int, env_str
from core.logging import logger

DEFAULT_PAGE_SIZE = 200


class PurgeError(RuntimeError):
    """Some attachments could not be purged; the message names them."""


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = env_str("ATTACHMENTS_BUCKET")
    page_size = env_int("ATTACHMENT_PURGE_PAGE_SIZE", DEFAULT_PAGE_SIZE, minimum=1)
    purged, versions, failures = 0, 0, {}
    with db.connection() as conn:
        last = ""
        while True:
            with db.transaction(conn) as cur:
                cur.execute(
                    'SELECT a.id, a."s3Key" FROM "EmailAttachment" a JOIN "EmailMessage" m ON m.id = a."messageId" '
                    'WHERE m."deletedAt" IS NOT NULL AND a."purgedAt" IS NULL AND a.id > %s ORDER BY a.id LIMIT %s',
                    (last, page_size),
                )
                page = cur.fetchall()
            if not page:
                break
            done = []
            for attachment_id, key in page:
                try:
                    versions += s3.delete_all_versions(bucket, key, exact_key=True)
                    done.append(attachment_id)
                except Exception as exc:
                    failures[attachment_id] = f"{type(exc).__name__}: {exc}"
                    logger.exception("attachment not purged", extra={"attachment_id": attachment_id})
            if done:
                with db.transaction(conn) as cur:
                    cur.execute(
                        'UPDATE "EmailAttachment" SET "purgedAt" = now() WHERE id = ANY(CAST(%s AS text[])) '
                        'AND "purgedAt" IS NULL',
                        (done,),
                    )
                purged += len(done)
            last = page[-1][0]
            if len(page) < page_size:
                break
    summary = {"purged": purged, "versions_deleted": versions, "failed": sorted(failures)}
    logger.info("email attachments purged", extra=summary)
    if failures:
        shown = "; ".join(f"{k} ({v})" for k, v in sorted(failures.items())[:20])
        raise PurgeError(f"{len(failures)} attachments not purged (retried next run): {shown}")
    return summary
