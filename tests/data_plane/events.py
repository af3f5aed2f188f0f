"""Real AWS event samples (``shared/events/``, verbatim, sources in its ``SOURCES.md``), adapted for the tests.

Adapting changes *values only*, at paths that already exist in the sample, and keeps each value's JSON type: a
sample's structure is never rebuilt by hand (``set_value`` refuses a missing path or a type change). Where an event
carries several records or message attributes, every record is a copy of one of the sample's records and every
String attribute a copy of the sample's String attribute (aws-lambda-go's ``Attribute1``).

This module knows nothing of the world the handlers run in (buckets, queues, tables come from the fixtures), so the
same builders serve the handler tests and a harness that wires the world from the program's records.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"


def events_dir() -> Path:
    """``<repo>/../shared/events`` (CI keeps ``shared/`` beside the clone), else ``/work/shared/events``."""
    candidates = [REPO.parent / "shared" / "events", Path("/work/shared/events")]
    for path in candidates:
        if (path / "SOURCES.md").is_file():
            return path
    raise FileNotFoundError(f"no event samples (shared/events/SOURCES.md) in any of {[str(p) for p in candidates]}")


@cache
def _read(name: str) -> str:
    return (events_dir() / name).read_text(encoding="utf-8")


def sample(name: str) -> Any:
    """A fresh copy of a JSON sample (``powertools/snsEvent.json``)."""
    return json.loads(_read(name))


def text(name: str) -> str:
    """A plain-text sample exactly as stored, without the file's final newline."""
    return _read(name).removesuffix("\n")


# --------------------------------------------------------------------------------------------------------------------
# Values at existing paths


Path_ = tuple[str | int, ...]


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for step in path[:-1]:
        node = node[step]
    return node


def has(doc: Any, path: Path_) -> bool:
    try:
        parent = _parent(doc, path)
        return path[-1] in parent if isinstance(parent, dict) else 0 <= int(path[-1]) < len(parent)
    except (KeyError, IndexError, TypeError):
        return False


def set_value(doc: Any, path: Path_, value: Any) -> None:
    """Replace the value at ``path``, which must exist and keep its JSON type (an object stays an object, ...)."""
    assert has(doc, path), f"sample has no {'/'.join(map(str, path))}: adapt values, never add fields"
    parent = _parent(doc, path)
    old = parent[path[-1]]
    assert _json_type(old) == _json_type(value), (
        f"{'/'.join(map(str, path))}: {_json_type(old)} would become {_json_type(value)}"
    )
    parent[path[-1]] = value


