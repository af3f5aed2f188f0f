"""The offline plan: ``python -m plan dev [--diff prod] [--json FILE] [--no-compliance] [--diagram] [--no-cost]``.

Evaluates the program for a stack under mocks and prints a preview-like tree (component → children with their key
settings), counts per resource type, the secrets that still await a value, the compliance report of the rule set, the
monthly cost estimate, optionally the architecture diagram (Mermaid), and optionally the differences from another stack
(resources, diagram nodes and edges, dollars). Exits non-zero when a rule is violated, so CI can gate on it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from infra.records import ResourceRecord, StackRecords

# The settings worth seeing per type in the tree and the stack diff (dotted paths into camelCase inputs).
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "aws:ec2/vpc:Vpc": ("cidrBlock", "tags.Name"),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZoneId"),
    "aws:s3/bucket:Bucket": ("bucket", "region", "forceDestroy"),
    "aws:s3/bucketAccelerateConfiguration:BucketAccelerateConfiguration": ("status",),
    "aws:s3/bucketNotification:BucketNotification": ("eventbridge", "lambdaFunctions"),
    "aws:sqs/queue:Queue": ("name", "visibilityTimeoutSeconds", "fifoQueue", "redrivePolicy"),
    "aws:dynamodb/table:Table": ("name", "billingMode", "pointInTimeRecovery.enabled", "deletionProtectionEnabled"),
    "aws:opensearch/domain:Domain": ("domainName", "clusterConfig.instanceType", "clusterConfig.instanceCount",
                                     "clusterConfig.zoneAwarenessEnabled", "clusterConfig.dedicatedMasterCount",
                                     "vpcOptions.subnetIds"),
    "aws:rds/instance:Instance": ("identifier", "instanceClass", "multiAz", "deletionProtection",
                                  "backupRetentionPeriod", "publiclyAccessible"),
    "aws:rds/proxy:Proxy": ("name", "requireTls"),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("replicationGroupId", "nodeType", "numCacheClusters",
                                                          "automaticFailoverEnabled", "multiAzEnabled"),
    "aws:lambda/function:Function": ("name", "runtime", "memorySize", "timeout", "architectures"),
    "aws:lambda/eventSourceMapping:EventSourceMapping": ("batchSize", "functionResponseTypes",
                                                         "scalingConfig.maximumConcurrency"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "scheduleExpression"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", "metricName", "threshold"),
    "aws:secretsmanager/secret:Secret": ("name", "recoveryWindowInDays"),
    "aws:ec2/natGateway:NatGateway": ("tags.Name",),
    "aws:iam/role:Role": ("name",),
}


def setting(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def describe(record: ResourceRecord) -> str:
    shown = []
    for path in KEY_SETTINGS.get(record.type, ()):
        value = setting(record.inputs, path)
        if value is not None and value != []:
            shown.append(f"{path}={_short(value)}")
    flags = [f for f, on in (("protected", record.protect), ("retained", record.retain_on_delete)) if on]
    return "  ".join(shown + flags)


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 70 else text[:67] + "..."


def tree(records: StackRecords) -> list[str]:
    children: dict[str | None, list[ResourceRecord]] = {}
    urns = {r.urn for r in records}
    for r in records:
        parent = r.parent if r.parent in urns else None
        children.setdefault(parent, []).append(r)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            kind = r.type.split(":")[-1] if r.custom else r.type
            detail = describe(r)
            lines.append(f"{'  ' * depth}{'+' if r.custom else '#'} {kind} {r.name}{'  ' + detail if detail else ''}")
            walk(r.urn, depth + 1)

    walk(None, 0)
    return lines


def type_counts(records: StackRecords) -> Counter[str]:
    return Counter(r.type for r in records if r.custom)


def pending_secrets(records: StackRecords) -> list[str]:
    """Secrets created without a value that an operator must set (``pulumi config set --secret``); those a rotation
    seeds are listed by :func:`seeded_secrets` instead."""
    valued = {r.name.removesuffix("-value") for r in records.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    seeded = set(seeded_secrets(records))
    return sorted(name for r in records.of_type("aws:secretsmanager/secret:Secret")
                  if r.name not in valued and (name := setting(r.inputs, "name") or r.name) not in seeded)


def seeded_secrets(records: StackRecords) -> list[str]:
    """Secrets whose every value comes from their rotation function (its first run seeds them)."""
    from policy.rules_lifecycle import rotation_owned

    return sorted(setting(r.inputs, "name") or r.name for r in rotation_owned(records)[0])


def planned_replacements(records: StackRecords) -> list[str]:
    """Protected resources with a fixed name: a change that replaces one cannot run as a plain update."""
    from policy.rules_lifecycle import fixed_name, replacement_needs_a_plan

    return [f"{r.name} ({fixed_name(r)})" for r in replacement_needs_a_plan(records)]


def _normalise(text: str, stack: str) -> str:
    return re.sub(rf"(?<![a-z0-9]){re.escape(stack)}(?![a-z0-9])", "{stack}", text)


def diff(a: StackRecords, b: StackRecords) -> list[str]:
    """Resources only in one stack, and key settings that differ, matched by type and stack-neutral name."""
    index_a = {(r.type, _normalise(r.name, a.stack)): r for r in a}
    index_b = {(r.type, _normalise(r.name, b.stack)): r for r in b}
    lines = []
    for key in sorted(index_a.keys() - index_b.keys()):
        lines.append(f"- only in {a.stack}: {key[0].split(':')[-1]} {key[1]}")
    for key in sorted(index_b.keys() - index_a.keys()):
        lines.append(f"+ only in {b.stack}: {key[0].split(':')[-1]} {key[1]}")
    for key in sorted(index_a.keys() & index_b.keys()):
        ra, rb = index_a[key], index_b[key]
        for path in KEY_SETTINGS.get(key[0], ()):
            va, vb = setting(ra.inputs, path), setting(rb.inputs, path)
            if _normalise(json.dumps(va), a.stack) != _normalise(json.dumps(vb), b.stack):
                lines.append(f"~ {key[0].split(':')[-1]} {key[1]}: {path} {_short(va)} -> {_short(vb)}")
        if ra.protect != rb.protect:
            lines.append(f"~ {key[0].split(':')[-1]} {key[1]}: protect {ra.protect} -> {rb.protect}")
    return lines


def to_json(records: StackRecords) -> dict[str, Any]:
    return {
        "stack": records.stack,
        "resources": [{"type": r.type, "name": r.name, "urn": r.urn, "custom": r.custom, "parent": r.parent,
                       "dependencies": list(r.dependencies), "protect": r.protect,
                       "retainOnDelete": r.retain_on_delete, "inputs": r.inputs} for r in records],
        "outputs": records.outputs,
    }


def artifact_report() -> list[str]:
    """At most one line each for missing and stale Lambda artifacts: the offline plan reads none of them, a real
    preview/up stops without them (``components.function.require_artifacts``)."""
    from infra import artifacts

    lines = []
    missing = artifacts.missing_artifacts()
    if missing:
        lines.append(f"Note: {artifacts.missing_message(missing)} before pulumi preview/up (this plan needs none).")
    stale = artifacts.stale_artifacts()
    if stale:
        lines.append(f"Note: {artifacts.stale_message(stale)}.")
    return lines


def compliance(records: StackRecords) -> tuple[list[str], int]:
    """The rule set's report for the stack, and how many violations it found."""
    try:
        from policy.rules import evaluate
    except ImportError:  # the rule set is optional while it is being built
        return ["(rule set not available)"], 0
    report = evaluate(records)
    return report.render().splitlines(), len(report.violations)


