"""Secrets Manager helpers: one naming pattern, values only ever in the secret itself, reads granted by ARN."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child, stateful
from components.encryption_keys import grant_decrypt
from infra import iam


def secret_name(stack: str, key: str) -> str:
    """``macro/{stack}/{key}``: the one pattern for every secret the platform owns."""
    return f"macro/{stack}/{key}"


@dataclass(frozen=True, kw_only=True)
class SecretSettings:
    stack: str
    recovery_window_days: int
    """0 in dev (the name is free again at once), 7-30 in prod."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key for every secret (CKV_AWS_149); readers get ``kms:Decrypt`` via Secrets Manager."""
    region: str = "us-east-1"
    protect: bool = False


def create_secret(parent: pulumi.Resource, logical_name: str, settings: SecretSettings, *, key: str,
                  description: str, value: pulumi.Input[str] | None) -> aws.secretsmanager.Secret:
    """See :func:`create_secret_with_version`; for callers that need only the secret."""
    return create_secret_with_version(parent, logical_name, settings, key=key, description=description,
                                      value=value)[0]


def create_secret_with_version(
        parent: pulumi.Resource, logical_name: str, settings: SecretSettings, *, key: str, description: str,
        value: pulumi.Input[str] | None,
) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion | None]:
    """A secret and, when the value is known to the program, its version. ``value=None`` leaves the secret empty for
    an operator (``pulumi config set --secret``) or for a rotation function that writes every value (never give a
    rotated secret a version, even with ignore_changes: see rule DEPLOY-ROTATION-ROLLBACK)."""
    secret = aws.secretsmanager.Secret(
        logical_name, name=secret_name(settings.stack, key), description=description,
        recovery_window_in_days=settings.recovery_window_days, kms_key_id=settings.kms_key_arn,
        opts=stateful(parent, settings.protect))
    if value is not None:
        version = aws.secretsmanager.SecretVersion(f"{logical_name}-value", secret_id=secret.id,
                                                   secret_string=pulumi.Output.secret(value), opts=child(parent))
        return secret, version
    return secret, None


def grant_secret_read(grants: iam.Grants, secret_arn: pulumi.Input[str], label: str,
                      settings: SecretSettings) -> None:
    grants.allow(f"read secret {label}", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                 [secret_arn])
    if settings.kms_key_arn is not None:
        grant_decrypt(grants, settings.kms_key_arn, "secretsmanager", settings.region, "secrets")
