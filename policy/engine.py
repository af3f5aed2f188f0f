"""The rule machinery: a registry of pure rule functions over recorded resources, and the report they produce.

Rules read ``infra.records`` data only (type token, camelCase inputs, outputs, dependencies), so the same functions run
in the tests, in the offline plan and inside the CrossGuard pack. A rule yields one short detail per problem; the
engine turns it into a one-line message that names the resource and the fix.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from infra.records import ResourceRecord, StackRecords

Severity = Literal["mandatory", "advisory"]
Stacks = Literal["both", "prod"]
MANDATORY: Severity = "mandatory"
ADVISORY: Severity = "advisory"
BOTH: Stacks = "both"
PROD: Stacks = "prod"

ResourceCheck = Callable[[ResourceRecord, str], Iterable[str]]
"""(record, stack name) -> details of each problem found."""
StackCheck = Callable[[StackRecords], Iterable[tuple[ResourceRecord | None, str]]]
"""(whole stack) -> (offending record or None for the stack itself, detail) per problem."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    id: str
    title: str
    fix: str
    severity: Severity
    stacks: Stacks
    types: tuple[str, ...]
    """Type tokens the rule inspects (for stack rules: the records it reports on)."""
    source: Literal["security", "deploy"]
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None

    @property
    def is_stack_rule(self) -> bool:
        return self.stack_check is not None

    def applies_to(self, stack: str) -> bool:
        return self.stacks == BOTH or stack == "prod"


@dataclass(frozen=True, kw_only=True)
class Violation:
    rule_id: str
    resource_name: str
    resource_type: str
    urn: str | None
    message: str
    fix: str
    severity: Severity

    def line(self) -> str:
        return f"[{self.rule_id}] {self.message}"


@dataclass(frozen=True, kw_only=True)
class Waiver:
    """A violation the design accepts, and why (see ``policy/exceptions.py``)."""

    rule_id: str
    resource_name: str
    resource_type: str
    reason: str


@dataclass(frozen=True)
class Report:
    stack: str
    passed: tuple[str, ...]
    """Rules that apply to this stack and found nothing (or only waived findings)."""
    not_applicable: tuple[str, ...]
    """Prod-only rules when the stack is not prod."""
    exceptions_declared: tuple[Any, ...]
    """Every exception of the table that covers this stack, whether or not it matched anything."""
    exceptions_applied: tuple[Waiver, ...]
    violations: tuple[Violation, ...]
    """Mandatory findings: these fail the tests, the pack and the plan."""
    advisories: tuple[Violation, ...] = field(default=())
    """Advisory findings: shown, never blocking."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        out = [f"Compliance for stack {self.stack}: {len(self.passed)} rules passed, "
               f"{len(self.violations)} violations, {len(self.advisories)} advisories, "
               f"{len(self.exceptions_applied)} findings waived by exceptions"]
        if self.exceptions_declared:
            out.append("Exceptions this design accepts:")
            out += [f"  - {e.rule_id} on {e.resources}: {e.reason}" for e in self.exceptions_declared]
        for w in self.exceptions_applied:
            out.append(f"  waived [{w.rule_id}] {w.resource_type} '{w.resource_name}': {w.reason}")
        for title, items in (("Violations", self.violations), ("Advisories", self.advisories)):
            if items:
                out.append(f"{title}:")
                out += [f"  {v.line()}" for v in items]
        return "\n".join(out)


REGISTRY: dict[str, Rule] = {}


def _register(rule: Rule) -> None:
    if rule.id in REGISTRY:
        raise ValueError(f"duplicate rule id {rule.id}")
    REGISTRY[rule.id] = rule


def resource_rule(rule_id: str, title: str, *, types: Iterable[str], fix: str, severity: Severity = MANDATORY,
                  stacks: Stacks = BOTH, source: Literal["security", "deploy"] = "security"
                  ) -> Callable[[ResourceCheck], ResourceCheck]:
    def wrap(fn: ResourceCheck) -> ResourceCheck:
        _register(Rule(id=rule_id, title=title, fix=fix, severity=severity, stacks=stacks, types=tuple(types),
                       source=source, resource_check=fn))
        return fn
    return wrap


def stack_rule(rule_id: str, title: str, *, types: Iterable[str], fix: str, severity: Severity = MANDATORY,
               stacks: Stacks = BOTH, source: Literal["security", "deploy"] = "security"
               ) -> Callable[[StackCheck], StackCheck]:
    def wrap(fn: StackCheck) -> StackCheck:
        _register(Rule(id=rule_id, title=title, fix=fix, severity=severity, stacks=stacks, types=tuple(types),
                       source=source, stack_check=fn))
        return fn
    return wrap


def short_type(type_token: str) -> str:
    """``aws:sqs/queue:Queue`` -> ``sqs.Queue``: short enough for one-line messages."""
    parts = type_token.split(":")
    if len(parts) == 3 and "/" in parts[1]:
        return f"{parts[1].split('/')[0]}.{parts[2]}"
    return type_token


def make_violation(rule: Rule, rec: ResourceRecord | None, detail: str, stack: str) -> Violation:
    where = f"{short_type(rec.type)} '{rec.name}'" if rec is not None else f"stack {stack}"
    return Violation(rule_id=rule.id, resource_name=rec.name if rec else stack,
                     resource_type=rec.type if rec else "pulumi:pulumi:Stack", urn=rec.urn if rec else None,
                     message=f"{where}: {detail}. Fix: {rule.fix}", fix=rule.fix, severity=rule.severity)


def run_resource_rule(rule: Rule, rec: ResourceRecord, stack: str) -> list[Violation]:
    assert rule.resource_check is not None
    if rec.type not in rule.types:
        return []
    return [make_violation(rule, rec, d, stack) for d in rule.resource_check(rec, stack)]


def run_rule(rule: Rule, stack: StackRecords) -> list[Violation]:
    """Every finding of one rule on one stack, before exceptions."""
    if not rule.applies_to(stack.stack):
        return []
    if rule.stack_check is not None:
        return [make_violation(rule, rec, d, stack.stack) for rec, d in rule.stack_check(stack)]
    found: list[Violation] = []
    for rec in stack:
        found += run_resource_rule(rule, rec, stack.stack)
    return found


def evaluate(stack: StackRecords, rules: Iterable[Rule] | None = None) -> Report:
    """Run every rule on a stack and apply the exceptions table."""
    from policy.exceptions import exceptions_for

    selected = list(REGISTRY.values()) if rules is None else list(rules)
    declared = exceptions_for(stack.stack)
    passed: list[str] = []
    na: list[str] = []
    applied: list[Waiver] = []
    violations: list[Violation] = []
    advisories: list[Violation] = []
    for rule in selected:
        if not rule.applies_to(stack.stack):
            na.append(rule.id)
            continue
        remaining = []
        for v in run_rule(rule, stack):
            exc = next((e for e in declared if e.matches(v)), None)
            if exc is not None:
                applied.append(Waiver(rule_id=v.rule_id, resource_name=v.resource_name,
                                      resource_type=v.resource_type, reason=exc.reason))
            else:
                remaining.append(v)
        if not remaining:
            passed.append(rule.id)
        (violations if rule.severity == MANDATORY else advisories).extend(remaining)
    return Report(stack=stack.stack, passed=tuple(passed), not_applicable=tuple(na),
                  exceptions_declared=tuple(declared), exceptions_applied=tuple(applied),
                  violations=tuple(violations), advisories=tuple(advisories))


def name_matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def iter_records(stack: StackRecords, types: Iterable[str]) -> Iterator[ResourceRecord]:
    wanted = set(types)
    return (r for r in stack if r.type in wanted)
