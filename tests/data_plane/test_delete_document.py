"""delete_document: every version and delete marker under the prefix, then the rows; idempotent; failures visible."""

from __future__ import annotations

import boto3
import pytest
from core import aws as core_aws
from core import s3 as core_s3
from delete_document.handler import handler

BUCKET = "doc-storage-test"
OWNER = "macro|owner@example.com"
PREFIX = "macro%7Cowner%40example.com/d1/"


@pytest.fixture
def bucket(make_bucket, monkeypatch):
    make_bucket(BUCKET, versioned=True)
    monkeypatch.setenv("DOCUMENT_BUCKET", BUCKET)
    s3 = boto3.client("s3", region_name="us-east-1")
    for body in (b"v1", b"v2", b"v3"):  # three versions of one object
        s3.put_object(Bucket=BUCKET, Key=PREFIX + "1.pdf", Body=body)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "converted.pdf", Body=b"c")
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "converted.pdf")  # leaves a delete marker and a version
    s3.put_object(Bucket=BUCKET, Key="macro%7Cowner%40example.com/d10/1.pdf", Body=b"other document")
    s3.put_object(Bucket=BUCKET, Key="someone-else/d1/1.pdf", Body=b"other owner")
    return s3


def _versions(s3, prefix: str) -> int:
    page = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


def _seed_rows(pg, doc_id: str, deleted: bool = True) -> None:
    deleted_at = "now()" if deleted else "NULL"
    pg.query(
        f'INSERT INTO "Document" (id, owner, name, "deletedAt") VALUES (%s, %s, %s, {deleted_at})', doc_id, OWNER, "n"
    )
    pg.query('INSERT INTO "DocumentText" ("documentId", content) VALUES (%s, %s)', doc_id, "text")
    pg.query(
        'INSERT INTO "DocumentTextParts" (id, reference, "documentId") VALUES (%s, %s, %s)', f"p-{doc_id}", "{}", doc_id
    )
    bom = pg.query('INSERT INTO "DocumentBom" ("documentId") VALUES (%s) RETURNING id', doc_id)[0][0]
    pg.query(
        'INSERT INTO "BomPart" ("documentBomId", sha, path) VALUES (%s, %s, %s)', bom, "ab" * 32, "word/document.xml"
    )


def _rows(pg, doc_id: str) -> int:
    return pg.query(
        'SELECT (SELECT count(*) FROM "Document" WHERE id = %s) + (SELECT count(*) FROM "DocumentText" WHERE '
        '"documentId" = %s) + (SELECT count(*) FROM "DocumentTextParts" WHERE "documentId" = %s) + '
        '(SELECT count(*) FROM "BomPart")',
        doc_id,
        doc_id,
        doc_id,
    )[0][0]


def test_deletes_every_version_and_marker_then_rows(
    database_secret, pg, bucket, sqs_event, lambda_context, monkeypatch
):
    monkeypatch.setattr(core_s3, "DELETE_BATCH", 2)  # force several DeleteObjects batches
    _seed_rows(pg, "d1")
    assert _versions(bucket, PREFIX) == 5
    event = sqs_event(("d1", {"document_id": "d1"}))
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    assert _versions(bucket, PREFIX) == 0
    assert _rows(pg, "d1") == 0
    assert _versions(bucket, "macro%7Cowner%40example.com/d10/") == 1  # prefix ends at the slash
    assert _versions(bucket, "someone-else/") == 1
    assert handler(event, lambda_context) == {"batchItemFailures": []}  # redelivery: nothing left, success


def test_user_path_deletes_objects_when_rows_are_already_gone(database_secret, pg, bucket, sqs_event, lambda_context):
    event = sqs_event(("d1", {"document_id": "d1", "user_id": OWNER}))
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    assert _versions(bucket, PREFIX) == 0


def test_live_document_is_kept(database_secret, pg, bucket, sqs_event, lambda_context):
    _seed_rows(pg, "d1", deleted=False)
    assert handler(sqs_event(("d1", {"document_id": "d1"})), lambda_context) == {"batchItemFailures": []}
    assert _versions(bucket, PREFIX) == 5
    assert _rows(pg, "d1") == 4


@pytest.mark.parametrize(
    ("body", "attributes"),
    [
        ("d1", {}),
        ("d1", {"document_id": "d2"}),
        ("", {"document_id": "../d1"}),
        ("d1", {"document_id": "d1", "user_id": "x"}),
    ],
)
def test_bad_messages_fail_and_delete_nothing(database_secret, pg, bucket, sqs_event, lambda_context, body, attributes):
    _seed_rows(pg, "d1")
    assert handler(sqs_event((body, attributes)), lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert _versions(bucket, PREFIX) == 5
    assert _rows(pg, "d1") == 4


def test_s3_errors_fail_the_record_and_keep_the_rows(
    database_secret, pg, bucket, sqs_event, lambda_context, monkeypatch
):
    _seed_rows(pg, "d1")
    real = core_aws.client("s3")
    failing = {"on": True}

    class FailingS3:
        """moto's S3, except that DeleteObjects reports the first version of each batch as not deleted."""

        def __getattr__(self, name):
            return getattr(real, name)

        def delete_objects(self, **kwargs):
            if not failing["on"]:
                return real.delete_objects(**kwargs)
            objects = kwargs["Delete"]["Objects"]
            real.delete_objects(Bucket=kwargs["Bucket"], Delete={"Objects": objects[1:]})
            first = objects[0]
            return {"Errors": [{"Key": first["Key"], "VersionId": first["VersionId"], "Code": "AccessDenied"}]}

    original = core_aws.client
    monkeypatch.setattr(core_aws, "client", lambda name: FailingS3() if name == "s3" else original(name))
    event = sqs_event(("d1", {"document_id": "d1"}))
    assert handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert _rows(pg, "d1") == 4  # rows stay so the redelivery knows the owner and finishes the job
    assert _versions(bucket, PREFIX) == 1
    failing["on"] = False
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX), _rows(pg, "d1")) == (0, 0)
