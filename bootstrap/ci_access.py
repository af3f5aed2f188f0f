"""Who may assume the CI roles and what each may do, as plain policy documents (values may be Pulumi Outputs).

Kept apart from the resources so tests assert the documents exactly and tie them to the main program: the preview
role's reads to the lookups the program makes, the deploy role's services to the resource types both stacks record,
its regions to the regions the stack files name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_AUDIENCE = "sts.amazonaws.com"
SECRETS_KEY_ALIAS = "alias/macro-infra-pulumi"
"""The stacks' secrets provider is ``awskms://alias/macro-infra-pulumi?region=<region>`` (Pulumi.<stack>.yaml and the
workflows name it; tests/test_workflows.py checks they agree)."""
DEPLOY_BRANCH = "main"
DEPLOY_ENVIRONMENT = "production"
STATE_PREFIX = ".pulumi/"
"""A self-managed Pulumi backend keeps everything (stacks, locks, history, backups) under this prefix."""
GLOBAL_SERVICE_REGION = "us-east-1"
"""IAM and Route 53 are global: their API calls carry aws:RequestedRegion us-east-1."""

# The lookups (invokes) the main program makes, and what AWS needs to answer each for a preview.
PREVIEW_READS: dict[str, tuple[str, ...]] = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": ("ec2:DescribeAvailabilityZones",),
    "aws:iam/getRoles:getRoles": ("iam:ListRoles",),
    "aws:index/getCallerIdentity:getCallerIdentity": (),  # STS answers every caller; no permission exists
    "aws:index/getRegion:getRegion": (),  # answered from the provider's configuration
    "aws:index/getPartition:getPartition": (),
}

# IAM service prefixes per pulumi_aws module of the resource types the main program records (``aws:<module>/...``).
MODULE_SERVICES: dict[str, tuple[str, ...]] = {
    "cloudwatch": ("cloudwatch", "events", "logs"),  # alarms, EventBridge rules and targets, log groups
    "dynamodb": ("dynamodb",),
    "ec2": ("ec2",),
    "ecs": ("ecs",),
    "elasticache": ("elasticache",),
    "iam": ("iam",),
    "kms": ("kms",),
    "lambda": ("lambda",),
    "opensearch": ("es",),
    "rds": ("rds",),
    "route53": ("route53",),
    "s3": ("s3",),
    "secretsmanager": ("secretsmanager",),
    "sns": ("sns",),
    "sqs": ("sqs",),
    "vpc": ("ec2",),
}
# IAM is not granted by service: only role and policy management, spelled out below.
IAM_ACTIONS = (
    "iam:AttachRolePolicy", "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:CreateRole", "iam:DeletePolicy",
    "iam:DeletePolicyVersion", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:GetPolicy",
    "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole", "iam:ListPolicyVersions", "iam:ListRolePolicies", "iam:ListRoleTags",
    "iam:PassRole", "iam:PutRolePolicy", "iam:TagPolicy", "iam:TagRole", "iam:UntagPolicy", "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:UpdateRoleDescription",
)
SERVICE_LINKED_ROLE_ACTIONS = ("iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole",
                               "iam:GetServiceLinkedRoleDeletionStatus")


def valid_repository(repository: str) -> bool:
    """``owner/name`` as GitHub spells them (it also puts them in the token's subject)."""
    return re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}", repository) is not None


def deploy_services() -> list[str]:
    """Every service the deploy role manages, except IAM (granted action by action)."""
    return sorted({s for services in MODULE_SERVICES.values() for s in services} - {"iam"})


def stack_regions(root: Path) -> list[str]:
    """The regions the main program's stacks deploy to (``aws:region`` and the replication region), read from the
    stack files, plus us-east-1 for the global services."""
    regions = {GLOBAL_SERVICE_REGION}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        regions.add(config["aws:region"])
        storage = config.get("macro-infra:storage") or {}
        if storage.get("replication") and storage.get("drRegion"):
            regions.add(storage["drRegion"])
    return sorted(regions)


