"""text_extractor fed real event samples (EventBridge "Object Created", SQS), every key encoding reported for each.

Keys are stored as the platform writes them (``{urlencoded user}/...``) and as other writers do (a raw user id with
``|``, ``+``, ``@``, spaces, unicode); each EventBridge sample delivers them in every encoding seen in the wild
(``tests/data_plane/events.py``, ``shared/events/SOURCES.md``). Whatever the encoding, the existing object is
extracted and the search event names its real user. On each stack's recorded wiring (``world``; the every-encoding
tests take one stack per sample, in turn): the samples carry the recorded document bucket and extractor queue, and
reach the handler only if a recorded trigger delivers them.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.data_plane import events
from tests.data_plane.documents import make_pdf
from tests.data_plane.test_text_extractor import FUNCTION, QUEUE, search_messages, status
from tools.harness.world import UnwiredEvent, World

# (object key, owner) as stored; every key is a valid document key whose first segment decodes to the owner.
KEYS = {
    "platform-encoded user (unicode, space, +)": (
        f"{quote('macro|Zoë Ünal+docs@example.com', safe='')}/doc-enc/converted.pdf",
        "macro|Zoë Ünal+docs@example.com",
    ),
    "raw user with +": ("macro|dana+docs@example.com/doc-plus/1.txt", "macro|dana+docs@example.com"),
    "raw user with space and +": (
        "macro|Dana Smith+docs@example.com/doc-space/1.pdf",
        "macro|Dana Smith+docs@example.com",
    ),
    "raw unicode user": ("macro|zoë+ünal@exämple.com/doc-ü/2.md", "macro|zoë+ünal@exämple.com"),
}


def put(world: World, key: str, text: str) -> dict:
    """Store an object (the delivery it causes is dropped: each test delivers its sample)."""
    body = make_pdf([text]) if key.endswith(".pdf") else text.encode()
    stored = world.s3.put_object(Bucket=world.bucket("documents"), Key=key, Body=body)
    world.pending.clear()
    return stored


def queue_arn(world: World) -> str:
    return world.sqs.get_queue_attributes(QueueUrl=world.queue_url(QUEUE),
                                          AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def eventbridge(world: World, name: str, key: str, **kwargs) -> dict:
    return events.s3_eventbridge_event(name, world.bucket("documents"), key, **kwargs)


def indexing_error(world: World, pg, key: str, owner: str) -> str | None:
    """None when the document was extracted and announced for ``owner``; else what went wrong."""
    document_id, filename = key.split("/")[1:]
    version, extension = filename.rsplit(".", 1)
    expected = {"user_id": owner, "document_id": document_id, "file_type": extension, "document_version_id": version}
    recorded, sent = status(pg, document_id), search_messages(world)
    if recorded != ("extracted", None) or sent != [{"ExtractDocumentText": expected}]:
        return f"status {recorded}, search events {sent}"
    return None


def assert_indexed(world: World, pg, key: str, owner: str) -> None:
    assert indexing_error(world, pg, key, owner) is None, indexing_error(world, pg, key, owner)


def for_document(key: str, tag: str) -> str:
    """The same key for another document (``doc-x`` -> ``doc-x-{tag}``), so several cases share one world."""
    user, document_id, filename = key.split("/")
    return f"{user}/{document_id}-{tag}/{filename}"


# Each sample once, the stacks taking turns (every encoding of a sample is a world and dozens of invocations).
EVENTBRIDGE_CASES = events.on_alternating_stacks(events.EVENTBRIDGE_SAMPLES)


@pytest.mark.parametrize(("name", "world"), EVENTBRIDGE_CASES, indirect=["world"])
def test_eventbridge_samples_in_every_key_encoding(name, world: World, pg):
    """Every (encoding, key) a case: each object is extracted and announced for its owner, whatever the encoding."""
    failures = {}
    for encoding in events.EVENTBRIDGE_ENCODINGS:
        for label, (template, owner) in KEYS.items():
            key = for_document(template, encoding)
            stored = put(world, key, f"text of {label}")
            event = eventbridge(world, name, key, encoding=encoding, etag=stored["ETag"],
                                version_id=stored["VersionId"])
            result = world.invoke(FUNCTION, event)
            error = indexing_error(world, pg, key, owner)
            if result.get("outcome") != "extracted" or result.get("key") != key or error:
                failures[encoding, label] = (result, error)
    assert not failures, "\n".join(f"{case}: {outcome}" for case, outcome in failures.items())


@pytest.mark.parametrize("name", events.SQS_SAMPLES)
def test_sqs_samples_carry_the_plain_key(name, world: World, pg):
    failures = {}
    for label, (key, owner) in KEYS.items():
        put(world, key, f"text of {label}")
        event = events.sqs_event(name, (key.split("/")[1], {"key": key, "bucket": world.bucket("documents")}),
                                 queue_arn=queue_arn(world))
        result = world.invoke(FUNCTION, event)
        error = indexing_error(world, pg, key, owner)
        if result != {"batchItemFailures": []} or error:
            failures[label] = (result, error)
    assert not failures, "\n".join(f"{case}: {outcome}" for case, outcome in failures.items())


def test_one_sqs_batch_of_every_key(world: World, pg):
    """Powertools' two-record sample as the template of a four-message batch (its Number attribute included). The
    recorded mapping delivers fewer at a time (``invoke`` refuses it); the handler takes a full batch all the same."""
    for label, (key, _) in KEYS.items():
        put(world, key, f"text of {label}")
    messages = [(key.split("/")[1], {"key": key, "bucket": world.bucket("documents")}) for key, _ in KEYS.values()]
    event = events.sqs_event("powertools/sqsEvent.json", *messages, queue_arn=queue_arn(world))
    with pytest.raises(UnwiredEvent, match="delivers at most"):
        world.invoke(FUNCTION, event)
    assert world.run(FUNCTION, event) == {"batchItemFailures": []}
    sent = {m["ExtractDocumentText"]["document_id"]: m["ExtractDocumentText"]["user_id"]
            for m in search_messages(world)}
    assert sent == {key.split("/")[1]: owner for key, owner in KEYS.values()}


def test_an_s3_notification_on_the_extractor_queue_fails_naming_the_message(world: World, pg):
    """Powertools' S3-in-SQS sample: not this queue's message shape, so it goes back to the queue (then the DLQ)."""
    key, _ = KEYS["raw user with +"]
    put(world, key, "text")
    event = events.sample(events.S3_IN_SQS_SAMPLE)
    [record] = event["Records"]
    body = json.loads(record["body"])
    body["Records"][0]["s3"]["bucket"]["name"] = world.bucket("documents")  # a value at an existing path
    body["Records"][0]["s3"]["object"]["key"] = key
    events.set_value(record, ("body",), json.dumps(body))
    events.set_value(record, ("eventSourceARN",), queue_arn(world))
    result = world.invoke(FUNCTION, event)
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert search_messages(world) == [] and status(pg, key.split("/")[1]) == ()


# --------------------------------------------------------------------------------------------------------------------
# The two ways the old "unquote_plus, then the raw key" rule failed (both fail on that code)


def test_literal_plus_delivered_unencoded_names_the_right_user(world: World, pg):
    key, owner = KEYS["raw user with +"]
    put(world, key, "dana's document")
    world.invoke(FUNCTION, eventbridge(world, events.EVENTBRIDGE_SAMPLES[0], key, encoding="as-is"))
    [message] = search_messages(world)
    assert message["ExtractDocumentText"]["user_id"] == owner  # the old code said "macro|dana docs@example.com"


def test_spaces_as_pct20_with_literal_plus_is_extracted_not_recorded_missing(world: World, pg):
    key, owner = KEYS["raw user with space and +"]
    put(world, key, "dana smith's document")
    result = world.invoke(FUNCTION, eventbridge(world, events.EVENTBRIDGE_SAMPLES[1], key, encoding="pct-plus-kept"))
    assert result["outcome"] == "extracted", result  # the old code: "object no longer exists (deleted ...)"
    assert_indexed(world, pg, key, owner)


@pytest.mark.parametrize("name", events.EVENTBRIDGE_SAMPLES)
def test_when_two_decodings_exist_the_events_version_decides(name, world: World, pg):
    """``x y/...`` form-encoded is ``x+y/...``, and ``x+y/...`` exists too: the event's ETag/version picks ``x y``."""
    spaced, plus = "x y/doc-amb/1.pdf", "x+y/doc-amb/1.pdf"
    put(world, plus, "the plus document")
    meant = put(world, spaced, "the spaced document")
    event = eventbridge(world, name, spaced, encoding="form", etag=meant["ETag"], version_id=meant["VersionId"])
    result = world.invoke(FUNCTION, event)
    assert (result["outcome"], result["key"]) == ("extracted", spaced)
    assert search_messages(world)[0]["ExtractDocumentText"]["user_id"] == "x y"


