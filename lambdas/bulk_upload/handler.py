"""Bulk upload: a zip in the staging bucket becomes a project tree of documents.

Trigger: the bulk upload SQS queue (event source mapping with ReportBatchItemFailures), fed either directly by the
EventBridge rule on ``extract/`` objects in the staging bucket (body = the EventBridge "Object Created" event) or
with the reference's ``{"ExtractZip": {"upload_request_id", "key", "user_id", "name"?, "parent_id"?}}``.

Per request (``PK=REQUEST#{id}``, ``SK=META`` in ``BULK_UPLOAD_TABLE``):
1. A terminal request (completed / partially_completed / failed) is a duplicate delivery: nothing to do.
2. Status ``processing``; the zip is streamed to /tmp (never held in memory) and validated with core.safe_zip
   (entries, sizes, ratio, paths, folder depth). An unsafe or unreadable zip finishes the request as ``failed``.
3. Junk (``__MACOSX``, ``.DS_Store``, ``Thumbs.db``, dot-files) is skipped. A single top-level folder is the upload's
   root. Nested archives are NOT expanded: each is a failed document ("nested archive"), like a file without an
   extension or with corrupt data.
4. Ids are deterministic (uuid5 of request id and archive path), so a redelivery reuses them: "Project",
   "Document" and (for DOCX) "DocumentBom" rows are inserted with ON CONFLICT DO NOTHING, and documents whose status
   item is already ``completed`` are skipped. Documents go to ``{urlencoded user}/{doc}/1.{ext}`` in the document
   bucket (version 1 of a new document); DOCX files go to ``{urlencoded user}/{doc}/{bom id}.docx`` in the DOCX
   upload bucket so they enter the unzip path, which marks them uploaded.
5. Document statuses are batch-written (25 a call, unprocessed items retried with backoff, bounded); the request
   ends ``completed``, ``partially_completed`` or ``failed`` with ``error_message``, ``completed_at`` (RFC 3339)
   and ``root_project_id``.
A message that cannot be parsed, names an unknown request, or meets a transient error raises: it is reported as a
batch item failure and, after the queue's maxReceiveCount, lands in the DLQ. On the last receive
(``ApproximateReceiveCount`` >= ``MAX_RECEIVE_COUNT``, the queue's maxReceiveCount) a transient error also finishes
the request as ``failed`` ("being dead-lettered after N attempts"), so a user never waits on ``processing`` forever;
the failure is still reported, so the message lands in the DLQ for inspection. Because a process that dies (out of
memory, timeout) runs no code at all, the last receive writes ``failed`` ("stopped during its last attempt") *before*
it starts, and the attempt's own outcome replaces it when it finishes: the request never stays ``processing`` with
its message in the DLQ. Archive limits (core.safe_zip: central directory counted before it is parsed, one member in
memory at a time, capped by its declared size) keep memory bounded in the first place.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from core import aws
from core.batch import BadMessage, process_sqs
from core.config import env_int, env_str
from core.db import connection, transaction
from core.keys import document_prefix
from core.logging import logger
from core.s3_events import ObjectRef, eventbridge_object, find_object
from core.safe_zip import ArchiveLimits, UnsafeArchive, open_checked, read_member

ID_NAMESPACE = uuid.UUID("0b7f4f9e-5d7c-4b0a-8c1e-2f7d3c9a6e55")  # stable: ids must survive redeploys
DEFAULT_FOLDER_NAME = "Folder Upload"
DEFAULT_MAX_OBJECT_BYTES = 400 * 1024 * 1024  # MAX_OBJECT_BYTES: the zip must fit the function's /tmp (512 MB).
TERMINAL = {"completed", "partially_completed", "failed"}
JUNK_NAMES = {".DS_Store", "Thumbs.db"}
NESTED_ARCHIVES = {"zip", "7z", "rar", "tar", "gz", "tgz", "bz2", "xz", "zst", "jar", "cab"}
DEFAULT_MAX_RECEIVE_COUNT = 5  # MAX_RECEIVE_COUNT: must equal the queue's redrive maxReceiveCount.
BATCH_SIZE = 25
BATCH_ATTEMPTS = 5
MAX_ERROR_CHARS = 2000
S3_MAX_KEY_BYTES = 1024  # S3's limit on an object key (UTF-8)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class RequestFailed(Exception):
    """The whole request cannot succeed (bad zip, zip gone); recorded as ``failed`` with this message."""


@dataclass(frozen=True)
class ExtractZip:
    upload_request_id: str
    key: str
    user_id: str | None = None
    name: str | None = None
    parent_id: str | None = None


@dataclass
class DocumentEntry:
    path: str  # inside the archive, root folder removed
    member: str  # the archive member name
    document_id: str
    extension: str
    project_path: str  # folder ("" = root project)
    error: str | None = None
    bom_id: int | None = None

    @property
    def name(self) -> str:
        return posixpath.splitext(posixpath.basename(self.path))[0] or posixpath.basename(self.path)

    @property
    def is_docx(self) -> bool:
        return self.extension == "docx"


@dataclass
class Outcome:
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(parts)))


# --- message parsing ---------------------------------------------------------------------------------------------


def _uploaded_zip_key(source: ObjectRef) -> str:
    """The event's key as ``extract/{request id}``: of the candidate decodings with that shape, the one in S3."""
    shaped = tuple(k for k in source.keys if k.startswith("extract/") and k.count("/") == 1) or source.keys
    if len(shaped) == 1:
        return shaped[0]
    found = find_object(source, shaped)
    return found.key if found is not None else shaped[0]  # none exists: the download says so


