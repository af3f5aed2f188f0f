"""Object keys as S3 events carry them: each delivery path decoded by its own rule, in one place.

- **S3 event notifications** (S3 → Lambda, SQS, SNS): the key is URL-encoded, form style, as documented
  ("red flower.jpg" becomes "red+flower.jpg"): ``+`` is a space and a literal ``+`` arrives as ``%2B``, so
  ``unquote_plus`` gives the object key exactly.
- **S3 → EventBridge** ("Object Created"): the encoding is not documented, and reports disagree. Powertools decodes
  it like a notification (``unquote_plus``), LocalStack emits it percent-encoded, and a report from real events
  (aws-solutions-library-samples/guidance-for-medialake-on-aws PR #21, 2026) says spaces arrive as ``%20`` with ``+``
  literal, or no encoding at all. No single decoding is right for every report (``a+b`` is either ``a+b`` or
  ``a b``), so the event names *candidates* — the key as given, form-decoded, percent-decoded — and HeadObject decides:
  the candidate that exists is the object; when several exist, the one whose version id or ETag is the event's.
  A key without ``%`` or ``+`` has one candidate and costs one HeadObject, as before.

HeadObject on a missing key answers 404 only with ``s3:ListBucket`` on the bucket (403 otherwise): callers' roles
have it (``DocumentBucket.grant_read``), and any other error propagates, so the event is retried, never misread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from core import aws

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchVersion"})


def not_found(exc: BaseException) -> bool:
    """True for the S3 errors that mean "no such object (version)"."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return str(code) in NOT_FOUND_CODES


@dataclass(frozen=True)
class ObjectRef:
    """The object an event names: its bucket, the key(s) it may have, and what the event says about its version."""

    bucket: str
    keys: tuple[str, ...]
    """Candidate keys, most likely first; exactly one for notifications and for messages that carry the plain key."""
    etag: str | None = None
    version_id: str | None = None

    @property
    def key(self) -> str:
        return self.keys[0]


def notification_key(raw: str) -> str:
    """The object key of an S3 event notification record (documented: form URL-encoding)."""
    return unquote_plus(raw)


def eventbridge_keys(raw: str) -> tuple[str, ...]:
    """The keys an EventBridge "Object Created" ``detail.object.key`` may stand for, as given first, no duplicates."""
    candidates: list[str] = []
    for key in (raw, unquote_plus(raw), unquote(raw)):
        if key and key not in candidates:
            candidates.append(key)
    return tuple(candidates)


def _text(value: Any) -> str | None:
    return str(value).strip('"') if isinstance(value, str) and value else None


def _bucket_and_object(holder: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], str] | None:
    """(bucket, object, raw key) of ``{"bucket": {"name"}, "object": {"key"}}``; None when either is absent."""
    bucket, obj = (holder.get("bucket") or {}).get("name"), holder.get("object") or {}
    raw = obj.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(raw, str) or not raw:
        return None
    return bucket, obj, raw


def notification_object(record: Mapping[str, Any]) -> ObjectRef | None:
    """The object of one S3 notification record (``record["s3"]``); None without a bucket name or key."""
    found = _bucket_and_object(record.get("s3") or {})
    if found is None:
        return None
    bucket, obj, raw = found
    etag, version_id = _text(obj.get("eTag") or obj.get("etag")), _text(obj.get("versionId"))
    return ObjectRef(bucket, (notification_key(raw),), etag, version_id)


def eventbridge_object(event: Mapping[str, Any]) -> ObjectRef | None:
    """The object of an S3 "Object Created" EventBridge event; None without ``detail.bucket.name`` / ``object.key``."""
    found = _bucket_and_object(event.get("detail") or {})
    if found is None:
        return None
    bucket, obj, raw = found
    return ObjectRef(bucket, eventbridge_keys(raw), _text(obj.get("etag")), _text(obj.get("version-id")))


@dataclass(frozen=True)
class FoundObject:
    key: str
    head: dict[str, Any]
    """The HeadObject response (``ContentLength``, ``LastModified``, ``VersionId``, ``ETag``, ...)."""


def _is_event_version(head: Mapping[str, Any], ref: ObjectRef) -> bool:
    if ref.version_id and head.get("VersionId"):
        return bool(head["VersionId"] == ref.version_id)
    return bool(ref.etag) and _text(head.get("ETag")) == ref.etag


def find_object(ref: ObjectRef, keys: tuple[str, ...] | None = None, client: Any = None) -> FoundObject | None:
    """The candidate of ``ref`` (or ``keys``, a subset) that exists, by HeadObject; None when none does.

    With several existing candidates, the one whose version id (or ETag) is the event's wins, else the first.
    Errors other than "not found" (throttling, access denied) raise.
    """
    s3 = client if client is not None else aws.client("s3")
    candidates = ref.keys if keys is None else keys
    first: FoundObject | None = None
    for key in candidates:
        try:
            head = s3.head_object(Bucket=ref.bucket, Key=key)
        except Exception as exc:
            if not_found(exc):
                continue
            raise
        found = FoundObject(key, head)
        if len(candidates) == 1 or _is_event_version(head, ref):
            return found
        first = first or found
    return first
