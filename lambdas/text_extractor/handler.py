"""Text extractor: a document object in S3 -> "DocumentText" + "DocumentTextParts" rows -> one search event.

Triggers (one handler, the event shape decides):
- EventBridge "Object Created" from the document bucket (``detail.bucket.name``, ``detail.object.key``; its
  encoding is undocumented, so the key as given and its decodings are tried, core.s3_events). Keys that
  are not ``{urlencoded user}/{document}/{version}.{ext}`` (DOCX parts under ``docx-parts/``, ``temp_files/``) are
  ignored. Errors raise, so Lambda retries the async event and then hands it to the on-failure destination.
- SQS records from the extractor queue (reference §10: body = document id, attributes ``key`` and ``bucket``),
  processed with partial batch failures: a transient error or a malformed message fails that record only, which
  returns to the queue and ends in its DLQ after maxReceiveCount.

Outcomes per object: ``extracted``; ``skipped`` (recorded in "DocumentTextExtraction" with a reason: encrypted,
corrupt, unsupported, over a limit, pdfium aborted or overran in its worker process, object deleted) and *not*
retried; ``stale`` (an event for an object older than the one the stored text came from: nothing written);
``ignored`` (not a document key).

Idempotent under redelivery: parts have deterministic ids (uuid5 of document id and part index) and are replaced,
not accumulated; the search event is sent only when the stored content changed since the last event we sent, so a
redelivery sends none (if a send fails after the commit, the retry sends it: at least once, never lost).

Search event (reference §10, the existing ``SearchQueueMessage`` variant, so the search service needs no change):
``{"ExtractDocumentText": {"user_id", "document_id", "file_type", "document_version_id"}}``; the search consumer
reads the text we just stored. ``file_type`` is the lower-cased key extension, ``document_version_id`` the key's
version segment (a number, or ``converted``).

"DocumentText".content follows the reference format: each part's text followed by ``[[part id]]`` and a newline,
so readers can cite parts. "tokenCount" is a cheap approximation: whitespace-separated words of the text (without
the markers). Model tokenizers count more (rule of thumb ~1.3 tokens per English word); it needs no model download.

Environment: DOCUMENT_BUCKET, SEARCH_QUEUE_URL, DATABASE_SECRET_ARN, MAX_OBJECT_BYTES (default 100 MiB), MAX_PAGES
(2000), MAX_DECOMPRESSED_BYTES (128 MiB), PDF_WORKER_MEMORY_MB (640) and PDF_WORKER_TIMEOUT_SECONDS (120) for the
pdfium worker process (``pdf_worker``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from core import aws, db
from core.batch import BadMessage, attribute, process_sqs
from core.config import env_str
from core.keys import DocumentKey, InvalidKey, parse_document_key
from core.logging import logger
from core.s3_events import ObjectRef, eventbridge_object, find_object, not_found

from text_extractor.extract import ExtractionError, ExtractLimits, extract_pages

TEMP_PREFIX = "temp_files/"
PART_LINES = 5  # lines per part, as in the reference system
# Fixed namespace for part ids: uuid5(namespace, "{document id}/{part index}") is the same on every run.
PART_NAMESPACE = uuid.UUID("6f1d3c52-7b0e-4f6b-9a51-2d1f0c3e8a77")
MAX_REASON = 1000


class _Connection:
    """One database connection per invocation, opened on first use (ignored events never connect)."""

    def __init__(self) -> None:
        self._conn: Any = None

    def get(self) -> Any:
        if self._conn is None:
            self._conn = db.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a dead connection must not hide the invocation's result
                logger.warning("closing the database connection failed")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection = _Connection()
    try:
        if isinstance(event, dict) and isinstance(event.get("Records"), list):

            def record_handler(record: SQSRecord) -> None:
                source, document_id = _sqs_source(record)
                outcome = process(source, connection, expected_document_id=document_id)
                logger.info("text extraction", extra={"message_id": record.message_id, **outcome})

            return process_sqs(event, context, record_handler)
        if isinstance(event, dict) and event.get("detail-type") == "Object Created":
            outcome = process(_eventbridge_source(event), connection)
            logger.info("text extraction", extra={"event_id": event.get("id"), **outcome})
            return outcome
        raise ValueError("unrecognised event: neither an SQS batch nor an EventBridge 'Object Created' event")
    finally:
        connection.close()


def _document_bucket() -> str:
    return env_str("DOCUMENT_BUCKET")


def _eventbridge_source(event: dict[str, Any]) -> ObjectRef:
    """The object an EventBridge event names; its key's encoding is resolved against S3 (core.s3_events)."""
    source = eventbridge_object(event)
    if source is None:
        raise ValueError(f"event {event.get('id')}: no detail.bucket.name / detail.object.key")
    if source.bucket != _document_bucket():
        raise ValueError(f"event {event.get('id')}: bucket {source.bucket!r} is not the document bucket")
    return source