def github_trust(provider_arn: Any, subjects: list[str]) -> dict[str, Any]:
    """Trust tokens of GitHub's OIDC issuer minted for AWS and for exactly these subjects (no wildcards)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "GitHubActions", "Effect": "Allow", "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": OIDC_AUDIENCE,
                                       f"{GITHUB_OIDC_HOST}:sub": subjects}},
    }]}


def preview_subjects(repository: str) -> list[str]:
    """Pull requests of this repository (GitHub's subject for a ``pull_request`` job)."""
    return [f"repo:{repository}:pull_request"]


def deploy_subjects(repository: str) -> list[str]:
    """The dev job (a push to main, no environment) and the prod job (the ``production`` environment, whose required
    reviewers are the manual approval). A job with an environment is identified by it, not by its branch."""
    return [f"repo:{repository}:ref:refs/heads/{DEPLOY_BRANCH}", f"repo:{repository}:environment:{DEPLOY_ENVIRONMENT}"]


def state_statements(bucket_arn: Any, key_arn: Any) -> list[dict[str, Any]]:
    """Read and write the backend (stack files, locks, history) and the secrets (config values, state, data keys)."""
    return [
        {"Sid": "ListState", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
        {"Sid": "ReadWriteState", "Effect": "Allow", "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
         "Resource": [_join(bucket_arn, f"/{STATE_PREFIX}*")]},
        # Decrypt: config secrets and state; Encrypt: a new stack's data key (upsert); GenerateDataKey: SSE-KMS writes.
        {"Sid": "UseSecretsKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
         "Resource": [key_arn]},
    ]


def preview_statements(bucket_arn: Any, key_arn: Any) -> list[dict[str, Any]]:
    """The backend, the secrets key, and the program's lookups; nothing that reads data or changes a resource."""
    # ec2:DescribeAvailabilityZones and iam:ListRoles have no resource types: AWS matches them only on "*".
    reads = sorted({a for actions in PREVIEW_READS.values() for a in actions})
    return [*state_statements(bucket_arn, key_arn),
            {"Sid": "ProgramLookups", "Effect": "Allow", "Action": reads, "Resource": "*"}]


def deploy_statements(bucket_arn: Any, key_arn: Any, account_id: Any, regions: list[str],
                      protected_roles: list[Any], oidc_provider_arn: Any, key_alias_arn: Any) -> list[dict[str, Any]]:
    """Everything the platform is made of, in its regions only, and nothing that could undo this bootstrap."""
    return [
        *preview_statements(bucket_arn, key_arn),
        {"Sid": "PlatformServices", "Effect": "Allow", "Action": [f"{s}:*" for s in deploy_services()],
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": regions}}},
        {"Sid": "PlatformRolesAndPolicies", "Effect": "Allow", "Action": list(IAM_ACTIONS),
         "Resource": [_join("arn:aws:iam::", account_id, ":role/*"),
                      _join("arn:aws:iam::", account_id, ":policy/*")]},
        {"Sid": "ServiceLinkedRoles", "Effect": "Allow", "Action": list(SERVICE_LINKED_ROLE_ACTIONS),
         "Resource": [_join("arn:aws:iam::", account_id, ":role/aws-service-role/*")]},
        {"Sid": "KeepTheCiRolesAndIssuer", "Effect": "Deny", "Action": ["iam:*"],
         "Resource": [*protected_roles, oidc_provider_arn]},
        {"Sid": "KeepTheSecretsKey", "Effect": "Deny",
         "Action": ["kms:CreateGrant", "kms:DeleteAlias", "kms:DisableKey", "kms:DisableKeyRotation",
                    "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:UpdateAlias"],
         "Resource": [key_arn, key_alias_arn]},
        {"Sid": "KeepTheState", "Effect": "Deny",
         "Action": ["s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:DeleteObjectVersion",
                    "s3:PutBucketOwnershipControls", "s3:PutBucketPolicy", "s3:PutBucketPublicAccessBlock",
                    "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration"],
         "Resource": [bucket_arn, _join(bucket_arn, "/*")]},
    ]


def _join(*parts: Any) -> Any:
    """Concatenate strings that may be Outputs (plain strings stay plain, so tests read them directly)."""
    if all(isinstance(p, str) for p in parts):
        return "".join(parts)
    import pulumi  # only when a part is an Output, i.e. inside a Pulumi program

    return pulumi.Output.concat(*parts)
