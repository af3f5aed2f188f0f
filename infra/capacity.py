"""Connection capacity of an RDS PostgreSQL instance behind its proxy, and the share the data plane may use.

One formula for the program (which sizes the SQS consumers' concurrency from it) and the rule that checks the sum,
so the number is never written twice.
"""

from __future__ import annotations

import re

# RDS for PostgreSQL's default max_connections: LEAST({DBInstanceClassMemory/9531392}, 5000).
BYTES_PER_CONNECTION = 9531392
MAX_CONNECTIONS_CAP = 5000
FUNCTION_CONNECTION_SHARE = 0.5
"""The part of the proxy's pool the data-plane functions' SQS consumers may fill together; the ECS services keep
the rest."""
MIN_CONSUMER_CONCURRENCY = 2
"""Lambda's lower bound for an SQS mapping's ``maximum_concurrency``."""
MAX_CONSUMER_CONCURRENCY = 1000

# Memory (GiB) per vCPU of the memory-optimised and general-purpose families; burstable sizes are listed.
_GIB_PER_VCPU = {"r": 8, "x": 16, "m": 4}
_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_CLASS = re.compile(r"^db\.(?P<family>[a-z]+)\d+[a-z]*\.(?P<size>micro|small|medium|large|\d*xlarge)$")


def instance_memory_gib(instance_class: str) -> int:
    """Nominal memory of an RDS instance class (``db.t4g.micro`` → 1, ``db.r7g.large`` → 16)."""
    m = _CLASS.fullmatch(instance_class)
    if m is None:
        raise ValueError(f"cannot derive the memory of RDS instance class {instance_class!r}")
    family, size = m["family"][0], m["size"]
    if family == "t":
        return _BURSTABLE_GIB[size]
    if family not in _GIB_PER_VCPU or size in ("micro", "small", "medium"):
        raise ValueError(f"cannot derive the memory of RDS instance class {instance_class!r}")
    vcpus = 2 if size == "large" else 4 * int(size.removesuffix("xlarge") or 1)
    return _GIB_PER_VCPU[family] * vcpus


def max_connections(instance_class: str) -> int:
    """PostgreSQL's default ``max_connections`` on RDS for this class."""
    return min(instance_memory_gib(instance_class) * 1024**3 // BYTES_PER_CONNECTION, MAX_CONNECTIONS_CAP)


def function_connection_budget(instance_class: str, proxy_max_connections_percent: int) -> int:
    """Connections the data-plane functions' SQS consumers may hold together through the proxy."""
    pool = max_connections(instance_class) * proxy_max_connections_percent // 100
    return int(pool * FUNCTION_CONNECTION_SHARE)


def consumer_concurrency(budget: int, consumers: int) -> int:
    """Each of ``consumers`` SQS mappings' ``maximum_concurrency``, so that together they stay within ``budget``."""
    each = min(budget // max(consumers, 1), MAX_CONSUMER_CONCURRENCY)
    if each < MIN_CONSUMER_CONCURRENCY:
        raise ValueError(f"a connection budget of {budget} cannot give {consumers} SQS consumers "
                         f"{MIN_CONSUMER_CONCURRENCY} concurrent invocations each; use a larger instance class")
    return each