def _sqs_source(record: SQSRecord) -> tuple[ObjectRef, str]:
    key = attribute(record, "key")
    bucket = attribute(record, "bucket")
    assert key is not None and bucket is not None
    if bucket != _document_bucket():
        raise BadMessage(f"message {record.message_id}: bucket {bucket!r} is not the document bucket")
    document_id = (record.body or "").strip()
    if not document_id:
        raise BadMessage(f"message {record.message_id}: empty body (expected the document id)")
    return ObjectRef(bucket, (key,)), document_id  # the producer wrote the plain key


def _document_keys(source: ObjectRef) -> dict[str, DocumentKey]:
    """The source's candidate keys that have the document key shape (InvalidKey naming the key when none has)."""
    parsed: dict[str, DocumentKey] = {}
    error: InvalidKey | None = None
    for key in source.keys:
        try:
            parsed[key] = parse_document_key(key)
        except InvalidKey as exc:
            error = error or exc
    if not parsed and error is not None:
        raise error
    return parsed


def process(source: ObjectRef, connection: _Connection, expected_document_id: str | None = None) -> dict[str, Any]:
    """Extract one object and record the outcome; raises only for errors worth retrying or malformed messages."""
    if any(key.startswith(TEMP_PREFIX) for key in source.keys):
        return {"outcome": "ignored", "key": source.key, "reason": "temporary file"}
    try:
        documents = _document_keys(source)
    except InvalidKey as exc:
        if expected_document_id is not None:  # a message asked for this key: a producer bug, not noise
            raise BadMessage(str(exc)) from exc
        return {"outcome": "ignored", "key": source.key, "reason": str(exc)}
    key, doc = next(iter(documents.items()))
    if expected_document_id is not None and expected_document_id != doc.document_id:
        raise BadMessage(f"body {expected_document_id[:80]!r} does not match the document id of key {key!r}")

    limits = ExtractLimits.from_env()
    head = _head(source, tuple(documents))
    if head is None:
        recorded = record_missing(connection.get(), doc.document_id, key, tuple(documents))
        reason = "object no longer exists (deleted before extraction)"
        result = {"key": key, "document_id": doc.document_id}
        return {**result, "outcome": "skipped" if recorded else "stale", "reason": reason}
    key, version_id, size, modified = head
    doc = documents[key]  # the key that exists names the user and document, whatever the event's encoding
    result = {"key": key, "document_id": doc.document_id}
    if size > limits.max_object_bytes:
        reason = f"object is {size} bytes, more than MAX_OBJECT_BYTES {limits.max_object_bytes}"
        outcome = record_skip(connection.get(), doc.document_id, key, modified, reason)
        return {**result, "outcome": outcome, "reason": reason}
    data = _get(source.bucket, key, version_id, limits.max_object_bytes)
    if data is None:
        recorded = record_missing(connection.get(), doc.document_id, key)
        return {**result, "outcome": "skipped" if recorded else "stale", "reason": "object deleted during extraction"}
    try:
        pages = extract_pages(data, key, limits=limits)
    except ExtractionError as exc:
        reason = f"{type(exc).__name__}: {exc.reason}"
        return {
            **result,
            "outcome": record_skip(connection.get(), doc.document_id, key, modified, reason),
            "reason": reason,
        }

    text = build_text(doc.document_id, pages)
    conn = connection.get()
    outcome, announce = store_text(conn, doc.document_id, key, modified, text)
    if announce:
        send_search_event(doc)
        mark_announced(conn, doc.document_id, text.sha256)
    return {
        **result,
        "outcome": outcome,
        "parts": len(text.parts),
        "tokens": text.token_count,
        "search_event": announce,
    }


