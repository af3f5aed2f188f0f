"""Each stack is evaluated once per test process; tests assert on the recorded resources."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.records import ResourceRecord, StackRecords
from plan.evaluate import evaluate_stack


@pytest.fixture(scope="session")
def dev() -> StackRecords:
    return evaluate_stack("dev")


@pytest.fixture(scope="session")
def prod() -> StackRecords:
    return evaluate_stack("prod")


@pytest.fixture(scope="session", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> StackRecords:
    return evaluate_stack(request.param)


def policy(record: ResourceRecord, key: str = "policy") -> dict[str, Any]:
    """A policy document input, parsed."""
    value = record.inputs[key]
    return json.loads(value) if isinstance(value, str) else value


def component(records: StackRecords, type_token: str, name: str) -> ResourceRecord:
    found = [r for r in records if r.type == type_token and r.name == name]
    assert len(found) == 1, f"expected one {type_token} named {name}, found {len(found)}"
    return found[0]


def descendants(records: StackRecords, parent: ResourceRecord) -> list[ResourceRecord]:
    out, frontier = [], [parent.urn]
    while frontier:
        urn = frontier.pop()
        for r in records:
            if r.parent == urn:
                out.append(r)
                frontier.append(r.urn)
    return out


def child(records: StackRecords, parent: ResourceRecord, type_token: str, name: str | None = None) -> ResourceRecord:
    found = [r for r in descendants(records, parent) if r.type == type_token and (name is None or r.name == name)]
    assert len(found) == 1, f"expected one {type_token} {name or ''} under {parent.name}, found {len(found)}"
    return found[0]
