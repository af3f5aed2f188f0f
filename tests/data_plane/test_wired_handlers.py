"""One test per function, on each stack's recorded wiring (``world``): the trigger the program records delivers the
event, the handler runs with its recorded environment and role, and its writes land where the records say.

Together with ``test_pipeline.py`` and ``test_redrive.py`` these are the tests the mutation suite
(``test_wiring_mutations.py``) replays against records changed one thing at a time.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tools.harness import seed
from tools.harness.world import UnwiredEvent, World

USER = "macro|dana+docs@example.com"
OWNER_PREFIX = quote(USER, safe="")


def _document(pg, doc_id: str, *, deleted: str | None = None, file_type: str = "txt") -> None:
    deleted_at = f"now() - interval '{deleted}'" if deleted else "NULL"
    pg.query(f'INSERT INTO "Document" (id, owner, name, "fileType", "deletedAt") VALUES (%s, %s, %s, %s, {deleted_at})',
             doc_id, USER, doc_id, file_type)


def test_text_extractor_indexes_a_new_document_and_ignores_temp_files(world: World, pg):
    _document(pg, "doc-1")
    world.put_object("documents", f"{OWNER_PREFIX}/doc-1/1.txt", b"Wired extraction works")
    world.put_object("documents", f"temp_files/{OWNER_PREFIX}/doc-1/1.txt", b"not for the extractor")
    runs = world.settle()

    assert [(r.function, r.via.startswith("EventBridge rule")) for r in runs] == [("text_extractor", True)]
    [(content,)] = pg.query('SELECT content FROM "DocumentText" WHERE "documentId" = %s', "doc-1")
    assert "Wired extraction works" in content
    [event] = [json.loads(m["Body"]) for m in world.messages(world.queue_url("search-event"))]
    assert event["ExtractDocumentText"]["document_id"] == "doc-1"
    assert event["ExtractDocumentText"]["user_id"] == USER


def test_docx_unzip_runs_only_for_docx_keys(world: World, pg):
    from tests.data_plane import documents

    _document(pg, "d1", file_type="docx")
    world.put_object("docx-upload", f"{OWNER_PREFIX}/d1/3.pdf", b"%PDF-1.7 not a docx")  # the filter is .docx
    assert world.settle() == []
    world.put_object("docx-upload", f"{OWNER_PREFIX}/d1/3.docx", documents.make_docx(documents.para(documents.t("x"))))
    [run] = [r for r in world.settle() if r.function == "docx_unzip"]
    assert [r["status"] for r in run.result["results"]] == ["processed"]
    assert len(world.messages(world.queue_url("convert-service"))) == 1
    with pytest.raises(UnwiredEvent, match="no notification"):  # a .pdf record is never delivered to it
        world.invoke("docx_unzip", {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
            "bucket": {"name": world.bucket("docx-upload")}, "object": {"key": f"{OWNER_PREFIX}/d1/3.pdf"}}}]})


def test_bulk_upload_consumes_only_extract_uploads(world: World, pg):
    import io
    import zipfile

    from bulk_upload import handler as bulk

    rid = seed.bulk_upload_request(world, USER)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Upload/a.txt", "alpha")
    world.put_object("bulk-upload-staging", f"other/{rid}", archive.getvalue())  # outside the rule's prefix
    assert world.settle() == []
    world.put_object("bulk-upload-staging", f"extract/{rid}", archive.getvalue())
    runs = world.settle()
    assert [r.function for r in runs] == ["bulk_upload", "text_extractor"]
    with world.acting_as("bulk_upload"):
        assert bulk.load_request(world.table("bulk-upload"), rid)["status"] == "completed"


def test_delete_chat_consumes_its_queue(world: World, pg):
    pg.query('INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES (%s, %s, now())', "c1", "u")
    world.send_message("delete-chat-handler", "c1", {"chat_id": "c1"})
    [run] = world.settle()
    assert run.function == "delete_chat" and run.result == {"batchItemFailures": []}
    assert pg.query('SELECT count(*) FROM "Chat"') == [[0]]


def test_delete_document_removes_every_version(world: World, pg):
    _document(pg, "d1", deleted="40 days")
    for body in (b"v1", b"v2"):
        world.put_object("documents", f"{OWNER_PREFIX}/d1/1.txt", body)
    world.settle()  # the extractor sees the uploads first
    world.send_message("delete-document-handler", "d1", {"document_id": "d1", "user_id": USER})
    runs = world.settle()
    assert [r.function for r in runs] == ["delete_document"] and runs[0].result == {"batchItemFailures": []}
    page = world.s3.list_object_versions(Bucket=world.bucket("documents"), Prefix=f"{OWNER_PREFIX}/d1/")
    assert page.get("Versions", []) == [] and page.get("DeleteMarkers", []) == []
    assert pg.query('SELECT count(*) FROM "Document"') == [[0]]


def test_deleted_item_poller_dispatches_to_the_delete_workers(world: World, pg):
    pg.query("""INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES ('c1', 'u', now() - interval '40 days')""")
    _document(pg, "d1", deleted="40 days")
    runs = world.schedule("deleted-item-poller")
    assert [r.function for r in runs][0] == "deleted_item_poller" and runs[0].via.startswith("schedule ")
    assert sorted(r.function for r in runs[1:]) == ["delete_chat", "delete_document"]  # through their queues
    assert pg.query('SELECT count(*) FROM "Chat"') == [[0]]
    assert pg.query('SELECT count(*) FROM "Document"') == [[0]]
    removals = [m["Body"] for m in world.messages(world.queue_url("search-event"))]
    assert any("d1" in body for body in removals)


def test_email_suppression_blocks_a_permanent_bounce_from_its_topic(world: World, pg):
    bounce = {"notificationType": "Bounce", "mail": {"messageId": "m"}, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": "Gone@Example.com", "status": "5.1.1"}]}}
    [run] = world.publish("ses-bounces", json.dumps(bounce))
    assert run.function == "email_suppression" and run.via.startswith("SNS topic")
    assert pg.query('SELECT email FROM "BlockedEmail"') == [["gone@example.com"]]


def test_user_link_cleanup_runs_on_its_schedule(world: World, pg):
    pg.query("INSERT INTO in_progress_user_link (macro_user_id, created_at) VALUES ('u', now() - interval '2 days')")
    [run] = world.schedule("user-link-cleanup")
    assert run.result["in_progress_user_link"] == 1
    assert pg.query("SELECT count(*) FROM in_progress_user_link") == [[0]]


def test_email_attachment_cleanup_purges_on_its_schedule(world: World, pg):
    pg.query('INSERT INTO "EmailMessage" (id, "deletedAt") VALUES (%s, now())', "gone")
    pg.query('INSERT INTO "EmailAttachment" (id, "messageId", "s3Key") VALUES (%s, %s, %s)', "a1", "gone", "att/1")
    world.put_object("email-attachments", "att/1", b"x")
    world.settle()
    [run] = world.schedule("email-attachment-cleanup")
    assert run.result["purged"] == 1
    assert world.s3.list_objects_v2(Bucket=world.bucket("email-attachments")).get("KeyCount") == 0


def test_only_prod_records_credentials_rotation(world: World):
    """dev turns rotation off (``secrets.rotateDatabaseCredentials``); the rotation itself is tested on prod's
    wiring in ``test_db_credentials_rotation.py``."""
    rotating = sorted(f.record.name for f in world.functions.values() if f.module == "db_credentials_rotation")
    assert bool(rotating) == (world.stack == "prod")
    assert sorted(world.rotations.values()) == sorted(world.function(n).arn for n in rotating)


def test_delete_document_purges_the_replica_in_its_region(world: World, pg):
    """The replica bucket lives in the DR region (recorded ``region``); the function's recorded grants must let it
    delete every version there too. moto does not replicate, so the copies are written as replication would."""
    environment = world.env("delete_document")
    replica, region = environment["REPLICA_BUCKET"], environment["REPLICA_REGION"]
    _document(pg, "d1", deleted="40 days")
    key = f"{OWNER_PREFIX}/d1/1.txt"
    replica_s3 = world.client("s3", region)
    for body in (b"v1", b"v2"):
        world.put_object("documents", key, body)
        replica_s3.put_object(Bucket=replica, Key=key, Body=body)
    world.settle()
    world.send_message("delete-document-handler", "d1", {"document_id": "d1", "user_id": USER})
    run = world.poll("delete-document-handler")
    assert run is not None and run.result == {"batchItemFailures": []}
    for client, bucket in ((world.s3, world.bucket("documents")), (replica_s3, replica)):
        page = client.list_object_versions(Bucket=bucket, Prefix=f"{OWNER_PREFIX}/d1/")
        assert page.get("Versions", []) == [] and page.get("DeleteMarkers", []) == [], bucket
    assert {n.resource.split("/", 1)[0] for c in run.calls for n in c.needs if n.action == "s3:DeleteObjectVersion"} \
        == {f"arn:aws:s3:::{world.bucket('documents')}", f"arn:aws:s3:::{replica}"}
