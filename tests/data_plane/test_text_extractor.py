"""The text extractor handler on moto (S3, SQS, Secrets Manager) and a real PostgreSQL: both trigger shapes, the
rows it writes, redelivery, and every hostile input ending in a recorded skip or a batch item failure."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, quote_plus

import boto3
import pytest
from core.config import ConfigError
from text_extractor.handler import handler, part_id

from tests.data_plane.documents import (
    ENTITY_BOMB,
    encrypt_pdf,
    make_docx,
    make_pdf,
    para,
    pdf_text_bomb,
    t,
    zip_bomb_docx,
)

DOC_BUCKET = "doc-storage-test"
USER = "macro|dana@example.com"
PREFIX = quote(USER, safe="")


@pytest.fixture
def env(database_secret, make_bucket, make_queue, monkeypatch):
    make_bucket(DOC_BUCKET, versioned=True)
    search = make_queue("search-event-queue-test", max_receive=2)
    for name in ("MAX_OBJECT_BYTES", "MAX_PAGES", "MAX_DECOMPRESSED_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCUMENT_BUCKET", DOC_BUCKET)
    monkeypatch.setenv("SEARCH_QUEUE_URL", search)
    return {"search": search, "s3": boto3.client("s3", region_name="us-east-1")}


def put(env, document_id: str, data: bytes, name: str = "1.pdf") -> str:
    key = f"{PREFIX}/{document_id}/{name}"
    env["s3"].put_object(Bucket=DOC_BUCKET, Key=key, Body=data)
    return key


def object_created(key: str, bucket: str = DOC_BUCKET) -> dict:
    """As EventBridge delivers it: the key URL-encoded (form encoding, like S3 notifications)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}},
    }


def sqs_record(body: str, attributes: dict[str, str], message_id: str | None = None) -> dict:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": body,
        "attributes": {},
        "messageAttributes": {k: {"stringValue": v, "dataType": "String"} for k, v in attributes.items()},
        "eventSource": "aws:sqs",
    }


def search_messages(env) -> list[dict]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    got = sqs.receive_message(QueueUrl=env["search"], MaxNumberOfMessages=10).get("Messages", [])
    for message in got:
        sqs.delete_message(QueueUrl=env["search"], ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in got]


def status(pg, document_id: str) -> tuple:
    rows = pg.query('SELECT status, reason FROM "DocumentTextExtraction" WHERE "documentId" = %s', document_id)
    return tuple(rows[0]) if rows else ()


def texts(pg, document_id: str) -> list:
    return pg.query('SELECT content, "tokenCount" FROM "DocumentText" WHERE "documentId" = %s', document_id)


