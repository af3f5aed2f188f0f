"""Permanent deletion in versioned buckets: every object version and every delete marker, not just a new marker.

A plain DeleteObject on a versioned bucket only adds a delete marker and keeps the data (the reference system's
defect); deleting each version id is what removes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core import aws

DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys a request


class S3DeleteError(RuntimeError):
    """Some versions could not be deleted; the message names the bucket, keys and S3 error codes."""


def _versions(bucket: str, prefix: str, exact_key: bool) -> Iterator[dict[str, str]]:
    paginator = aws.client("s3").get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if exact_key and item["Key"] != prefix:
                continue
            yield {"Key": item["Key"], "VersionId": item.get("VersionId") or "null"}


def delete_all_versions(bucket: str, prefix: str, *, exact_key: bool = False) -> int:
    """Delete every version and delete marker under ``prefix`` (or of exactly that key); returns how many.

    Idempotent: nothing left to delete is success. Raises S3DeleteError if any batch reports errors.
    """
    if not prefix:
        raise ValueError("refusing to delete every version in a bucket: empty prefix")
    s3: Any = aws.client("s3")
    deleted = 0
    batch: list[dict[str, str]] = []

    def flush() -> None:
        nonlocal deleted
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            shown = ", ".join(f"{e.get('Key')}@{e.get('VersionId')}: {e.get('Code')}" for e in errors[:5])
            raise S3DeleteError(f"{len(errors)} of {len(batch)} versions not deleted from {bucket}: {shown}")
        deleted += len(batch)
        batch.clear()

    for version in _versions(bucket, prefix, exact_key):
        batch.append(version)
        if len(batch) == DELETE_BATCH:
            flush()
    if batch:
        flush()
    return deleted
