"""docx_unzip on each stack's recorded wiring (``world``: moto and a real PostgreSQL): normal path, redelivery, hostile
files, transient errors. The upload and document buckets, the conversion queue and the limits are the ones the records
give the function; notifications go through ``invoke`` (the recorded notification filter must deliver them)."""

from __future__ import annotations

import functools
import io
import json
import random
import zipfile
from urllib.parse import quote, quote_plus

import pytest
from core.keys import InvalidKey
from docx_unzip.handler import PARTS_PREFIX

from tests.data_plane.documents import directory_bomb, nested_xml, rename_member, symlink_member
from tools.harness.world import UnwiredEvent, World

USER = "macro|alice@example.com"
DOC = "doc-1"
BOM = 41
FUNCTION = "docx_unzip"

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="xml" ContentType="application/xml"/></Types>'
)
RELS = b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'


def document_xml(text: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>'
    ).encode()


def make_docx(text: str = "Hello unzip", extra: dict[str, bytes] | None = None, drop: str | None = None) -> bytes:
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": RELS,
        "word/document.xml": document_xml(text),
        "word/styles.xml": b'<?xml version="1.0"?><w:styles xmlns:w="urn:w"/>',
        **(extra or {}),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            if name != drop:
                zf.writestr(name, data)
    return buf.getvalue()


def key_for(doc: str = DOC, bom: int | str = BOM, user: str = USER, ext: str = "docx") -> str:
    return f"{quote(user, safe='')}/{doc}/{bom}.{ext}"


def s3_event(world: World, key: str, bucket: str | None = None, etag: str = "abc") -> dict:
    # Notification keys are URL-encoded (quote_plus) on top of the object key.
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket or world.bucket("docx-upload")},
                       "object": {"key": quote_plus(key), "eTag": etag, "size": 1}},
            }
        ]
    }


@pytest.fixture
def env(world: World, pg) -> World:
    """The world with the document and its BOM row; MAX_OBJECT_BYTES lowered to 2 MiB for the oversized case."""
    world.set_env(FUNCTION, "MAX_OBJECT_BYTES", str(2 * 1024 * 1024))
    pg.query('INSERT INTO "Document" (id, owner, name, "fileType") VALUES (%s, %s, %s, %s)', DOC, USER, "a", "docx")
    pg.query('INSERT INTO "DocumentBom" (id, "documentId") VALUES (%s, %s)', BOM, DOC)
    return world


def put(world: World, key: str, data: bytes) -> str:
    """Upload; the notification it causes is dropped (each test delivers its own event). Returns the ETag."""
    etag = world.put_object("docx-upload", key, data)["ETag"]
    world.pending.clear()
    return etag


def unzip(world: World, key: str, etag: str = "abc") -> dict:
    return world.invoke(FUNCTION, s3_event(world, key, etag=etag))


def messages(world: World) -> list[dict]:
    return world.messages(world.queue_url("convert-service"))


def part_keys(world: World) -> list[str]:
    listed = world.s3.list_object_versions(Bucket=world.bucket("documents"), Prefix=PARTS_PREFIX)
    return sorted(v["Key"] for v in listed.get("Versions", []))


def job_row(pg, doc: str = DOC):
    return pg.query('SELECT status, "errorMessage" FROM "UploadJob" WHERE "documentId" = %s', doc)


def test_normal_path_stores_parts_rows_and_one_job(env: World, pg):
    world = env
    key = key_for()
    world.put_object("docx-upload", key, make_docx())
    [run] = world.settle()  # the recorded notification delivers the upload
    assert run.via.startswith("S3 notification") and world.denied_calls() == []
    result = run.result
    assert result["results"][0]["status"] == "processed" and result["results"][0]["job_sent"] is True

    rows = pg.query('SELECT path, sha FROM "BomPart" WHERE "documentBomId" = %s ORDER BY path', BOM)
    assert [r[0] for r in rows] == ["[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/styles.xml"]
    assert part_keys(world) == sorted(f"{PARTS_PREFIX}{sha}" for _, sha in rows)
    stored = world.s3.get_object(Bucket=world.bucket("documents"), Key=f"{PARTS_PREFIX}{rows[2][1]}")["Body"].read()
    assert stored == document_xml("Hello unzip")
    assert pg.query('SELECT uploaded FROM "Document" WHERE id = %s', DOC) == [[True]]
    assert job_row(pg) == [["processing", None]]

    [msg] = messages(world)
    body = json.loads(msg["Body"])
    assert body == {
        "job_id": result["results"][0]["job_id"],
        "from_bucket": world.bucket("docx-upload"),
        "to_bucket": world.bucket("documents"),
        "from_key": key,
        "to_key": f"{quote(USER, safe='')}/{DOC}/converted.pdf",
    }
    assert msg["MessageAttributes"]["job_id"]["StringValue"] == body["job_id"]