# --------------------------------------------------------------------------------------------------------------------
# S3


def _head(source: ObjectRef, keys: tuple[str, ...]) -> tuple[str, str | None, int, datetime] | None:
    """(key, version id, size, last modified) of the candidate that exists, or None when none does (any more).

    Throttling, permissions, network: raise, so the event or message is retried.
    """
    found = find_object(source, keys)
    if found is None:
        return None
    return found.key, found.head.get("VersionId"), int(found.head["ContentLength"]), found.head["LastModified"]


def _get(bucket: str, key: str, version_id: str | None, limit: int) -> bytes | None:
    """The bytes of exactly the version we inspected; reads at most ``limit`` + 1 bytes."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id and version_id != "null":
        args["VersionId"] = version_id
    try:
        body = aws.client("s3").get_object(**args)["Body"]
    except Exception as exc:
        if not_found(exc):
            return None
        raise
    try:
        return body.read(limit + 1)
    finally:
        body.close()


# --------------------------------------------------------------------------------------------------------------------
# Parts and content


@dataclass(frozen=True)
class ExtractedText:
    content: str
    parts: list[tuple[str, str]]
    """(part id, reference JSON) in order."""
    token_count: int
    sha256: str


def part_id(document_id: str, index: int) -> str:
    return str(uuid.uuid5(PART_NAMESPACE, f"{document_id}/{index}"))


def build_text(document_id: str, pages: list[str]) -> ExtractedText:
    """Cut pages into parts of PART_LINES lines; reference = {"page", "index", "lines": [first, last]} (1-based)."""
    chunks: list[str] = []
    parts: list[tuple[str, str]] = []
    tokens = 0
    for page_number, page in enumerate(pages, start=1):
        lines = page.split("\n")
        for start in range(0, len(lines), PART_LINES):
            chunk = "\n".join(lines[start : start + PART_LINES]).strip()
            if not chunk:
                continue
            index = len(parts)
            pid = part_id(document_id, index)
            reference = {"page": page_number, "index": index, "lines": [start + 1, min(start + PART_LINES, len(lines))]}
            parts.append((pid, json.dumps(reference, separators=(",", ":"))))
            chunks.append(f"{chunk}[[{pid}]]\n")
            tokens += len(chunk.split())
    content = "".join(chunks)
    return ExtractedText(content, parts, tokens, hashlib.sha256(content.encode("utf-8")).hexdigest())


# --------------------------------------------------------------------------------------------------------------------
# Database


def _lock_and_read(cur: Any, document_id: str) -> tuple[str | None, datetime | None, str | None, str | None]:
    """Serialise work on one document (concurrent events for its versions) and read what was recorded last."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (document_id,))
    cur.execute(
        'SELECT "sourceKey", "sourceModified", "contentSha256", "indexedSha256" FROM "DocumentTextExtraction" '
        'WHERE "documentId" = %s',
        (document_id,),
    )
    row = cur.fetchone()
    return (row[0], row[1], row[2], row[3]) if row else (None, None, None, None)


def _record(cur: Any, document_id: str, status: str, reason: str | None, key: str, modified: datetime | None) -> None:
    cur.execute(
        'INSERT INTO "DocumentTextExtraction" ("documentId", status, reason, "sourceKey", "sourceModified", '
        '"updatedAt") VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT ("documentId") DO UPDATE SET '
        'status = EXCLUDED.status, reason = EXCLUDED.reason, "sourceKey" = EXCLUDED."sourceKey", '
        '"sourceModified" = COALESCE(EXCLUDED."sourceModified", "DocumentTextExtraction"."sourceModified"), '
        '"updatedAt" = now()',
        (document_id, status, reason[:MAX_REASON] if reason else None, key, modified),
    )


