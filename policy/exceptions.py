"""The one table of findings this design accepts, each with its reason. Every report lists them.

Prod-only controls (marked [P] in security-controls.md) simply do not apply to dev; they need no entry here. An entry
is for a finding the rules would raise on purpose-built resources (e.g. short-lived buckets without versioning).
Match on the rule ID, the stacks, and an fnmatch pattern over the logical resource name.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy.engine import Violation, name_matches


@dataclass(frozen=True, kw_only=True)
class DesignException:
    rule_id: str
    resources: str
    """fnmatch pattern over logical names, e.g. ``*staging*``; ``*`` = every resource the rule reports."""
    stacks: tuple[str, ...]
    reason: str

    def matches(self, v: Violation) -> bool:
        return v.rule_id == self.rule_id and name_matches(self.resources, v.resource_name)


EXCEPTIONS: tuple[DesignException, ...] = (
    DesignException(
        rule_id="S3.14", resources="*staging*", stacks=("dev", "prod"),
        reason="bulk-upload staging holds short-lived zips (expired by lifecycle); versioning would only keep "
               "deleted zips (security-controls.md: S3.14 does not fit staging/DOCX buckets)"),
    DesignException(
        rule_id="S3.14", resources="*docx*", stacks=("dev", "prod"),
        reason="DOCX uploads expire after 1 day; versioning adds nothing (S3.14 does not fit staging/DOCX buckets)"),
    DesignException(
        rule_id="S3.14", resources="*attachment*", stacks=("dev", "prod"),
        reason="email attachments are deleted by the attachment cleanup function once their message is deleted, with "
               "a lifecycle expiry as the backstop; old versions would only keep deleted attachments"),
    DesignException(
        rule_id="S3.14", resources="*log*", stacks=("dev", "prod"),
        reason="the access-log bucket is append-only and expired by lifecycle; it is not replicated"),
    DesignException(
        rule_id="S3.9", resources="documents-replica", stacks=("prod",),
        reason="the DR replica is written only by the replication role; its server access logs would need a second "
               "log bucket in the DR region and would record nothing but replication writes"),
    DesignException(
        rule_id="CKV2_AWS_5", resources="*-services-sg-*", stacks=("dev", "prod"),
        reason="the client group for the platform's ECS services, exported as service_security_group_id; the "
               "services are deployed from their own repositories and attach it there"),
    DesignException(
        rule_id="SecretsManager.1-RDS", resources="*db-instance", stacks=("dev", "prod"),
        reason="master credentials come from pulumi-random so the proxy's JSON secret and the DATABASE_URL secrets "
               "can be derived (an RDS-managed password is unknown to the program); prod rotates them with the "
               "db-credentials-rotation function on a SecretRotation schedule instead"),
    DesignException(
        rule_id="SecretsManager.1", resources="*-url", stacks=("prod",),
        reason="connection URLs are derived from the credentials secret; the rotation function rewrites them "
               "whenever it rotates the credentials (and the cache URL when its token is replaced)"),
    DesignException(
        rule_id="SecretsManager.1", resources="search-master-password-secret", stacks=("prod",),
        reason="OpenSearch's internal master user has no managed rotation (security-controls.md); rotate by "
               "replacing its RandomPassword, which updates the domain and the secret in one pulumi up"),
    DesignException(
        rule_id="SecretsManager.1", resources="app-secrets-*", stacks=("prod",),
        reason="application keys are rotated by replacement (pulumi up --replace on the key's RandomPassword) in a "
               "planned change, because services must roll with them (JWT keys invalidate sessions); externally "
               "issued values (FusionAuth, GitHub) rotate at their issuer"),
    # The account bootstrap (bootstrap/), held to prod's rules because it holds prod's state and secrets key.
    DesignException(
        rule_id="IAM.21", resources="ci-deploy-policy", stacks=("prod",),
        reason="the CI deploy role creates the whole platform: one wildcard per service the stacks record (a test "
               "ties the list to their resource types), only in the stacks' regions (aws:RequestedRegion), role and "
               "policy management spelled out, and explicit denies on the CI roles, the OIDC issuer, the secrets key "
               "and the state bucket; trusted only from main and the approved production environment"),
    DesignException(
        rule_id="KMS.2", resources="ci-deploy-policy", stacks=("prod",),
        reason="the deploy role creates and administers the platform's keys (kms:* in the stacks' regions); it may "
               "not disable, re-policy, grant on or schedule deletion of the Pulumi secrets key"),
    DesignException(
        rule_id="S3.7", resources="pulumi-state-bucket", stacks=("prod",),
        reason="the Pulumi state bucket is versioned with 90 days of old checkpoints; a replica would need a second "
               "key and bucket in another region for a file the stacks can also rebuild with pulumi import"),
    DesignException(
        rule_id="S3.9", resources="pulumi-state-bucket", stacks=("prod",),
        reason="only the two CI roles and administrators use the state bucket; CloudTrail records their calls, and a "
               "log bucket would double the bootstrap for it"),
    DesignException(
        rule_id="S3.11", resources="pulumi-state-bucket", stacks=("prod",),
        reason="nothing reacts to writes of Pulumi checkpoints"),
)


def exceptions_for(stack: str) -> list[DesignException]:
    return [e for e in EXCEPTIONS if stack in e.stacks]