def parts(pg, document_id: str) -> list:
    return pg.query(
        'SELECT id, reference FROM "DocumentTextParts" WHERE "documentId" = %s ORDER BY (reference->>\'index\')::int',
        document_id,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Normal path and redelivery


def test_pdf_from_eventbridge_is_stored_in_parts_and_announced(env, pg, lambda_context):
    lines = "\n".join(f"line {n}" for n in range(1, 8))  # 7 lines: parts of 5 + 2 on page 1
    key = put(env, "doc-1", make_pdf([lines, "second page"]))

    result = handler(object_created(key), lambda_context)

    assert result["outcome"] == "extracted" and result["parts"] == 3
    [(content, tokens)] = texts(pg, "doc-1")
    ids = [part_id("doc-1", i) for i in range(3)]
    assert content == (
        f"line 1\nline 2\nline 3\nline 4\nline 5[[{ids[0]}]]\nline 6\nline 7[[{ids[1]}]]\nsecond page[[{ids[2]}]]\n"
    )
    assert tokens == 16
    stored = parts(pg, "doc-1")
    assert [row[0] for row in stored] == ids
    assert [row[1] for row in stored] == [
        {"page": 1, "index": 0, "lines": [1, 5]},
        {"page": 1, "index": 1, "lines": [6, 7]},
        {"page": 2, "index": 2, "lines": [1, 1]},
    ]
    assert status(pg, "doc-1") == ("extracted", None)
    assert search_messages(env) == [
        {
            "ExtractDocumentText": {
                "user_id": USER,
                "document_id": "doc-1",
                "file_type": "pdf",
                "document_version_id": "1",
            }
        }
    ]


def test_redelivery_leaves_the_same_rows_and_sends_no_second_event(env, pg, lambda_context):
    key = put(env, "doc-2", make_docx(para(t("Redelivered text"))), "3.docx")
    event = object_created(key)
    handler(event, lambda_context)
    first = (texts(pg, "doc-2"), parts(pg, "doc-2"))
    assert len(search_messages(env)) == 1

    again = handler(event, lambda_context)

    assert again["outcome"] == "extracted" and again["search_event"] is False
    assert (texts(pg, "doc-2"), parts(pg, "doc-2")) == first
    assert search_messages(env) == []


def test_new_version_replaces_parts_instead_of_accumulating(env, pg, lambda_context):
    long_text = make_pdf(["\n".join(f"row {n}" for n in range(12))])
    handler(object_created(put(env, "doc-3", long_text, "1.pdf")), lambda_context)
    assert len(parts(pg, "doc-3")) == 3

    handler(object_created(put(env, "doc-3", make_pdf(["short now"]), "2.pdf")), lambda_context)

    assert [row[0] for row in parts(pg, "doc-3")] == [part_id("doc-3", 0)]
    assert texts(pg, "doc-3")[0][0].startswith("short now")
    assert [m["ExtractDocumentText"]["document_version_id"] for m in search_messages(env)] == ["1", "2"]


def test_event_for_an_older_object_than_the_stored_text_is_stale(env, pg, lambda_context):
    key = put(env, "doc-4", b"plain old text", "1.txt")
    pg.query(
        'INSERT INTO "DocumentTextExtraction" ("documentId", status, "sourceKey", "sourceModified") '
        "VALUES (%s, 'extracted', %s, now() + interval '1 day')",
        "doc-4",
        f"{PREFIX}/doc-4/2.txt",
    )
    assert handler(object_created(key), lambda_context)["outcome"] == "stale"
    assert texts(pg, "doc-4") == [] and search_messages(env) == []


def test_text_formats(env, pg, lambda_context):
    cases = {
        "1.md": (b"# Heading\n\nmarkdown body", "markdown body"),
        "1.html": (b"<html><body><p>html body</p><script>x()</script></body></html>", "html body"),
        "1.txt": ("plain \u00e9t\u00e9".encode(), "plain été"),
    }
    for number, (name, (data, expected)) in enumerate(cases.items()):
        document_id = f"doc-5-{number}"
        handler(object_created(put(env, document_id, data, name)), lambda_context)
        assert expected in texts(pg, document_id)[0][0], name


# ---------------------------------------------------------------------------------------------------------------------
# Skips: recorded with a reason, success (no retry), nothing stored, nothing announced


def _truncated_docx() -> bytes:
    data = make_docx(para(t("x" * 3000)))
    return data[: len(data) // 2]


UNREADABLE = {  # case: (file name, bytes, expected text in the recorded reason)
    "encrypted-pdf": ("1.pdf", lambda: encrypt_pdf(make_pdf(["secret"])), "EncryptedDocument"),
    "truncated-pdf": ("1.pdf", lambda: make_pdf(["ok"])[:60], "CorruptDocument"),
    "empty": ("1.pdf", lambda: b"", "empty"),
    "truncated-docx": ("1.docx", _truncated_docx, "CorruptDocument"),
    "zip-bomb": ("1.docx", zip_bomb_docx, "zip bomb"),
    "entity-bomb": ("1.docx", lambda: make_docx(para(t("&lol3;")), prolog=ENTITY_BOMB), "DTD"),
    "unsupported": ("1.png", lambda: b"\x89PNG....", "UnsupportedFormat"),
}


def test_unreadable_files_are_recorded_as_skipped(env, pg, lambda_context):
    """One test for all cases: each is a different document, and fixture setup dominates the runtime."""
    for case, (name, data, reason) in UNREADABLE.items():
        document_id = f"doc-6-{case}"
        result = handler(object_created(put(env, document_id, data(), name)), lambda_context)
        assert result["outcome"] == "skipped", case
        state, recorded_reason = status(pg, document_id)
        assert state == "skipped" and reason in recorded_reason, (case, recorded_reason)
        assert texts(pg, document_id) == [], case
    assert search_messages(env) == []


def test_pdfium_abort_is_recorded_as_skipped_and_the_message_acknowledged(env, pg, lambda_context, monkeypatch):
    """pdfium aborting (SIGABRT on memory exhaustion) kills only its worker: the SQS record succeeds, never retried."""
    from text_extractor import pdf_worker

    worker = pdf_worker.PdfWorker(
        pdf_worker.WorkerLimits(memory_bytes=80 * 1024 * 1024, max_page_objects=10**9, max_page_chars=10**9)
    )
    monkeypatch.setattr(pdf_worker, "_shared", worker)
    try:
        key = put(env, "doc-6-bomb", pdf_text_bomb(100_000))
        good = put(env, "doc-6-after", make_pdf(["still reading"]))
        response = handler(
            {
                "Records": [
                    sqs_record("doc-6-bomb", {"key": key, "bucket": DOC_BUCKET}, "bomb"),
                    sqs_record("doc-6-after", {"key": good, "bucket": DOC_BUCKET}, "after"),
                ]
            },
            lambda_context,
        )
    finally:
        worker.close()
    assert response == {"batchItemFailures": []}
    state, reason = status(pg, "doc-6-bomb")
    assert state == "skipped" and reason.startswith("PdfWorkerAborted: pdfium was killed by SIGABRT"), reason
    assert texts(pg, "doc-6-bomb") == []
    assert "still reading" in texts(pg, "doc-6-after")[0][0]


def test_oversized_object_is_skipped_without_download(env, pg, lambda_context, monkeypatch):
    monkeypatch.setenv("MAX_OBJECT_BYTES", "100")
    key = put(env, "doc-7", b"x" * 101, "1.txt")
    assert handler(object_created(key), lambda_context)["outcome"] == "skipped"
    assert "MAX_OBJECT_BYTES" in status(pg, "doc-7")[1]


def test_too_many_pages_is_skipped(env, pg, lambda_context, monkeypatch):
    monkeypatch.setenv("MAX_PAGES", "1")
    key = put(env, "doc-8", make_pdf(["a", "b"]))
    assert handler(object_created(key), lambda_context)["outcome"] == "skipped"
    assert "LimitExceeded" in status(pg, "doc-8")[1]


def test_deleted_object_is_recorded_and_succeeds(env, pg, lambda_context):
    result = handler(object_created(f"{PREFIX}/doc-9/1.pdf"), lambda_context)
    assert result["outcome"] == "skipped"
    assert status(pg, "doc-9") == ("skipped", "object no longer exists (deleted before extraction)")


def test_invalid_limit_names_the_variable(env, lambda_context, monkeypatch):
    monkeypatch.setenv("MAX_PAGES", "many")
    key = put(env, "doc-10", make_pdf(["a"]))
    with pytest.raises(ConfigError, match="MAX_PAGES"):
        handler(object_created(key), lambda_context)


# ---------------------------------------------------------------------------------------------------------------------
# Event shapes


def test_temp_files_and_non_document_keys_are_ignored_without_touching_the_database(env, lambda_context, monkeypatch):
    monkeypatch.setenv("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent")
    for key in ("temp_files/upload.pdf", "docx-parts/0123abcd", "a/b/c/d.pdf"):
        assert handler(object_created(key), lambda_context)["outcome"] == "ignored"


def test_eventbridge_event_for_another_bucket_raises(env, lambda_context):
    with pytest.raises(ValueError, match="not the document bucket"):
        handler(object_created(f"{PREFIX}/d/1.pdf", bucket="elsewhere"), lambda_context)


def test_unknown_event_shape_raises(env, lambda_context):
    with pytest.raises(ValueError, match="unrecognised event"):
        handler({"hello": "world"}, lambda_context)


def test_sqs_batch_reports_only_bad_records(env, pg, lambda_context):
    key = put(env, "doc-11", make_pdf(["from the queue"]))
    good = sqs_record("doc-11", {"key": key, "bucket": DOC_BUCKET}, "good")
    bad = [
        sqs_record("doc-11", {"bucket": DOC_BUCKET}, "no-key"),
        sqs_record("not json, not an id", {"key": key, "bucket": DOC_BUCKET}, "body-mismatch"),
        sqs_record("doc-11", {"key": "not-a-document-key", "bucket": DOC_BUCKET}, "wrong-key-shape"),
        sqs_record("doc-11", {"key": key, "bucket": "another-bucket"}, "wrong-bucket"),
        sqs_record("", {"key": key, "bucket": DOC_BUCKET}, "empty-body"),
    ]

    response = handler({"Records": [good, *bad]}, lambda_context)

    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(r["messageId"] for r in bad)
    assert "from the queue" in texts(pg, "doc-11")[0][0]


def test_sqs_record_fails_when_the_database_is_down(env, pg, lambda_context, monkeypatch):
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="unreachable-db", SecretString="postgresql://u:p@127.0.0.1:1/macrodb?sslmode=disable"
    )
    monkeypatch.setenv("DATABASE_SECRET_ARN", secret["ARN"])
    key = put(env, "doc-12", make_pdf(["retry me"]))
    response = handler({"Records": [sqs_record("doc-12", {"key": key, "bucket": DOC_BUCKET}, "m1")]}, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert search_messages(env) == []


def test_poison_message_lands_in_the_dlq(env, make_queue, lambda_context):
    """A real moto queue with the program's redrive (maxReceiveCount 1, as the reference extractor queue)."""
    queue = make_queue("document-text-extractor-test", max_receive=1, visibility=0)
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(
        QueueUrl=queue,
        MessageBody="doc-13",
        MessageAttributes={"bucket": {"DataType": "String", "StringValue": DOC_BUCKET}},
    )
    for _ in range(2):
        got = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"]).get("Messages", [])
        for message in got:
            record = sqs_record(
                message["Body"],
                {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()},
                message["MessageId"],
            )
            response = handler({"Records": [record]}, lambda_context)
            assert response["batchItemFailures"] == [{"itemIdentifier": message["MessageId"]}]
    dead = sqs.receive_message(QueueUrl=queue.dlq_url).get("Messages", [])
    assert [m["Body"] for m in dead] == ["doc-13"]


def test_plain_eventbridge_key_is_accepted_too(env, pg, lambda_context):
    """If EventBridge delivers the key undecoded, the decoded form misses and the raw form is read."""
    key = put(env, "doc-14", b"raw key text", "1.txt")
    event = object_created(key)
    event["detail"]["object"]["key"] = key  # %7C and %40 would decode to | and @: no such object
    assert handler(event, lambda_context)["outcome"] == "extracted"
    assert "raw key text" in texts(pg, "doc-14")[0][0]
