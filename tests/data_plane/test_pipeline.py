"""Handlers chained by the program's own triggers, for both stacks (``world``: wired from the records).

(a) a DOCX uploaded to the DOCX upload bucket -> its S3 notification (recorded filter) -> docx_unzip -> parts stored +
    exactly one conversion job;
(b) a zip uploaded to staging -> the recorded EventBridge rule -> the bulk-upload queue -> its event source mapping ->
    bulk_upload -> documents stored -> the documents' rule -> text extractor -> "DocumentText" rows and a search event;
    the zip's DOCX also goes through (a).
Nothing here names a bucket, queue, table or variable the program declares: the world resolves them from the records.
"""

from __future__ import annotations

import io
import json
import zipfile
from urllib.parse import quote

from bulk_upload import handler as bulk
from docx_unzip.handler import PARTS_PREFIX

from tests.data_plane import documents
from tools.harness import seed
from tools.harness.world import World

USER = "macro|carol@example.com"


def make_docx(text: str) -> bytes:
    return documents.make_docx(documents.para(documents.t(text)))


def make_pdf(text: str) -> bytes:
    return documents.make_pdf([text])


def ran(world: World, module: str) -> list[str]:
    return [i.outcome for i in world.timeline if i.function == module]


def test_docx_upload_to_parts_and_one_conversion_job(world: World, pg):
    pg.query('INSERT INTO "Document" (id, owner, name, "fileType") VALUES (%s, %s, %s, %s)', "d1", USER, "x", "docx")
    key = f"{quote(USER, safe='')}/d1/7.docx"
    upload = make_docx("Quarterly report")
    world.put_object("docx-upload", key, upload)
    world.settle()
    world.deliver_s3("docx-upload", key)  # S3 delivers at least once
    assert ran(world, "docx_unzip") == ["ok", "ok"]
    assert [r["status"] for i in world.timeline if i.function == "docx_unzip" for r in i.result["results"]] == [
        "processed", "processed"]

    documents_bucket = world.bucket("documents")
    parts = world.s3.list_objects_v2(Bucket=documents_bucket, Prefix=PARTS_PREFIX)["Contents"]
    shas = sorted(row[0] for row in pg.query('SELECT sha FROM "BomPart" WHERE "documentBomId" = 7'))
    assert sorted(p["Key"].removeprefix(PARTS_PREFIX) for p in parts) == shas
    assert len(shas) == len(zipfile.ZipFile(io.BytesIO(upload)).namelist())  # one row per part, none twice
    [job] = world.messages(world.queue_url("convert-service"))
    body = json.loads(job["Body"])
    assert body["from_key"] == key and body["to_key"] == f"{quote(USER, safe='')}/d1/converted.pdf"
    assert pg.query('SELECT uploaded FROM "Document" WHERE id = %s', "d1") == [[True]]
    assert world.denied_calls() == []


def test_zip_to_documents_to_text(world: World, pg):
    rid = seed.bulk_upload_request(world, USER)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Upload/notes.txt", "Pipeline plain text works")
        zf.writestr("Upload/paper.pdf", make_pdf("Pipeline PDF text works"))
        zf.writestr("Upload/letter.docx", make_docx("Pipeline docx text works"))
        zf.writestr("Upload/.DS_Store", b"junk")
    world.put_object("bulk-upload-staging", f"extract/{rid}", archive.getvalue())
    world.settle()

    [bulk_run] = [i for i in world.timeline if i.function == "bulk_upload"]
    assert bulk_run.via.startswith("SQS ") and bulk_run.result == {"batchItemFailures": []}
    with world.acting_as("bulk_upload"):
        assert bulk.load_request(world.table("bulk-upload"), rid)["status"] == "completed"

    stored = [o["Key"] for o in world.s3.list_objects_v2(Bucket=world.bucket("documents")).get("Contents", [])]
    documents_stored = [k for k in stored if not k.startswith(PARTS_PREFIX)]
    assert len(documents_stored) == 2
    texts = dict(pg.query('SELECT d.name, t.content FROM "DocumentText" t JOIN "Document" d ON d.id = t."documentId"'))
    assert "Pipeline plain text works" in texts["notes"]
    assert "Pipeline PDF text works" in texts["paper"]
    search_bodies = " ".join(m["Body"] for m in world.messages(world.queue_url("search-event")))
    for doc_id in (key.split("/")[1] for key in documents_stored):
        assert doc_id in search_bodies
    # the DOCX went to the upload bucket: its notification ran the unzip path, which queued one conversion
    [unzip] = [i for i in world.timeline if i.function == "docx_unzip"]
    assert [r["status"] for r in unzip.result["results"]] == ["processed"]
    assert len(world.messages(world.queue_url("convert-service"))) == 1
    assert world.denied_calls() == []
