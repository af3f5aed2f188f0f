"""One naming scheme for physical names, so services and people can find a resource from its stack and purpose."""

from __future__ import annotations

import re

import pulumi

_NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


def physical(base: str, stack: str, *, suffix: str = "") -> str:
    """``{base}{-suffix}-{stack}``, e.g. ``search-event-queue-dev``: the reference system's pattern."""
    if not _NAME.fullmatch(base):
        raise ValueError(f"resource base name {base!r} must be lowercase letters, digits and '-'")
    return f"{base}-{suffix}-{stack}" if suffix else f"{base}-{stack}"


def bucket_name(base: str, stack: str, account_id: pulumi.Input[str], region: str | None = None) -> pulumi.Output[str]:
    """Globally unique S3 name ``macro-{base}-{stack}[-{region}]-{account}``; the account comes from the caller's
    identity at deploy time, never from code."""
    parts = ["macro", base, stack] + ([region] if region else [])
    name = pulumi.Output.concat("-".join(parts), "-", account_id)
    return name.apply(_check_bucket_name)


def _check_bucket_name(name: str) -> str:
    if not 3 <= len(name) <= 63 or not re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name):
        raise ValueError(f"bucket name {name!r} breaks S3 naming rules (3-63 of a-z, 0-9, '-')")
    return name