def test_a_deleted_object_is_recorded_missing_in_every_encoding(world: World, pg):
    template, _ = KEYS["raw user with space and +"]
    for encoding in events.EVENTBRIDGE_ENCODINGS:
        key = for_document(template, encoding)
        result = world.invoke(FUNCTION, eventbridge(world, events.EVENTBRIDGE_SAMPLES[0], key, encoding=encoding))
        assert result["outcome"] == "skipped" and "no longer exists" in result["reason"], (encoding, result)
        assert status(pg, key.split("/")[1])[0] == "skipped"


@pytest.mark.parametrize("encoding", ["form", "as-is"])
def test_a_document_deleted_after_extraction_is_recorded_missing(encoding, world: World, pg):
    """The status names the key it was extracted from; a later event for that object, gone by then, still says so."""
    key, _ = KEYS["raw user with space and +"]
    put(world, key, "soon deleted")
    name = events.EVENTBRIDGE_SAMPLES[0]
    assert world.invoke(FUNCTION, eventbridge(world, name, key))["outcome"] == "extracted"
    world.s3.delete_object(Bucket=world.bucket("documents"), Key=key)
    world.pending.clear()
    result = world.invoke(FUNCTION, eventbridge(world, name, key, encoding=encoding))
    assert result["outcome"] == "skipped"
    assert pg.query('SELECT status, "sourceKey" FROM "DocumentTextExtraction"') == [["skipped", key]]


def test_samples_keep_their_structure():
    """Adapting changes values only: every path of each sample is still there, and no path was added."""
    for name in events.EVENTBRIDGE_SAMPLES:
        adapted = events.s3_eventbridge_event(name, "a-bucket", "a b/c/1.pdf", encoding="form")
        assert set(events.paths(adapted)) == set(events.paths(events.sample(name)))
        assert adapted["detail"]["object"]["key"] == "a+b/c/1.pdf"
    with pytest.raises(AssertionError, match="never add fields"):
        events.set_value(events.sample(events.EVENTBRIDGE_SAMPLES[0]), ("detail", "object", "version-id"), "v")
    with pytest.raises(AssertionError, match="would become"):
        events.set_value(events.sample(events.EVENTBRIDGE_SAMPLES[0]), ("detail", "object", "size"), "12")
