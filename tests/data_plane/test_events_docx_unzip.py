"""docx_unzip fed real S3 notification samples, the key in each encoding S3 notifications are seen with, and the
``s3:TestEvent`` S3 sends when the notification is configured (acknowledged, never a failure). On each stack's
recorded wiring (``world``; one stack per sample, in turn, for the every-encoding test): the samples name the recorded
upload bucket and reach the handler through ``invoke``."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.data_plane import events
from tests.data_plane.test_docx_unzip import (  # noqa: F401 (env: the fixture)
    DOC,
    FUNCTION,
    env,
    job_row,
    key_for,
    make_docx,
    messages,
    put,
)
from tools.harness.world import World

# (user, bom id): stored as the platform writes them (user percent-encoded) and as a raw user segment.
UPLOADS = {
    "platform-encoded user (unicode, space, +)": ("macro|Zoë Ünal+docs@example.com", 42),
    "raw user (unicode, space, +)": ("macro|Zoë Ünal+docs@exämple.com", 43),
}
RAW = {"raw user (unicode, space, +)"}


def upload_key(label: str, bom: int) -> str:
    user = UPLOADS[label][0]
    return f"{user}/{DOC}/{bom}.docx" if label in RAW else key_for(bom=bom, user=user)


# Each sample once, the stacks taking turns (every encoding of a sample is a world and dozens of invocations).
NOTIFICATION_CASES = events.on_alternating_stacks(events.S3_NOTIFICATION_SAMPLES)


@pytest.mark.parametrize(("name", "world"), NOTIFICATION_CASES, indirect=["world"])
def test_notification_samples_in_every_key_encoding(name, env: World, pg):  # noqa: F811
    """Every (encoding, upload) a case: parts stored and one conversion job for exactly that key."""
    failures = {}
    for index, encoding in enumerate(events.NOTIFICATION_ENCODINGS):
        for label, (user, bom) in UPLOADS.items():
            key = upload_key(label, bom + 10 * index)  # a new BOM a case: each upload sends its own job
            etag = put(env, key, make_docx(f"upload of {label}"))
            event = events.s3_notification(name, env.bucket("docx-upload"), key, encoding=encoding, etag=etag)
            result = env.invoke(FUNCTION, event)
            jobs = [json.loads(m["Body"]) for m in messages(env)]  # received = invisible: the next case sees its own
            to_key = f"{quote(user, safe='')}/{DOC}/converted.pdf"
            expected = {"from_bucket": env.bucket("docx-upload"), "from_key": key, "to_key": to_key}
            statuses = [r["status"] for r in result["results"]]
            if statuses != ["processed"] or [{k: job[k] for k in expected} for job in jobs] != [expected]:
                failures[encoding, label] = (result, jobs)
    assert not failures, "\n".join(f"{case}: {outcome}" for case, outcome in failures.items())


def test_the_s3_test_event_is_acknowledged(env: World, pg):  # noqa: F811
    """S3 sends it once when the notification configuration is saved: success, nothing written, nothing sent."""
    assert env.invoke(FUNCTION, events.s3_test_event(env.bucket("docx-upload"))) == {"results": []}
    assert messages(env) == [] and job_row(pg) == []