def test_redelivery_leaves_same_end_state(env: World, pg):
    world = env
    key = key_for()
    event = s3_event(world, key, etag=put(world, key, make_docx()))
    first = world.invoke(FUNCTION, event)
    second = world.invoke(FUNCTION, event)
    assert first["results"][0]["job_id"] == second["results"][0]["job_id"]
    assert second["results"][0]["job_sent"] is False
    assert pg.query('SELECT count(*) FROM "BomPart"') == [[4]]
    assert pg.query('SELECT count(*) FROM "ConvertJobDispatch"') == [[1]]
    assert len(part_keys(world)) == 4  # no second version of any part in the versioned bucket
    assert len(messages(world)) == 1


def test_shared_parts_are_stored_once(env: World, pg):
    world = env
    pg.query('INSERT INTO "Document" (id, owner, name) VALUES (%s, %s, %s)', "doc-2", USER, "b")
    for doc, bom, text in ((DOC, BOM, "first"), ("doc-2", 77, "second")):
        key = key_for(doc, bom)
        unzip(world, key, put(world, key, make_docx(text)))
    # content types, rels and styles are shared; only the two document.xml differ
    assert len(part_keys(world)) == 5
    assert pg.query('SELECT count(*) FROM "BomPart"') == [[8]]
    assert len(messages(world)) == 2