def _json_type(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(type(value).__name__)
    return next(name for kind, name in JSON_TYPES if isinstance(value, kind))


JSON_TYPES = ((dict, "object"), (list, "array"), (str, "string"), (int | float, "number"))


def set_if_present(doc: Any, path: Path_, value: Any) -> None:
    if has(doc, path):
        set_value(doc, path, value)


def paths(doc: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every path in a JSON document (for structure comparisons)."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from paths(value, (*prefix, index))


# --------------------------------------------------------------------------------------------------------------------
# Object keys as events carry them (see lambdas/core/s3_events.py and shared/events/SOURCES.md)

KEY_ENCODINGS: dict[str, Callable[[str], str]] = {
    "form": lambda key: quote_plus(key, safe="/"),  # documented for notifications: "red flower.jpg" -> "red+flower.jpg"
    "form-slash": lambda key: quote_plus(key, safe=""),  # "/" as %2F too (aws/aws-sdk-js#837)
    "pct20": lambda key: quote(key, safe="/"),  # aws-lambda-go's "Happy%20Face.jpg"
    "as-is": lambda key: key,  # EventBridge, as reported from real events
    "pct-plus-kept": lambda key: quote(key, safe="/+"),  # EventBridge: spaces %20, "+" literal (medialake PR #21)
}
NOTIFICATION_ENCODINGS = ("form", "form-slash", "pct20")
EVENTBRIDGE_ENCODINGS = tuple(KEY_ENCODINGS)

S3_NOTIFICATION_SAMPLES = (
    "powertools/s3Event.json",
    "powertools/s3EventDecodedKey.json",
    "aws-lambda-go/s3-event.json",
    "awsdocs-s3/notification-content-structure.put-event.json",
)
S3_TEST_EVENT_SAMPLE = "awsdocs-s3/notification-content-structure.test-event.json"
EVENTBRIDGE_SAMPLES = (
    "powertools/s3EventBridgeNotificationObjectCreatedEvent.json",
    "awsdocs-s3/ev-events.object-created.json",
)
SQS_SAMPLES = ("powertools/sqsEvent.json", "aws-lambda-go/sqs-event.json")


def on_alternating_stacks(samples: tuple[str, ...]) -> list[Any]:
    """``(sample, stack)`` cases for ``parametrize(("name", "world"), ..., indirect=["world"])``: each sample once,
    the stacks taking turns, so every sample shape is read and both stacks' wiring delivers samples. For the tests
    that try every key encoding of a sample (a world and dozens of invocations each); the rest run on both stacks."""
    import pytest

    stacks = ("dev", "prod")
    return [pytest.param(sample, stacks[index % 2], id=f"{stacks[index % 2]}-{sample}")
            for index, sample in enumerate(samples)]
S3_IN_SQS_SAMPLE = "powertools/s3SqsEvent.json"
SNS_SAMPLES = ("powertools/snsEvent.json", "aws-lambda-go/sns-event.json")
SECRETS_ROTATION_SAMPLES = (
    "powertools/secretsManagerEvent.json",
    "aws-lambda-go/secretsmanager-secret-rotation-event.json",
)
SCHEDULED_SAMPLE = "aws-sam-cli/ScheduledEvent.json"


def s3_notification(
    name: str, bucket: str, key: str, *, encoding: str = "form", etag: str = "", version_id: str | None = None
) -> dict[str, Any]:
    """An S3 event notification sample for one object, its key encoded by ``encoding``."""
    event = sample(name)
    [record] = event["Records"]
    set_value(record, ("awsRegion",), REGION)
    set_value(record, ("s3", "bucket", "name"), bucket)
    set_value(record, ("s3", "bucket", "arn"), f"arn:aws:s3:::{bucket}")
    obj = ("s3", "object")
    set_value(record, (*obj, "key"), KEY_ENCODINGS[encoding](key))
    set_if_present(record, (*obj, "urlDecodedKey"), key)
    set_value(record, (*obj, "eTag"), etag.strip('"'))
    if version_id is not None:
        set_if_present(record, (*obj, "versionId"), version_id)
    return event


def s3_test_event(bucket: str) -> dict[str, Any]:
    """The ``s3:TestEvent`` S3 sends once when a notification configuration is saved."""
    event = sample(S3_TEST_EVENT_SAMPLE)
    set_value(event, ("Bucket",), bucket)
    return event


def s3_eventbridge_event(
    name: str, bucket: str, key: str, *, encoding: str = "as-is", etag: str = "", version_id: str | None = None
) -> dict[str, Any]:
    """An S3 "Object Created" EventBridge sample for one object, its key encoded by ``encoding``."""
    event = sample(name)
    set_value(event, ("id",), str(uuid.uuid4()))
    set_value(event, ("account",), ACCOUNT)
    set_value(event, ("region",), REGION)
    set_value(event, ("resources", 0), f"arn:aws:s3:::{bucket}")
    set_value(event, ("detail", "bucket", "name"), bucket)
    set_value(event, ("detail", "object", "key"), KEY_ENCODINGS[encoding](key))
    set_value(event, ("detail", "object", "etag"), etag.strip('"'))
    if version_id is not None:
        set_if_present(event, ("detail", "object", "version-id"), version_id)
    return event


def _string_attribute(value: str) -> dict[str, Any]:
    """aws-lambda-go's String message attribute (``Attribute1``) carrying ``value``."""
    attribute = sample("aws-lambda-go/sqs-event.json")["Records"][0]["messageAttributes"]["Attribute1"]
    set_value(attribute, ("stringValue",), value)
    return dict(attribute)


def sqs_event(
    name: str, *messages: tuple[str, dict[str, str]], queue_arn: str = f"arn:aws:sqs:{REGION}:{ACCOUNT}:queue"
) -> dict[str, Any]:
    """An SQS batch from a sample: message i is a copy of the sample's record ``i % n`` with ``(body, attributes)``.

    The sample's own message attributes stay (handlers must ignore what they do not read); ours are added as copies
    of the sample String attribute. Message ids are ``m0``, ``m1``, ...
    """
    event = sample(name)
    templates = event["Records"]
    records = []
    for index, (body, attributes) in enumerate(messages):
        record = copy.deepcopy(templates[index % len(templates)])
        set_value(record, ("messageId",), f"m{index}")
        set_value(record, ("receiptHandle",), f"rh-{index}")
        set_value(record, ("body",), body)
        set_value(record, ("eventSourceARN",), queue_arn)
        set_value(record, ("awsRegion",), REGION)
        merged = {**record["messageAttributes"], **{k: _string_attribute(v) for k, v in attributes.items()}}
        set_value(record, ("messageAttributes",), merged)
        records.append(record)
    set_value(event, ("Records",), records)
    return event


def sns_event(name: str, *messages: str, topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:topic") -> dict[str, Any]:
    """An SNS → Lambda event from a sample: record i is a copy of the sample's record with Message ``messages[i]``.

    SNS MessageIds are ``sns-0``, ``sns-1``, ...
    """
    event = sample(name)
    [template] = event["Records"]
    records = []
    for index, message in enumerate(messages):
        record = copy.deepcopy(template)
        set_value(record, ("EventSubscriptionArn",), f"{topic_arn}:{uuid.uuid4()}")
        set_value(record, ("Sns", "MessageId"), f"sns-{index}")
        set_value(record, ("Sns", "TopicArn"), topic_arn)
        set_value(record, ("Sns", "Message"), message)
        records.append(record)
    set_value(event, ("Records",), records)
    return event


def rotation_event(name: str, secret_arn: str, token: str, step: str) -> dict[str, Any]:
    """A Secrets Manager rotation invocation from a sample (``RotationToken``, when the sample has one, stays)."""
    event = sample(name)
    set_value(event, ("SecretId",), secret_arn)
    set_value(event, ("ClientRequestToken",), token)
    set_value(event, ("Step",), step)
    return event


def scheduled_event(rule: str = "schedule") -> dict[str, Any]:
    """The scheduled event (aws-sam-cli's template, its ``{{{...}}}`` placeholders filled as values)."""
    event = sample(SCHEDULED_SAMPLE)
    set_value(event, ("account",), ACCOUNT)
    set_value(event, ("region",), REGION)
    set_value(event, ("resources", 0), f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}")
    return event


# --------------------------------------------------------------------------------------------------------------------
# SES notifications (the SNS Message)

BOUNCE_SAMPLES = (
    "awsdocs-ses/notification-examples.bounce-with-dsn.json",
    "awsdocs-ses/notification-examples.bounce-without-dsn.json",
    "awsdocs-ses/event-publishing.bounce-record.json",
)
BOUNCE_OBJECT_SAMPLE = "awsdocs-ses/notification-contents.bounce-object.json"
COMPLAINT_WITH_FEEDBACK = "awsdocs-ses/notification-examples.complaint-with-feedback-report.json"
COMPLAINT_WITHOUT_FEEDBACK = "awsdocs-ses/notification-examples.complaint-without-feedback-report.json"
COMPLAINT_EVENT_RECORD = "awsdocs-ses/event-publishing.complaint-record.json"
DELIVERY_SAMPLE = "awsdocs-ses/notification-examples.delivery.json"
VALIDATION_MESSAGE = "other/ses-event-destination-validation-message.txt"
SUBSCRIPTION_SUCCEEDED = "other/ses-amazon-sns-subscription-succeeded.txt"

# The bounce types and subtypes SES documents (notification-contents.md, "Bounce types").
BOUNCE_TYPES = {
    "Undetermined": ("Undetermined",),
    "Permanent": ("General", "NoEmail", "Suppressed", "OnAccountSuppressionList"),
    "Transient": ("General", "MailboxFull", "MessageTooLarge", "ContentRejected", "AttachmentRejected"),
}
# complaintFeedbackType values SES documents (IANA feedback types).
FEEDBACK_TYPES = ("abuse", "auth-failure", "fraud", "not-spam", "other", "virus")


def _recipients(doc: Any, path: Path_, local: str) -> list[str]:
    """Give every recipient at ``path`` a distinct address ``{local}.{i}@example.com``; returns them."""
    addresses = []
    for index in range(len(_parent(doc, (*path, 0)))):
        address = f"{local}.{index}@example.com"
        set_value(doc, (*path, index, "emailAddress"), address)
        addresses.append(address)
    return addresses


def ses_bounce(name: str, bounce_type: str, sub_type: str, local: str) -> tuple[str, list[str], list[str]]:
    """A bounce notification (or event record) from a sample: (message JSON, every recipient, the failed ones).

    ``name`` may be BOUNCE_OBJECT_SAMPLE: that bounce object goes into the without-DSN notification's ``bounce``.
    """
    if name == BOUNCE_OBJECT_SAMPLE:
        message = sample("awsdocs-ses/notification-examples.bounce-without-dsn.json")
        set_value(message, ("bounce",), sample(BOUNCE_OBJECT_SAMPLE))
    else:
        message = sample(name)
    set_value(message, ("bounce", "bounceType"), bounce_type)
    set_value(message, ("bounce", "bounceSubType"), sub_type)
    recipients = _recipients(message, ("bounce", "bouncedRecipients"), local)
    entries = message["bounce"]["bouncedRecipients"]
    failed = [r for r, e in zip(recipients, entries, strict=True) if e.get("action", "failed") == "failed"]
    return json.dumps(message), recipients, failed


def ses_complaint(name: str, feedback_type: str | None, local: str) -> tuple[str, list[str]]:
    """A complaint notification (or event record): (message JSON, recipients); ``feedback_type`` None keeps the
    sample's (absent in the without-feedback-report sample)."""
    message = sample(name)
    if feedback_type is not None:
        set_value(message, ("complaint", "complaintFeedbackType"), feedback_type)
    recipients = _recipients(message, ("complaint", "complainedRecipients"), local)
    return json.dumps(message), recipients


def ses_delivery() -> str:
    return _read(DELIVERY_SAMPLE)
