"""The one table of findings this design accepts, each with its reason. Every report lists them.

Prod-only controls (marked [P] in security-controls.md) simply do not apply to dev; they need no entry here. An entry
is for a finding the rules would raise on purpose-built resources (e.g. short-lived buckets without versioning).
Match on the rule ID, the stacks, and an fnmatch pattern over the logical resource name.

The outside judges of ``make audit`` use the same table: ``judges`` says whose findings an entry accepts — our rule
set (``rules``), checkov (its check IDs, over the logical names the audit renders) or parliament (its issue codes, over
``<kind>:<logical name>`` with kind ``identity``, ``trust`` or ``resource``). An entry for checkov or parliament in dev
often restates a prod-only control of ours ([P]): checkov does not know that dev is a development stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from policy.engine import Violation, name_matches

Judge = Literal["rules", "checkov", "parliament"]


@dataclass(frozen=True, kw_only=True)
class DesignException:
    rule_id: str
    resources: str
    """fnmatch pattern over logical names, e.g. ``*staging*``; ``*`` = every resource the rule reports."""
    stacks: tuple[str, ...]
    reason: str
    judges: tuple[Judge, ...] = ("rules",)
    """Whose findings the entry accepts: our rule set by default; ``checkov`` and ``parliament`` for ``make audit``."""

    def matches(self, v: Violation) -> bool:
        return self.covers(v.rule_id, v.resource_name)

    def covers(self, rule_id: str, resource_name: str) -> bool:
        return rule_id == self.rule_id and name_matches(self.resources, resource_name)


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
        rule_id="CKV2_AWS_5", resources="*-services-sg-*", stacks=("dev", "prod"), judges=("rules", "checkov"),
        reason="the client group for the platform's ECS services, exported as service_security_group_id; the "
               "services are deployed from their own repositories and attach it there"),
    DesignException(
        rule_id="SecretsManager.1-RDS", resources="*db-instance", stacks=("dev", "prod"),
        reason="the RDS Proxy and the DATABASE_URL secrets need credentials under names and in JSON/URL forms an "
               "RDS-managed secret does not provide, kept in step by one rotation. Dev stores the pulumi-random "
               "password (no rotation); prod uses it only to create the instance: the db-credentials-rotation "
               "function seeds the secrets on its first run (password set through RDS) and rotates them on a "
               "SecretRotation schedule, and nothing Pulumi manages holds a value it could write back "
               "(DEPLOY-ROTATION-ROLLBACK)"),
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
    # ------------------------------------------------------------ checkov (make audit), both stacks
    DesignException(
        rule_id="CKV2_AWS_5", resources="macrodb-proxy-sg", stacks=("dev", "prod"), judges=("checkov",),
        reason="attached to the RDS Proxy (vpc_security_group_ids); checkov's list of resources that attach "
               "security groups has no aws_db_proxy. Our CKV2_AWS_5 sees the attachment"),
    DesignException(
        rule_id="CKV_AWS_116", resources="*-function", stacks=("dev", "prod"), judges=("checkov",),
        reason="checkov wants a dead_letter_config on every function. Queue-fed functions fail into their queue's "
               "DLQ (redrive), asynchronously invoked ones into an on-failure destination queue "
               "(FunctionEventInvokeConfig, AWS's successor to function DLQs; our CKV_AWS_116 requires one), and "
               "Secrets Manager records and retries failed rotations itself"),
    DesignException(
        rule_id="CKV_AWS_272", resources="*-function", stacks=("dev", "prod"), judges=("checkov",),
        reason="code signing is optional in security-controls.md: artifacts are built reproducibly by make build "
               "and only the CI deploy role can update function code"),
    *(DesignException(
        rule_id="CKV2_AWS_57", resources=pattern, stacks=("dev", "prod"), judges=("checkov",), reason=reason)
      for pattern, reason in (
        ("*-url", "connection URLs are derived from the credentials; the rotation function rewrites them whenever "
                  "it rotates the credentials (and the cache URL changes with its token): same as SecretsManager.1"),
        ("search-master-password-secret", "OpenSearch's internal master user has no managed rotation "
                                          "(security-controls.md): same as SecretsManager.1"),
        ("app-secrets-*", "application keys rotate by planned replacement and externally issued values at their "
                          "issuer: same as SecretsManager.1"))),
    *(DesignException(
        rule_id=rule_id, resources=pattern, judges=("checkov",),
        stacks=("prod",) if pattern == "access-logs-bucket" else ("dev", "prod"),  # access logs: prod only
        reason=f"{what}: the bucket holds short-lived or append-only objects and is not versioned "
               "(S3.14/S3.7 do not fit staging, DOCX, attachment and log buckets: security-controls.md)")
      for rule_id, what in (("CKV_AWS_21", "versioning"), ("CKV_AWS_144", "cross-region replication needs "
                                                                           "versioning and is for documents"))
      for pattern in ("bulk-upload-staging-bucket", "docx-upload-bucket", "email-attachments-bucket",
                      "access-logs-bucket")),
    DesignException(
        rule_id="CKV_AWS_145", resources="access-logs-bucket", stacks=("prod",), judges=("checkov",),
        reason="S3 delivers server access logs only to a target bucket encrypted with SSE-S3, never SSE-KMS"),
    DesignException(
        rule_id="CKV_AWS_18", resources="documents-replica", stacks=("prod",), judges=("checkov",),
        reason="same as S3.9: the DR replica is written only by replication; its access logs would need a second "
               "log bucket in the DR region"),
    # ------------------------------------------------------------ checkov in dev: our prod-only controls ([P])
    *(DesignException(rule_id=rule_id, resources=pattern, stacks=("dev",), judges=("checkov",),
                      reason=f"prod-only control {ours} [P]: {why}")
      for rule_id, pattern, ours, why in (
        ("CKV_AWS_119", "*-table", "CKV_AWS_119", "dev tables are disposable and keep the AWS-owned key "
                                                  "(no key to pay for and retain)"),
        ("CKV_AWS_28", "*-table", "DynamoDB.2", "dev tables are disposable (tables.pointInTimeRecovery off)"),
        ("CKV_AWS_293", "*-instance", "RDS.8", "dev databases are freely destroyable"),
        ("CKV_AWS_157", "*-instance", "RDS.5", "dev databases run single-AZ"),
        ("CKV_AWS_353", "*-instance", "CKV_AWS_353", "Performance Insights is off in dev"),
        ("CKV_AWS_118", "*-instance", "RDS.6", "enhanced monitoring is off in dev (monitoringInterval 0)"),
        ("CKV_AWS_318", "search-domain", "Opensearch.11", "dev runs one data node without dedicated masters"),
        ("CKV2_AWS_59", "search-domain", "Opensearch.11", "dev runs one data node without dedicated masters"),
        ("CKV2_AWS_50", "cache-redis", "ElastiCache.3", "dev runs a lone Redis node, so no failover or multi-AZ"),
        ("CKV_AWS_338", "*", "CloudWatch.16", "dev keeps logs 30 days"),
        ("CKV_AWS_18", "*", "S3.9", "storage.accessLogging is off in dev"),
        ("CKV_AWS_145", "*", "S3.17", "dev buckets use SSE-S3 (storage.kmsEncryption off)"),
        ("CKV2_AWS_57", "*-credentials", "SecretsManager.1", "dev does not rotate database credentials"))),
    # ------------------------------------------------------------ parliament (make audit)
    DesignException(
        rule_id="MALFORMED", resources="trust:*", stacks=("dev", "prod"), judges=("parliament",),
        reason="a role's trust policy names a Principal and has no Resource element (IAM refuses one there); "
               "parliament reads every document with identity-policy grammar. Our CKV_AWS_60 judges trust policies"),
    DesignException(
        rule_id="RESOURCE_STAR", resources="key:*", stacks=("dev", "prod"), judges=("parliament",),
        reason="in a key policy Resource '*' means the key itself, the only value KMS accepts; who may do what is "
               "bounded by the principals and conditions (our KMS.5 and the key tests)"),
    *(DesignException(
        rule_id=issue, resources="key:keys-logs", stacks=("dev", "prod"), judges=("parliament",),
        reason=f"{what}: the statement is AWS's documented one for CloudWatch Logs (ArnLike on "
               "kms:EncryptionContext:aws:logs:arn over the key's actions, including Describe*)")
      for issue, what in (("UNKNOWN_CONDITION_FOR_ACTION", "DescribeKey carries no encryption context"),
                          ("MISMATCHED_TYPE", "parliament types encryption-context keys as String"))),
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


def exceptions_for(stack: str, judge: Judge = "rules") -> list[DesignException]:
    return [e for e in EXCEPTIONS if stack in e.stacks and judge in e.judges]
