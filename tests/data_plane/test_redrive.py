"""A poison message on the recorded delete-chat queue ends in the recorded DLQ, not in a log line (both stacks).

The world's event source mapping plays Lambda's SQS poller with the recorded batch size and ReportBatchItemFailures:
receive, invoke, delete only the records not reported as failed. The poison record is reported failed on every
receive, so after the recorded maxReceiveCount receives moto's SQS moves it to the recorded DLQ, whose recorded
alarm then fires; the valid message in the same batches is consumed once.
"""

from __future__ import annotations

import json

from tools.harness.world import World


def max_receive_count(world: World, queue: str) -> int:
    attributes = world.sqs.get_queue_attributes(QueueUrl=world.queue_url(queue), AttributeNames=["RedrivePolicy"])
    return int(json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"])


def test_poison_message_lands_in_the_dlq_after_max_receives(world: World, pg):
    pg.query('INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES (%s, %s, now())', "c1", "u")
    world.send_message("delete-chat-handler", "c1", {"chat_id": "c1"})
    world.send_message("delete-chat-handler", "poison")  # no chat_id attribute: can never succeed
    runs = world.settle()

    receives = max_receive_count(world, "delete-chat-handler")
    failures = [f["itemIdentifier"] for run in runs for f in run.result["batchItemFailures"]]
    assert len(failures) == receives and len(set(failures)) == 1  # the poison message, once per receive
    assert len(runs) == receives and all(run.function == "delete_chat" for run in runs)
    assert pg.query('SELECT count(*) FROM "Chat"') == [[0]]  # the valid message was processed
    dead = world.messages(world.dlq_url("delete-chat-handler"), delete=False)
    assert [m["Body"] for m in dead] == ["poison"]
    dlq_name = world.dlq_url("delete-chat-handler").rsplit("/", 1)[1]
    assert [a.queue for a in world.alarms_firing()] == [dlq_name]  # the DLQ's alarm, and no other, would page
