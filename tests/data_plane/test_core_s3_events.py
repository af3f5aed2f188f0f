"""core.s3_events: each event source's key rule, and HeadObject deciding between EventBridge key candidates."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from core import s3_events
from core.s3_events import ObjectRef

from tests.data_plane import events


@pytest.mark.parametrize(
    ("raw", "candidates"),
    [
        ("plain/key-1.pdf", ("plain/key-1.pdf",)),
        ("a+b%20c", ("a+b%20c", "a b c", "a+b c")),
        ("a+b", ("a+b", "a b")),
        ("a%2Bb", ("a%2Bb", "a+b")),
        ("caf%C3%A9", ("caf%C3%A9", "café")),
    ],
)
def test_eventbridge_candidates_start_with_the_key_as_given(raw, candidates):
    assert s3_events.eventbridge_keys(raw) == candidates


def test_notification_keys_are_form_decoded_from_every_sample():
    for name in events.S3_NOTIFICATION_SAMPLES:
        for encoding in events.NOTIFICATION_ENCODINGS:
            record = events.s3_notification(name, "b", "x y+z/ü.docx", encoding=encoding, etag='"e"')["Records"][0]
            ref = s3_events.notification_object(record)
            assert ref is not None and (ref.bucket, ref.keys, ref.etag) == ("b", ("x y+z/ü.docx",), "e")


def test_events_without_bucket_or_key_give_none():
    assert s3_events.notification_object({"s3": {"bucket": {"name": "b"}, "object": {}}}) is None
    assert s3_events.eventbridge_object({"detail": {"bucket": {}, "object": {"key": "k"}}}) is None


class FakeS3:
    """HeadObject over a dict of key -> response; ``error`` is raised for every call when set."""

    def __init__(self, objects: dict[str, dict], error: str | None = None) -> None:
        self.objects, self.error, self.calls = objects, error, []

    def head_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 (boto3's argument names)
        self.calls.append(Key)
        if self.error or Key not in self.objects:
            code = self.error or "404"
            raise ClientError({"Error": {"Code": code, "Message": code}}, "HeadObject")
        return self.objects[Key]


def test_the_existing_candidate_wins_and_the_events_version_breaks_ties():
    ref = ObjectRef("b", ("a+b", "a b"), etag="e2")
    found = s3_events.find_object(ref, client=FakeS3({"a+b": {"ETag": '"e1"'}, "a b": {"ETag": '"e2"'}}))
    assert found is not None and found.key == "a b"
    versioned = ObjectRef("b", ("a+b", "a b"), etag="e2", version_id="v1")
    both = {"a+b": {"ETag": '"e1"', "VersionId": "v1"}, "a b": {"ETag": '"e2"', "VersionId": "v2"}}
    assert s3_events.find_object(versioned, client=FakeS3(both)).key == "a+b"  # the version id outranks the ETag
    no_match = ObjectRef("b", ("a+b", "a b"), etag="other")
    assert s3_events.find_object(no_match, client=FakeS3(both)).key == "a+b"  # overwritten since: the first
    assert s3_events.find_object(ObjectRef("b", ("a+b", "a b")), client=FakeS3({"a b": {}})).key == "a b"
    assert s3_events.find_object(ObjectRef("b", ("a+b", "a b")), client=FakeS3({})) is None


def test_a_single_candidate_costs_one_head_and_errors_other_than_not_found_raise():
    s3 = FakeS3({"k": {"ETag": '"x"'}})
    assert s3_events.find_object(ObjectRef("b", ("k",), etag="y"), client=s3).key == "k" and s3.calls == ["k"]
    for code in ("AccessDenied", "403", "SlowDown"):  # never read as "the object is gone"
        with pytest.raises(ClientError, match=code):
            s3_events.find_object(ObjectRef("b", ("a+b", "a b")), client=FakeS3({}, error=code))
