"""delete_document: every version and delete marker under the prefix, then the rows; idempotent; failures visible."""

from __future__ import annotations

import boto3
import pytest
from core import aws as core_aws
from core import s3 as core_s3
from core.config import ConfigError
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


def _versions(s3, prefix: str, bucket: str = BUCKET) -> int:
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
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


REPLICA = "doc-storage-replica-test"
REPLICA_REGION = "us-west-2"


@pytest.fixture
def replica(bucket, monkeypatch):
    """A versioned bucket in another region holding what replication copied: every source version and marker.

    moto stores a replication configuration but copies nothing, so the copies are written here. Returns a client for
    the replica's region; the env vars are left to each test. Records the regions the handler asked clients for.
    """
    core_s3.regional_client.cache_clear()
    s3 = boto3.client("s3", region_name=REPLICA_REGION)
    s3.create_bucket(Bucket=REPLICA, CreateBucketConfiguration={"LocationConstraint": REPLICA_REGION})
    s3.put_bucket_versioning(Bucket=REPLICA, VersioningConfiguration={"Status": "Enabled"})
    listed = bucket.list_object_versions(Bucket=BUCKET)
    for version in sorted(listed["Versions"], key=lambda v: v["LastModified"]):
        body = bucket.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        s3.put_object(Bucket=REPLICA, Key=version["Key"], Body=body)
    for marker in listed.get("DeleteMarkers", []):
        s3.delete_object(Bucket=REPLICA, Key=marker["Key"])  # delete-marker replication is on
    assert _versions(s3, PREFIX, REPLICA) == 5
    regions: list[str] = []
    real = core_s3.regional_client
    monkeypatch.setattr(core_s3, "regional_client", lambda region: regions.append(region) or real(region))
    s3.regions = regions  # type: ignore[attr-defined]
    yield s3
    real.cache_clear()


def test_replica_is_purged_under_the_prefix_too(
    database_secret, pg, bucket, replica, sqs_event, lambda_context, monkeypatch
):
    monkeypatch.setenv("REPLICA_BUCKET", REPLICA)
    monkeypatch.setenv("REPLICA_REGION", REPLICA_REGION)
    _seed_rows(pg, "d1")
    event = sqs_event(("d1", {"document_id": "d1"}))
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX), _versions(replica, PREFIX, REPLICA), _rows(pg, "d1")) == (0, 0, 0)
    assert set(replica.regions) == {REPLICA_REGION}  # the replica is addressed in its own region
    assert _versions(replica, "macro%7Cowner%40example.com/d10/", REPLICA) == 1
    assert _versions(replica, "someone-else/", REPLICA) == 1
    assert handler(event, lambda_context) == {"batchItemFailures": []}  # redelivery: a no-op
    assert (_versions(bucket, "macro"), _versions(replica, "macro", REPLICA)) == (1, 1)


def test_replica_error_fails_the_record_and_a_redelivery_completes(
    database_secret, pg, bucket, replica, sqs_event, lambda_context, monkeypatch
):
    monkeypatch.setenv("REPLICA_BUCKET", REPLICA)
    monkeypatch.setenv("REPLICA_REGION", REPLICA_REGION)
    _seed_rows(pg, "d1")
    failing = {"on": True}

    class FailingReplica:
        """The replica's client, except that DeleteObjects reports the first version of each batch as not deleted."""

        def __getattr__(self, name):
            return getattr(replica, name)

        def delete_objects(self, **kwargs):
            if not failing["on"]:
                return replica.delete_objects(**kwargs)
            objects = kwargs["Delete"]["Objects"]
            replica.delete_objects(Bucket=kwargs["Bucket"], Delete={"Objects": objects[1:]})
            first = objects[0]
            return {"Errors": [{"Key": first["Key"], "VersionId": first["VersionId"], "Code": "AccessDenied"}]}

    monkeypatch.setattr(core_s3, "regional_client", lambda region: FailingReplica())
    event = sqs_event(("d1", {"document_id": "d1"}))
    assert handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert _versions(bucket, PREFIX) == 0  # source first: the application's copy is gone already
    assert _versions(replica, PREFIX, REPLICA) == 1
    assert _rows(pg, "d1") == 4  # rows stay so the redelivery knows the owner
    failing["on"] = False
    assert handler(event, lambda_context) == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX), _versions(replica, PREFIX, REPLICA), _rows(pg, "d1")) == (0, 0, 0)


def test_without_replica_variables_the_replica_is_untouched(
    database_secret, pg, bucket, replica, sqs_event, lambda_context
):
    _seed_rows(pg, "d1")
    assert handler(sqs_event(("d1", {"document_id": "d1"})), lambda_context) == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX), _rows(pg, "d1")) == (0, 0)
    assert _versions(replica, PREFIX, REPLICA) == 5
    assert replica.regions == []


@pytest.mark.parametrize("name", ["REPLICA_BUCKET", "REPLICA_REGION"])
def test_half_a_replica_configuration_is_an_error_naming_the_missing_variable(
    database_secret, bucket, sqs_event, lambda_context, monkeypatch, name
):
    monkeypatch.setenv(name, "x")
    other = "REPLICA_REGION" if name == "REPLICA_BUCKET" else "REPLICA_BUCKET"
    with pytest.raises(ConfigError, match=other):
        handler(sqs_event(("d1", {"document_id": "d1"})), lambda_context)
