"""The shape of one recorded resource: what tests, the rule set and the offline plan read.

It lives below both `plan` (which records) and `policy` (which judges), so neither package imports the other for it.

Records are plain data taken from the mock engine's RegisterResource requests, so rules never depend on component
classes. Input keys are the engine's camelCase names (``visibilityTimeoutSeconds``), as CrossGuard also sees them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True, kw_only=True)
class ResourceRecord:
    type: str
    """Pulumi type token, e.g. ``aws:s3/bucket:Bucket`` or ``macro:storage:DocumentBucket``."""
    name: str
    """Logical name, e.g. ``documents-bucket``."""
    urn: str
    inputs: dict[str, Any] = field(default_factory=dict)
    """Inputs as the engine receives them (camelCase keys; numbers may arrive as floats; unknowns are ``None``)."""
    parent: str | None = None
    """URN of the parent resource (a component or the stack)."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on explicitly (``depends_on``) or through its inputs."""
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    """A replacement deletes the old resource first (needed when the physical name is fixed)."""
    secret_inputs: tuple[str, ...] = ()
    """Input keys the program marked secret (``Output.secret``); ``inputs`` holds their plain values."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """What the mocks returned for the resource (inputs echoed plus computed fields such as ``arn``)."""
    custom: bool = True
    """False for component resources, which AWS never sees."""
    provider: str | None = None

    @property
    def is_component(self) -> bool:
        return not self.custom


@dataclass(frozen=True)
class StackRecords:
    """Every resource one stack registered, in registration order."""

    stack: str
    records: tuple[ResourceRecord, ...]
    outputs: dict[str, Any] = field(default_factory=dict)
    lookups: tuple[str, ...] = ()
    """The data sources the program read (invoke tokens such as ``aws:iam/getRoles:getRoles``): what a preview needs
    permission to call."""

    def __iter__(self) -> Iterator[ResourceRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        return list(self._by_type.get(type_token, ()))

    @cached_property
    def _by_type(self) -> dict[str, list[ResourceRecord]]:
        """Records by type, made once: the harness and the rules ask for a type thousands of times a run."""
        index: dict[str, list[ResourceRecord]] = {}
        for record in self.records:
            index.setdefault(record.type, []).append(record)
        return index

    def named(self, name: str, type_token: str | None = None) -> ResourceRecord:
        """The one resource with this logical name (and type, when names repeat across types)."""
        found = [r for r in self.records if r.name == name and (type_token is None or r.type == type_token)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name!r} (type {type_token or 'any'}) in stack {self.stack}")
        return found[0]

    def by_urn(self, urn: str) -> ResourceRecord:
        for r in self.records:
            if r.urn == urn:
                return r
        raise KeyError(f"no resource with URN {urn} in stack {self.stack}")

    def children_of(self, parent: ResourceRecord) -> list[ResourceRecord]:
        return [r for r in self.records if r.parent == parent.urn]

    def matching(self, types: Iterable[str]) -> list[ResourceRecord]:
        wanted = set(types)
        return [r for r in self.records if r.type in wanted]