def add_view_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--diagram", action="store_true", help="print the architecture diagram (Mermaid flowchart)")
    parser.add_argument("--no-cost", action="store_true", help="skip the monthly cost estimate")


def views(records: StackRecords, other: StackRecords | None, *, diagram: bool, cost: bool
          ) -> tuple[list[str], dict[str, Any]]:
    """The diagram and cost sections, and their differences from ``other``: printed lines and JSON."""
    from infra.costs import estimate, stack_cost_config
    from plan import cost as cost_view
    from plan import diagram as diagram_view

    lines: list[str] = []
    payload: dict[str, Any] = {}
    derived = diagram_view.derive(records)
    payload["diagram"] = {**diagram_view.to_json(derived), "mermaid": diagram_view.render(derived)}
    if diagram:
        lines += ["", f"Architecture diagram of {records.stack} (Mermaid; README shows dev's)", "```mermaid",
                  diagram_view.render(derived), "```"]
    usage = stack_cost_config(records.stack)
    est = estimate(records, usage)
    payload["cost"] = cost_view.to_json(est)
    if cost:
        lines += [""] + cost_view.render(est, usage)
    if other is not None:
        lines += ["", f"Diagram differences {records.stack} -> {other.stack}"]
        lines += [f"  {line}" for line in diagram_view.diff(derived, diagram_view.derive(other), records.stack,
                                                            other.stack)] or ["  (none)"]
        if cost:
            lines += ["", f"Cost change {records.stack} -> {other.stack} (each under its own stack's assumptions)"]
            lines += [f"  {line}" for line in cost_view.diff(est, estimate(other, stack_cost_config(other.stack)))]
    return lines, payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: dev or prod (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--diff", metavar="STACK", help="also show what differs in another stack")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write the records as JSON for other tools")
    parser.add_argument("--no-compliance", action="store_true", help="skip the rule set")
    add_view_options(parser)
    opts = parser.parse_args(argv)

    from infra.config import ConfigError
    from plan.evaluate import StackConfigFileError, evaluate_stack

    started = time.perf_counter()
    try:
        records = evaluate_stack(opts.stack)
    except (ConfigError, StackConfigFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started

    header = f"Offline plan for stack {opts.stack} (Pulumi mocks; no AWS account, CLI or network used)"
    print("\n".join([header, *artifact_report()]) + "\n")
    print("\n".join(tree(records)))
    counts = type_counts(records)
    print(f"\nResources: {sum(counts.values())} cloud resources, "
          f"{sum(1 for r in records if not r.custom)} components, evaluated in {elapsed:.1f} s")
    for type_token, count in sorted(counts.items()):
        print(f"  {count:4d}  {type_token}")
    waiting = pending_secrets(records)
    print(f"\nSecrets awaiting a value ({len(waiting)}): set them with pulumi config set --secret, see README")
    for name in waiting:
        print(f"  - {name}")
    seeded = seeded_secrets(records)
    if seeded:
        print(f"\nSecrets the credentials rotation seeds on its first run ({len(seeded)}): no value from Pulumi")
        print("\n".join(f"  - {name}" for name in seeded))
    replacements = planned_replacements(records)
    if replacements:
        print(f"\nProtected resources with fixed names ({len(replacements)}): a change that replaces one fails the "
              "update; plan it (new name and a migration) instead")
        print("\n".join(f"  - {name}" for name in replacements))
    violations = 0
    if not opts.no_compliance:
        lines, violations = compliance(records)
        print("\nCompliance")
        print("\n".join(f"  {line}" for line in lines))
    other = None
    if opts.diff:
        try:
            other = evaluate_stack(opts.diff)
        except (ConfigError, StackConfigFileError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"\nDifferences {opts.stack} -> {opts.diff}")
        print("\n".join(f"  {line}" for line in diff(records, other)) or "  (none)")
    view_lines, view_json = views(records, other, diagram=opts.diagram, cost=not opts.no_cost)
    print("\n".join(view_lines))
    if opts.json:
        opts.json.write_text(json.dumps({**to_json(records), **view_json}, indent=2, sort_keys=True, default=str))
        print(f"\nRecords written to {opts.json}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
