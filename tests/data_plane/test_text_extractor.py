"""The text extractor on each stack's recorded wiring (``world``: moto and a real PostgreSQL): both trigger shapes,
the rows it writes, redelivery, and every hostile input ending in a recorded skip or a batch item failure.

The document bucket, the search queue, the extractor queue and its DLQ, the database secret and the limits are the
ones the records give the function; EventBridge events go through ``invoke`` (a recorded rule must match them) and
queue messages through the recorded queue, its mapping and its redrive.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, quote_plus

import pytest
from core.config import ConfigError
from text_extractor.handler import part_id

from tests.data_plane.documents import (
    ENTITY_BOMB,
    encrypt_pdf,
    make_docx,
    make_pdf,
    para,
    t,
    zip_bomb_docx,
)
from tools.harness.world import UnwiredEvent, World

FUNCTION = "text_extractor"
QUEUE = "document-text-extractor-lambda"
USER = "macro|dana@example.com"
PREFIX = quote(USER, safe="")


def put(world: World, document_id: str, data: bytes, name: str = "1.pdf") -> str:
    """Store a document object; the EventBridge delivery it causes is dropped (each test delivers its own event)."""
    key = f"{PREFIX}/{document_id}/{name}"
    world.s3.put_object(Bucket=world.bucket("documents"), Key=key, Body=data)
    world.pending.clear()
    return key


def object_created(world: World, key: str, bucket: str | None = None) -> dict:
    """As EventBridge delivers it: the key URL-encoded (form encoding with "/" kept, like S3 notifications)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": bucket or world.bucket("documents")},
                   "object": {"key": quote_plus(key, safe="/"), "size": 1}},
    }


def extract(world: World, key: str) -> dict:
    return world.invoke(FUNCTION, object_created(world, key))


def search_messages(world: World) -> list[dict]:
    return [json.loads(m["Body"]) for m in world.messages(world.queue_url("search-event"))]


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


def test_pdf_from_eventbridge_is_stored_in_parts_and_announced(world: World, pg):
    lines = "\n".join(f"line {n}" for n in range(1, 8))  # 7 lines: parts of 5 + 2 on page 1
    key = put(world, "doc-1", make_pdf([lines, "second page"]))

    result = extract(world, key)

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
    assert search_messages(world) == [
        {
            "ExtractDocumentText": {
                "user_id": USER,
                "document_id": "doc-1",
                "file_type": "pdf",
                "document_version_id": "1",
            }
        }
    ]
    assert world.denied_calls() == []


def test_upload_reaches_the_extractor_through_the_recorded_rule(world: World, pg):
    world.put_object("documents", f"{PREFIX}/doc-0/1.txt", b"delivered by the rule")
    [run] = world.settle()
    assert run.function == FUNCTION and run.via.startswith("EventBridge rule")
    assert run.result["outcome"] == "extracted"
    assert "delivered by the rule" in texts(pg, "doc-0")[0][0]


def test_redelivery_leaves_the_same_rows_and_sends_no_second_event(world: World, pg):
    key = put(world, "doc-2", make_docx(para(t("Redelivered text"))), "3.docx")
    event = object_created(world, key)
    world.invoke(FUNCTION, event)
    first = (texts(pg, "doc-2"), parts(pg, "doc-2"))
    assert len(search_messages(world)) == 1

    again = world.invoke(FUNCTION, event)

    assert again["outcome"] == "extracted" and again["search_event"] is False
    assert (texts(pg, "doc-2"), parts(pg, "doc-2")) == first
    assert search_messages(world) == []


def test_new_version_replaces_parts_instead_of_accumulating(world: World, pg):
    long_text = make_pdf(["\n".join(f"row {n}" for n in range(12))])
    extract(world, put(world, "doc-3", long_text, "1.pdf"))
    assert len(parts(pg, "doc-3")) == 3

    extract(world, put(world, "doc-3", make_pdf(["short now"]), "2.pdf"))

    assert [row[0] for row in parts(pg, "doc-3")] == [part_id("doc-3", 0)]
    assert texts(pg, "doc-3")[0][0].startswith("short now")
    assert [m["ExtractDocumentText"]["document_version_id"] for m in search_messages(world)] == ["1", "2"]


