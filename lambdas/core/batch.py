"""SQS batch handling with partial failures: a record that raises is reported in ``batchItemFailures``.

The event source mapping must enable ``ReportBatchItemFailures``; then only failed records return to the queue and,
after ``maxReceiveCount`` receives, land in its DLQ. Nothing is consumed silently: every failure is logged with the
message id and reason before it is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from core.logging import logger


class BadMessage(ValueError):
    """A message that can never succeed (wrong shape); the text names the message id."""


def attribute(record: SQSRecord, name: str, *, required: bool = True) -> str | None:
    """A String message attribute, stripped; BadMessage naming the message when required and absent or empty."""
    attr = record.message_attributes[name]
    value = (attr.string_value or "").strip() if attr is not None else ""
    if not value:
        if required:
            raise BadMessage(f"message {record.message_id} has no {name!r} message attribute")
        return None
    return value


def item_id(record: SQSRecord, name: str) -> str:
    """The id carried by the ``name`` attribute; the body, when present, must carry the same id.

    Ids are opaque, but never contain whitespace, slashes or control characters, and are at most 200 characters:
    anything else is a malformed message, not a missing item.
    """
    value = attribute(record, name)
    assert value is not None
    if len(value) > 200 or any(ch.isspace() or ch == "/" or ord(ch) < 32 for ch in value):
        raise BadMessage(f"message {record.message_id} has an invalid {name} {value[:80]!r}")
    body = (record.body or "").strip()
    if body and body != value:
        raise BadMessage(f"message {record.message_id}: body {body[:80]!r} does not match {name} {value!r}")
    return value


def process_sqs(event: dict[str, Any], context: Any, record_handler: Callable[[SQSRecord], None]) -> dict[str, Any]:
    """Run ``record_handler`` on every record; returns the ``{"batchItemFailures": [...]}`` response."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise ValueError("event is not an SQS batch (no Records list)")

    def handle(record: SQSRecord) -> None:
        try:
            record_handler(record)
        except Exception as exc:
            logger.exception(
                "message failed; reported as a batch item failure",
                extra={"message_id": record.message_id, "reason": f"{type(exc).__name__}: {exc}"},
            )
            raise

    # Raising on an all-failed batch would mark the invocation as an error and retry every record, successes too.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(event=event, record_handler=handle, processor=processor, context=context))
