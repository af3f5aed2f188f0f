"""An EventBridge rule on the default bus (an event pattern or a schedule) whose targets retry and dead-letter.

Wiring a target is one line: ``rule.send_to_function(fn)`` or ``rule.send_to_queue(queue)``. Events a target cannot
take after the retries land in the rule's own dead-letter queue, which alarms like every other DLQ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components._options import child
from components.alarms import AlarmSpec, metric_alarm
from components.function import Function
from components.queue_with_dlq import QueueWithDLQ
from infra import iam

_SCHEDULE = re.compile(r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$")


def object_created_pattern(bucket_name: pulumi.Input[str], key_filter: list[dict[str, Any]] | None = None) -> Any:
    """S3 "Object Created" events of one bucket, optionally filtered on the key."""
    detail: dict[str, Any] = {"bucket": {"name": [bucket_name]}}
    if key_filter:
        detail["object"] = {"key": key_filter}
    return pulumi.Output.json_dumps({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail})


@dataclass(frozen=True, kw_only=True)
class EventRuleArgs:
    rule_name: str
    stack: str
    account_id: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    description: str
    event_pattern: pulumi.Input[str] | None = None
    schedule_expression: str | None = None
    """``rate(4 hours)`` or ``cron(0 3 * * ? *)`` (EventBridge syntax: singular unit for 1, six cron fields)."""
    maximum_retry_attempts: int = 8
    maximum_event_age_seconds: int = 3600

    def __post_init__(self) -> None:
        if (self.event_pattern is None) == (self.schedule_expression is None):
            raise ValueError(f"rule {self.rule_name}: give exactly one of event_pattern or schedule_expression")
        if self.schedule_expression is not None and not _SCHEDULE.fullmatch(self.schedule_expression):
            raise ValueError(f"rule {self.rule_name}: {self.schedule_expression!r} is not an EventBridge schedule "
                             "(rate(1 hour), rate(4 hours), cron(0 3 * * ? *))")


class EventRule(pulumi.ComponentResource):
    rule: aws.cloudwatch.EventRule
    dlq: aws.sqs.Queue

    def __init__(self, name: str, args: EventRuleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:events:EventRule", name, None, opts)
        self._name = name
        self.args = args
        self.physical_name = f"{args.rule_name}-{args.stack}"
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-rule", name=self.physical_name, description=args.description,
            event_pattern=args.event_pattern, schedule_expression=args.schedule_expression, opts=child(self))
        self.dlq = aws.sqs.Queue(f"{name}-dlq", name=f"{self.physical_name}-target-dlq", sqs_managed_sse_enabled=True,
                                 message_retention_seconds=14 * 24 * 3600, opts=child(self))
        aws.sqs.QueuePolicy(f"{name}-dlq-policy", queue_url=self.dlq.url, policy=iam.document([{
            "Sid": "RuleDeadLetters", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": self.dlq.arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": self.rule.arn}},
        }]), opts=child(self))
        metric_alarm(self, f"{name}-dlq-alarm", AlarmSpec(
            name=f"{self.physical_name}-target-dlq", description=f"Events of rule {self.physical_name} could not be "
            "delivered to their target after retries; they wait in the rule's DLQ.", namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible", dimensions={"QueueName": self.dlq.name}, threshold=0),
            args.alarm_topic_arn)
        self.targets: list[aws.cloudwatch.EventTarget] = []
        self.register_outputs({"rule_arn": self.rule.arn})

    def _target(self, label: str, arn: pulumi.Input[str], depends_on: list[pulumi.Resource],
                **extra: Any) -> aws.cloudwatch.EventTarget:
        target = aws.cloudwatch.EventTarget(
            f"{self._name}-target-{label}", rule=self.rule.name, arn=arn,
            retry_policy={"maximum_retry_attempts": self.args.maximum_retry_attempts,
                          "maximum_event_age_in_seconds": self.args.maximum_event_age_seconds},
            dead_letter_config={"arn": self.dlq.arn}, **extra, opts=child(self, depends_on=depends_on))
        self.targets.append(target)
        return target

    def send_to_function(self, function: Function) -> aws.cloudwatch.EventTarget:
        """Invoke the function, allowed only from this rule."""
        permission = function.allow_invoke("events.amazonaws.com", self.rule.arn, self.args.account_id,
                                           label=self._name)
        return self._target(function._name, function.function.arn, [permission])

    def send_to_queue(self, queue: QueueWithDLQ) -> aws.cloudwatch.EventTarget:
        """Deliver to the queue, whose policy admits this rule only."""
        policy = queue.allow_service_senders("events.amazonaws.com", [self.rule.arn])
        return self._target(queue._name, queue.queue.arn, [policy])

