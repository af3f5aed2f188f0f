"""bulk_upload fed real samples: S3 "Object Created" EventBridge events (every key encoding) inside real SQS records,
and the reference's ExtractZip message in each SQS sample. On each stack's recorded wiring (``world``; one stack per
EventBridge sample, in turn, for the every-encoding test): the staging bucket and the bulk-upload queue are the
recorded ones, and the records reach the handler through ``invoke``."""

from __future__ import annotations

import json

import pytest

from tests.data_plane import events
from tests.data_plane.test_bulk_upload import FUNCTION, QUEUE, make_zip, meta, new_request, sqs_event
from tools.harness.world import World

# A generated id and one with a space, a "+" and a non-ASCII letter (the key is extract/{request id}).
REQUEST_IDS = ("5f0c1d2e-8b3a-4c5d-9e6f-7a8b9c0d1e2f", "upload 2026+ü")


def upload(world: World, rid: str) -> dict:
    """A request and its zip in the staging bucket; returns the PutObject response (ETag, version)."""
    new_request(world, None, rid)
    stored = world.put_object("bulk-upload-staging", f"extract/{rid}", make_zip({"a.txt": b"hello"}))
    world.messages(world.queue_url(QUEUE))  # what the recorded rule queued: each test delivers its own sample
    return stored


def sqs_sample_event(world: World, sample: str, body: str) -> dict:
    """An SQS sample carrying ``body``, from the recorded bulk-upload queue."""
    queue_arn = sqs_event(world, body)["Records"][0]["eventSourceARN"]
    return events.sqs_event(sample, (body, {}), queue_arn=queue_arn)


# Each sample once, the stacks taking turns (every encoding of a sample is a world and dozens of invocations).
EVENTBRIDGE_CASES = events.on_alternating_stacks(events.EVENTBRIDGE_SAMPLES)


@pytest.mark.parametrize(("name", "world"), EVENTBRIDGE_CASES, indirect=["world"])
def test_eventbridge_samples_in_sqs_samples_in_every_key_encoding(name, world: World, pg):
    """An id with a space, "+" and "ü" (a generated id reads the same in every encoding), alternating SQS samples."""
    failures = {}
    for index, encoding in enumerate(events.EVENTBRIDGE_ENCODINGS):
        rid = f"{REQUEST_IDS[1]} {encoding}"
        stored = upload(world, rid)
        body = events.s3_eventbridge_event(name, world.bucket("bulk-upload-staging"), f"extract/{rid}",
                                           encoding=encoding, etag=stored["ETag"])
        event = sqs_sample_event(world, events.SQS_SAMPLES[index % 2], json.dumps(body))
        result = world.invoke(FUNCTION, event)
        status = meta(world, rid)["status"]
        if result != {"batchItemFailures": []} or status != "completed":
            failures[encoding] = (result, status)
    assert not failures, "\n".join(f"{case}: {outcome}" for case, outcome in failures.items())


@pytest.mark.parametrize("sqs_sample", events.SQS_SAMPLES)
def test_extract_zip_messages_in_each_sqs_sample(sqs_sample, world: World, pg):
    for rid in REQUEST_IDS:
        upload(world, rid)
        message = {"ExtractZip": {"upload_request_id": rid, "key": f"extract/{rid}"}}
        assert world.invoke(FUNCTION, sqs_sample_event(world, sqs_sample, json.dumps(message))) == {
            "batchItemFailures": []
        }
        assert meta(world, rid)["status"] == "completed"
