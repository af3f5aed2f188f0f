"""The remaining handlers fed real samples: SQS consumers (both SQS samples, the batch sample's Number attribute and
the other's Binary and Number attributes left in place), the scheduled functions (the scheduled event), and the
credentials rotation (both Secrets Manager rotation samples, one with the extra ``RotationToken``).

The handlers run on the recorded wiring (``world``): the samples carry the recorded queue, schedule rule or rotated
secret and reach the handler through ``invoke`` (the rotation on prod, the only stack that records one)."""

from __future__ import annotations

import pytest

from tests.data_plane import events
from tests.data_plane.test_db_credentials_rotation import (  # noqa: F401 (fixtures)
    STEPS,
    _can_login,
    password_auth,
    rotating,
)
from tests.data_plane.test_delete_chat import _counts, _seed_chat
from tests.data_plane.test_delete_document import BUCKET, PREFIX, _rows, _seed_rows, _versions, bucket  # noqa: F401
from tests.data_plane.test_deleted_item_poller import queues, seeded  # noqa: F401 (fixtures)
from tests.data_plane.test_email_attachment_cleanup import _purged, _seed, s3  # noqa: F401 (s3: the fixture)
from tools.harness.world import World


def sqs_sample(world: World, name: str, queue: str, *messages: tuple[str, dict[str, str]]) -> dict:
    """An SQS sample's records from the recorded queue ``queue``."""
    arn = world.sqs.get_queue_attributes(QueueUrl=world.queue_url(queue), AttributeNames=["QueueArn"])
    return events.sqs_event(name, *messages, queue_arn=arn["Attributes"]["QueueArn"])


def scheduled_sample(world: World, rule: str) -> dict:
    """The scheduled-event sample as the recorded schedule rule ``rule`` sends it (its ARN in ``resources``)."""
    event = events.scheduled_event(rule)
    events.set_value(event, ("resources", 0), world.scheduled_event(rule)["resources"][0])
    return event


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_delete_chat_from_each_sqs_sample(name, world: World, pg):
    for chat_id in ("c1", "c2"):
        _seed_chat(pg, chat_id, deleted=True)
    event = sqs_sample(world, name, "delete-chat-handler", ("c1", {"chat_id": "c1"}), ("c2", {"chat_id": "c2"}))
    assert world.invoke("delete_chat", event) == {"batchItemFailures": []}
    assert set(_counts(pg, "c1").values()) == set(_counts(pg, "c2").values()) == {0}


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_delete_document_from_each_sqs_sample(name, world: World, pg, BUCKET, bucket):  # noqa: F811, N803
    _seed_rows(pg, "d1")
    event = sqs_sample(world, name, "delete-document-handler", ("d1", {"document_id": "d1"}))
    assert world.invoke("delete_document", event) == {"batchItemFailures": []}
    assert (_versions(bucket, PREFIX, BUCKET), _rows(pg, "d1")) == (0, 0)


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_an_sqs_sample_message_without_the_id_attribute_fails_by_itself(name, world: World, pg):
    """The samples' own bodies and attributes ("Test message.", Attribute1...) are not a chat id: that record fails."""
    _seed_chat(pg, "c1", deleted=True)
    event = sqs_sample(world, name, "delete-chat-handler", ("Test message.", {}), ("c1", {"chat_id": "c1"}))
    assert world.invoke("delete_chat", event) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert set(_counts(pg, "c1").values()) == {0}


def test_deleted_item_poller_on_the_scheduled_event(world: World, queues, seeded, pg):  # noqa: F811
    summary = world.invoke("deleted_item_poller", scheduled_sample(world, "deleted-item-poller"))
    assert summary == {"project": 1, "chat": 1, "document": 3, "failed": []}


def test_user_link_cleanup_on_the_scheduled_event(world: World, pg):
    pg.query("INSERT INTO in_progress_user_link (macro_user_id, created_at) VALUES ('u', now() - interval '2 days')")
    result = world.invoke("user_link_cleanup", scheduled_sample(world, "user-link-cleanup"))
    assert result == {"in_progress_user_link": 1, "in_progress_email_link": 0}


def test_email_attachment_cleanup_on_the_scheduled_event(world: World, pg, s3):  # noqa: F811
    _seed(pg, s3, world.bucket("email-attachments"))
    result = world.invoke("email_attachment_cleanup", scheduled_sample(world, "email-attachment-cleanup"))
    assert result["purged"] == 3 and _purged(pg) == ["a1", "a2", "a3"]


@pytest.mark.parametrize("name", events.SECRETS_ROTATION_SAMPLES)
def test_rotation_steps_from_each_secrets_manager_sample(name, rotating, pg):  # noqa: F811
    r = rotating
    token = r.start()
    for step in STEPS:
        assert r.world.invoke(r.function, events.rotation_event(name, r.master, token, step)) is None
    new_password = r.master_value(VersionStage="AWSCURRENT")["password"]
    assert not _can_login(pg, r.role, r.instance.password) and _can_login(pg, r.role, new_password)
