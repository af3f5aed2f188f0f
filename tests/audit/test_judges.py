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
    rule_set = exceptions_for("dev")
    assert rule_set and all("rules" in e.judges for e in rule_set), "the rule set sees only its own exceptions"
    assert not any(e.rule_id == "MALFORMED" for e in rule_set)
    finding = Finding("checkov", "CKV_AWS_28", "frecency-table", "PITR")
    assert judge("dev", [finding], ("checkov",)).ok
    assert not judge("prod", [finding], ("checkov",)).ok, "a prod-only control is excepted only in dev"
    assert not judge("dev", [Finding("parliament", "CKV_AWS_28", "frecency-table", "")], ("parliament",)).ok


def test_every_exception_has_a_reason() -> None:
    assert all(len(e.reason) > 30 for e in EXCEPTIONS)


@pytest.mark.checkov
@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is installed by make audit (.venv-audit)")
def test_checkov_connects_a_bucket_to_its_configuration_resources(tmp_path: Path) -> None:
    """These checks pass on a bucket only if the rendered references join it to its public-access block, encryption,
    versioning, logging and lifecycle resources in checkov's graph; a lone bucket fails every one (one checkov run)."""
    from tools.audit.terraform import render_plan

    s3 = "aws:s3/"
    key = "arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-0b0a-0908-0706-050403020100"
    on_docs = {"deps": ("docs",), "bucket": "docs-dev"}
    records = stack(
        res(f"{s3}bucket:Bucket", "alone", bucket="alone-dev", out={"id": "alone-dev"}),
        res(f"{s3}bucket:Bucket", "logs", bucket="logs-dev", out={"id": "logs-dev"}),
        res(f"{s3}bucket:Bucket", "docs", bucket="docs-dev", out={"id": "docs-dev"}),
        res(f"{s3}bucketPublicAccessBlock:BucketPublicAccessBlock", "bpa", **on_docs, blockPublicAcls=True,
            blockPublicPolicy=True, ignorePublicAcls=True, restrictPublicBuckets=True),
        res(f"{s3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "sse",
            **on_docs, rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                      "kmsMasterKeyId": key}}]),
        res(f"{s3}bucketVersioning:BucketVersioning", "versioning", **on_docs,
            versioningConfiguration={"status": "Enabled"}),
        res(f"{s3}bucketLogging:BucketLogging", "logging", deps=("docs", "logs"), bucket="docs-dev",
            targetBucket="logs-dev", targetPrefix="docs/"),
        res(f"{s3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lifecycle", **on_docs,
            rules=[{"id": "abort", "status": "Enabled", "filter": {},
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}]))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(render_plan(records, REGION)))
    failed = {(f.rule_id, f.resource) for f in checkov_findings(plan, records, str(CHECKOV))[0]}
    connected = ("CKV2_AWS_6", "CKV_AWS_145", "CKV_AWS_21", "CKV_AWS_18", "CKV2_AWS_61")
    assert {(check, "alone") for check in connected} <= failed
    assert not {(check, "docs") for check in connected} & failed
