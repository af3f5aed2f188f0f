"""The outside judges: parliament finds nothing undeclared on either stack, every policy document is handed to it,
declared exceptions work per judge, and (when ``make audit`` has built checkov) checkov's graph connects a bucket to
its public-access block through the rendered references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.records import StackRecords
from plan.evaluate import REGION
from policy.exceptions import EXCEPTIONS, exceptions_for
from tests.policy._examples import doc, res, stack
from tools.audit.judges import Finding, checkov_findings, judge, parliament_findings, policy_documents

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-audit" / "bin" / "checkov"


def _looks_like_policy(value: object) -> bool:
    if not isinstance(value, str) or '"Statement"' not in value:
        return False
    try:
        return "Statement" in json.loads(value)
    except ValueError:
        return False


def test_every_recorded_policy_document_goes_to_parliament(stack: StackRecords) -> None:
    handed = {(rec.name, document) for rec, _, document in policy_documents(stack)}
    recorded = {(rec.name, value) for rec in stack if rec.custom for value in rec.inputs.values()
                if _looks_like_policy(value)}
    assert recorded and recorded <= handed


def test_parliament_finds_nothing_undeclared(stack: StackRecords) -> None:
    verdict = judge(stack.stack, parliament_findings(stack), ("parliament",))
    assert verdict.ok, verdict.render()
    assert verdict.findings, "parliament ran on nothing"


def test_parliament_catches_a_real_mistake() -> None:
    bad = stack(res("aws:iam/rolePolicy:RolePolicy", "p", role="r", policy=doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:sqs:us-east-1:123456789012:q"})))
    verdict = judge("dev", parliament_findings(bad), ("parliament",))
    assert [(f.rule_id, f.resource) for f in verdict.unexplained] == [("RESOURCE_MISMATCH", "identity:p")]


def test_exceptions_are_per_judge() -> None:
    assert all(e.judges == ("rules",) or "rules" not in e.judges or "checkov" in e.judges for e in EXCEPTIONS)
    rule_set = {id(e) for e in exceptions_for("dev")}
    assert all("rules" in e.judges for e in exceptions_for("dev")) and rule_set
    finding = Finding("checkov", "CKV_AWS_28", "frecency-table", "PITR")
    assert judge("dev", [finding], ("checkov",)).ok
    assert not judge("prod", [finding], ("checkov",)).ok, "a prod-only control is excepted only in dev"
    assert not judge("dev", [Finding("parliament", "CKV_AWS_28", "frecency-table", "")], ("parliament",)).ok


def test_every_exception_has_a_reason() -> None:
    assert all(len(e.reason) > 30 for e in EXCEPTIONS)


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is installed by make audit (.venv-audit)")
def test_checkov_connects_a_bucket_to_its_public_access_block(tmp_path: Path) -> None:
    """CKV2_AWS_6 is a graph check: it passes only if the rendered reference joins the two resources."""
    from tools.audit.terraform import render_plan

    records = stack(
        res("aws:s3/bucket:Bucket", "alone", bucket="alone-dev", out={"id": "alone-dev"}),
        res("aws:s3/bucket:Bucket", "docs", bucket="docs-dev", out={"id": "docs-dev"}),
        res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "bpa", deps=("docs",), bucket="docs-dev",
            blockPublicAcls=True, blockPublicPolicy=True, ignorePublicAcls=True, restrictPublicBuckets=True))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(render_plan(records, REGION)))
    failed = {(f.rule_id, f.resource) for f in checkov_findings(plan, records, str(CHECKOV))[0]}
    assert ("CKV2_AWS_6", "alone") in failed
    assert ("CKV2_AWS_6", "docs") not in failed
