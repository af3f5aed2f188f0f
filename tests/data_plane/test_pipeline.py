"""Handlers chained as the deployed triggers chain them (moto cannot invoke Lambdas, so the test is the trigger).

(a) a DOCX uploaded to the DOCX upload bucket -> docx_unzip -> parts stored + exactly one conversion job;
(b) a zip uploaded to staging -> bulk_upload -> documents stored -> text extractor -> "DocumentText" rows and a
    search event; the zip's DOCX also goes through (a).
"""

from __future__ import annotations

import importlib.util
import io
import json
import uuid
import zipfile
from urllib.parse import quote, quote_plus

import pytest
from bulk_upload import handler as bulk
from core import aws
from docx_unzip.handler import PARTS_PREFIX
from docx_unzip.handler import handler as docx_unzip

from tests.data_plane import documents

USER = "macro|carol@example.com"
STAGING = "bulk-upload-staging-test"
DOC_BUCKET = "doc-storage-test"
DOCX_BUCKET = "docx-upload-test"
TABLE = "bulk-upload-test"



def make_docx(text: str) -> bytes:
    return documents.make_docx(documents.para(documents.t(text)))


def make_pdf(text: str) -> bytes:
    return documents.make_pdf([text])


@pytest.fixture
def env(database_secret, make_bucket, make_queue, monkeypatch):
    make_bucket(STAGING)
    make_bucket(DOC_BUCKET, versioned=True)
    make_bucket(DOCX_BUCKET)
    convert = make_queue("convert-service-queue-test", max_receive=2)
    search = make_queue("search-event-queue-test", max_receive=2)
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    )
    for name in ("MAX_ARCHIVE_ENTRIES", "MAX_ENTRY_BYTES", "MAX_TOTAL_BYTES", "MAX_COMPRESSION_RATIO"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "BULK_UPLOAD_TABLE": TABLE,
        "STAGING_BUCKET": STAGING,
        "DOCUMENT_BUCKET": DOC_BUCKET,
        "DOCX_UPLOAD_BUCKET": DOCX_BUCKET,
        "CONVERT_QUEUE_URL": convert,
        "SEARCH_QUEUE_URL": search,
    }.items():
        monkeypatch.setenv(name, value)
    return {"convert": convert, "search": search}


def drain(queue: str) -> list[dict]:
    got = aws.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return got.get("Messages", [])


def s3_notification(bucket: str, key: str, etag: str) -> dict:
    obj = {"key": quote_plus(key), "eTag": etag.strip('"'), "size": 1}
    return {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}, "object": obj}}]}


def object_created(bucket: str, key: str) -> dict:
    """The EventBridge event S3 emits for a new object (what the extractor's rule and the bulk queue receive)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 1, "etag": "e", "sequencer": "1"},
            "request-id": "r",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def unzip_new_docx_uploads(lambda_context) -> list[dict]:
    """Play the DOCX bucket's S3 notification for every object in it."""
    results = []
    for obj in aws.client("s3").list_objects_v2(Bucket=DOCX_BUCKET).get("Contents", []):
        event = s3_notification(DOCX_BUCKET, obj["Key"], obj["ETag"])
        results += docx_unzip(event, lambda_context)["results"]
    return results


def test_docx_upload_to_parts_and_one_conversion_job(env, pg, lambda_context):
    pg.query('INSERT INTO "Document" (id, owner, name, "fileType") VALUES (%s, %s, %s, %s)', "d1", USER, "x", "docx")
    key = f"{quote(USER, safe='')}/d1/7.docx"
    upload = make_docx("Quarterly report")
    aws.client("s3").put_object(Bucket=DOCX_BUCKET, Key=key, Body=upload)

    results = unzip_new_docx_uploads(lambda_context)
    results += unzip_new_docx_uploads(lambda_context)  # S3 delivers at least once
    assert [r["status"] for r in results] == ["processed", "processed"]

    parts = aws.client("s3").list_objects_v2(Bucket=DOC_BUCKET, Prefix=PARTS_PREFIX)["Contents"]
    shas = sorted(row[0] for row in pg.query('SELECT sha FROM "BomPart" WHERE "documentBomId" = 7'))
    assert sorted(p["Key"].removeprefix(PARTS_PREFIX) for p in parts) == shas
    assert len(shas) == len(zipfile.ZipFile(io.BytesIO(upload)).namelist())  # one row per part, none twice
    [job] = drain(env["convert"])
    body = json.loads(job["Body"])
    assert body["from_key"] == key and body["to_key"] == f"{quote(USER, safe='')}/d1/converted.pdf"
    assert pg.query('SELECT uploaded FROM "Document" WHERE id = %s', "d1") == [[True]]


def test_zip_to_documents_to_text(env, pg, lambda_context):
    if importlib.util.find_spec("text_extractor.handler") is None:
        pytest.skip("lambdas/text_extractor/handler.py (the extract helper's) does not exist yet")
    from text_extractor.handler import handler as text_extractor

    rid = str(uuid.uuid4())
    item = {"PK": f"REQUEST#{rid}", "SK": "META", "request_id": rid, "user_id": USER, "key": f"extract/{rid}"}
    aws.client("dynamodb").put_item(TableName=TABLE, Item=bulk._item({**item, "status": "uploaded"}))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Upload/notes.txt", "Pipeline plain text works")
        zf.writestr("Upload/paper.pdf", make_pdf("Pipeline PDF text works"))
        zf.writestr("Upload/letter.docx", make_docx("Pipeline docx text works"))
        zf.writestr("Upload/.DS_Store", b"junk")
    aws.client("s3").put_object(Bucket=STAGING, Key=f"extract/{rid}", Body=archive.getvalue())

    # EventBridge rule -> bulk upload queue -> bulk_upload
    sqs_event = {
        "Records": [
            {
                "messageId": "m1",
                "receiptHandle": "r",
                "body": json.dumps(object_created(STAGING, f"extract/{rid}")),
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
        ]
    }
    assert bulk.handler(sqs_event, lambda_context) == {"batchItemFailures": []}
    assert bulk.load_request(TABLE, rid)["status"] == "completed"

    # document bucket -> EventBridge rule -> text extractor, for every stored document
    stored = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=DOC_BUCKET).get("Contents", [])]
    assert len(stored) == 2
    for key in stored:
        text_extractor(object_created(DOC_BUCKET, key), lambda_context)
    texts = dict(pg.query('SELECT d.name, t.content FROM "DocumentText" t JOIN "Document" d ON d.id = t."documentId"'))
    assert "Pipeline plain text works" in texts["notes"]
    assert "Pipeline PDF text works" in texts["paper"]
    search_bodies = " ".join(m["Body"] for m in drain(env["search"]) + drain(env["search"]))
    for doc_id in (key.split("/")[1] for key in stored):
        assert doc_id in search_bodies

    # the DOCX went to the upload bucket: the unzip path takes it from there
    [result] = unzip_new_docx_uploads(lambda_context)
    assert result["status"] == "processed" and len(drain(env["convert"])) == 1
