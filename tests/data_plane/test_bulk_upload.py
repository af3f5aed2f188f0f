"""bulk_upload on each stack's recorded wiring (``world``: moto and a real PostgreSQL): the staging, document and
DOCX upload buckets, the request table with its recorded keys and index, the bulk-upload queue with its mapping and
redrive, and the recorded limits (lowered here through ``set_env``). Queue records go through ``invoke``: the recorded
mapping must deliver from that queue, in its batch size."""

from __future__ import annotations

import functools
import io
import json
import random
import uuid
import zipfile
from datetime import datetime
from urllib.parse import quote

import pytest
from bulk_upload import handler as bulk
from core import aws

from tests.data_plane.documents import directory_bomb, rename_member, symlink_member
from tools.harness import seed
from tools.harness.world import World

FUNCTION = "bulk_upload"
QUEUE = "bulk-upload"
USER = "macro|bob@example.com"


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tiny_docx() -> bytes:
    return make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document xmlns:w='urn:w'/>"})


GOOD = {
    "Trip/a.pdf": b"%PDF-1.4 not really",
    "Trip/notes/b.txt": b"hello notes",
    "Trip/notes/deep/c.docx": tiny_docx(),
    "Trip/__MACOSX/._a.pdf": b"junk",
    "__MACOSX/Trip/._b.txt": b"junk",
    "Trip/.DS_Store": b"junk",
    "Trip/notes/Thumbs.db": b"junk",
    "Trip/.hidden/x.txt": b"junk",
}


LIMITS = {
    "MAX_ARCHIVE_ENTRIES": "50",
    "MAX_ENTRY_BYTES": str(2 * 1024 * 1024),  # above safe_zip.RATIO_CHECK_MIN_BYTES, so the zip bomb is checked
    "MAX_TOTAL_BYTES": str(512 * 1024),
    "MAX_COMPRESSION_RATIO": "100",
    "MAX_NESTING_DEPTH": "4",
    "MAX_OBJECT_BYTES": str(2 * 1024 * 1024),  # the 20,000-entry zip is 1.9 MB
}


@pytest.fixture
def env(world: World) -> World:
    """The world with the recorded limits lowered so the hostile cases stay small."""
    for name, value in LIMITS.items():
        world.set_env(FUNCTION, name, value)
    return world


def new_request(world: World, data: bytes | None, request_id: str | None = None) -> str:
    """A request item as the upload API writes it and, unless ``data`` is None, its zip in the staging bucket. The
    recorded rule must put the staged zip on the bulk-upload queue; that message is taken off (tests deliver their
    own bodies)."""
    rid = seed.bulk_upload_request(world, USER, request_id)
    if data is not None:
        key = f"extract/{rid}"
        world.put_object("bulk-upload-staging", key, data)
        delivered = [json.loads(m["Body"])["detail"] for m in world.messages(world.queue_url(QUEUE))]
        assert [d["object"]["key"] for d in delivered] == [key], "the recorded rule did not queue the staged zip"
    return rid


def eventbridge_body(world: World, rid: str, bucket: str | None = None) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "region": "us-east-1",
            "detail": {"bucket": {"name": bucket or world.bucket("bulk-upload-staging")},
                       "object": {"key": f"extract/{rid}", "size": 1}},
        }
    )


