"""A private, encrypted, TLS-only S3 bucket with lifecycle, CORS, notifications and optional cross-region replication.

pulumi-aws v7 style: ``aws.s3.Bucket`` plus one resource per concern. Writes to a bucket's policy, public-access block
and ownership controls are chained, because AWS rejects concurrent conditional writes (deploy rule 17).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components._options import child, stateful
from components.encryption_keys import grant_decrypt
from infra import iam
from infra.naming import bucket_name


@dataclass(frozen=True, kw_only=True)
class LifecycleRule:
    """One lifecycle rule. ``expired_delete_markers`` must stand alone (AWS rejects it beside a days expiry)."""

    id: str
    prefix: str = ""
    expire_days: int | None = None
    noncurrent_expire_days: int | None = None
    abort_multipart_days: int | None = None
    expired_delete_markers: bool = False

    def __post_init__(self) -> None:
        if self.expired_delete_markers and self.expire_days is not None:
            raise ValueError(f"lifecycle rule {self.id}: expired_delete_markers cannot share a rule with expire_days "
                             "(S3 answers MalformedXML); give it its own rule")
        if not (self.expire_days or self.noncurrent_expire_days or self.abort_multipart_days
                or self.expired_delete_markers):
            raise ValueError(f"lifecycle rule {self.id} does nothing")


def document_lifecycle(noncurrent_days: int = 30) -> tuple[LifecycleRule, ...]:
    """The document bucket's rules: temp files for a day, old versions for a month, no orphan markers or parts."""
    return (
        LifecycleRule(id="temp-files", prefix="temp_files/", expire_days=1),
        LifecycleRule(id="noncurrent-versions", noncurrent_expire_days=noncurrent_days),
        LifecycleRule(id="expired-delete-markers", expired_delete_markers=True),
        LifecycleRule(id="abort-incomplete-multipart", abort_multipart_days=7),
    )


@dataclass(frozen=True, kw_only=True)
class CorsSettings:
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...] = ("GET", "PUT", "POST", "DELETE", "HEAD")
    allowed_headers: tuple[str, ...] = ("*",)
    expose_headers: tuple[str, ...] = ("ETag",)
    max_age_seconds: int = 3000


@dataclass(frozen=True, kw_only=True)
class DocumentBucketArgs:
    base_name: str
    """Physical name part: the bucket is ``macro-{base_name}-{stack}-{account}``."""
    stack: str
    account_id: pulumi.Input[str]
    versioned: bool = True
    """Versioning (S3.14). Required for replication; off for short-lived upload buckets."""
    kms_key_arn: pulumi.Input[str] | None = None
    """SSE-KMS with a bucket key when set (S3.17); SSE-S3 otherwise. Readers and writers get the key through the
    grant helpers."""
    replica_kms_key_arn: pulumi.Input[str] | None = None
    """Key in ``replica_region`` for the replica's objects; required when ``kms_key_arn`` and replication are set."""
    region: str = "us-east-1"
    lifecycle: tuple[LifecycleRule, ...] = ()
    cors: CorsSettings | None = None
    transfer_acceleration: bool = False
    eventbridge: bool = False
    """Send every object event to EventBridge (the default bus) for rules to route."""
    function_notifications: bool = False
    """The caller wires S3 → Lambda later with :meth:`DocumentBucket.notify_function`, which then owns the bucket's one
    notification resource (EventBridge included). Until then no notification exists."""
    replica_region: str | None = None
    """Replicate every object, version and delete marker to a versioned, private bucket in this region."""
    access_log_bucket: pulumi.Input[str] | None = None
    """Server access logs go to this bucket under ``{bucket name}/`` (S3.9)."""
    receives_access_logs: bool = False
    """This is the access-log bucket: let the S3 logging service write into it from this account."""
    force_destroy: bool = False
    """Empty the bucket on destroy: dev only."""
    protect: bool = False
    """Protect and retain the bucket (prod)."""
    extra_tags: dict[str, str] = field(default_factory=dict)


class DocumentBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning | None
    policy: aws.s3.BucketPolicy
    notification: aws.s3.BucketNotification | None
    replica: aws.s3.Bucket | None
    replication: aws.s3.BucketReplicationConfig | None

    def __init__(self, name: str, args: DocumentBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:storage:DocumentBucket", name, None, opts)
        if args.replica_region and (args.kms_key_arn is None) != (args.replica_kms_key_arn is None):
            raise ValueError(f"{name}: SSE-KMS replication needs both kms_key_arn and replica_kms_key_arn")
        if args.receives_access_logs and args.kms_key_arn is not None:
            raise ValueError(f"{name}: S3 server access logs can only be delivered to an SSE-S3 bucket")
        if args.replica_region and not args.versioned:
            raise ValueError(f"{name}: replication needs versioning")
        if args.transfer_acceleration and "." in args.base_name:
            raise ValueError(f"{name}: transfer acceleration does not work with '.' in a bucket name")
        self._name = name
        self.args = args
        self.notification = None

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket=bucket_name(args.base_name, args.stack, args.account_id),
            force_destroy=args.force_destroy, tags={"purpose": args.base_name, **args.extra_tags},
            opts=stateful(self, args.protect))
        self.versioning = self._harden(name, self.bucket, region=None, versioned=args.versioned,
                                       kms_key_arn=args.kms_key_arn, extra_policy=self._log_delivery_statements())

        if args.lifecycle:
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle", bucket=self.bucket.id, rules=[_lifecycle_rule(r) for r in args.lifecycle],
                opts=child(self, depends_on=[self.versioning] if self.versioning else []))
        if args.cors:
            c = args.cors
            aws.s3.BucketCorsConfiguration(
                f"{name}-cors", bucket=self.bucket.id,
                cors_rules=[aws.s3.BucketCorsConfigurationCorsRuleArgs(
                    allowed_origins=list(c.allowed_origins), allowed_methods=list(c.allowed_methods),
                    allowed_headers=list(c.allowed_headers), expose_headers=list(c.expose_headers),
                    max_age_seconds=c.max_age_seconds)],
                opts=child(self))
        if args.transfer_acceleration:
            aws.s3.BucketAccelerateConfiguration(f"{name}-acceleration", bucket=self.bucket.id, status="Enabled",
                                                 opts=child(self))
        if args.access_log_bucket is not None:
            aws.s3.BucketLogging(f"{name}-logging", bucket=self.bucket.id, target_bucket=args.access_log_bucket,
                                 target_prefix=pulumi.Output.concat(self.bucket.bucket, "/"), opts=child(self))
        if args.eventbridge and not args.function_notifications:
            self.notification = aws.s3.BucketNotification(f"{name}-notification", bucket=self.bucket.id,
                                                          eventbridge=True, opts=child(self))

        self.replica = None
        self.replication = None
        if args.replica_region:
            self._replicate(name, args.replica_region)

        self.register_outputs({"bucket_name": self.bucket.bucket, "bucket_arn": self.bucket.arn})

    # ----------------------------------------------------------------------------------------------------------------

    def _harden(self, name: str, bucket: aws.s3.Bucket, *, region: str | None, versioned: bool,
                kms_key_arn: pulumi.Input[str] | None,
                extra_policy: Sequence[dict] = ()) -> aws.s3.BucketVersioning | None:
        """Ownership enforced, public access blocked, default encryption, TLS-only policy and versioning."""
        regional = {"region": region} if region else {}
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), **regional,
            opts=child(self))
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, **regional,
            opts=child(self, depends_on=[ownership]))
        if kms_key_arn is not None:
            default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn)
        else:
            default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256")
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=default, bucket_key_enabled=kms_key_arn is not None)],
            **regional, opts=child(self))
        statements = [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }, *extra_policy]
        policy = aws.s3.BucketPolicy(f"{name}-policy", bucket=bucket.id, policy=iam.document(statements), **regional,
                                     opts=child(self, depends_on=[ownership, public_block]))
        if bucket is self.bucket:
            self.policy = policy
        if not versioned:
            return None
        return aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            **regional, opts=stateful(self, self.args.protect))

    def _log_delivery_statements(self) -> list[dict]:
        if not self.args.receives_access_logs:
            return []
        return [{
            "Sid": "AllowS3ServerAccessLogs", "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(self.bucket.arn, "/*"),
            "Condition": {"StringEquals": {"aws:SourceAccount": self.args.account_id}},
        }]

    def _replicate(self, name: str, region: str) -> None:
        """Replica in the DR region (v7 per-resource ``region``: no second provider) and a role that may only
        replicate between the two buckets."""
        args = self.args
        self.replica = aws.s3.Bucket(
            f"{name}-replica", bucket=bucket_name(args.base_name, args.stack, args.account_id, region="replica"),
            region=region, force_destroy=args.force_destroy, tags={"purpose": f"{args.base_name}-replica"},
            opts=stateful(self, args.protect))
        replica_versioning = self._harden(f"{name}-replica", self.replica, region=region, versioned=True,
                                          kms_key_arn=args.replica_kms_key_arn)
        # S3.11: the replica reports its object events too (to its region's default bus), e.g. for DR audits.
        aws.s3.BucketNotification(f"{name}-replica-notification", bucket=self.replica.id, region=region,
                                  eventbridge=True, opts=child(self))
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-replica-lifecycle", bucket=self.replica.id, region=region,
            rules=[_lifecycle_rule(r) for r in args.lifecycle] or [_lifecycle_rule(r) for r in document_lifecycle()],
            opts=child(self, depends_on=[replica_versioning] if replica_versioning else []))

        role = aws.iam.Role(f"{name}-replication-role", name=f"{args.base_name}-replication-{args.stack}",
                            assume_role_policy=iam.assume_role_policy("s3.amazonaws.com"), opts=child(self))
        grants = iam.Grants(f"{name}-replication-role")
        grants.allow("read replication configuration", ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                     [self.bucket.arn])
        grants.allow("read source versions", ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                                              "s3:GetObjectVersionTagging"],
                     [pulumi.Output.concat(self.bucket.arn, "/*")])
        grants.allow("write replica", ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                     [pulumi.Output.concat(self.replica.arn, "/*")])
        encrypted = args.kms_key_arn is not None and args.replica_kms_key_arn is not None
        if args.kms_key_arn is not None and args.replica_kms_key_arn is not None:
            grant_decrypt(grants, args.kms_key_arn, "s3", args.region, "source objects")
            grants.allow("encrypt replica objects", ["kms:Encrypt", "kms:GenerateDataKey"],
                         [args.replica_kms_key_arn],
                         {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}})
        policy = aws.iam.RolePolicy(f"{name}-replication-policy", role=role.id, policy=grants.document(),
                                    opts=child(self))
        assert self.versioning is not None and replica_versioning is not None
        self.replication = aws.s3.BucketReplicationConfig(
            f"{name}-replication", bucket=self.bucket.id, role=role.arn,
            rules=[aws.s3.BucketReplicationConfigRuleArgs(
                id="disaster-recovery", status="Enabled", priority=1,
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                    status="Enabled"),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled")) if encrypted else None,
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=self.replica.arn, storage_class="STANDARD",
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=args.replica_kms_key_arn) if encrypted else None))],
            opts=child(self, depends_on=[self.versioning, replica_versioning, policy]))

    # ----------------------------------------------------------------------------------------------------------------

    def notify_function(self, function_arn: pulumi.Input[str], permission: aws.lambda_.Permission, *,
                        events: Sequence[str] = ("s3:ObjectCreated:*",), prefix: str | None = None,
                        suffix: str | None = None) -> aws.s3.BucketNotification:
        """Create the bucket's single notification: S3 → the function (after its invoke permission), plus EventBridge
        when the bucket has it on. Each write replaces the whole configuration, hence one resource per bucket."""
        if not self.args.function_notifications:
            raise ValueError(f"{self._name}: set function_notifications=True to wire a function")
        if self.notification is not None:
            raise ValueError(f"{self._name}: the bucket already has its notification resource")
        self.notification = aws.s3.BucketNotification(
            f"{self._name}-notification", bucket=self.bucket.id, eventbridge=self.args.eventbridge or None,
            lambda_functions=[aws.s3.BucketNotificationLambdaFunctionArgs(
                lambda_function_arn=function_arn, events=list(events), filter_prefix=prefix, filter_suffix=suffix)],
            opts=child(self, depends_on=[permission]))
        return self.notification

    def _objects(self, prefix: str | None) -> pulumi.Output[str]:
        return pulumi.Output.concat(self.bucket.arn, "/", prefix or "", "*")

    def _grant_key(self, grants: iam.Grants, *, encrypt: bool) -> None:
        if self.args.kms_key_arn is not None:
            grant_decrypt(grants, self.args.kms_key_arn, "s3", self.args.region,
                          f"{self._name} objects{' write' if encrypt else ''}", encrypt=encrypt)

    def grant_read(self, grants: iam.Grants, prefix: str | None = None) -> None:
        """Read objects (under ``prefix``). Listing is bucket-wide: S3 answers 403 instead of 404 for a missing key
        unless the caller may list the bucket, and a ``s3:prefix`` condition never matches a GET or HEAD."""
        grants.allow(f"{self._name} read {prefix or 'all'}", ["s3:GetObject", "s3:GetObjectVersion"],
                     [self._objects(prefix)])
        self._grant_key(grants, encrypt=False)
        grants.allow(f"{self._name} list", ["s3:ListBucket"], [self.bucket.arn])

    def grant_write(self, grants: iam.Grants, prefix: str | None = None) -> None:
        grants.allow(f"{self._name} write {prefix or 'all'}", ["s3:PutObject", "s3:AbortMultipartUpload"],
                     [self._objects(prefix)])
        self._grant_key(grants, encrypt=True)

    def grant_delete(self, grants: iam.Grants, prefix: str | None = None) -> None:
        """Delete objects with every version and delete marker (an unversioned object's version is ``null``)."""
        self._grant_delete_in(grants, self.bucket, self._name, prefix)

    def grant_delete_replica(self, grants: iam.Grants, prefix: str | None = None) -> None:
        """Delete in the DR replica too: version deletes in the source are never replicated."""
        if self.replica is None:
            raise ValueError(f"{self._name}: the bucket has no replica")
        self._grant_delete_in(grants, self.replica, f"{self._name} replica", prefix)

    @staticmethod
    def _grant_delete_in(grants: iam.Grants, bucket: aws.s3.Bucket, label: str, prefix: str | None) -> None:
        grants.allow(f"{label} delete {prefix or 'all'}", ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                     [pulumi.Output.concat(bucket.arn, "/", prefix or "", "*")])
        condition = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None
        grants.allow(f"{label} list versions {prefix or 'all'}", ["s3:ListBucket", "s3:ListBucketVersions"],
                     [bucket.arn], condition)

def _lifecycle_rule(rule: LifecycleRule) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    expiration = None
    if rule.expire_days is not None:
        expiration = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=rule.expire_days)
    elif rule.expired_delete_markers:
        expiration = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True)
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule.id, status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=rule.prefix),
        expiration=expiration,
        noncurrent_version_expiration=(
            aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=rule.noncurrent_expire_days) if rule.noncurrent_expire_days else None),
        abort_incomplete_multipart_upload=(
            aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=rule.abort_multipart_days) if rule.abort_multipart_days else None),
    )