BOMB_XML = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<w:document xmlns:w="urn:w">&b;</w:document>"""


def _slip_docx() -> bytes:
    buf = io.BytesIO(make_docx())
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("../../evil.sh", b"rm -rf /")
    return buf.getvalue()


def _with_member(name: str | zipfile.ZipInfo, body: bytes) -> bytes:
    buf = io.BytesIO(make_docx())
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(name, body)
    return buf.getvalue()


def _directory_bomb_docx() -> bytes:
    """More central-directory records (1500) than the DOCX entry limit (1000), behind an end record claiming 4."""
    bomb = directory_bomb(1500, name="word/media/r{}.bin")
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bomb)) as source, zipfile.ZipFile(buf, "w") as zf:
        for name, body in (("[Content_Types].xml", CONTENT_TYPES), ("word/document.xml", document_xml("x"))):
            zf.writestr(name, body)
        for info in source.infolist():
            zf.writestr(info, b"")
    data = bytearray(buf.getvalue())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8 : end + 12] = (4).to_bytes(2, "little") * 2
    return bytes(data)


def _lying_size_docx() -> bytes:
    """The last part declares 100 bytes and inflates to 200 KB (a ratio that looks harmless in the directory)."""
    data = bytearray(_with_member("word/media/liar.bin", b"a" * 200_000))
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    return bytes(data)


@functools.cache
def hostile_files() -> dict[str, tuple[bytes, str]]:
    """Document -> the reason it fails. Built on first use, not at collection in every test process."""
    return {
        "zip bomb": (make_docx(extra={"word/media/bomb.bin": b"\0" * (8 * 1024 * 1024)}), "compression ratio"),
        "zip slip": (_slip_docx(), "zip slip"),
        "entity bomb": (make_docx(extra={"word/document.xml": BOMB_XML}), "forbidden"),
        "truncated": (make_docx("x" * 4000)[:700], "not a valid zip"),
        "not a zip": (b"%PDF-1.7 definitely not a docx", "not a valid zip"),
        "not a docx": (make_docx(drop="word/document.xml"), "word/document.xml missing"),
        "oversized": (
            make_docx(extra={"word/media/big.bin": random.Random(0).randbytes(3 * 1024 * 1024)}),
            "MAX_OBJECT_BYTES",
        ),
        "empty": (b"", "empty"),
        # reference/hostile-inputs.md and issue 11's archive list
        "nested elements (OOM class)": (make_docx(extra={"word/document.xml": nested_xml(5000)}), "nested deeper"),
        "3000-character part name": (_with_member("word/" + "p" * 3000 + ".xml", b"<a/>"), "exceeds the limit 1024"),
        "XML declaration naming rot13": (
            make_docx(extra={"word/styles.xml": b'<?xml version="1.0" encoding="rot13"?><w:styles/>'}),
            "unsupported encoding",
        ),
        "central-directory bomb": (_directory_bomb_docx(), "more than 1000 entries"),
        "symlink part": (_with_member(*symlink_member("word/link.xml", b"/etc/passwd")), "symbolic link"),
        "NUL in a part name": (rename_member(_with_member("word/aXb.xml", b"<a/>"), b"aXb", b"a\x00b"), "NUL"),
        "invalid UTF-8 name": (
            rename_member(_with_member("word/ab.xml", b"<a/>"), b"word/ab", b"word/\xff\xfe", utf8_flag=True),
            "not valid UTF-8",
        ),
        "absolute part name": (_with_member("/word/abs.xml", b"<a/>"), "absolute path"),
        "declared size that lies": (_lying_size_docx(), "corrupt data"),
    }


def test_hostile_files_are_recorded_as_failed(env: World, pg):
    # One setup for all cases (moto and client start-up dominate test time); each case is its own document.
    world = env
    for n, (case, (data, expected)) in enumerate(sorted(hostile_files().items()), start=1):
        doc = f"hostile-{n}"
        pg.query('INSERT INTO "Document" (id, owner, name) VALUES (%s, %s, %s)', doc, USER, case)
        key = key_for(doc, 100 + n)
        result = unzip(world, key, put(world, key, data))
        assert result["results"][0]["status"] == "failed", case
        [[status, reason]] = job_row(pg, doc)
        assert status == "failed" and expected in reason, (case, reason)
        assert pg.query('SELECT uploaded FROM "Document" WHERE id = %s', doc) == [[False]], case
    assert pg.query('SELECT count(*) FROM "BomPart"') == [[0]]
    assert part_keys(world) == [] and messages(world) == []


def test_unknown_document_and_missing_object_are_recorded(env: World, pg):
    world = env
    key = key_for(doc="no-such-doc")
    put(world, key, make_docx())
    unzip(world, key)
    assert "does not exist" in job_row(pg, "no-such-doc")[0][1]

    gone = key_for(bom=99)
    unzip(world, gone)  # never uploaded (expired from the 1-day bucket)
    assert any("no longer exists" in (r[1] or "") for r in job_row(pg))
    assert messages(world) == []


def test_bad_keys_raise_naming_the_key(env: World):
    """``.docx`` keys are delivered by the recorded filter; the others are not, and raise if they were."""
    world = env
    for key in ("alice/doc-1/41.pdf", "alice/doc-1/notanumber.docx", "alice/41.docx", "a/b/c/41.docx", "a/d/-3.docx"):
        event = s3_event(world, key)
        if not key.endswith(".docx"):
            with pytest.raises(UnwiredEvent):
                world.invoke(FUNCTION, event)
        with pytest.raises(InvalidKey) as err:
            (world.invoke if key.endswith(".docx") else world.run)(FUNCTION, event)
        assert key in str(err.value)


def test_not_an_s3_event_raises(env: World):
    world = env
    with pytest.raises(UnwiredEvent):
        world.invoke(FUNCTION, {"hello": "world"})
    with pytest.raises(ValueError, match="not an S3 notification"):
        world.run(FUNCTION, {"hello": "world"})
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": world.bucket("docx-upload")}
    assert world.invoke(FUNCTION, test_event) == {"results": []}


def test_send_failure_rolls_back_and_retry_sends_once(env: World, pg):
    world = env
    key = key_for()
    event = s3_event(world, key, etag=put(world, key, make_docx()))
    queue = world.env(FUNCTION)["CONVERT_QUEUE_URL"]
    world.set_env(FUNCTION, "CONVERT_QUEUE_URL", queue + "-missing")
    with pytest.raises(Exception, match="(?i)queue"):
        world.invoke(FUNCTION, event)  # transient: raised so the async retry keeps the event
    assert pg.query('SELECT count(*) FROM "ConvertJobDispatch"') == [[0]]
    assert pg.query('SELECT count(*) FROM "BomPart"') == [[0]]
    assert job_row(pg) == []
    world.set_env(FUNCTION, "CONVERT_QUEUE_URL", queue)
    assert world.invoke(FUNCTION, event)["results"][0]["job_sent"] is True
    assert len(messages(world)) == 1 and pg.query('SELECT count(*) FROM "BomPart"') == [[4]]


def test_new_upload_of_same_document_gets_a_new_job(env: World, pg):
    world = env
    key = key_for()
    first = unzip(world, key, put(world, key, make_docx("v1")))
    second = unzip(world, key, put(world, key, make_docx("v2")))
    assert first["results"][0]["job_id"] != second["results"][0]["job_id"]
    assert len(messages(world)) == 2


def test_xml_work_is_bounded_per_upload(env: World, pg, monkeypatch):
    """Elements are counted over all parts together; past the budget the upload is refused before any PUT."""
    from docx_unzip import handler as unzip_handler

    world = env
    monkeypatch.setattr(unzip_handler, "MAX_XML_ELEMENTS", 9)  # the test DOCX has 9 elements over its four XML parts
    key = key_for()
    assert unzip(world, key, put(world, key, make_docx()))["results"][0]["status"] == "processed"
    monkeypatch.setattr(unzip_handler, "MAX_XML_ELEMENTS", 8)
    pg.query('INSERT INTO "Document" (id, owner, name) VALUES (%s, %s, %s)', "doc-3", USER, "c")
    other = key_for("doc-3", 78)
    result = unzip(world, other, put(world, other, make_docx("v2")))
    assert result["results"][0]["status"] == "failed"
    [[status, reason]] = job_row(pg, "doc-3")
    assert status == "failed" and "elements" in reason
    assert pg.query('SELECT count(*) FROM "BomPart" WHERE "documentBomId" = 78') == [[0]]
