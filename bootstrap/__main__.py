"""macro-infra's account bootstrap: what the main program's CI needs before its first run, and nothing else.

Run once per AWS account by an administrator, with a local backend (README, "Deploying with an AWS account"): the
versioned, encrypted, private state bucket; the KMS key whose alias is the stacks' secrets provider; GitHub's OIDC
issuer; a preview role for pull requests and a deploy role for main and the production environment. Its three outputs
become the repository variables the workflows read.
"""

import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # reuse the main program's components and IAM helpers

from bootstrap import ci_access  # noqa: E402
from components.document_bucket import DocumentBucket, DocumentBucketArgs, LifecycleRule  # noqa: E402
from infra import iam  # noqa: E402
from infra.config import ConfigError  # noqa: E402

# --- Configuration --------------------------------------------------------------------------------------------------
stack = pulumi.get_stack()
config = pulumi.Config()
repository = config.require("repository")
if not ci_access.valid_repository(repository):
    raise ConfigError(f"macro-infra-bootstrap:repository must be 'owner/name' of the GitHub repository, "
                      f"got {repository!r}")
region = pulumi.Config("aws").require("region")
existing_issuer = config.get("githubOidcProviderArn")
"""An account has at most one OIDC provider per issuer URL: name the existing one instead of creating another."""
account_id = aws.get_caller_identity().account_id
protect = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
fixed_name = pulumi.ResourceOptions(delete_before_replace=True)
"""Named resources: a replacement deletes the old one first, else the create fails "already exists" (DEPLOY-REPLACE)."""

# --- The secrets key: Pulumi's secrets provider and the state bucket's SSE-KMS key -----------------------------------
key = aws.kms.Key("pulumi-secrets-key", description="Encrypts macro-infra's Pulumi secrets and state",
                  enable_key_rotation=True, deletion_window_in_days=30, policy=iam.key_policy(account_id),
                  opts=protect)
alias = aws.kms.Alias("pulumi-secrets-alias", name=ci_access.SECRETS_KEY_ALIAS, target_key_id=key.key_id,
                      opts=fixed_name)

# --- The state bucket: versioned (every checkpoint recoverable), SSE-KMS, public access blocked, TLS only -----------
state = DocumentBucket("pulumi-state", DocumentBucketArgs(
    base_name="pulumi-state", stack=stack, account_id=account_id, versioned=True, kms_key_arn=key.arn, region=region,
    lifecycle=(LifecycleRule(id="old-checkpoints", noncurrent_expire_days=90),
               LifecycleRule(id="abort-incomplete-multipart", abort_multipart_days=1)),
    protect=True))

# --- GitHub OIDC and the two CI roles --------------------------------------------------------------------------------
issuer_arn: pulumi.Input[str]
if existing_issuer:
    issuer_arn = existing_issuer
else:
    issuer_arn = aws.iam.OpenIdConnectProvider(
        "github-oidc", url=ci_access.GITHUB_OIDC_URL, client_id_lists=[ci_access.OIDC_AUDIENCE], opts=fixed_name).arn


def ci_role(name: str, subjects: list[str]) -> aws.iam.Role:
    return aws.iam.Role(f"{name}-role", name=f"macro-infra-{name}", max_session_duration=3600,
                        description=f"GitHub Actions of {repository}: {', '.join(subjects)}",
                        assume_role_policy=iam.document(ci_access.github_trust(issuer_arn, subjects)["Statement"]),
                        opts=fixed_name)


preview_role = ci_role("ci-preview", ci_access.preview_subjects(repository))
aws.iam.RolePolicy("ci-preview-policy", name="macro-infra-ci-preview", role=preview_role.id,
                   policy=iam.document(ci_access.preview_statements(state.bucket.arn, key.arn)), opts=fixed_name)
deploy_role = ci_role("ci-deploy", ci_access.deploy_subjects(repository))
aws.iam.RolePolicy("ci-deploy-policy", name="macro-infra-ci-deploy", role=deploy_role.id,
                   policy=iam.document(ci_access.deploy_statements(
                       state.bucket.arn, key.arn, account_id, ci_access.stack_regions(REPO_ROOT),
                       [preview_role.arn, deploy_role.arn], issuer_arn, alias.arn)), opts=fixed_name)

# --- The three repository variables ---------------------------------------------------------------------------------
pulumi.export("PULUMI_BACKEND_URL", pulumi.Output.concat("s3://", state.bucket.bucket, "?region=", region))
pulumi.export("AWS_PREVIEW_ROLE_ARN", preview_role.arn)
pulumi.export("AWS_DEPLOY_ROLE_ARN", deploy_role.arn)
