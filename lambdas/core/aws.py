"""boto3 clients created lazily and reused across warm invocations.

Lazy creation keeps import cheap (cold start) and lets tests start moto before the first client exists;
tests call ``client.cache_clear()`` between cases.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode retries throttling and transient errors with backoff; adaptive is not needed at our rates.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)
