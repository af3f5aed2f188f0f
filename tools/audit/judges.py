"""The outside judges: checkov on the stack rendered as a Terraform plan, parliament on every policy document the
program records. Their findings pass only when ``policy/exceptions.py`` declares them, with a reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.records import ResourceRecord, StackRecords
from policy.exceptions import DesignException, Judge, exceptions_for
from tools.audit.terraform import address, renderable

# Every input that holds an IAM policy document, and what kind of policy it is.
POLICY_INPUTS: dict[str, tuple[str, str]] = {
    "aws:iam/rolePolicy:RolePolicy": ("policy", "identity"),
    "aws:iam/policy:Policy": ("policy", "identity"),
    "aws:iam/role:Role": ("assumeRolePolicy", "trust"),
    "aws:kms/key:Key": ("policy", "key"),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy", "resource"),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy", "resource"),
    "aws:sns/topicPolicy:TopicPolicy": ("policy", "resource"),
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": ("policyDocument", "resource"),
    "aws:opensearch/domain:Domain": ("accessPolicies", "resource"),
    "aws:secretsmanager/secretPolicy:SecretPolicy": ("policy", "resource"),
}
CHECKOV_COMMAND = ("--framework", "terraform_plan", "--skip-download", "--quiet", "--compact", "--output", "json")


@dataclass(frozen=True)
class Finding:
    judge: Judge
    rule_id: str
    resource: str
    """Logical name (checkov), or ``<kind>:<logical name>`` (parliament)."""
    detail: str


@dataclass
class Verdict:
    stack: str
    findings: list[Finding]
    waived: list[tuple[Finding, DesignException]] = field(default_factory=list)
    unexplained: list[Finding] = field(default_factory=list)
    unused: list[DesignException] = field(default_factory=list)
    """Exceptions for these judges that matched nothing: stale, or a sign the judge no longer sees the resource."""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.unexplained

    def render(self) -> str:
        lines = [f"Audit of stack {self.stack}: " + ", ".join(f"{k} {v}" for k, v in self.counts.items())
                 + f"; {len(self.findings)} findings, {len(self.waived)} declared in policy/exceptions.py, "
                 f"{len(self.unexplained)} not declared"]
        lines += [f"  NOT DECLARED [{f.judge} {f.rule_id}] {f.resource}: {f.detail}" for f in self.unexplained]
        lines += [f"  unused exception [{', '.join(e.judges)} {e.rule_id}] {e.resources}" for e in self.unused]
        return "\n".join(lines)


def policy_documents(records: StackRecords) -> Iterator[tuple[ResourceRecord, str, str]]:
    """(record, kind, document) for every policy document the stack records."""
    for rec in records:
        where = POLICY_INPUTS.get(rec.type)
        if where is None:
            continue
        key, kind = where
        value = rec.inputs.get(key)
        if isinstance(value, str) and value:
            yield rec, kind, value
        if rec.type == "aws:iam/role:Role":
            for inline in rec.inputs.get("inlinePolicies") or []:
                if isinstance(inline, dict) and inline.get("policy"):
                    yield rec, "identity", inline["policy"]


def parliament_findings(records: StackRecords) -> list[Finding]:
    """parliament's own auditors (its defaults, as its command line runs them) on every recorded policy."""
    from parliament import analyze_policy_string

    found = []
    for rec, kind, document in policy_documents(records):
        for f in analyze_policy_string(document).findings:
            found.append(Finding("parliament", f.issue, f"{kind}:{rec.name}", f"{f.title or ''} {f.detail}".strip()))
    return found


def checkov_findings(plan_file: Path, records: StackRecords, checkov: str) -> tuple[list[Finding], dict[str, int]]:
    """checkov's failed checks on a rendered plan, named by the records' logical names."""
    executable = shutil.which(checkov) or checkov
    # Run beside the plan, so checkov finds no configuration of this repository to add to it.
    run = subprocess.run([str(Path(executable).resolve()), "--file", plan_file.name, *CHECKOV_COMMAND],
                         capture_output=True, text=True, cwd=plan_file.resolve().parent, check=False)
    if run.returncode not in (0, 1) or not run.stdout.strip():
        raise RuntimeError(f"checkov failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    reports: Any = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    names = {address(r): r.name for r in records if renderable(r)}
    found, counts = [], {"checkov passed": 0, "checkov failed": 0}
    for report in reports:
        if report.get("check_type") != "terraform_plan":
            continue
        summary = report.get("summary", {})
        if summary.get("parsing_errors"):
            raise RuntimeError(f"checkov could not parse {plan_file}")
        counts["checkov passed"] += summary.get("passed", 0)
        counts["checkov failed"] += summary.get("failed", 0)
        for check in report["results"]["failed_checks"]:
            resource = names.get(check["resource"], check["resource"])
            found.append(Finding("checkov", check["check_id"], resource, check.get("check_name", "")))
    return found, counts


def judge(stack: str, findings: list[Finding], judges: tuple[Judge, ...]) -> Verdict:
    """Split findings into those the exceptions table declares (with the entry) and the rest."""
    verdict = Verdict(stack=stack, findings=findings)
    declared = [e for j in judges for e in exceptions_for(stack, j)]
    used: set[int] = set()
    for f in findings:
        entry = next((e for e in declared if f.judge in e.judges and e.covers(f.rule_id, f.resource)), None)
        if entry is None:
            verdict.unexplained.append(f)
        else:
            verdict.waived.append((f, entry))
            used.add(id(entry))
    verdict.unused = list({id(e): e for e in declared if id(e) not in used}.values())
    return verdict
