"""Permanent deletion in S3 buckets: every object version and every delete marker, not just a new marker.

A plain DeleteObject on a versioned bucket only adds a delete marker and keeps the data (the reference system's
defect); deleting each version id is what removes it. The same calls work on an unversioned bucket, where
ListObjectVersions reports each object once with VersionId ``null`` and deleting version ``null`` removes it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import boto3

from core import aws

DELETE_BATCH = 1000  # DeleteObjects accepts at most 1000 keys a request


class S3DeleteError(RuntimeError):
    """Some versions could not be deleted; the message names the bucket, keys and S3 error codes."""


@functools.cache
def regional_client(region: str) -> Any:
    """An S3 client pinned to ``region`` (a bucket in another region, e.g. the replica), reused while warm.

    Tests call ``regional_client.cache_clear()`` along with ``aws.client.cache_clear()``.
    """
    return boto3.client("s3", region_name=region, config=aws._CONFIG)


def _versions(s3: Any, bucket: str, prefix: str, exact_key: bool) -> Iterator[dict[str, str]]:
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if exact_key and item["Key"] != prefix:
                continue
            yield {"Key": item["Key"], "VersionId": item.get("VersionId") or "null"}


def delete_all_versions(
    bucket: str, prefix: str, *, exact_key: bool = False, region: str | None = None, client: Any = None
) -> int:
    """Delete every version and delete marker under ``prefix`` (or of exactly that key); returns how many.

    ``client`` (any S3 client) or ``region`` (a cached client for that region) address a bucket outside the
    function's own region; neither means the default client. Idempotent: nothing left to delete is success.
    Raises S3DeleteError if any batch reports errors.
    """
    if not prefix:
        raise ValueError("refusing to delete every version in a bucket: empty prefix")
    s3: Any = client if client is not None else regional_client(region) if region else aws.client("s3")
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

    for version in _versions(s3, bucket, prefix, exact_key):
        batch.append(version)
        if len(batch) == DELETE_BATCH:
            flush()
    if batch:
        flush()
    return deleted
