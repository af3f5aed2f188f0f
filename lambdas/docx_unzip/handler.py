"""DOCX unzip: an uploaded DOCX becomes content-addressed parts, "BomPart" rows and one conversion job.

Trigger: S3 ``ObjectCreated`` notification on the DOCX upload bucket (asynchronous invoke), keys
``{urlencoded user}/{document}/{bom id}.docx``.

What differs from the system we replace (reference §9 docx-unzip):
- The archive is validated (core.safe_zip limits, including its central directory and member names of at most
  MAX_NAME_BYTES, which also keeps every "BomPart" path inside PostgreSQL's index-entry size; XML parts streamed
  through expat without DTDs/entities, with a nesting limit and known encodings, never built into a tree) before
  anything is stored.
- Parts live at ``docx-parts/{sha256}`` in the document bucket (not the bucket root, so they never look like
  document keys), and are PUT only when HeadObject says they are missing.
- The conversion job is sent AFTER the parts are stored, exactly once per upload: its id is
  uuid5(bucket/key/ETag) and it is claimed in ``"ConvertJobDispatch"`` in the same transaction that writes the
  "BomPart" rows; the message is sent before that transaction commits. A failed send rolls everything back and
  the event is retried; a redelivery after the commit finds the claim and sends nothing; a concurrent duplicate
  waits on the claim's row lock. The one remaining window (the commit acknowledgement is lost after the send)
  resends a message with the SAME ``job_id`` attribute, so the converter can drop it; a job is never lost.
- An invalid file (hostile or corrupt archive, not a DOCX, too large, gone, unknown document) is recorded as
  ``"UploadJob".status = 'failed'`` with the reason, and the record counts as handled (retrying cannot help).
  Transient errors (database, S3, SQS) raise, so Lambda's async retries and the on-failure destination keep the
  event. A key that does not parse raises ``InvalidKey`` naming the key (on-failure destination).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError
from core import aws
from core.config import env_int, env_str
from core.db import connection, transaction
from core.keys import InvalidKey, parse_document_key
from core.logging import logger
from core.s3_events import notification_object
from core.safe_zip import MAX_NAME_BYTES, ArchiveLimits, UnsafeArchive, open_checked, read_member, scan_xml

PARTS_PREFIX = "docx-parts/"
JOB_TYPE = "docx_unzip"
DEFAULT_MAX_OBJECT_BYTES = 100 * 1024 * 1024  # MAX_OBJECT_BYTES: the .docx itself, read into memory.
# Defaults when the MAX_* variables are absent: tighter than bulk zips (a DOCX has tens of parts).
DOCX_LIMIT_DEFAULTS = {
    "max_entries": 1000,
    "max_entry_bytes": 64 * 1024 * 1024,
    "max_total_bytes": 256 * 1024 * 1024,
    "max_ratio": 100,
}
# A stable namespace so every deployment derives the same job id for the same upload.
# XML elements checked per upload, all parts together: validation costs ~1 us per element in expat's callbacks, so
# this bounds it to seconds of the function's 60 s (a real DOCX has well under a million).
MAX_XML_ELEMENTS = 10_000_000
JOB_NAMESPACE = uuid.UUID("6f1c3f0e-3a51-4d0b-9a43-0c4f5f6c2d11")
REQUIRED_PARTS = ("[Content_Types].xml", "word/document.xml")
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


class InvalidUpload(Exception):
    """A permanent problem with one upload; the message is shown to the user."""


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    etag: str
    user_id: str
    document_id: str
    bom_id: int

    @property
    def job_id(self) -> str:
        return str(uuid.uuid5(JOB_NAMESPACE, f"{self.bucket}/{self.key}#{self.etag}"))

    @property
    def converted_key(self) -> str:
        return f"{quote(self.user_id, safe='')}/{self.document_id}/converted.pdf"


@dataclass(frozen=True)
class Part:
    path: str
    sha256: str

    @property
    def key(self) -> str:
        return f"{PARTS_PREFIX}{self.sha256}"


def parse_upload(record: dict[str, Any]) -> Upload:
    """The upload a notification record describes; InvalidKey (naming the key) when the key is not a DOCX upload."""
    source = notification_object(record)  # the key decoded by the notification rule (core.s3_events)
    if source is None:
        raise InvalidKey(f"S3 notification record without bucket or key: {json.dumps(record)[:500]}")
    bucket, key = source.bucket, source.key
    parsed = parse_document_key(key)
    if parsed.extension.lower() != "docx":
        raise InvalidKey(f"object key {key!r} is not a .docx upload")
    try:
        bom_id = int(parsed.version)
    except ValueError:
        raise InvalidKey(f"object key {key!r}: bom id {parsed.version!r} is not an integer") from None
    if bom_id <= 0:
        raise InvalidKey(f"object key {key!r}: bom id must be positive")
    return Upload(bucket, key, source.etag or "", parsed.user_id, parsed.document_id, bom_id)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def fetch_docx(upload: Upload, max_bytes: int) -> bytes:
    s3 = aws.client("s3")
    try:
        head = s3.head_object(Bucket=upload.bucket, Key=upload.key)
    except ClientError as exc:
        if _error_code(exc) in _MISSING_CODES:
            raise InvalidUpload(f"{upload.key}: the uploaded file no longer exists") from exc
        raise
    size = int(head.get("ContentLength", 0))
    if size == 0:
        raise InvalidUpload(f"{upload.key}: the file is empty")
    if size > max_bytes:
        raise InvalidUpload(f"{upload.key}: {size} bytes exceed MAX_OBJECT_BYTES ({max_bytes})")
    try:
        body = s3.get_object(Bucket=upload.bucket, Key=upload.key)["Body"]
    except ClientError as exc:
        if _error_code(exc) in _MISSING_CODES:
            raise InvalidUpload(f"{upload.key}: the uploaded file no longer exists") from exc
        raise
    data = body.read(max_bytes + 1)  # the object may have been replaced after HeadObject
    if len(data) > max_bytes:
        raise InvalidUpload(f"{upload.key}: more than MAX_OBJECT_BYTES ({max_bytes}) bytes")
    return data


def inspect_docx(data: bytes, limits: ArchiveLimits) -> list[Part]:
    """Validate the whole archive (limits, names, XML parts) and hash every part; nothing is stored yet.

    Pure computation on bytes we hold, so any failure is a property of the file: an exception nobody foresaw is
    refused as an unreadable DOCX (recorded, never retried) rather than raised into async retries."""
    try:
        return _inspect(data, limits)
    except UnsafeArchive:
        raise
    except Exception as exc:  # noqa: BLE001 - last resort; known classes are refused by safe_zip with their reason
        raise UnsafeArchive(f"unreadable DOCX ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _inspect(data: bytes, limits: ArchiveLimits) -> list[Part]:
    parts: list[Part] = []
    elements_left = MAX_XML_ELEMENTS
    with open_checked(data, limits) as zf:
        names = set(zf.namelist())
        missing = [name for name in REQUIRED_PARTS if name not in names]
        if missing:
            raise UnsafeArchive(f"not a DOCX document: {', '.join(missing)} missing")
        for info in zf.infolist():
            if info.is_dir():
                continue
            # safe_zip refuses longer names; checked again here because the "BomPart" insert depends on it
            if len(info.filename.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
                raise UnsafeArchive(f"part {info.filename[:200]!r}: name longer than {MAX_NAME_BYTES} bytes")
            body = read_member(zf, info, limits)
            if info.filename.endswith((".xml", ".rels")):
                elements_left -= scan_xml(body, info.filename, max_elements=elements_left)
            parts.append(Part(info.filename, hashlib.sha256(body).hexdigest()))
    return parts


def _exists(bucket: str, key: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _error_code(exc) in _MISSING_CODES:
            return False
        raise
    return True


def store_parts(data: bytes, parts: list[Part], limits: ArchiveLimits, bucket: str) -> int:
    """PUT the parts not yet in the bucket; returns how many were written."""
    s3 = aws.client("s3")
    written = 0
    wanted = {part.path: part for part in parts}
    with open_checked(data, limits) as zf:
        for path, part in wanted.items():
            if _exists(bucket, part.key):
                continue
            body = read_member(zf, zf.getinfo(path), limits)
            if hashlib.sha256(body).hexdigest() != part.sha256:  # cannot happen for bytes we hold; guards refactors
                raise RuntimeError(f"part {path} changed between validation and upload")
            s3.put_object(Bucket=bucket, Key=part.key, Body=body, ChecksumAlgorithm="SHA256")
            written += 1
    return written


def _check_document(cur: Any, upload: Upload) -> None:
    cur.execute('SELECT 1 FROM "Document" WHERE id = %s FOR UPDATE', (upload.document_id,))
    if cur.fetchone() is None:
        raise InvalidUpload(f"{upload.key}: document {upload.document_id} does not exist")
    cur.execute(
        'INSERT INTO "DocumentBom" (id, "documentId") VALUES (%s, %s) ON CONFLICT (id) DO NOTHING',
        (upload.bom_id, upload.document_id),
    )
    cur.execute('SELECT "documentId" FROM "DocumentBom" WHERE id = %s', (upload.bom_id,))
    owner = cur.fetchone()[0]
    if owner != upload.document_id:
        raise InvalidUpload(f"{upload.key}: bom id {upload.bom_id} belongs to another document")


def _upsert_job(cur: Any, upload: Upload, status: str, error: str | None) -> None:
    cur.execute(
        'INSERT INTO "UploadJob" ("jobId", "documentId", "jobType", status, "errorMessage") '
        'VALUES (%s, %s, %s, %s, %s) ON CONFLICT ("jobId") DO UPDATE SET status = EXCLUDED.status, '
        '"errorMessage" = EXCLUDED."errorMessage", "updatedAt" = now()',
        (upload.job_id, upload.document_id, JOB_TYPE, status, error),
    )


def send_convert_job(upload: Upload, document_bucket: str) -> None:
    queue_url = env_str("CONVERT_QUEUE_URL")
    message = {
        "job_id": upload.job_id,
        "from_bucket": upload.bucket,
        "to_bucket": document_bucket,
        "from_key": upload.key,
        "to_key": upload.converted_key,
    }
    extra: dict[str, str] = {}
    if queue_url.endswith(".fifo"):
        extra = {"MessageGroupId": upload.document_id, "MessageDeduplicationId": upload.job_id}
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(message),
        MessageAttributes={"job_id": {"DataType": "String", "StringValue": upload.job_id}},
        **extra,
    )


def record_success(conn: Any, upload: Upload, parts: list[Part], document_bucket: str) -> bool:
    """Write rows, claim and send the conversion job, all in one transaction; True when a job was sent now."""
    with transaction(conn) as cur:
        _check_document(cur, upload)
        for part in parts:
            cur.execute(
                'INSERT INTO "BomPart" ("documentBomId", sha, path) VALUES (%s, %s, %s) '
                'ON CONFLICT ("documentBomId", path) DO NOTHING',
                (upload.bom_id, part.sha256, part.path),
            )
        cur.execute('UPDATE "Document" SET uploaded = true, "updatedAt" = now() WHERE id = %s', (upload.document_id,))
        _upsert_job(cur, upload, "processing", None)
        cur.execute(
            'INSERT INTO "ConvertJobDispatch" ("jobId", "documentId", "documentBomId") VALUES (%s, %s, %s) '
            'ON CONFLICT ("jobId") DO NOTHING RETURNING "jobId"',
            (upload.job_id, upload.document_id, upload.bom_id),
        )
        claimed = cur.fetchone() is not None
        if claimed:
            send_convert_job(upload, document_bucket)  # before commit: a failed send rolls the claim back
    return claimed


def record_failure(conn: Any, upload: Upload, reason: str) -> None:
    with transaction(conn) as cur:
        _upsert_job(cur, upload, "failed", reason[:1000])


def process(upload: Upload, conn: Any) -> dict[str, Any]:
    document_bucket = env_str("DOCUMENT_BUCKET")
    limits = ArchiveLimits.from_env(**DOCX_LIMIT_DEFAULTS)
    max_object = env_int("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, minimum=1)
    try:
        with transaction(conn) as cur:  # fail fast, before reading the file, when the document is unknown
            _check_document(cur, upload)
        data = fetch_docx(upload, max_object)
        parts = inspect_docx(data, limits)
        written = store_parts(data, parts, limits, document_bucket)
        sent = record_success(conn, upload, parts, document_bucket)
    except (InvalidUpload, UnsafeArchive) as exc:
        reason = exc.reason if isinstance(exc, UnsafeArchive) else str(exc)
        logger.warning("docx upload rejected", key=upload.key, job_id=upload.job_id, reason=reason)
        record_failure(conn, upload, reason)
        return {"key": upload.key, "status": "failed", "reason": reason}
    logger.info(
        "docx unzipped", key=upload.key, job_id=upload.job_id, parts=len(parts), parts_written=written, job_sent=sent
    )
    return {"key": upload.key, "status": "processed", "job_id": upload.job_id, "parts": len(parts), "job_sent": sent}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records")
    if not records:
        if event.get("Event") == "s3:TestEvent":  # sent once by S3 when the notification is configured
            logger.info("S3 test event acknowledged", bucket=event.get("Bucket"))
            return {"results": []}
        raise ValueError(f"not an S3 notification event: {json.dumps(event)[:500]}")
    uploads = [parse_upload(record) for record in records]  # a bad key fails the event before any work
    results = []
    with connection() as conn:
        for upload in uploads:
            results.append(process(upload, conn))
    return {"results": results}