def record_skip(conn: Any, document_id: str, key: str, modified: datetime, reason: str) -> str:
    """Record a file we will not extract; stored text of an earlier version stays (it is still the best we have)."""
    with db.transaction(conn) as cur:
        _, recorded_modified, _, _ = _lock_and_read(cur, document_id)
        if recorded_modified is not None and recorded_modified > modified:
            return "stale"
        _record(cur, document_id, "skipped", reason, key, modified)
    logger.warning("document skipped", extra={"document_id": document_id, "key": key, "reason": reason})
    return "skipped"


def record_missing(conn: Any, document_id: str, key: str, aliases: tuple[str, ...] = ()) -> bool:
    """Record that the object is gone, unless the document's status already describes another object.

    ``aliases``: the other keys an EventBridge event may have meant (none of them exists either); a status recorded
    under one of them describes the same object, and keeps its key.
    """
    with db.transaction(conn) as cur:
        recorded_key, _, _, _ = _lock_and_read(cur, document_id)
        if recorded_key is not None and recorded_key != key and recorded_key not in aliases:
            return False
        reason = "object no longer exists (deleted before extraction)"
        _record(cur, document_id, "skipped", reason, recorded_key or key, None)
    return True


def store_text(conn: Any, document_id: str, key: str, modified: datetime, text: ExtractedText) -> tuple[str, bool]:
    """Upsert the text and replace the parts in one transaction; returns (outcome, whether to send a search event)."""
    with db.transaction(conn) as cur:
        _, recorded_modified, _, indexed_sha = _lock_and_read(cur, document_id)
        if recorded_modified is not None and recorded_modified > modified:
            return "stale", False
        cur.execute(
            'INSERT INTO "DocumentText" ("documentId", content, "tokenCount") VALUES (%s, %s, %s) '
            'ON CONFLICT ("documentId") DO UPDATE SET content = EXCLUDED.content, '
            '"tokenCount" = EXCLUDED."tokenCount", "updatedAt" = now()',
            (document_id, text.content, text.token_count),
        )
        cur.execute('DELETE FROM "DocumentTextParts" WHERE "documentId" = %s', (document_id,))
        if text.parts:
            cur.execute(
                'INSERT INTO "DocumentTextParts" (id, reference, "documentId") '
                "SELECT id, ref::jsonb, %s FROM unnest(%s::text[], %s::text[]) AS p(id, ref)",
                (document_id, [pid for pid, _ in text.parts], [ref for _, ref in text.parts]),
            )
        _record(cur, document_id, "extracted", None, key, modified)
        cur.execute(
            'UPDATE "DocumentTextExtraction" SET "contentSha256" = %s WHERE "documentId" = %s',
            (text.sha256, document_id),
        )
    return "extracted", indexed_sha != text.sha256


def mark_announced(conn: Any, document_id: str, sha256: str) -> None:
    with db.transaction(conn) as cur:
        cur.execute(
            'UPDATE "DocumentTextExtraction" SET "indexedSha256" = %s WHERE "documentId" = %s', (sha256, document_id)
        )


# --------------------------------------------------------------------------------------------------------------------
# Search


def search_message(doc: DocumentKey) -> dict[str, Any]:
    return {
        "ExtractDocumentText": {
            "user_id": doc.user_id,
            "document_id": doc.document_id,
            "file_type": doc.extension.lower(),
            "document_version_id": doc.version,
        }
    }


def send_search_event(doc: DocumentKey) -> None:
    aws.client("sqs").send_message(
        QueueUrl=env_str("SEARCH_QUEUE_URL"), MessageBody=json.dumps(search_message(doc), separators=(",", ":"))
    )