def parse_message(record: SQSRecord, staging_bucket: str) -> ExtractZip:
    """The request a message names; BadMessage (naming the message id) for anything else."""
    mid = record.message_id
    try:
        body = json.loads(record.body)
    except (TypeError, ValueError) as exc:
        raise BadMessage(f"message {mid}: body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadMessage(f"message {mid}: body is not a JSON object")
    if "ExtractZip" in body:
        inner = body["ExtractZip"]
        if not isinstance(inner, dict):
            raise BadMessage(f"message {mid}: ExtractZip is not an object")
        request_id, key = inner.get("upload_request_id"), inner.get("key")
        if not isinstance(request_id, str) or not request_id or not isinstance(key, str):
            raise BadMessage(f"message {mid}: ExtractZip needs upload_request_id and key")
        optional = {k: inner.get(k) for k in ("user_id", "name", "parent_id")}
        if any(v is not None and not isinstance(v, str) for v in optional.values()):
            raise BadMessage(f"message {mid}: ExtractZip user_id, name and parent_id must be strings")
        request = ExtractZip(request_id, key, **optional)
    elif body.get("source") == "aws.s3" and body.get("detail-type") == "Object Created":
        source = eventbridge_object(body)
        bucket = source.bucket if source is not None else None
        if source is None or bucket != staging_bucket:
            raise BadMessage(f"message {mid}: object created in bucket {bucket!r}, expected {staging_bucket!r}")
        key = _uploaded_zip_key(source)
        request = ExtractZip(key.removeprefix("extract/"), key)
    else:
        raise BadMessage(f"message {mid}: neither an ExtractZip message nor an S3 Object Created event")
    expected_key = f"extract/{request.upload_request_id}"
    if request.key != expected_key or "/" in request.upload_request_id or not request.upload_request_id:
        raise BadMessage(f"message {mid}: key {request.key!r} is not extract/{{request_id}}")
    return request


# --- DynamoDB ----------------------------------------------------------------------------------------------------


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def load_request(table: str, request_id: str) -> dict[str, Any]:
    got = aws.client("dynamodb").get_item(
        TableName=table, Key=_item({"PK": f"REQUEST#{request_id}", "SK": "META"}), ConsistentRead=True
    )
    if "Item" not in got:
        raise BadMessage(f"bulk upload request {request_id} not found in {table}")
    return _plain(got["Item"])


def update_request(table: str, request_id: str, **values: Any) -> None:
    values["updated_at"] = now()
    names = {f"#f{i}": k for i, k in enumerate(values)}
    exprs = {f":v{i}": v for i, v in enumerate(values.values())}
    aws.client("dynamodb").update_item(
        TableName=table,
        Key=_item({"PK": f"REQUEST#{request_id}", "SK": "META"}),
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=_item(exprs),
    )


def document_statuses(table: str, request_id: str) -> dict[str, str]:
    ddb = aws.client("dynamodb")
    statuses: dict[str, str] = {}
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :doc)",
        "ExpressionAttributeValues": _item({":pk": f"REQUEST#{request_id}", ":doc": "DOCUMENT#"}),
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**kwargs)
        for raw in page.get("Items", []):
            item = _plain(raw)
            statuses[str(item["document_id"])] = str(item.get("status"))
        if "LastEvaluatedKey" not in page:
            return statuses
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def batch_put(table: str, items: list[dict[str, Any]], sleep: Any = time.sleep) -> None:
    """BatchWriteItem in chunks of 25, retrying UnprocessedItems with exponential backoff; raises if they persist."""
    ddb = aws.client("dynamodb")
    for start in range(0, len(items), BATCH_SIZE):
        requests = [{"PutRequest": {"Item": _item(item)}} for item in items[start : start + BATCH_SIZE]]
        for attempt in range(BATCH_ATTEMPTS):
            left = ddb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {}).get(table, [])
            if not left:
                break
            requests = left
            if attempt + 1 < BATCH_ATTEMPTS:
                sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise RuntimeError(f"{len(requests)} document status items still unprocessed after {BATCH_ATTEMPTS} tries")