def sqs_event(world: World, body: str, receive_count: int = 1) -> dict:
    queue_arn = world.sqs.get_queue_attributes(QueueUrl=world.queue_url(QUEUE),
                                               AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {
        "Records": [
            {
                "messageId": f"m-{uuid.uuid4()}",
                "receiptHandle": "r",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def run(world: World, *bodies: str, receive_count: int = 1) -> list[str]:
    """Each body as the recorded mapping delivers it; ``m-<i>`` for every body whose record was reported failed."""
    failed = []
    for i, body in enumerate(bodies):
        result = world.invoke(FUNCTION, sqs_event(world, body, receive_count))
        failed += [f"m-{i}" for _ in result["batchItemFailures"]]
    return failed


def meta(world: World, rid: str) -> dict:
    with world.acting_as(FUNCTION):
        return bulk.load_request(world.table("bulk-upload"), rid)


def doc_items(world: World, rid: str) -> dict[str, dict]:
    got = world.client("dynamodb").query(
        TableName=world.table("bulk-upload"),
        KeyConditionExpression="PK = :pk AND begins_with(SK, :d)",
        ExpressionAttributeValues=bulk._item({":pk": f"REQUEST#{rid}", ":d": "DOCUMENT#"}),
    )
    return {i["path"]: i for i in map(bulk._plain, got["Items"])}


def versions(world: World, bucket: str) -> list[str]:
    listed = world.s3.list_object_versions(Bucket=world.bucket(bucket))
    return sorted(v["Key"] for v in listed.get("Versions", []))


def max_receive_count(world: World) -> int:
    """The function's MAX_RECEIVE_COUNT, which must be its queue's recorded redrive count."""
    redrive = json.loads(world.sqs.get_queue_attributes(
        QueueUrl=world.queue_url(QUEUE), AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert world.env(FUNCTION)["MAX_RECEIVE_COUNT"] == str(redrive["maxReceiveCount"])
    return int(redrive["maxReceiveCount"])


def test_normal_path(env: World, pg):
    rid = new_request(env, make_zip(GOOD))
    assert run(env, eventbridge_body(env, rid)) == []

    request = meta(env, rid)
    assert request["status"] == "completed" and request["error_message"] is None
    datetime.fromisoformat(request["completed_at"])  # RFC 3339
    items = doc_items(env, rid)
    assert sorted(items) == ["a.pdf", "notes/b.txt", "notes/deep/c.docx"]
    assert {i["status"] for i in items.values()} == {"completed"}

    user = quote(USER, safe="")
    ids = {path: item["document_id"] for path, item in items.items()}
    assert versions(env, "documents") == sorted([f"{user}/{ids['a.pdf']}/1.pdf", f"{user}/{ids['notes/b.txt']}/1.txt"])
    [[bom]] = pg.query('SELECT id FROM "DocumentBom" WHERE "documentId" = %s', ids["notes/deep/c.docx"])
    assert versions(env, "docx-upload") == [f"{user}/{ids['notes/deep/c.docx']}/{bom}.docx"]
    body = env.s3.get_object(Bucket=env.bucket("documents"), Key=f"{user}/{ids['notes/b.txt']}/1.txt")["Body"].read()
    assert body == b"hello notes"

    projects = {row[0]: row for row in pg.query('SELECT name, id, "parentId", "userId" FROM "Project"')}
    assert set(projects) == {"Folder Upload", "notes", "deep"}
    assert projects["Folder Upload"][1] == request["root_project_id"] and projects["Folder Upload"][2] is None
    assert projects["notes"][2] == projects["Folder Upload"][1] and projects["deep"][2] == projects["notes"][1]
    docs = {
        row[0]: row[1:] for row in pg.query('SELECT name, uploaded, "projectId", owner, "fileType" FROM "Document"')
    }
    assert docs == {
        "a": [True, projects["Folder Upload"][1], USER, "pdf"],
        "b": [True, projects["notes"][1], USER, "txt"],
        "c": [False, projects["deep"][1], USER, "docx"],  # the unzip path marks it uploaded
    }


def test_extract_zip_message_and_redelivery(env: World, pg):
    rid = new_request(env, make_zip(GOOD))
    body = json.dumps(
        {"ExtractZip": {"upload_request_id": rid, "key": f"extract/{rid}", "user_id": USER, "name": "Mine"}}
    )
    assert run(env, body) == []
    state = (versions(env, "documents"), versions(env, "docx-upload"), pg.query('SELECT count(*) FROM "Document"'))
    first_ids = {p: i["document_id"] for p, i in doc_items(env, rid).items()}

    assert run(env, body) == []  # duplicate after completion: skipped
    # A crash after the uploads: the request is still "processing" and one document still "pending".
    with env.acting_as(FUNCTION):
        bulk.update_request(env.table("bulk-upload"), rid, status="processing")
        bulk.batch_put(env.table("bulk-upload"), [{**doc_items(env, rid)["a.pdf"], "status": "pending"}])
    assert run(env, body) == []

    assert meta(env, rid)["status"] == "completed"
    assert (versions(env, "documents"), versions(env, "docx-upload"),
            pg.query('SELECT count(*) FROM "Document"')) == state
    assert {p: i["document_id"] for p, i in doc_items(env, rid).items()} == first_ids
    assert pg.query('SELECT count(*) FROM "DocumentBom"') == [[1]]
    assert pg.query('SELECT name FROM "Project" WHERE "parentId" IS NULL') == [["Mine"]]


def test_partially_completed(env: World, pg):
    entries = {"ok.txt": b"fine", "inner.zip": make_zip({"x.txt": b"x"}), "README": b"no ext", "empty.md": b""}
    rid = new_request(env, make_zip(entries))
    assert run(env, eventbridge_body(env, rid)) == []
    request = meta(env, rid)
    assert request["status"] == "partially_completed"
    assert "3 of 4 files failed" in request["error_message"]
    for text in ("inner.zip: nested archive", "README: file has no extension", "empty.md: file is empty"):
        assert text in request["error_message"]
    statuses = {p: (i["status"], i["error_message"]) for p, i in doc_items(env, rid).items()}
    assert statuses["ok.txt"] == ("completed", None) and statuses["inner.zip"][0] == "failed"
    assert len(versions(env, "documents")) == 1


def test_an_extension_too_long_for_an_s3_key_fails_that_file_only(env: World, pg):
    """S3 refuses keys over 1,024 bytes (moto does not): the file fails with a reason instead of retrying forever."""
    long_name = "notes." + "x" * 1000
    rid = new_request(env, make_zip({"ok.txt": b"fine", long_name: b"text"}))
    assert run(env, eventbridge_body(env, rid)) == []
    request = meta(env, rid)
    assert request["status"] == "partially_completed"
    assert "file extension is too long: its storage key would exceed 1024 bytes" in request["error_message"]
    assert [len(key.encode()) <= 1024 for key in versions(env, "documents")] == [True]


@functools.cache
def failing_cases() -> dict[str, tuple[bytes | None, str]]:
    """Archive -> the reason its request fails (built on first use, not at collection), against the lowered LIMITS."""
    noise = random.Random(1).randbytes(3_000_000)
    # Four letters: deflate shrinks it ~4x, far below the ratio limit; 3 x 192 KiB exceeds MAX_TOTAL_BYTES (512 KiB).
    dna = noise.translate(bytes(b"ACGT"[i % 4] for i in range(256)))
    return {
        "zip bomb": (make_zip({"bomb.txt": b"\0" * (3 * 512 * 1024)}), "compression ratio"),
        "huge total": (make_zip({f"{i}.txt": dna[i * 196_608 : (i + 1) * 196_608] for i in range(3)}), "total uncomp"),
        "zip slip": (make_zip({"../../etc/cron.d/x.txt": b"x"}), "zip slip"),
        "too deep": (make_zip({"a/b/c/d/e/f.txt": b"x"}), "nesting limit 4"),
        "not a zip": (b"plain text, not a zip", "not a valid zip"),
        "only junk": (make_zip({"__MACOSX/._x": b"j", ".DS_Store": b"j"}), "no documents"),
        "missing zip": (None, "does not exist"),
        "oversized": (noise[: 5 * 512 * 1024], "MAX_OBJECT_BYTES"),
        # reference/hostile-inputs.md and issue 11's archive list (MAX_ARCHIVE_ENTRIES is 50 here)
        "central-directory bomb": (directory_bomb(400, declared=2), "more than 50 entries"),
        "tens of thousands of entries": (directory_bomb(20_000), "20000 entries"),
        "absolute name": (make_zip({"/etc/x.txt": b"x"}), "absolute path"),
        "symlink": (None, "symbolic link"),
        "NUL in a name": (rename_member(make_zip({"aXb.txt": b"x"}), b"aXb", b"a\x00b"), "NUL"),
        "invalid UTF-8 name": (
            rename_member(make_zip({"ab.txt": b"x"}), b"ab.txt", b"\xff\xfe.txt", utf8_flag=True),
            "UTF-8",
        ),
        "3000-character name": (make_zip({"d/" + "n" * 3000 + ".txt": b"x"}), "exceeds the limit 1024"),
        "duplicate names": (None, "duplicate path"),
    }


def _special_zip(case: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if case == "symlink":
            zf.writestr(*symlink_member("link.txt", b"/etc/passwd"))
        else:
            with pytest.warns(UserWarning, match="Duplicate"):
                zf.writestr("a.txt", b"one")
                zf.writestr("a.txt", b"two")
    return buf.getvalue()


def test_failed_requests_record_the_reason(env: World, pg):
    rids = {
        case: new_request(env, _special_zip(case) if case in ("symlink", "duplicate names") else data)
        for case, (data, _) in failing_cases().items()
    }
    assert run(env, *(eventbridge_body(env, rid) for rid in rids.values())) == []
    for case, rid in rids.items():
        request = meta(env, rid)
        assert request["status"] == "failed", case
        assert failing_cases()[case][1] in request["error_message"], (case, request["error_message"])
        assert request["completed_at"], case
    assert versions(env, "documents") == [] and pg.query('SELECT count(*) FROM "Document"') == [[0]]


def test_bad_messages_are_batch_item_failures(env: World):
    good = new_request(env, make_zip({"a.txt": b"a"}))
    bodies = [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"Something": {}}),
        json.dumps({"ExtractZip": {"upload_request_id": "x", "key": "elsewhere/x"}}),
        eventbridge_body(env, str(uuid.uuid4())),  # no such request item
        eventbridge_body(env, good, bucket="another-bucket"),
        eventbridge_body(env, good),
    ]
    assert run(env, *bodies) == [f"m-{i}" for i in range(6)]
    assert meta(env, good)["status"] == "completed"


def test_poison_message_reaches_dlq(env: World):
    """The recorded mapping and redrive: after the recorded max receive count the message is in the recorded DLQ."""
    message = env.send_message(QUEUE, "{broken")
    runs = env.settle()
    assert len(runs) == max_receive_count(env)
    assert {m["MessageId"]: m["Body"] for m in env.messages(env.dlq_url(QUEUE))} == {message: "{broken"}


def test_batch_put_retries_unprocessed_items_and_gives_up(env: World, monkeypatch):
    table = env.table("bulk-upload")
    with env.acting_as(FUNCTION):  # the handler's client, under the function's recorded role
        ddb = aws.client("dynamodb")
        real = ddb.batch_write_item
        calls: list[int] = []

        def flaky(RequestItems):  # noqa: N803 - boto3 keyword
            calls.append(len(RequestItems[table]))
            if len(calls) == 1:  # first call: write only the first item, hand back the rest
                real(RequestItems={table: RequestItems[table][:1]})
                return {"UnprocessedItems": {table: RequestItems[table][1:]}}
            return real(RequestItems=RequestItems)

        monkeypatch.setattr(ddb, "batch_write_item", flaky)
        items = [{"PK": "REQUEST#r", "SK": f"DOCUMENT#{i}", "document_id": str(i), "status": "pending"}
                 for i in range(30)]
        bulk.batch_put(table, items, sleep=lambda s: None)
        assert calls == [25, 24, 5]
        assert env.client("dynamodb").scan(TableName=table)["Count"] == 30

        monkeypatch.setattr(ddb, "batch_write_item", lambda RequestItems: {"UnprocessedItems": RequestItems})  # noqa: N803
        with pytest.raises(RuntimeError, match="unprocessed"):
            bulk.batch_put(table, items[:3], sleep=lambda s: None)


def test_last_receive_with_a_transient_error_fails_the_request_and_dead_letters(env: World, monkeypatch):
    from botocore.exceptions import ClientError

    rid = new_request(env, make_zip({"a.txt": b"a"}))
    with env.acting_as(FUNCTION):
        s3 = aws.client("s3")  # the client the handler's calls go through

    def unavailable(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "GetObject")

    monkeypatch.setattr(s3, "download_file", unavailable)
    body = eventbridge_body(env, rid)
    assert run(env, body, receive_count=max_receive_count(env) - 1) == ["m-0"]
    assert meta(env, rid)["status"] == "processing"  # receives left: the next one may succeed

    assert run(env, body, receive_count=max_receive_count(env)) == ["m-0"]  # still to the DLQ
    request = meta(env, rid)
    assert request["status"] == "failed"
    assert f"dead-lettered after {max_receive_count(env)} attempts" in request["error_message"]
    assert "ServiceUnavailable" in request["error_message"]
    datetime.fromisoformat(request["completed_at"])

    env.set_env(FUNCTION, "MAX_RECEIVE_COUNT", "2")  # the program's setting wins over the default
    other = new_request(env, make_zip({"a.txt": b"a"}))
    assert run(env, eventbridge_body(env, other), receive_count=2) == ["m-0"]
    assert "dead-lettered after 2 attempts" in meta(env, other)["error_message"]

    unknown = str(uuid.uuid4())  # not transient and no request: nothing is written
    assert run(env, eventbridge_body(env, unknown), receive_count=5) == ["m-0"]
    got = env.client("dynamodb").get_item(TableName=env.table("bulk-upload"),
                                          Key=bulk._item({"PK": f"REQUEST#{unknown}", "SK": "META"}))
    assert "Item" not in got


def test_member_whose_stream_outgrows_its_declared_size_fails_alone(env: World, pg):
    """liar.txt declares 100 bytes and inflates to 200 KB: reading stops at 100 (then fails its CRC); others load."""
    data = make_zip({"ok.txt": b"fine", "liar.txt": b"a" * 200_000})
    central = data.rindex(b"PK\x01\x02")  # liar.txt is the last record
    patched = bytearray(data)
    patched[central + 24 : central + 28] = (100).to_bytes(4, "little")
    rid = new_request(env, bytes(patched))
    assert run(env, eventbridge_body(env, rid)) == []
    request = meta(env, rid)
    assert request["status"] == "partially_completed"
    assert "liar.txt: entry 'liar.txt': corrupt data" in request["error_message"]
    assert [key.rsplit("/", 1)[1] for key in versions(env, "documents")] == ["1.txt"]


class ProcessKilled(BaseException):
    """What Lambda does to a process out of memory or time: no except clause, no finally that reaches the table."""


def test_status_does_not_depend_on_the_process_surviving(env: World, pg, monkeypatch):
    def killed(*args, **kwargs):
        raise ProcessKilled

    real_open_checked = bulk.open_checked
    monkeypatch.setattr(bulk, "open_checked", killed)
    rid = new_request(env, make_zip({"a.txt": b"a"}))
    body = eventbridge_body(env, rid)
    with pytest.raises(ProcessKilled):
        run(env, body, receive_count=max_receive_count(env) - 1)
    assert meta(env, rid)["status"] == "processing"  # a receive is left: it will retry

    with pytest.raises(ProcessKilled):
        run(env, body, receive_count=max_receive_count(env))  # the message now goes to the DLQ
    request = meta(env, rid)
    last = max_receive_count(env)
    assert request["status"] == "failed"
    assert f"stopped during its last attempt ({last} of {last})" in request["error_message"]
    datetime.fromisoformat(request["completed_at"])

    monkeypatch.setattr(bulk, "open_checked", real_open_checked)
    survivor = new_request(env, make_zip({"a.txt": b"a"}))  # a last attempt that finishes replaces the placeholder
    assert run(env, eventbridge_body(env, survivor), receive_count=max_receive_count(env)) == []
    assert meta(env, survivor)["status"] == "completed" and meta(env, survivor)["error_message"] is None
