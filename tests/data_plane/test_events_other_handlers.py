"""The remaining handlers fed real samples: SQS consumers (both SQS samples, the batch sample's Number attribute and
the other's Binary and Number attributes left in place), the scheduled functions (the scheduled event), and the
credentials rotation (both Secrets Manager rotation samples, one with the extra ``RotationToken``)."""

from __future__ import annotations

import pytest
from db_credentials_rotation import handler as rotation
from delete_chat.handler import handler as delete_chat
from delete_document.handler import handler as delete_document
from deleted_item_poller.handler import handler as deleted_item_poller
from email_attachment_cleanup.handler import handler as email_attachment_cleanup
from user_link_cleanup.handler import handler as user_link_cleanup

from tests.data_plane import events
from tests.data_plane.test_db_credentials_rotation import (  # noqa: F401 (fixtures)
    OLD_PASSWORD,
    ROLE,
    STEPS,
    _can_login,
    app_role,
    password_auth,
    rotation_secrets,
    start_rotation,
)
from tests.data_plane.test_delete_chat import _counts, _seed_chat
from tests.data_plane.test_delete_document import PREFIX, _rows, _seed_rows, _versions, bucket  # noqa: F401
from tests.data_plane.test_deleted_item_poller import queues, seeded  # noqa: F401 (fixtures)
from tests.data_plane.test_email_attachment_cleanup import _purged, _seed, s3  # noqa: F401 (s3: the fixture)


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_delete_chat_from_each_sqs_sample(name, database_secret, pg, lambda_context):
    for chat_id in ("c1", "c2"):
        _seed_chat(pg, chat_id, deleted=True)
    event = events.sqs_event(name, ("c1", {"chat_id": "c1"}), ("c2", {"chat_id": "c2"}))
    assert delete_chat(event, lambda_context) == {"batchItemFailures": []}
    assert set(_counts(pg, "c1").values()) == set(_counts(pg, "c2").values()) == {0}


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_delete_document_from_each_sqs_sample(name, database_secret, pg, bucket, lambda_context):  # noqa: F811
    _seed_rows(pg, "d1")
    event = events.sqs_event(name, ("d1", {"document_id": "d1"}))
    assert delete_document(event, lambda_context) == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX), _rows(pg, "d1")) == (0, 0)


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_an_sqs_sample_message_without_the_id_attribute_fails_by_itself(name, database_secret, pg, lambda_context):
    """The samples' own bodies and attributes ("Test message.", Attribute1...) are not a chat id: that record fails."""
    _seed_chat(pg, "c1", deleted=True)
    event = events.sqs_event(name, ("Test message.", {}), ("c1", {"chat_id": "c1"}))
    assert delete_chat(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert set(_counts(pg, "c1").values()) == {0}


def test_deleted_item_poller_on_the_scheduled_event(queues, seeded, pg, lambda_context):  # noqa: F811
    summary = deleted_item_poller(events.scheduled_event("deleted-item-poller"), lambda_context)
    assert summary == {"project": 1, "chat": 1, "document": 3, "failed": []}


def test_user_link_cleanup_on_the_scheduled_event(database_secret, pg, lambda_context):
    pg.query("INSERT INTO in_progress_user_link (macro_user_id, created_at) VALUES ('u', now() - interval '2 days')")
    result = user_link_cleanup(events.scheduled_event("user-link-cleanup"), lambda_context)
    assert result == {"in_progress_user_link": 1, "in_progress_email_link": 0}


def test_email_attachment_cleanup_on_the_scheduled_event(pg, s3, lambda_context):  # noqa: F811
    _seed(pg, s3)
    result = email_attachment_cleanup(events.scheduled_event("email-attachment-cleanup"), lambda_context)
    assert result["purged"] == 3 and _purged(pg) == ["a1", "a2", "a3"]


@pytest.mark.parametrize("name", events.SECRETS_ROTATION_SAMPLES)
def test_rotation_steps_from_each_secrets_manager_sample(name, rotation_secrets, pg, lambda_context):  # noqa: F811
    secrets = rotation_secrets
    token = start_rotation(secrets.master)
    for step in STEPS:
        assert rotation.handler(events.rotation_event(name, secrets.master, token, step), lambda_context) is None
    new_password = secrets.master_value(VersionStage="AWSCURRENT")["password"]
    assert not _can_login(pg, ROLE, OLD_PASSWORD) and _can_login(pg, ROLE, new_password)