def document_item(request_id: str, doc: DocumentEntry, status: str, error: str | None) -> dict[str, Any]:
    return {
        "PK": f"REQUEST#{request_id}",
        "SK": f"DOCUMENT#{doc.document_id}",
        "document_id": doc.document_id,
        "entity_type": "Document",
        "status": status,
        "path": doc.path,
        "file_type": doc.extension,
        "error_message": error,
        "updated_at": now(),
    }


# --- archive -----------------------------------------------------------------------------------------------------


def is_junk(name: str) -> bool:
    parts = [p for p in name.split("/") if p]
    return any(p == "__MACOSX" or p in JUNK_NAMES or p.startswith(".") for p in parts)


def plan_documents(zf: zipfile.ZipFile, request_id: str) -> list[DocumentEntry]:
    files = [i.filename for i in zf.infolist() if not i.is_dir() and not is_junk(i.filename)]
    tops = {name.split("/", 1)[0] for name in files}
    strip = len(tops) == 1 and all("/" in name for name in files)  # a zipped folder: its folder is the root
    docs = []
    for member in files:
        path = member.split("/", 1)[1] if strip else member
        folder, base = posixpath.split(path)
        stem, ext = posixpath.splitext(base)
        extension = ext[1:].lower()
        doc = DocumentEntry(path, member, stable_id(request_id, "document", path), extension, folder)
        if not stem or not extension:
            doc.error = "file has no extension"
        elif extension in NESTED_ARCHIVES:
            doc.error = "nested archive: archives inside the upload are not expanded"
        docs.append(doc)
    return docs


def download(bucket: str, key: str, max_bytes: int, target: str) -> None:
    s3 = aws.client("s3")
    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
            raise RequestFailed(f"the uploaded zip {key} does not exist") from exc
        raise
    if size == 0:
        raise RequestFailed("the uploaded zip is empty")
    if size > max_bytes:
        raise RequestFailed(f"the uploaded zip is {size} bytes, more than MAX_OBJECT_BYTES ({max_bytes})")
    s3.download_file(bucket, key, target)  # multipart ranged GETs straight to disk
    if os.path.getsize(target) > max_bytes:  # replaced between HEAD and GET
        raise RequestFailed(f"the uploaded zip is more than MAX_OBJECT_BYTES ({max_bytes}) bytes")


# --- database ----------------------------------------------------------------------------------------------------


def ensure_rows(conn: Any, request: ExtractZip, user_id: str, docs: list[DocumentEntry]) -> str:
    """Projects, documents and DOCX boms, idempotently; returns the root project id and fills ``bom_id``."""
    rid = request.upload_request_id
    root_id = stable_id(rid, "project", "")
    folders = {""}
    for doc in docs:
        folder = doc.project_path if doc.error is None else ""
        while folder:  # folders holding only subfolders are projects too
            folders.add(folder)
            folder = posixpath.dirname(folder)
    with transaction(conn) as cur:
        for folder in sorted(folders, key=lambda f: (f.count("/") + bool(f), f)):  # parents before children
            parent = request.parent_id if folder == "" else stable_id(rid, "project", posixpath.dirname(folder))
            name = (request.name or DEFAULT_FOLDER_NAME) if folder == "" else posixpath.basename(folder)
            cur.execute(
                'INSERT INTO "Project" (id, name, "userId", "parentId") VALUES (%s, %s, %s, %s) '
                "ON CONFLICT (id) DO NOTHING",
                (stable_id(rid, "project", folder), name, user_id, parent),
            )
        for doc in docs:
            if doc.error is not None:
                continue
            cur.execute(
                'INSERT INTO "Document" (id, owner, name, "fileType", "projectId") VALUES (%s, %s, %s, %s, %s) '
                "ON CONFLICT (id) DO NOTHING",
                (doc.document_id, user_id, doc.name, doc.extension, stable_id(rid, "project", doc.project_path)),
            )
            if doc.is_docx:
                cur.execute('SELECT min(id) FROM "DocumentBom" WHERE "documentId" = %s', (doc.document_id,))
                row = cur.fetchone()
                if row[0] is None:
                    cur.execute('INSERT INTO "DocumentBom" ("documentId") VALUES (%s) RETURNING id', (doc.document_id,))
                    row = cur.fetchone()
                doc.bom_id = int(row[0])
    return root_id


