"""delete_document: every version and delete marker under the prefix, then the rows; idempotent; failures visible.

On the recorded wiring (``world``, both stacks): messages go through the delete-document queue and its mapping, the
documents bucket and its replica (in the DR region) are the ones the function's environment names.
"""

from __future__ import annotations

import pytest
from core import aws as core_aws
from core import s3 as core_s3
from core.config import ConfigError

from tools.harness.world import World

QUEUE = "delete-document-handler"
OWNER = "macro|owner@example.com"
PREFIX = "macro%7Cowner%40example.com/d1/"


@pytest.fixture
def BUCKET(world: World) -> str:  # noqa: N802 - reads as the constant it replaces
    return world.bucket("documents")


def deliver(world: World, body: str, attributes: dict[str, str]) -> tuple[str, dict | None]:
    """The message id and the handler's response for one message through the recorded queue and mapping."""
    message = world.send_message(QUEUE, body, attributes)
    run = world.poll(QUEUE)
    assert run is not None
    return message, run.result


@pytest.fixture
def bucket(world: World, BUCKET: str):  # noqa: N803
    # The extractor's rule also sees these uploads; only the objects matter here.
    s3 = world.s3
    for body in (b"v1", b"v2", b"v3"):  # three versions of one object
        s3.put_object(Bucket=BUCKET, Key=PREFIX + "1.pdf", Body=body)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "converted.pdf", Body=b"c")
    s3.delete_object(Bucket=BUCKET, Key=PREFIX + "converted.pdf")  # leaves a delete marker and a version
    s3.put_object(Bucket=BUCKET, Key="macro%7Cowner%40example.com/d10/1.pdf", Body=b"other document")
    s3.put_object(Bucket=BUCKET, Key="someone-else/d1/1.pdf", Body=b"other owner")
    world.pending.clear()
    return s3


def _versions(s3, prefix: str, bucket: str) -> int:
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
    world, BUCKET, pg, bucket, monkeypatch
):
    monkeypatch.setattr(core_s3, "DELETE_BATCH", 2)  # force several DeleteObjects batches
    _seed_rows(pg, "d1")
    assert _versions(bucket, PREFIX, BUCKET) == 5
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}
    assert _versions(bucket, PREFIX, BUCKET) == 0
    assert _rows(pg, "d1") == 0
    assert _versions(bucket, "macro%7Cowner%40example.com/d10/", BUCKET) == 1  # prefix ends at the slash
    assert _versions(bucket, "someone-else/", BUCKET) == 1
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}  # redelivery: nothing left


def test_user_path_deletes_objects_when_rows_are_already_gone(world, BUCKET, pg, bucket):
    assert deliver(world, "d1", {"document_id": "d1", "user_id": OWNER})[1] == {"batchItemFailures": []}
    assert _versions(bucket, PREFIX, BUCKET) == 0


def test_live_document_is_kept(world, BUCKET, pg, bucket):
    _seed_rows(pg, "d1", deleted=False)
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}
    assert _versions(bucket, PREFIX, BUCKET) == 5
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
def test_bad_messages_fail_and_delete_nothing(world, BUCKET, pg, bucket, body, attributes):
    _seed_rows(pg, "d1")
    message, result = deliver(world, body or "-", attributes)
    assert result == {"batchItemFailures": [{"itemIdentifier": message}]}
    assert _versions(bucket, PREFIX, BUCKET) == 5
    assert _rows(pg, "d1") == 4


def test_s3_errors_fail_the_record_and_keep_the_rows(
    world, BUCKET, pg, bucket, monkeypatch
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
    message, result = deliver(world, "d1", {"document_id": "d1"})
    assert result == {"batchItemFailures": [{"itemIdentifier": message}]}
    assert _rows(pg, "d1") == 4  # rows stay so the redelivery knows the owner and finishes the job
    assert _versions(bucket, PREFIX, BUCKET) == 1
    failing["on"] = False
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX, BUCKET), _rows(pg, "d1")) == (0, 0)


@pytest.fixture
def REPLICA(world: World) -> str:  # noqa: N802
    return world.env("delete_document")["REPLICA_BUCKET"]


@pytest.fixture
def REPLICA_REGION(world: World) -> str:  # noqa: N802
    return world.env("delete_document")["REPLICA_REGION"]


@pytest.fixture
def replica(world, BUCKET, REPLICA, REPLICA_REGION, bucket, monkeypatch):  # noqa: N803
    """A versioned bucket in another region holding what replication copied: every source version and marker.

    moto stores a replication configuration but copies nothing, so the copies are written here. Returns a client for
    the replica's region; the env vars are left to each test. Records the regions the handler asked clients for.
    """
    core_s3.regional_client.cache_clear()
    s3 = world.client("s3", REPLICA_REGION)  # the recorded replica bucket, versioned by its recorded versioning
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
    world, BUCKET, REPLICA, REPLICA_REGION, pg, bucket, replica, monkeypatch
):
    _seed_rows(pg, "d1")
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX, BUCKET), _versions(replica, PREFIX, REPLICA), _rows(pg, "d1")) == (0, 0, 0)
    assert set(replica.regions) == {REPLICA_REGION}  # the replica is addressed in its own region
    assert _versions(replica, "macro%7Cowner%40example.com/d10/", REPLICA) == 1
    assert _versions(replica, "someone-else/", REPLICA) == 1
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}  # redelivery: a no-op
    assert (_versions(bucket, "macro", BUCKET), _versions(replica, "macro", REPLICA)) == (1, 1)


def test_replica_error_fails_the_record_and_a_redelivery_completes(
    world, BUCKET, REPLICA, REPLICA_REGION, pg, bucket, replica, monkeypatch
):
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
    message, result = deliver(world, "d1", {"document_id": "d1"})
    assert result == {"batchItemFailures": [{"itemIdentifier": message}]}
    assert _versions(bucket, PREFIX, BUCKET) == 0  # source first: the application's copy is gone already
    assert _versions(replica, PREFIX, REPLICA) == 1
    assert _rows(pg, "d1") == 4  # rows stay so the redelivery knows the owner
    failing["on"] = False
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX, BUCKET), _versions(replica, PREFIX, REPLICA), _rows(pg, "d1")) == (0, 0, 0)


def test_without_replica_variables_the_replica_is_untouched(
    world, BUCKET, REPLICA, pg, bucket, replica
):
    for variable in ("REPLICA_BUCKET", "REPLICA_REGION"):  # a stack without replication
        world.unset_env("delete_document", variable)
    _seed_rows(pg, "d1")
    assert deliver(world, "d1", {"document_id": "d1"})[1] == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX, BUCKET), _rows(pg, "d1")) == (0, 0)
    assert _versions(replica, PREFIX, REPLICA) == 5
    assert replica.regions == []


@pytest.mark.parametrize("name", ["REPLICA_BUCKET", "REPLICA_REGION"])
def test_half_a_replica_configuration_is_an_error_naming_the_missing_variable(world: World, bucket, name):
    other = "REPLICA_REGION" if name == "REPLICA_BUCKET" else "REPLICA_BUCKET"
    world.unset_env("delete_document", other)
    world.send_message(QUEUE, "d1", {"document_id": "d1"})
    run = world.poll(QUEUE)
    assert run is not None and isinstance(run.error, ConfigError) and other in str(run.error)
