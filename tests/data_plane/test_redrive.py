"""A poison message on a real (moto) queue with the program's redrive settings ends in the DLQ, not in a log line.

The loop plays Lambda's SQS event source with ReportBatchItemFailures: receive, invoke, delete only the records not
reported as failed. The poison record is reported failed on every receive, so after maxReceiveCount receives
(``DEFAULT_MAX_RECEIVE_COUNT`` from the program's queue component) SQS moves it to the DLQ; the valid message in
the same batches is consumed once.
"""

from __future__ import annotations

import boto3
from delete_chat.handler import handler

from components.queue_with_dlq import DEFAULT_MAX_RECEIVE_COUNT


def test_poison_message_lands_in_the_dlq_after_max_receives(
    database_secret, pg, make_queue, receive_sqs_event, lambda_context
):
    pg.query('INSERT INTO "Chat" (id, "userId", "deletedAt") VALUES (%s, %s, now())', "c1", "u")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = make_queue(
        "delete-chat-handler", max_receive=DEFAULT_MAX_RECEIVE_COUNT, visibility=0
    )  # 0: failed records reappear at once
    sqs.send_message(
        QueueUrl=queue, MessageBody="c1", MessageAttributes={"chat_id": {"DataType": "String", "StringValue": "c1"}}
    )
    sqs.send_message(QueueUrl=queue, MessageBody="poison")  # no chat_id attribute: can never succeed

    invocations, failures = 0, []
    for _ in range(2 * DEFAULT_MAX_RECEIVE_COUNT):
        event = receive_sqs_event(queue)
        if not event["Records"]:
            break
        invocations += 1
        failed = {f["itemIdentifier"] for f in handler(event, lambda_context)["batchItemFailures"]}
        failures.extend(failed)
        for record in event["Records"]:
            if record["messageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=record["receiptHandle"])

    assert (
        len(failures) == DEFAULT_MAX_RECEIVE_COUNT and len(set(failures)) == 1
    )  # the poison message, once per receive
    assert pg.query('SELECT count(*) FROM "Chat"') == [[0]]  # the valid message was processed
    dead = sqs.receive_message(QueueUrl=queue.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert invocations == DEFAULT_MAX_RECEIVE_COUNT
