"""deleted_item_poller: old soft-deleted items dispatched once, paginated, failed sends retried and reported."""

from __future__ import annotations

import json

import boto3
import pytest
from core import aws as core_aws
from deleted_item_poller.handler import DispatchError, handler


@pytest.fixture
def queues(database_secret, make_queue, monkeypatch):
    urls = {"search": make_queue("search-event"), "chat": make_queue("delete-chat"), "doc": make_queue("delete-doc")}
    monkeypatch.setenv("SEARCH_QUEUE_URL", urls["search"])
    monkeypatch.setenv("DELETE_CHAT_QUEUE_URL", urls["chat"])
    monkeypatch.setenv("DELETE_DOCUMENT_QUEUE_URL", urls["doc"])
    monkeypatch.setenv("DELETED_ITEM_PAGE_SIZE", "2")  # several keyset pages with a handful of rows
    return urls


@pytest.fixture
def seeded(pg):
    old, recent = "now() - interval '31 days'", "now() - interval '5 days'"
    for pid, when in (("p1", old), ("p2", recent)):
        pg.query(f'INSERT INTO "Project" (id, name, "userId", "deletedAt") VALUES (%s, %s, %s, {when})', pid, "n", "u")
    for cid, when in (("c1", old), ("c2", "NULL")):
        pg.query(f'INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES (%s, %s, {when})', cid, "u")
    for did, when in (("d1", old), ("d2", old), ("d3", old), ("d4", recent)):
        pg.query(f'INSERT INTO "Document" (id, owner, name, "deletedAt") VALUES (%s, %s, %s, {when})', did, "u", "n")


def _drain(url: str) -> list[tuple[str, dict[str, str]]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not msgs:
            return sorted(out)
        for m in msgs:
            out.append((m["Body"], {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_dispatches_old_items_once(queues, seeded, pg, lambda_context):
    summary = handler({}, lambda_context)
    assert summary == {"project": 1, "chat": 1, "document": 3, "failed": []}
    search = sorted((json.loads(body) for body, _ in _drain(queues["search"])), key=json.dumps)
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
    assert _drain(queues["chat"]) == [("c1", {"chat_id": "c1"})]
    assert _drain(queues["doc"]) == [(d, {"document_id": d}) for d in ("d1", "d2", "d3")]
    assert pg.query('SELECT id FROM "Project" ORDER BY id') == [["p2"]]  # projects have no worker: deleted here

    # The next run does not re-enqueue items waiting for their workers.
    assert handler({}, lambda_context) == {"project": 0, "chat": 0, "document": 0, "failed": []}
    assert _drain(queues["search"]) == [] and _drain(queues["doc"]) == []


def test_min_age_is_configurable(queues, seeded, lambda_context, monkeypatch):
    monkeypatch.setenv("DELETED_ITEM_MIN_AGE_DAYS", "1")
    assert handler({}, lambda_context)["document"] == 4
    monkeypatch.setenv("DELETED_ITEM_MIN_AGE_DAYS", "thirty")
    with pytest.raises(ValueError, match="DELETED_ITEM_MIN_AGE_DAYS"):
        handler({}, lambda_context)


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
    queues, seeded, pg, lambda_context, monkeypatch
):
    state = _flaky_sqs(monkeypatch, lambda body, _call: "d2" in body)  # d2 fails on every attempt
    with pytest.raises(DispatchError, match="document:d2") as err:
        handler({}, lambda_context)
    assert "document:d1" not in str(err.value)
    recorded = pg.query('SELECT "itemType", "itemId" FROM "DeletionDispatch" ORDER BY 1, 2')
    assert recorded == [["chat", "c1"], ["document", "d1"], ["document", "d3"], ["project", "p1"]]
    assert [body for body, _ in _drain(queues["doc"])] == ["d1", "d3"]
    _drain(queues["search"])

    state["should_fail"] = lambda body, call: False  # the queue recovers: the next run sends only d2
    assert handler({}, lambda_context) == {"project": 0, "chat": 0, "document": 1, "failed": []}
    assert _drain(queues["doc"]) == [("d2", {"document_id": "d2"})]


def test_a_transient_failure_is_retried_without_error(queues, seeded, lambda_context, monkeypatch):
    # d3 fails in the first two SendMessageBatch calls that carry it, then goes through on the retry.
    seen = {"n": 0}

    def flaky(body, _call):
        if "d3" not in body:
            return False
        seen["n"] += 1
        return seen["n"] <= 2

    _flaky_sqs(monkeypatch, flaky)
    summary = handler({}, lambda_context)
    assert summary["document"] == 3 and summary["failed"] == []
    assert ("d3", {"document_id": "d3"}) in _drain(queues["doc"])


def test_dispatched_jobs_are_consumed_by_the_delete_handlers(
    queues, pg, make_bucket, receive_sqs_event, lambda_context, monkeypatch
):
    """Poller → real queues → delete_document and delete_chat: the items are gone and nothing fails."""
    from delete_chat.handler import handler as delete_chat
    from delete_document.handler import handler as delete_document

    make_bucket("docs", versioned=True)
    monkeypatch.setenv("DOCUMENT_BUCKET", "docs")
    boto3.client("s3", region_name="us-east-1").put_object(Bucket="docs", Key="u/d1/1.pdf", Body=b"%PDF")
    pg.query(
        "INSERT INTO \"Document\" (id, owner, name, \"deletedAt\") VALUES ('d1', 'u', 'n', now() - interval '40 days')"
    )
    pg.query("INSERT INTO \"Chat\" (id, \"userId\", \"deletedAt\") VALUES ('c1', 'u', now() - interval '40 days')")
    handler({}, lambda_context)
    assert pg.query('SELECT count(*) FROM "DeletionDispatch"') == [[2]]
    assert delete_document(receive_sqs_event(queues["doc"]), lambda_context) == {"batchItemFailures": []}
    assert delete_chat(receive_sqs_event(queues["chat"]), lambda_context) == {"batchItemFailures": []}
    assert pg.query('SELECT (SELECT count(*) FROM "Document") + (SELECT count(*) FROM "Chat")') == [[0]]
    assert "Versions" not in boto3.client("s3", region_name="us-east-1").list_object_versions(Bucket="docs")
    assert handler({}, lambda_context)["failed"] == []
    assert pg.query('SELECT count(*) FROM "DeletionDispatch"') == [[0]]  # records of finished items are pruned
