"""An encrypted SQS queue with its dead-letter queue, redrive both ways, and an alarm on anything reaching the DLQ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child
from components.alarms import AlarmSpec, metric_alarm
from infra import iam
from infra.naming import physical

DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30
DEFAULT_MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600


def visibility_for_consumer(timeout_seconds: int, *, minimum: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS) -> int:
    """Visibility a queue needs for a Lambda consumer: AWS rejects a mapping whose queue visibility is below the
    function timeout and advises six times it, so a retried batch never overlaps a running one."""
    return min(MAX_VISIBILITY_TIMEOUT_SECONDS, max(minimum, 6 * timeout_seconds))


@dataclass(frozen=True, kw_only=True)
class QueueWithDLQArgs:
    base_name: str
    """Queue ``{base_name}-queue-{stack}`` and DLQ ``{base_name}-dlq-{stack}`` (``.fifo`` appended when FIFO)."""
    stack: str
    alarm_topic_arn: pulumi.Input[str]
    """On-call topic the DLQ alarm (and the optional age alarm) notify."""
    fifo: bool = False
    content_based_deduplication: bool = False
    visibility_timeout_seconds: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS
    """Derive it from the consumer with :func:`visibility_for_consumer` when a function consumes the queue."""
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT
    message_retention_seconds: int = 4 * 24 * 3600
    oldest_message_alarm_seconds: int | None = None
    """Alarm when the oldest message on the main queue is older than this (consumer stuck)."""

    def __post_init__(self) -> None:
        if not 0 <= self.visibility_timeout_seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS:
            raise ValueError(f"queue {self.base_name}: visibility timeout must be 0-43200 s")
        if not 1 <= self.max_receive_count <= 1000:
            raise ValueError(f"queue {self.base_name}: max receive count must be 1-1000")
        if self.message_retention_seconds >= DLQ_RETENTION_SECONDS:
            raise ValueError(f"queue {self.base_name}: the DLQ must keep messages longer than the queue")


class QueueWithDLQ(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    dlq_alarm: aws.cloudwatch.MetricAlarm
    policy: aws.sqs.QueuePolicy | None

    def __init__(self, name: str, args: QueueWithDLQArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:messaging:QueueWithDLQ", name, None, opts)
        self._name = name
        self.args = args
        self.policy = None
        suffix = ".fifo" if args.fifo else ""
        fifo = {"fifo_queue": True} if args.fifo else {}
        self.queue_name = physical(args.base_name, args.stack, suffix="queue") + suffix
        self.dlq_name = physical(args.base_name, args.stack, suffix="dlq") + suffix

        self.dlq = aws.sqs.Queue(f"{name}-dlq", name=self.dlq_name, message_retention_seconds=DLQ_RETENTION_SECONDS,
                                 sqs_managed_sse_enabled=True, **fifo, opts=child(self))
        self.queue = aws.sqs.Queue(
            f"{name}-queue", name=self.queue_name, visibility_timeout_seconds=args.visibility_timeout_seconds,
            message_retention_seconds=args.message_retention_seconds, sqs_managed_sse_enabled=True,
            content_based_deduplication=args.content_based_deduplication if args.fifo else None,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.dlq.arn,
                                                     "maxReceiveCount": args.max_receive_count}),
            **fifo, opts=child(self))
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow", queue_url=self.dlq.url,
            redrive_allow_policy=pulumi.Output.json_dumps({"redrivePermission": "byQueue",
                                                           "sourceQueueArns": [self.queue.arn]}),
            opts=child(self))

        self.dlq_alarm = metric_alarm(self, f"{name}-dlq-alarm", AlarmSpec(
            name=physical(args.base_name, args.stack, suffix="dlq-alarm"),
            description=f"Messages in {self.dlq_name}: {self.queue_name} could not process them; inspect and redrive.",
            namespace="AWS/SQS", metric="ApproximateNumberOfMessagesVisible", statistic="Maximum",
            dimensions={"QueueName": self.dlq.name}, threshold=0, comparison="GreaterThanThreshold",
            period=60, evaluation_periods=1), args.alarm_topic_arn)
        self.age_alarm = None
        if args.oldest_message_alarm_seconds:
            self.age_alarm = metric_alarm(self, f"{name}-age-alarm", AlarmSpec(
                name=physical(args.base_name, args.stack, suffix="age-alarm"),
                description=f"The oldest message on {self.queue_name} waits too long: its consumer is stuck.",
                namespace="AWS/SQS", metric="ApproximateAgeOfOldestMessage", statistic="Maximum",
                dimensions={"QueueName": self.queue.name}, threshold=args.oldest_message_alarm_seconds,
                comparison="GreaterThanThreshold", period=300, evaluation_periods=2), args.alarm_topic_arn)

        self.register_outputs({"queue_url": self.queue.url, "queue_arn": self.queue.arn, "dlq_arn": self.dlq.arn})

    def grant_send(self, grants: iam.Grants) -> None:
        grants.allow(f"send to {self.queue_name}", ["sqs:SendMessage", "sqs:GetQueueAttributes"], [self.queue.arn])

    def grant_consume(self, grants: iam.Grants) -> None:
        """What a Lambda event source mapping (or a long-polling worker) needs, and no more."""
        grants.allow(f"consume {self.queue_name}",
                     ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                      "sqs:ChangeMessageVisibility"], [self.queue.arn])

    def allow_service_senders(self, service: str, source_arns: Sequence[pulumi.Input[str]]) -> aws.sqs.QueuePolicy:
        """The queue's one resource policy: let an AWS service (EventBridge, SNS) send, only from these sources."""
        if self.policy is not None:
            raise ValueError(f"{self._name}: the queue policy already exists; pass every source in one call")
        statement = {
            "Sid": "AllowServiceSend", "Effect": "Allow", "Principal": {"Service": service},
            "Action": "sqs:SendMessage", "Resource": self.queue.arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": list(source_arns)}},
        }
        self.policy = aws.sqs.QueuePolicy(f"{self._name}-policy", queue_url=self.queue.url,
                                          policy=iam.document([statement]), opts=child(self))
        return self.policy

    def allow_dlq_senders(self, service: str, source_arns: Sequence[pulumi.Input[str]]) -> aws.sqs.QueuePolicy:
        """Let a service deliver failed events to the DLQ (an EventBridge target's dead-letter queue)."""
        statement = {
            "Sid": "AllowServiceDeadLetter", "Effect": "Allow", "Principal": {"Service": service},
            "Action": "sqs:SendMessage", "Resource": self.dlq.arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": list(source_arns)}},
        }
        return aws.sqs.QueuePolicy(f"{self._name}-dlq-policy", queue_url=self.dlq.url,
                                   policy=iam.document([statement]), opts=child(self))

