"""Small readers over record inputs: nested lookups that tell "not set" from "unknown", policy documents, references.

Unknown values (preview, or an output the mocks did not return) arrive as ``None``; a key the program never set is
absent. Rules treat ``None`` as "cannot decide" and stay silent, and treat an absent key as the provider default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from infra.records import ResourceRecord, StackRecords


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""The key is absent: the program did not set it (the provider default applies)."""


def get(data: Any, path: str, default: Any = MISSING) -> Any:
    """``get(inputs, "vpcConfig.subnetIds")``; list segments take the first element (nested blocks are lists of one)."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, list):
            if not cur:
                return default
            cur = cur[0]
        if cur is None:
            return None
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def as_list(value: Any) -> list[Any]:
    if value is None or value is MISSING:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def num(value: Any) -> float | None:
    """A number from an input that may be an int, a float (3.0) or a numeric string; None when unknown or not set."""
    if value is None or value is MISSING or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_true(value: Any) -> bool:
    return value is True or value == "true"


def is_false(value: Any) -> bool:
    return value is False or value == "false"


def known_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------- policy documents

def parse_doc(value: Any) -> dict[str, Any] | None:
    """A policy document from a JSON string or dict; None when unknown or unparseable (the rule then stays silent)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    return None


def statements(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not doc:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


def actions(stmt: dict[str, Any]) -> list[str]:
    return [a for a in as_list(stmt.get("Action")) if isinstance(a, str)]


def resources(stmt: dict[str, Any]) -> list[str]:
    return [r for r in as_list(stmt.get("Resource")) if isinstance(r, str)]


def principals(stmt: dict[str, Any]) -> dict[str, list[str]]:
    """Principal as {"AWS": [...], "Service": [...], ...}; a bare ``"*"`` becomes {"*": ["*"]}."""
    p = stmt.get("Principal")
    if p == "*":
        return {"*": ["*"]}
    if isinstance(p, dict):
        return {k: [x for x in as_list(v) if isinstance(x, str)] for k, v in p.items()}
    return {}


def is_public_principal(stmt: dict[str, Any]) -> bool:
    p = principals(stmt)
    return "*" in p or "*" in p.get("AWS", [])


def has_condition_key(stmt: dict[str, Any], *keys: str) -> bool:
    cond = stmt.get("Condition")
    if not isinstance(cond, dict):
        return False
    wanted = {k.lower() for k in keys}
    return any(isinstance(body, dict) and any(k.lower() in wanted for k in body) for body in cond.values())


def allows(stmt: dict[str, Any]) -> bool:
    return stmt.get("Effect") == "Allow"


def doc_size(value: Any) -> int | None:
    """Characters IAM counts for a quota: the JSON without whitespace."""
    if isinstance(value, str):
        return len("".join(value.split()))
    if isinstance(value, dict):
        return len(json.dumps(value, separators=(",", ":")))
    return None


# ---------------------------------------------------------------- references between records

def refs(rec: ResourceRecord) -> set[str]:
    """Every string another resource could use to point at this one (id, ARN, name, URL)."""
    out: set[str] = set()
    for source in (rec.outputs, rec.inputs):
        for key in ("id", "arn", "name", "bucket", "url", "functionName", "domainName", "identifier",
                    "replicationGroupId", "secretId"):
            v = source.get(key)
            if isinstance(v, str) and v:
                out.add(v)
    return out


def resolve(stack: StackRecords, value: Any, types: Iterable[str], via: ResourceRecord | None = None
            ) -> ResourceRecord | None:
    """The record of one of ``types`` that ``value`` points at: by id/ARN/name, else the single such dependency."""
    wanted = set(types)
    if isinstance(value, str) and value:
        for r in stack:
            if r.type in wanted and value in refs(r):
                return r
    if via is not None:
        deps = [r for r in stack if r.type in wanted and r.urn in via.dependencies]
        if len(deps) == 1:
            return deps[0]
    return None


def depends_on(stack: StackRecords, rec: ResourceRecord, types: Iterable[str]) -> list[ResourceRecord]:
    wanted = set(types)
    return [r for r in stack if r.type in wanted and r.urn in rec.dependencies]


def strings_in(value: Any) -> Iterator[str]:
    """Every string anywhere inside an input value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings_in(v)
