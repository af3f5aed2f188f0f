"""Permanently deletes a soft-deleted document: every S3 version and delete marker, then its database rows.

Message: body = document id, attribute ``document_id``, optional ``user_id`` (the owner, for documents whose row the
application already removed). Order matters for idempotency: objects go first and rows last, so a row that is still
there means the objects may not be gone yet, and a redelivery finishes the job. A document that is not soft-deleted
is kept (stale message); an owner that disagrees with ``user_id`` fails the message rather than guess a prefix.

Disaster-recovery replica: replication copies new versions and delete markers, but never the deletion of a specific
version, so the replica would keep deleted documents forever. With ``REPLICA_BUCKET`` and ``REPLICA_REGION`` set
(both or neither), the same prefix is purged there too, with a client for the replica's region.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from core import db, s3
from core.batch import BadMessage, attribute, item_id, process_sqs
from core.config import ConfigError, env_str
from core.keys import document_prefix
from core.logging import logger

# Rows keyed by the document id, deleted child-first inside one transaction.
_ROW_DELETES = (
    'DELETE FROM "DocumentTextParts" WHERE "documentId" = %s',
    'DELETE FROM "DocumentText" WHERE "documentId" = %s',
    'DELETE FROM "DocumentTextExtraction" WHERE "documentId" = %s',
    'DELETE FROM "DocumentBom" WHERE "documentId" = %s',  # BomPart rows cascade
    'DELETE FROM "UploadJob" WHERE "documentId" = %s',
    'DELETE FROM "Pin" WHERE "pinnedItemId" = %s AND "pinnedItemType" = \'document\'',
    'DELETE FROM "UserHistory" WHERE "itemId" = %s AND "itemType" = \'document\'',
    'DELETE FROM "UserItemAccess" WHERE "itemId" = %s AND "itemType" = \'document\'',
    'DELETE FROM "Document" WHERE id = %s',
)


@dataclass(frozen=True)
class Replica:
    bucket: str
    region: str

    @classmethod
    def from_env(cls) -> Replica | None:
        """The replica from ``REPLICA_BUCKET``/``REPLICA_REGION``; None when neither is set (stack without one)."""
        bucket, region = (os.environ.get(name, "").strip() for name in ("REPLICA_BUCKET", "REPLICA_REGION"))
        if not bucket and not region:
            return None
        if not bucket or not region:
            missing = "REPLICA_BUCKET" if not bucket else "REPLICA_REGION"
            raise ConfigError(f"environment variable {missing} is required when the other replica variable is set")
        return cls(bucket, region)


def delete_objects(bucket: str, replica: Replica | None, prefix: str) -> int:
    """Every version under ``prefix``: source bucket first, then the replica; returns how many were deleted.

    Source first: once the source versions are gone, replication has nothing left to copy, so the replica purge
    that follows also catches versions that were still replicating (replica first would let a late replication
    recreate the copy after its purge, and the message would succeed and never come back; in practice documents
    sit soft-deleted for DELETED_ITEM_MIN_AGE_DAYS first, so replication has long finished). If the replica purge
    fails, the record fails with the rows still in place, so the redelivery knows the owner, finds the source
    already empty (a no-op) and retries only the replica. Until then the document is gone from everything the
    application reads; only the DR copy lingers, and a record that keeps failing ends in the DLQ, which alarms.
    """
    removed = s3.delete_all_versions(bucket, prefix)
    if replica is not None:
        removed += s3.delete_all_versions(replica.bucket, prefix, region=replica.region)
    return removed


def delete_document(
    conn: Any, bucket: str, document_id: str, user_id: str | None, message_id: str, replica: Replica | None = None
) -> str:
    """Returns ``deleted``, ``absent`` (nothing left to do) or ``not_soft_deleted``."""
    with db.transaction(conn) as cur:
        cur.execute('SELECT owner, "deletedAt" FROM "Document" WHERE id = %s', (document_id,))
        row = cur.fetchone()
    if row is not None:
        owner, deleted_at = row
        if deleted_at is None:
            return "not_soft_deleted"
        if user_id is not None and user_id != owner:
            raise BadMessage(f"message {message_id}: user_id {user_id!r} is not the owner of document {document_id}")
    elif user_id is None:
        return "absent"  # rows gone and no owner to find objects by: a previous delivery finished
    else:
        owner = user_id

    removed = delete_objects(bucket, replica, document_prefix(owner, document_id))
    logger.info(
        "document objects deleted",
        extra={"document_id": document_id, "versions": removed, "replica": replica.bucket if replica else None},
    )
    if row is None:
        return "deleted"
    with db.transaction(conn) as cur:
        # Re-check under lock: a restore between the two transactions keeps the rows (its objects are gone; the
        # restore path owns that race, as the document was soft-deleted when this job was queued).
        cur.execute('SELECT "deletedAt" FROM "Document" WHERE id = %s FOR UPDATE', (document_id,))
        again = cur.fetchone()
        if again is None or again[0] is None:
            return "deleted"
        for statement in _ROW_DELETES:
            cur.execute(statement, (document_id,))
    return "deleted"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = env_str("DOCUMENT_BUCKET")
    replica = Replica.from_env()
    with db.connection() as conn:

        def record_handler(record: SQSRecord) -> None:
            document_id = item_id(record, "document_id")
            user_id = attribute(record, "user_id", required=False)
            outcome = delete_document(conn, bucket, document_id, user_id, record.message_id, replica)
            log = logger.warning if outcome == "not_soft_deleted" else logger.info
            log(
                "delete document",
                extra={"document_id": document_id, "outcome": outcome, "message_id": record.message_id},
            )

        return process_sqs(event, context, record_handler)
