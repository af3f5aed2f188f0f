"""deleted_item_poller: old soft-deleted items dispatched once, paginated, failed sends retried and reported.

The poller runs on its recorded schedule's event with its recorded environment and role, and sends to the queues its
environment names (``world``, both stacks); the consumers' mappings are not polled here (``world.invoke`` runs the
poller alone), so the dispatched jobs can be read from the queues.
"""

from __future__ import annotations

import json

import pytest
from core import aws as core_aws
from deleted_item_poller.handler import DispatchError

from tools.harness.world import World


@pytest.fixture
def queues(world: World) -> dict[str, str]:
    world.set_env("deleted_item_poller", "DELETED_ITEM_PAGE_SIZE", "2")  # several keyset pages
    return {"search": world.queue_url("search-event"), "chat": world.queue_url("delete-chat-handler"),
            "doc": world.queue_url("delete-document-handler")}


@pytest.fixture
def poll(world: World):
    """One run of the poller as its schedule triggers it."""
    event = world.scheduled_event("deleted-item-poller")
    return lambda: world.invoke("deleted_item_poller", event)


@pytest.fixture
def seeded(pg):
    old, recent = "now() - interval '31 days'", "now() - interval '5 days'"
    for pid, when in (("p1", old), ("p2", recent)):
        pg.query(f'INSERT INTO "Project" (id, name, "userId", "deletedAt") VALUES (%s, %s, %s, {when})', pid, "n", "u")
    for cid, when in (("c1", old), ("c2", "NULL")):
        pg.query(f'INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES (%s, %s, {when})', cid, "u")
    for did, when in (("d1", old), ("d2", old), ("d3", old), ("d4", recent)):
        pg.query(f'INSERT INTO "Document" (id, owner, name, "deletedAt") VALUES (%s, %s, %s, {when})', did, "u", "n")


@pytest.fixture
def drain(world: World):
    def take(url: str) -> list[tuple[str, dict[str, str]]]:
        return sorted((m["Body"], {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()})
                      for m in world.messages(url))

    return take


def test_dispatches_old_items_once(queues, seeded, pg, poll, drain):
    summary = poll()
    assert summary == {"project": 1, "chat": 1, "document": 3, "failed": []}
    search = sorted((json.loads(body) for body, _ in drain(queues["search"])), key=json.dumps)
    assert search == sorted(
        [
            {"BulkRemoveProjectMessage": {"project_ids": ["p1"]}},
            {"RemoveChatMessage": {"chat_id": "c1", "message_id": None}},
            {"RemoveDocument": {"document_id": "d1"}},
            {"RemoveDocument": {"document_id": "d2"}},
            {"RemoveDocument": {"document_id": "d3"}},
        ],
        key=json.dumps,
    )
    assert drain(queues["chat"]) == [("c1", {"chat_id": "c1"})]
    assert drain(queues["doc"]) == [(d, {"document_id": d}) for d in ("d1", "d2", "d3")]
    assert pg.query('SELECT id FROM "Project" ORDER BY id') == [["p2"]]  # projects have no worker: deleted here

    # The next run does not re-enqueue items waiting for their workers.
    assert poll() == {"project": 0, "chat": 0, "document": 0, "failed": []}
    assert drain(queues["search"]) == [] and drain(queues["doc"]) == []


def test_min_age_is_configurable(world: World, queues, seeded, poll):
    world.set_env("deleted_item_poller", "DELETED_ITEM_MIN_AGE_DAYS", "1")  # raises unless the program passes it
    assert poll()["document"] == 4
    world.set_env("deleted_item_poller", "DELETED_ITEM_MIN_AGE_DAYS", "thirty")
    with pytest.raises(ValueError, match="DELETED_ITEM_MIN_AGE_DAYS"):
        poll()


def _flaky_sqs(monkeypatch, should_fail):
    """moto's SQS, except that entries for which ``state["should_fail"](body, call)`` holds come back in ``Failed``."""
    original = core_aws.client
    calls = {"n": 0}
    state = {"should_fail": should_fail}

    class FlakySQS:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's parameter names
            calls["n"] += 1
            keep = [e for e in Entries if not state["should_fail"](e["MessageBody"], calls["n"])]
            failed = [
                {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
                for e in Entries
                if e not in keep
            ]
            response = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=keep) if keep else {}
            return {"Successful": response.get("Successful", []), "Failed": failed}

    monkeypatch.setattr(core_aws, "client", lambda name: FlakySQS(original(name)) if name == "sqs" else original(name))
    monkeypatch.setattr("core.sqs.time.sleep", lambda _: None)
    return state


def test_failed_entries_are_retried_then_reported_and_only_sent_items_recorded(
    queues, seeded, pg, poll, drain, monkeypatch
):
    state = _flaky_sqs(monkeypatch, lambda body, _call: "d2" in body)  # d2 fails on every attempt
    with pytest.raises(DispatchError, match="document:d2") as err:
        poll()
    assert "document:d1" not in str(err.value)
    recorded = pg.query('SELECT "itemType", "itemId" FROM "DeletionDispatch" ORDER BY 1, 2')
    assert recorded == [["chat", "c1"], ["document", "d1"], ["document", "d3"], ["project", "p1"]]
    assert [body for body, _ in drain(queues["doc"])] == ["d1", "d3"]
    drain(queues["search"])

    state["should_fail"] = lambda body, call: False  # the queue recovers: the next run sends only d2
    assert poll() == {"project": 0, "chat": 0, "document": 1, "failed": []}
    assert drain(queues["doc"]) == [("d2", {"document_id": "d2"})]


def test_a_transient_failure_is_retried_without_error(queues, seeded, poll, drain, monkeypatch):
    # d3 fails in the first two SendMessageBatch calls that carry it, then goes through on the retry.
    seen = {"n": 0}

    def flaky(body, _call):
        if "d3" not in body:
            return False
        seen["n"] += 1
        return seen["n"] <= 2

    _flaky_sqs(monkeypatch, flaky)
    summary = poll()
    assert summary["document"] == 3 and summary["failed"] == []
    assert ("d3", {"document_id": "d3"}) in drain(queues["doc"])
