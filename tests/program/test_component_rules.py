"""Component behaviour the stacks do not exercise: FIFO queues, and the checks that stop a program before AWS would
reject it at deploy time (each raises with a message naming the problem)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.document_bucket import LifecycleRule
from components.queue_with_dlq import QueueWithDLQArgs, visibility_for_consumer
from infra import iam
from infra.records import StackRecords
from plan.evaluate import evaluate_program

HEADER = '''
import pulumi
from components.function import Function, FunctionArgs
from components.queue_with_dlq import QueueWithDLQ, QueueWithDLQArgs
from infra.config import FunctionSettings
'''


def run(tmp_path: Path, body: str) -> StackRecords:
    program = tmp_path / "__main__.py"
    program.write_text(HEADER + body)
    return evaluate_program("dev", {}, [], program=program)


def test_fifo_queue_and_its_dlq_are_both_fifo(tmp_path: Path) -> None:
    records = run(tmp_path, '''
QueueWithDLQ("extract", QueueWithDLQArgs(base_name="search-text-extractor", stack="dev", alarm_topic_arn="arn:t",
                                          fifo=True, content_based_deduplication=True, max_receive_count=2))
''')
    queue, dlq = records.named("extract-queue"), records.named("extract-dlq")
    assert queue.inputs["name"] == "search-text-extractor-queue-dev.fifo"
    assert dlq.inputs["name"] == "search-text-extractor-dlq-dev.fifo"
    assert queue.inputs["fifoQueue"] is True and dlq.inputs["fifoQueue"] is True
    assert queue.inputs["contentBasedDeduplication"] is True
    assert json.loads(queue.inputs["redrivePolicy"]) == {"deadLetterTargetArn": dlq.outputs["arn"],
                                                         "maxReceiveCount": 2}


def test_a_queue_too_short_for_its_consumer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"visibility 30s is below the function timeout 60s.*deploy rule 1"):
        run(tmp_path, '''
queue = QueueWithDLQ("jobs", QueueWithDLQArgs(base_name="jobs", stack="dev", alarm_topic_arn="arn:t"))
Function("worker", FunctionArgs(function="delete_chat", stack="dev", log_retention_days=30, alarm_topic_arn="arn:t",
                                settings=FunctionSettings(timeout_seconds=60), consumes=queue))
''')


def test_reserved_lambda_environment_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['AWS_REGION'\] are reserved by Lambda"):
        run(tmp_path, '''
Function("worker", FunctionArgs(function="delete_chat", stack="dev", log_retention_days=30, alarm_topic_arn="arn:t",
                                settings=FunctionSettings(), environment={"AWS_REGION": "us-east-1"}))
''')


def test_visibility_for_consumer_is_six_times_the_timeout_within_sqs_limits() -> None:
    assert visibility_for_consumer(300) == 1800
    assert visibility_for_consumer(1) == 30
    assert visibility_for_consumer(900) == 5400
    with pytest.raises(ValueError, match="visibility timeout must be 0-43200"):
        QueueWithDLQArgs(base_name="q", stack="dev", alarm_topic_arn="arn:t", visibility_timeout_seconds=50000)


def test_delete_marker_cleanup_cannot_share_a_rule_with_an_expiry() -> None:
    with pytest.raises(ValueError, match="MalformedXML"):
        LifecycleRule(id="both", expire_days=1, expired_delete_markers=True)
    with pytest.raises(ValueError, match="does nothing"):
        LifecycleRule(id="empty")


def test_grants_refuse_wildcards_and_conflicting_labels() -> None:
    grants = iam.Grants("svc")
    with pytest.raises(ValueError, match="concrete actions"):
        grants.allow("all of s3", ["s3:*"], ["arn:aws:s3:::b"])
    with pytest.raises(ValueError, match="resource '\\*'"):
        grants.allow("any bucket", ["s3:GetObject"], ["*"])
    grants.allow("read", ["s3:GetObject"], ["arn:aws:s3:::b/*"])
    grants.allow("read", ["s3:GetObject"], ["arn:aws:s3:::b/*"])  # the same grant twice is one statement
    assert len(grants.statements) == 1
    with pytest.raises(ValueError, match="two different grants"):
        grants.allow("read", ["s3:GetObject"], ["arn:aws:s3:::other/*"])
    with pytest.raises(ValueError, match="must be an AWS service principal"):
        iam.assume_role_policy("arn:aws:iam::123456789012:root")
