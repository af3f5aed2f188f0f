"""email_attachment_cleanup: objects of deleted messages purged (all versions), marked, idempotent, failures named."""

from __future__ import annotations

import boto3
import pytest
from core import aws as core_aws
from email_attachment_cleanup.handler import PurgeError, handler

BUCKET = "macro-email-attachments-test"


@pytest.fixture
def s3(database_secret, make_bucket, monkeypatch):
    make_bucket(BUCKET, versioned=True)
    monkeypatch.setenv("ATTACHMENTS_BUCKET", BUCKET)
    monkeypatch.setenv("ATTACHMENT_PURGE_PAGE_SIZE", "2")
    return boto3.client("s3", region_name="us-east-1")


def _seed(pg, s3):
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
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")  # att/gone/1 twice: two versions


def _keys(s3) -> list[str]:
    page = s3.list_object_versions(Bucket=BUCKET)
    return sorted(v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", []))


def _purged(pg) -> list[str]:
    return [r[0] for r in pg.query('SELECT id FROM "EmailAttachment" WHERE "purgedAt" IS NOT NULL ORDER BY id')]


def test_purges_deleted_messages_attachments_once(s3, pg, lambda_context):
    _seed(pg, s3)
    assert handler({}, lambda_context) == {"purged": 3, "versions_deleted": 3, "failed": []}
    assert _keys(s3) == ["att/gone/10", "att/kept/1"]  # exact keys only: att/gone/10 is not att/gone/1
    assert _purged(pg) == ["a1", "a2", "a3"]  # a missing object (a3) is purged too
    assert handler({}, lambda_context) == {"purged": 0, "versions_deleted": 0, "failed": []}


def test_a_failed_delete_is_reported_and_retried(s3, pg, lambda_context, monkeypatch):
    _seed(pg, s3)
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
        handler({}, lambda_context)
    assert _purged(pg) == ["a1", "a3"]
    state["fail"] = False
    assert handler({}, lambda_context)["purged"] == 1
    assert _purged(pg) == ["a1", "a2", "a3"]
