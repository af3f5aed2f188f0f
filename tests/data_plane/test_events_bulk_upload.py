"""bulk_upload fed real samples: S3 "Object Created" EventBridge events (every key encoding) inside real SQS records,
and the reference's ExtractZip message in each SQS sample."""

from __future__ import annotations

import json

import pytest
from core import aws

from tests.data_plane import events
from tests.data_plane.test_bulk_upload import STAGING, bulk, env, make_zip, meta, new_request  # noqa: F401 (env)

# A generated id and one with a space, a "+" and a non-ASCII letter (the key is extract/{request id}).
REQUEST_IDS = ("5f0c1d2e-8b3a-4c5d-9e6f-7a8b9c0d1e2f", "upload 2026+ü")


def upload(rid: str) -> dict:
    """A request and its zip in the staging bucket; returns the PutObject response (ETag, version)."""
    new_request(None, rid=rid)
    return aws.client("s3").put_object(Bucket=STAGING, Key=f"extract/{rid}", Body=make_zip({"a.txt": b"hello"}))


@pytest.mark.parametrize("name", events.EVENTBRIDGE_SAMPLES)
def test_eventbridge_samples_in_sqs_samples_in_every_key_encoding(name, env, pg, lambda_context):  # noqa: F811
    """An id with a space, "+" and "ü" (a generated id reads the same in every encoding), alternating SQS samples."""
    failures = {}
    for index, encoding in enumerate(events.EVENTBRIDGE_ENCODINGS):
        rid = f"{REQUEST_IDS[1]} {encoding}"
        stored = upload(rid)
        body = events.s3_eventbridge_event(name, STAGING, f"extract/{rid}", encoding=encoding, etag=stored["ETag"])
        event = events.sqs_event(events.SQS_SAMPLES[index % 2], (json.dumps(body), {}))
        result, status = bulk.handler(event, lambda_context), meta(rid)["status"]
        if result != {"batchItemFailures": []} or status != "completed":
            failures[encoding] = (result, status)
    assert not failures, "\n".join(f"{case}: {outcome}" for case, outcome in failures.items())


@pytest.mark.parametrize("sqs_sample", events.SQS_SAMPLES)
def test_extract_zip_messages_in_each_sqs_sample(sqs_sample, env, pg, lambda_context):  # noqa: F811
    for rid in REQUEST_IDS:
        upload(rid)
        message = {"ExtractZip": {"upload_request_id": rid, "key": f"extract/{rid}"}}
        assert bulk.handler(events.sqs_event(sqs_sample, (json.dumps(message), {})), lambda_context) == {
            "batchItemFailures": []
        }
        assert meta(rid)["status"] == "completed"
