"""The account bootstrap (bootstrap/), evaluated under the same mocks as the main program.

It must create exactly what CI needs, pass the rule set held to prod's rules (it keeps prod's state and secrets key),
trust GitHub's tokens for exactly the intended subjects, and agree with the main program: the preview role answers every
lookup the program makes, the deploy role covers every service both stacks record and every region they name, and the
outputs are the repository variables the workflows read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bootstrap import ci_access
from infra.config import ConfigError
from infra.records import ResourceRecord, StackRecords
from plan.evaluate import evaluate_project, evaluate_stack, read_stack_config
from policy.rules import evaluate

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / "bootstrap"
REPOSITORY = "example-org/macro-infra"
CONFIG = {"repository": REPOSITORY, "aws:region": "us-east-1"}
HOST = ci_access.GITHUB_OIDC_HOST


@pytest.fixture(scope="module")
def boot() -> StackRecords:
    return evaluate_project(BOOTSTRAP, "account", CONFIG)


def doc(record: ResourceRecord, key: str) -> dict[str, Any]:
    value = record.inputs[key]
    return json.loads(value) if isinstance(value, str) else value


def one(records: StackRecords, type_token: str) -> ResourceRecord:
    found = records.of_type(type_token)
    assert len(found) == 1, f"{len(found)} {type_token}"
    return found[0]


def test_it_creates_what_ci_needs_and_nothing_else(boot: StackRecords) -> None:
    types = sorted(r.type.split(":")[-1] for r in boot if r.custom)
    assert types == sorted([
        "Key", "Alias", "OpenIdConnectProvider", "Role", "Role", "RolePolicy", "RolePolicy",
        "Bucket", "BucketOwnershipControls", "BucketVersioning", "BucketServerSideEncryptionConfiguration",
        "BucketPublicAccessBlock", "BucketLifecycleConfiguration", "BucketPolicy"])


def test_the_rule_set_passes_held_to_prods_rules(boot: StackRecords) -> None:
    report = evaluate(StackRecords(stack="prod", records=boot.records, outputs=boot.outputs))
    assert [v.line() for v in report.violations] == []


def test_the_state_bucket_is_versioned_private_tls_only_and_encrypted_with_the_secrets_key(boot: StackRecords) -> None:
    bucket, key = one(boot, "aws:s3/bucket:Bucket"), one(boot, "aws:kms/key:Key")
    assert bucket.protect and bucket.retain_on_delete and key.protect
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    versioning = one(boot, "aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]
    assert versioning["status"] == "Enabled"
    rule = one(boot, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
               ).inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                           "kmsMasterKeyId": key.outputs["arn"]}
    bpa = one(boot, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(bpa[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                         "restrictPublicBuckets"))
    denies = [s for s in doc(one(boot, "aws:s3/bucketPolicy:BucketPolicy"), "policy")["Statement"]
              if s["Effect"] == "Deny"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert one(boot, "aws:kms/alias:Alias").inputs["name"] == ci_access.SECRETS_KEY_ALIAS


def test_github_is_trusted_as_an_issuer_of_tokens_for_aws(boot: StackRecords) -> None:
    issuer = one(boot, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert issuer.inputs["url"] == f"https://{HOST}" and issuer.inputs["clientIdLists"] == ["sts.amazonaws.com"]


# --- Trust: who may assume each role ---------------------------------------------------------------------------------

def may_assume(trust: dict[str, Any], issuer_arn: str, claims: dict[str, str]) -> bool:
    """IAM's decision for AssumeRoleWithWebIdentity with these token claims (Allow statements, StringEquals)."""
    for s in trust["Statement"]:
        if s["Effect"] != "Allow" or s["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        if s["Principal"] != {"Federated": issuer_arn}:
            continue
        conditions = s.get("Condition", {})
        assert set(conditions) <= {"StringEquals"}, "only exact matching is modelled (and allowed)"
        if all(claims.get(key.removeprefix(f"{HOST}:")) in ([v] if isinstance(v, str) else v)
               for key, v in conditions.get("StringEquals", {}).items()):
            return True
    return False


def role(boot: StackRecords, name: str) -> tuple[dict[str, Any], str]:
    issuer = one(boot, "aws:iam/openIdConnectProvider:OpenIdConnectProvider").outputs["arn"]
    return doc(boot.named(f"{name}-role"), "assumeRolePolicy"), issuer


def token(sub: str, aud: str = "sts.amazonaws.com") -> dict[str, str]:
    return {"sub": sub, "aud": aud}


def test_the_trust_policies_are_exactly_these(boot: StackRecords) -> None:
    for name, subjects in (("ci-preview", [f"repo:{REPOSITORY}:pull_request"]),
                           ("ci-deploy", [f"repo:{REPOSITORY}:ref:refs/heads/main",
                                          f"repo:{REPOSITORY}:environment:production"])):
        trust, issuer = role(boot, name)
        assert trust == {"Version": "2012-10-17", "Statement": [{
            "Sid": "GitHubActions", "Effect": "Allow", "Principal": {"Federated": issuer},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{HOST}:aud": "sts.amazonaws.com", f"{HOST}:sub": subjects}}}]}
    assert issuer == f"arn:aws:iam::123456789012:oidc-provider/{HOST}"


@pytest.mark.parametrize(("sub", "aud", "allowed"), [
    (f"repo:{REPOSITORY}:pull_request", "sts.amazonaws.com", True),
    ("repo:example-org/other-repo:pull_request", "sts.amazonaws.com", False),  # a pull request of another repository
    ("repo:someone/macro-infra:pull_request", "sts.amazonaws.com", False),  # a fork's own repository
    (f"repo:{REPOSITORY}:pull_request", "https://github.com/example-org", False),  # a token minted for another audience
    (f"repo:{REPOSITORY}:ref:refs/heads/main", "sts.amazonaws.com", False),  # pushes deploy, they do not preview
    (f"repo:{REPOSITORY}:environment:production", "sts.amazonaws.com", False),
])
def test_the_preview_role_trusts_only_this_repositorys_pull_requests(boot, sub, aud, allowed) -> None:
    assert may_assume(*role(boot, "ci-preview"), token(sub, aud)) is allowed


@pytest.mark.parametrize(("sub", "allowed"), [
    (f"repo:{REPOSITORY}:ref:refs/heads/main", True),  # the dev job: a push to main
    (f"repo:{REPOSITORY}:environment:production", True),  # the prod job, after the environment's approval
    (f"repo:{REPOSITORY}:ref:refs/heads/feature", False),  # a push to another branch
    (f"repo:{REPOSITORY}:ref:refs/heads/main-hotfix", False),
    (f"repo:{REPOSITORY}:ref:refs/tags/v1.0.0", False),
    (f"repo:{REPOSITORY}:pull_request", False),
    (f"repo:{REPOSITORY}:environment:dev", False),  # another environment
    (f"repo:{REPOSITORY}:environment:", False),  # an environment without a name
    (f"repo:{REPOSITORY}:environment:production-copy", False),
    ("repo:example-org/other-repo:ref:refs/heads/main", False),  # main of another repository
    ("repo:example-org/other-repo:environment:production", False),
])
def test_the_deploy_role_trusts_only_main_and_the_production_environment(boot, sub, allowed) -> None:
    assert may_assume(*role(boot, "ci-deploy"), token(sub)) is allowed
    assert may_assume(*role(boot, "ci-deploy"), token(sub, aud="sts.amazonaws.com.evil")) is False


@pytest.mark.parametrize("repository", ["", "macro-infra", "example-org/*", "example-org/macro infra", "a/b/c"])
def test_the_repository_must_be_owner_and_name(repository: str) -> None:
    with pytest.raises(ConfigError, match="owner/name"):
        evaluate_project(BOOTSTRAP, "account", {**CONFIG, "repository": repository})


def test_an_existing_github_issuer_is_reused_instead_of_created() -> None:
    existing = f"arn:aws:iam::123456789012:oidc-provider/{HOST}"
    records = evaluate_project(BOOTSTRAP, "account", {**CONFIG, "githubOidcProviderArn": existing})
    assert not records.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert doc(records.named("ci-deploy-role"), "assumeRolePolicy")["Statement"][0]["Principal"] == {
        "Federated": existing}


# --- Permissions, tied to the main program ---------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_preview_role_answers_every_lookup_the_program_makes(stack: str) -> None:
    lookups = set(evaluate_stack(stack).lookups)
    assert "aws:iam/getRoles:getRoles" in lookups, "the records name the program's lookups"
    assert lookups <= set(ci_access.PREVIEW_READS), \
        f"lookups without a preview permission: {sorted(lookups - set(ci_access.PREVIEW_READS))}"


def statement_actions(boot: StackRecords, policy: str) -> dict[str, list[str]]:
    return {s["Sid"]: s["Action"] for s in doc(boot.named(policy), "policy")["Statement"] if s["Effect"] == "Allow"}


def test_the_preview_role_reads_and_writes_only_state_and_secrets(boot: StackRecords) -> None:
    allowed = statement_actions(boot, "ci-preview-policy")
    assert allowed == {
        "ListState": ["s3:ListBucket"], "ReadWriteState": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        "UseSecretsKey": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
        "ProgramLookups": ["ec2:DescribeAvailabilityZones", "iam:ListRoles"]}
    statements = {s["Sid"]: s for s in doc(boot.named("ci-preview-policy"), "policy")["Statement"]}
    bucket = one(boot, "aws:s3/bucket:Bucket").outputs["arn"]
    assert statements["ReadWriteState"]["Resource"] == [f"{bucket}/.pulumi/*"]
    assert statements["UseSecretsKey"]["Resource"] == [one(boot, "aws:kms/key:Key").outputs["arn"]]


def test_the_deploy_role_covers_every_service_both_stacks_record_and_no_other() -> None:
    recorded = {r.type.split(":")[1].split("/")[0] for stack in ("dev", "prod") for r in evaluate_stack(stack)
                if r.custom and r.type.startswith("aws:")}
    # Services the program creates only under some settings (route53: the API health check when a URL is set).
    program = [ROOT / "__main__.py", *sorted((ROOT / "components").glob("*.py"))]
    declared = {m.removesuffix("_") for p in program
                for m in re.findall(r"\baws\.([a-z0-9_]+)\.[A-Z]", p.read_text())}
    granted = set(ci_access.MODULE_SERVICES)
    assert recorded <= granted, f"not deployable: {sorted(recorded - granted)}"
    assert granted <= recorded | declared, f"granted but never created: {sorted(granted - recorded - declared)}"


def test_the_deploy_role_acts_only_in_the_regions_the_stacks_name(boot: StackRecords) -> None:
    regions = {read_stack_config(s)[1]["aws:region"] for s in ("dev", "prod")}
    regions |= {json.loads(read_stack_config(s)[1]["macro-infra:storage"])["drRegion"] for s in ("dev", "prod")}
    statements = {s["Sid"]: s for s in doc(boot.named("ci-deploy-policy"), "policy")["Statement"]}
    services = statements["PlatformServices"]
    assert services["Condition"] == {"StringEquals": {"aws:RequestedRegion": sorted(regions | {"us-east-1"})}}
    assert services["Action"] == [f"{s}:*" for s in ci_access.deploy_services()] and "iam:*" not in services["Action"]


def test_the_deploy_role_cannot_undo_the_bootstrap(boot: StackRecords) -> None:
    denies = {s["Sid"]: s for s in doc(boot.named("ci-deploy-policy"), "policy")["Statement"] if s["Effect"] == "Deny"}
    roles = sorted(r.outputs["arn"] for r in boot.of_type("aws:iam/role:Role"))
    issuer = one(boot, "aws:iam/openIdConnectProvider:OpenIdConnectProvider").outputs["arn"]
    assert sorted(denies["KeepTheCiRolesAndIssuer"]["Resource"]) == sorted([*roles, issuer])
    assert one(boot, "aws:kms/key:Key").outputs["arn"] in denies["KeepTheSecretsKey"]["Resource"]
    assert "kms:ScheduleKeyDeletion" in denies["KeepTheSecretsKey"]["Action"]
    assert {"s3:DeleteBucket", "s3:DeleteObjectVersion", "s3:PutBucketPolicy"} <= set(
        denies["KeepTheState"]["Action"])


def test_the_outputs_are_the_repository_variables_the_workflows_read(boot: StackRecords) -> None:
    used = {m for p in (ROOT / ".github" / "workflows").glob("*.yml") for m in re.findall(r"vars\.(\w+)",
                                                                                           p.read_text())}
    assert set(boot.outputs) == used == {"PULUMI_BACKEND_URL", "AWS_PREVIEW_ROLE_ARN", "AWS_DEPLOY_ROLE_ARN"}
    bucket = one(boot, "aws:s3/bucket:Bucket").inputs["bucket"]
    assert boot.outputs["PULUMI_BACKEND_URL"] == f"s3://{bucket}?region=us-east-1"
    assert boot.outputs["AWS_PREVIEW_ROLE_ARN"] == boot.named("ci-preview-role").outputs["arn"]
    assert boot.outputs["AWS_DEPLOY_ROLE_ARN"] == boot.named("ci-deploy-role").outputs["arn"]
