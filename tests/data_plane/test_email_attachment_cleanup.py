"""email_attachment_cleanup: objects of deleted messages purged (all versions), marked, idempotent, failures named.

On the recorded wiring (``world``, both stacks): the attachments bucket its environment names, its schedule's event,
its role. The bucket is versioned here (as the handler must also handle; the program leaves it unversioned).
"""

from __future__ import annotations

import pytest
from core import aws as core_aws
from email_attachment_cleanup.handler import PurgeError

from tools.harness.world import World


@pytest.fixture
def s3(world: World):
    world.s3.put_bucket_versioning(Bucket=world.bucket("email-attachments"),
                                   VersioningConfiguration={"Status": "Enabled"})
    world.set_env("email_attachment_cleanup", "ATTACHMENT_PURGE_PAGE_SIZE", "2")  # several pages
    return world.s3


@pytest.fixture
def bucket(world: World) -> str:
    return world.bucket("email-attachments")


@pytest.fixture
def purge(world: World):
    """One run of the cleanup as its schedule triggers it."""
    event = world.scheduled_event("email-attachment-cleanup")
    return lambda: world.invoke("email_attachment_cleanup", event)


def _seed(pg, s3, bucket):
    pg.query('INSERT INTO "EmailMessage" (id, "deletedAt") VALUES (%s, now()), (%s, NULL)', "gone", "kept")
    rows = [
        ("a1", "gone", "att/gone/1"),
        ("a2", "gone", "att/gone/2"),
        ("a3", "gone", "att/gone/missing"),
        ("a4", "kept", "att/kept/1"),
    ]
    for att_id, msg, key in rows:
        pg.query('INSERT INTO "EmailAttachment" (id, "messageId", "s3Key") VALUES (%s, %s, %s)', att_id, msg, key)
    for key in ("att/gone/1", "att/gone/1", "att/gone/2", "att/gone/10", "att/kept/1"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")  # att/gone/1 twice: two versions


def _keys(s3, bucket) -> list[str]:
    page = s3.list_object_versions(Bucket=bucket)
    return sorted(v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", []))


def _purged(pg) -> list[str]:
    return [r[0] for r in pg.query('SELECT id FROM "EmailAttachment" WHERE "purgedAt" IS NOT NULL ORDER BY id')]


def test_purges_deleted_messages_attachments_once(s3, bucket, pg, purge):
    _seed(pg, s3, bucket)
    assert purge() == {"purged": 3, "versions_deleted": 3, "failed": []}
    assert _keys(s3, bucket) == ["att/gone/10", "att/kept/1"]  # exact keys only: att/gone/10 is not att/gone/1
    assert _purged(pg) == ["a1", "a2", "a3"]  # a missing object (a3) is purged too
    assert purge() == {"purged": 0, "versions_deleted": 0, "failed": []}


def test_a_failed_delete_is_reported_and_retried(s3, bucket, pg, purge, monkeypatch):
    _seed(pg, s3, bucket)
    original = core_aws.client
    state = {"fail": True}

    class DenyingS3:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def delete_objects(self, **kwargs):
            objects = kwargs["Delete"]["Objects"]
            if state["fail"] and objects[0]["Key"] == "att/gone/2":
                return {"Errors": [{"Key": "att/gone/2", "VersionId": objects[0]["VersionId"], "Code": "AccessDenied"}]}
            return self.real.delete_objects(**kwargs)

    monkeypatch.setattr(core_aws, "client", lambda name: DenyingS3(original(name)) if name == "s3" else original(name))
    with pytest.raises(PurgeError, match="a2"):
        purge()
    assert _purged(pg) == ["a1", "a3"]
    state["fail"] = False
    assert purge()["purged"] == 1
    assert _purged(pg) == ["a1", "a2", "a3"]