def mark_uploaded(conn: Any, document_ids: list[str]) -> None:
    if not document_ids:
        return
    with transaction(conn) as cur:
        cur.execute('UPDATE "Document" SET uploaded = true, "updatedAt" = now() WHERE id = ANY(%s)', (document_ids,))


# --- upload ------------------------------------------------------------------------------------------------------


def destination(doc: DocumentEntry, user_id: str) -> tuple[str, str]:
    prefix = document_prefix(user_id, doc.document_id)
    if doc.is_docx:
        return env_str("DOCX_UPLOAD_BUCKET"), f"{prefix}{doc.bom_id}.docx"
    return env_str("DOCUMENT_BUCKET"), f"{prefix}1.{doc.extension}"


def put_document(bucket: str, key: str, body: bytes) -> None:
    """PUT unless the same bytes are already there (a redelivery after a crash must not add an object version)."""
    s3 = aws.client("s3")
    digest = hashlib.sha256(body).hexdigest()
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == digest:
            return
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) not in {"404", "NoSuchKey", "NotFound"}:
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"sha256": digest}, ChecksumAlgorithm="SHA256")


def process_request(request: ExtractZip, *, last_attempt: int | None = None) -> str:
    """Process one request; ``last_attempt`` (the receive count) when no receive is left after this one."""
    table = env_str("BULK_UPLOAD_TABLE")
    staging = env_str("STAGING_BUCKET")
    rid = request.upload_request_id
    meta = load_request(table, rid)
    if meta.get("status") in TERMINAL:
        logger.info("bulk upload request already finished; duplicate delivery ignored", request_id=rid)
        return str(meta["status"])
    user_id = str(meta.get("user_id") or request.user_id or "")
    if not user_id:
        raise BadMessage(f"bulk upload request {rid} has no user_id")
    if meta.get("key") not in (None, request.key):
        raise BadMessage(f"bulk upload request {rid} is for key {meta.get('key')!r}, message names {request.key!r}")
    request = ExtractZip(
        rid,
        request.key,
        user_id,
        request.name or meta.get("name"),
        request.parent_id or meta.get("parent_id"),
    )
    if last_attempt is None:
        update_request(table, rid, status="processing")
    else:  # replaced by this attempt's outcome; stays if the process dies first
        error = (
            f"bulk upload stopped during its last attempt ({last_attempt} of {last_attempt}) without finishing: "
            "the function ran out of memory or time; its message is in the dead-letter queue"
        )
        update_request(table, rid, status="failed", error_message=error, completed_at=now())
    limits = ArchiveLimits.from_env()
    max_object = env_int("MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES, minimum=1)
    with tempfile.TemporaryDirectory(prefix="bulk-") as tmp:
        target = os.path.join(tmp, "upload.zip")
        try:
            download(staging, request.key, max_object, target)
            with open_checked(target, limits) as zf:
                return extract(zf, request, user_id, table, limits)
        except (RequestFailed, UnsafeArchive) as exc:
            reason = exc.reason if isinstance(exc, UnsafeArchive) else str(exc)
            logger.warning("bulk upload rejected", request_id=rid, reason=reason)
            update_request(table, rid, status="failed", error_message=reason, completed_at=now())
            return "failed"


def extract(zf: zipfile.ZipFile, request: ExtractZip, user_id: str, table: str, limits: ArchiveLimits) -> str:
    rid = request.upload_request_id
    docs = plan_documents(zf, rid)
    if not docs:
        raise RequestFailed("the zip contains no documents")
    done = document_statuses(table, rid)
    with connection() as conn:
        root_project_id = ensure_rows(conn, request, user_id, docs)
        todo = [d for d in docs if done.get(d.document_id) != "completed"]
        batch_put(table, [document_item(rid, d, "pending", None) for d in todo if d.error is None])
        outcome = Outcome(completed=[d.document_id for d in docs if done.get(d.document_id) == "completed"])
        for doc in todo:
            if doc.error is None:
                try:
                    body = read_member(zf, zf.getinfo(doc.member), limits)
                except UnsafeArchive as exc:
                    doc.error = exc.reason
                else:
                    bucket, key = destination(doc, user_id)
                    if not body:
                        doc.error = "file is empty"
                    elif len(key.encode()) > S3_MAX_KEY_BYTES:  # S3 would refuse it, and the retries with it
                        doc.error = f"file extension is too long: its storage key would exceed {S3_MAX_KEY_BYTES} bytes"
                    else:
                        put_document(bucket, key, body)
            if doc.error is None:
                outcome.completed.append(doc.document_id)
            else:
                outcome.failed[doc.path] = doc.error
        mark_uploaded(conn, [d.document_id for d in todo if d.error is None and not d.is_docx])
    batch_put(table, [document_item(rid, d, "failed" if d.error else "completed", d.error) for d in todo])
    if not outcome.failed:
        status, error = "completed", None
    else:
        status = "partially_completed" if outcome.completed else "failed"
        details = "; ".join(f"{path}: {reason}" for path, reason in sorted(outcome.failed.items()))
        error = f"{len(outcome.failed)} of {len(docs)} files failed: {details}"[:MAX_ERROR_CHARS]
    update_request(table, rid, status=status, error_message=error, completed_at=now(), root_project_id=root_project_id)
    logger.info(
        "bulk upload finished",
        request_id=rid,
        status=status,
        completed=len(outcome.completed),
        failed=len(outcome.failed),
    )
    return status


def mark_dead_lettered(table: str, request_id: str, attempts: int, exc: Exception) -> None:
    """Finish a request whose message is leaving for the DLQ as ``failed``, unless it already finished."""
    reason = f"{type(exc).__name__}: {exc}"
    error = f"bulk upload is being dead-lettered after {attempts} attempts; last error: {reason}"[:MAX_ERROR_CHARS]
    stamp = now()
    try:
        aws.client("dynamodb").update_item(
            TableName=table,
            Key=_item({"PK": f"REQUEST#{request_id}", "SK": "META"}),
            UpdateExpression="SET #s = :failed, error_message = :e, completed_at = :t, updated_at = :t",
            # "failed" is overwritten: on the last receive it is the placeholder written before the attempt
            ConditionExpression="attribute_exists(PK) AND NOT #s IN (:c, :p)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_item(
                {":failed": "failed", ":e": error, ":t": stamp, ":c": "completed", ":p": "partially_completed"}
            ),
        )
    except ClientError as update_error:
        if update_error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            # The store itself may be what fails; the message still goes to the DLQ, where it can be redriven.
            logger.exception("dead-lettered bulk upload request could not be marked failed", request_id=request_id)
        return
    logger.error("bulk upload request failed: message dead-lettered", request_id=request_id, attempts=attempts)


def receive_count(record: SQSRecord) -> int:
    """``ApproximateReceiveCount``; 0 when absent or malformed (never treated as the last attempt)."""
    raw = (record.get("attributes") or {}).get("ApproximateReceiveCount")
    try:
        return int(str(raw))
    except ValueError:
        logger.warning("record has no valid ApproximateReceiveCount", message_id=record.message_id, value=raw)
        return 0


def handle_record(record: SQSRecord) -> None:
    request = parse_message(record, env_str("STAGING_BUCKET"))
    max_receives = env_int("MAX_RECEIVE_COUNT", DEFAULT_MAX_RECEIVE_COUNT, minimum=1)
    attempts = receive_count(record)
    try:
        process_request(request, last_attempt=attempts if attempts >= max_receives else None)
    except BadMessage:
        raise  # not transient, and it may not name a real request: nothing to mark
    except Exception as exc:
        if attempts >= max_receives:
            mark_dead_lettered(env_str("BULK_UPLOAD_TABLE"), request.upload_request_id, attempts, exc)
        raise


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_sqs(event, context, handle_record)