def test_event_for_an_older_object_than_the_stored_text_is_stale(world: World, pg):
    key = put(world, "doc-4", b"plain old text", "1.txt")
    pg.query(
        'INSERT INTO "DocumentTextExtraction" ("documentId", status, "sourceKey", "sourceModified") '
        "VALUES (%s, 'extracted', %s, now() + interval '1 day')",
        "doc-4",
        f"{PREFIX}/doc-4/2.txt",
    )
    assert extract(world, key)["outcome"] == "stale"
    assert texts(pg, "doc-4") == [] and search_messages(world) == []


def test_text_formats(world: World, pg):
    cases = {
        "1.md": (b"# Heading\n\nmarkdown body", "markdown body"),
        "1.html": (b"<html><body><p>html body</p><script>x()</script></body></html>", "html body"),
        "1.txt": ("plain \u00e9t\u00e9".encode(), "plain été"),
    }
    for number, (name, (data, expected)) in enumerate(cases.items()):
        document_id = f"doc-5-{number}"
        extract(world, put(world, document_id, data, name))
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


def test_unreadable_files_are_recorded_as_skipped(world: World, pg):
    """One test for all cases: each is a different document, and fixture setup dominates the runtime."""
    for case, (name, data, reason) in UNREADABLE.items():
        document_id = f"doc-6-{case}"
        result = extract(world, put(world, document_id, data(), name))
        assert result["outcome"] == "skipped", case
        state, recorded_reason = status(pg, document_id)
        assert state == "skipped" and reason in recorded_reason, (case, recorded_reason)
        assert texts(pg, document_id) == [], case
    assert search_messages(world) == []


def test_pdfium_abort_is_recorded_as_skipped_and_the_message_acknowledged(world: World, pg, monkeypatch):
    """pdfium aborting (SIGABRT on memory exhaustion) kills only its worker: the SQS record succeeds, never retried."""
    from text_extractor import pdf_worker

    from tests.data_plane import documents

    worker = pdf_worker.PdfWorker(
        pdf_worker.WorkerLimits(memory_bytes=80 * 1024 * 1024, max_page_objects=10**9, max_page_chars=10**9)
    )
    monkeypatch.setattr(pdf_worker, "_shared", worker)
    bucket = world.bucket("documents")
    try:
        key = put(world, "doc-6-bomb", documents.pdf_text_bomb(100_000))
        good = put(world, "doc-6-after", make_pdf(["still reading"]))
        world.send_message(QUEUE, "doc-6-bomb", {"key": key, "bucket": bucket})
        world.send_message(QUEUE, "doc-6-after", {"key": good, "bucket": bucket})
        runs = world.settle()
    finally:
        worker.close()
    assert [r.result for r in runs] == [{"batchItemFailures": []}] * 2
    assert world.messages(world.dlq_url(QUEUE)) == []
    state, reason = status(pg, "doc-6-bomb")
    assert state == "skipped" and reason.startswith("PdfWorkerAborted: pdfium was killed by SIGABRT"), reason
    assert texts(pg, "doc-6-bomb") == []
    assert "still reading" in texts(pg, "doc-6-after")[0][0]


def test_oversized_object_is_skipped_without_download(world: World, pg):
    world.set_env(FUNCTION, "MAX_OBJECT_BYTES", "100")
    key = put(world, "doc-7", b"x" * 101, "1.txt")
    run_calls = len(world.enforcer.calls)
    assert extract(world, key)["outcome"] == "skipped"
    assert "MAX_OBJECT_BYTES" in status(pg, "doc-7")[1]
    assert "s3:GetObject" not in [c.operation for c in world.enforcer.calls[run_calls:]]  # HeadObject only


def test_too_many_pages_is_skipped(world: World, pg):
    world.set_env(FUNCTION, "MAX_PAGES", "1")
    key = put(world, "doc-8", make_pdf(["a", "b"]))
    assert extract(world, key)["outcome"] == "skipped"
    assert "LimitExceeded" in status(pg, "doc-8")[1]


def test_deleted_object_is_recorded_and_succeeds(world: World, pg):
    result = extract(world, f"{PREFIX}/doc-9/1.pdf")
    assert result["outcome"] == "skipped"
    assert status(pg, "doc-9") == ("skipped", "object no longer exists (deleted before extraction)")


def test_invalid_limit_names_the_variable(world: World):
    world.set_env(FUNCTION, "MAX_PAGES", "many")
    key = put(world, "doc-10", make_pdf(["a"]))
    with pytest.raises(ConfigError, match="MAX_PAGES"):
        extract(world, key)


# ---------------------------------------------------------------------------------------------------------------------
# Event shapes


