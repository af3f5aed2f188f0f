"""CrossGuard adapter: the same rules as ``pulumi_policy`` resource and stack validation policies.

CrossGuard hands a validation camelCase ``props`` wrapped in proxies that raise on values unknown at preview; we turn
them into plain data with unknowns as ``None`` (which every rule treats as "cannot decide") and build the same
``ResourceRecord``/``StackRecords`` the tests and the plan use. This module never constructs ``PolicyPack``: that
starts a gRPC server and blocks, so only ``policy/__main__.py`` does it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from infra.records import ResourceRecord, StackRecords
from policy.engine import MANDATORY, Rule, make_violation, name_matches
from policy.exceptions import exceptions_for
from policy.rules import RULES

UNKNOWN_SENTINELS = {
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
}
STACK_TYPE = "pulumi:pulumi:Stack"


def plain(value: Any) -> Any:
    """Unwrap CrossGuard proxies and secrets into dicts/lists; unknown values become None."""
    if isinstance(value, str):
        return None if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        out = {}
        for k in list(value):
            try:
                out[k] = plain(value[k])
            except UnknownValueError:
                out[k] = None
        return out
    if isinstance(value, Sequence):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(None)
        return items
    if hasattr(value, "value") and type(value).__name__ == "Secret":
        return plain(value.value)
    return value


def stack_of(urn: str) -> str:
    """``urn:pulumi:prod::macro-infra::type::name`` -> ``prod``."""
    m = re.match(r"urn:pulumi:([^:]+)::", urn or "")
    return m.group(1) if m else "dev"


def record_from_args(args: ResourceValidationArgs) -> ResourceRecord:
    props = plain(args.props)
    return ResourceRecord(type=args.resource_type, name=args.name, urn=args.urn, inputs=props, outputs=dict(props),
                          parent=getattr(args.opts, "parent", None), protect=bool(getattr(args.opts, "protect", False)),
                          delete_before_replace=_delete_first(args.opts), ignore_changes=_ignored(args.opts))


def _delete_first(opts: object) -> bool:
    return bool(getattr(opts, "delete_before_replace", False))


def _ignored(opts: object) -> tuple[str, ...]:
    return tuple(getattr(opts, "ignore_changes", None) or ())


def stack_from_args(args: StackValidationArgs) -> StackRecords:
    records, outputs, name = [], {}, None
    for r in args.resources:
        name = name or stack_of(r.urn)
        props = plain(r.props)
        if r.resource_type == STACK_TYPE:
            outputs = props
            continue
        records.append(ResourceRecord(
            type=r.resource_type, name=r.name, urn=r.urn, inputs=props, outputs=dict(props),
            parent=r.parent.urn if r.parent is not None else None,
            dependencies=tuple(d.urn for d in r.dependencies), protect=bool(getattr(r.opts, "protect", False)),
            delete_before_replace=_delete_first(r.opts), ignore_changes=_ignored(r.opts)))
    return StackRecords(stack=name or "dev", records=tuple(records), outputs=outputs)


def policy_name(rule_id: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", rule_id.lower()).strip("-")


def _waived(rule: Rule, stack: str, resource_name: str) -> bool:
    return any(e.rule_id == rule.id and name_matches(e.resources, resource_name) for e in exceptions_for(stack))


def resource_validation(rule: Rule):  # noqa: ANN201 - the CrossGuard callback type
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        rec = record_from_args(args)
        stack = stack_of(args.urn)
        if not rule.applies_to(stack):
            return
        assert rule.resource_check is not None
        for detail in rule.resource_check(rec, stack):
            if not _waived(rule, stack, rec.name):
                report_violation(make_violation(rule, rec, detail, stack).message, None)
    return validate


def stack_validation(rule: Rule):  # noqa: ANN201
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack = stack_from_args(args)
        if not rule.applies_to(stack.stack):
            return
        assert rule.stack_check is not None
        for rec, detail in rule.stack_check(stack):
            if rec is not None and _waived(rule, stack.stack, rec.name):
                continue
            report_violation(make_violation(rule, rec, detail, stack.stack).message, rec.urn if rec else None)
    return validate


def exceptions_validation(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Show every finding the design accepts, with its reason, as an advisory (never blocking) message."""
    from policy.rules import evaluate

    for waiver in evaluate(stack_from_args(args)).exceptions_applied:
        report_violation(f"accepted [{waiver.rule_id}] {waiver.resource_type} '{waiver.resource_name}': "
                         f"{waiver.reason}", None)


EXCEPTIONS_POLICY = "design-exceptions"


def build_policies() -> list[Policy]:
    """One CrossGuard policy per rule (mandatory rules block, advisory rules warn), plus an advisory policy that lists
    the exceptions this design accepts, so every preview shows them."""
    policies: list[Policy] = [StackValidationPolicy(
        name=EXCEPTIONS_POLICY, description="Findings this design accepts, each with its reason (policy/exceptions.py)",
        enforcement_level=EnforcementLevel.ADVISORY, validate=exceptions_validation)]
    seen: set[str] = set()
    for rule in RULES.values():
        name = policy_name(rule.id)
        if name in seen:
            raise ValueError(f"two rules map to policy name {name}")
        seen.add(name)
        level = EnforcementLevel.MANDATORY if rule.severity == MANDATORY else EnforcementLevel.ADVISORY
        description = f"{rule.id}: {rule.title}. Fix: {rule.fix}"
        if rule.is_stack_rule:
            policies.append(StackValidationPolicy(name=name, description=description, enforcement_level=level,
                                                  validate=stack_validation(rule)))
        else:
            policies.append(ResourceValidationPolicy(name=name, description=description, enforcement_level=level,
                                                     validate=resource_validation(rule)))
    return policies