def test_temp_files_and_part_keys_are_not_delivered_and_ignored_if_they_were(world: World, pg):
    """The recorded rule excludes them; the handler ignores them too, without touching the database."""
    for key in ("temp_files/upload.pdf", "docx-parts/0123abcd"):
        with pytest.raises(UnwiredEvent):
            extract(world, key)
        assert world.run(FUNCTION, object_created(world, key))["outcome"] == "ignored"
    assert extract(world, "a/b/c/d.pdf")["outcome"] == "ignored"  # delivered: not a document key
    assert not [c for c in world.enforcer.calls if c.operation.startswith("secretsmanager:")]
    assert pg.query('SELECT count(*) FROM "DocumentTextExtraction"') == [[0]]


def test_eventbridge_event_for_another_bucket_raises(world: World):
    event = object_created(world, f"{PREFIX}/d/1.pdf", bucket="elsewhere")
    with pytest.raises(UnwiredEvent):
        world.invoke(FUNCTION, event)
    with pytest.raises(ValueError, match="not the document bucket"):
        world.run(FUNCTION, event)


def test_unknown_event_shape_raises(world: World):
    with pytest.raises(UnwiredEvent):
        world.invoke(FUNCTION, {"hello": "world"})
    with pytest.raises(ValueError, match="unrecognised event"):
        world.run(FUNCTION, {"hello": "world"})


def _dead_letters(world: World) -> dict[str, str]:
    """Message id -> body of what the extractor queue's recorded redrive moved to its DLQ."""
    return {m["MessageId"]: m["Body"] for m in world.messages(world.dlq_url(QUEUE))}


def test_queue_messages_fail_only_when_bad_and_end_in_the_dlq(world: World, pg):
    documents = world.bucket("documents")
    key = put(world, "doc-11", make_pdf(["from the queue"]))
    good = world.send_message(QUEUE, "doc-11", {"key": key, "bucket": documents})
    bad = {
        world.send_message(QUEUE, "doc-11", {"bucket": documents}),  # no key
        world.send_message(QUEUE, "not json, not an id", {"key": key, "bucket": documents}),  # body mismatch
        world.send_message(QUEUE, "doc-11", {"key": "not-a-document-key", "bucket": documents}),  # wrong key shape
        world.send_message(QUEUE, "doc-11", {"key": key, "bucket": "another-bucket"}),  # wrong bucket
        world.send_message(QUEUE, " ", {"key": key, "bucket": documents}),  # empty body
    }

    runs = world.settle()

    assert set(_dead_letters(world)) == bad and good not in bad
    failed = {f["itemIdentifier"] for r in runs if r.result for f in r.result["batchItemFailures"]}
    assert failed == bad
    assert "from the queue" in texts(pg, "doc-11")[0][0]
    assert world.denied_calls() == []


def test_queue_message_fails_when_the_database_is_down(world: World, pg):
    secret = world.env(FUNCTION)["DATABASE_SECRET_ARN"]
    world.client("secretsmanager").put_secret_value(
        SecretId=secret, SecretString="postgresql://u:p@127.0.0.1:1/macrodb?sslmode=disable")
    key = put(world, "doc-12", make_pdf(["retry me"]))
    message = world.send_message(QUEUE, "doc-12", {"key": key, "bucket": world.bucket("documents")})
    run = world.poll(QUEUE)
    assert run is not None and run.result == {"batchItemFailures": [{"itemIdentifier": message}]}
    assert search_messages(world) == []


def test_poison_message_lands_in_the_dlq(world: World):
    """The recorded redrive: after the recorded max receive count the message is in the recorded DLQ."""
    message = world.send_message(QUEUE, "doc-13", {"bucket": world.bucket("documents")})
    runs = world.settle()
    redrive = json.loads(world.sqs.get_queue_attributes(
        QueueUrl=world.queue_url(QUEUE), AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert len(runs) == int(redrive["maxReceiveCount"])
    assert _dead_letters(world) == {message: "doc-13"}


def test_plain_eventbridge_key_is_accepted_too(world: World, pg):
    """If EventBridge delivers the key undecoded, the decoded form misses and the raw form is read."""
    key = put(world, "doc-14", b"raw key text", "1.txt")
    event = object_created(world, key)
    event["detail"]["object"]["key"] = key  # %7C and %40 would decode to | and @: no such object
    assert world.invoke(FUNCTION, event)["outcome"] == "extracted"
    assert "raw key text" in texts(pg, "doc-14")[0][0]
