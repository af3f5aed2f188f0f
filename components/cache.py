"""The platform's Redis (sessions, caching, pub/sub): a private ElastiCache replication group that only speaks TLS and
demands an AUTH token, whose ``rediss://`` URL (token included) lives only in Secrets Manager.

ElastiCache runs Redis OSS: the Redis Stack modules the seed mentions (RediSearch, RedisJSON, ...) are not available
on ElastiCache, so services must use core Redis commands only.

Rotating the token: ``pulumi up --replace <the auth-token RandomPassword URN>`` generates a new one; the provider
modifies the group with the ROTATE strategy (old and new token both accepted) and rewrites the URL secret, so clients
pick the new URL up on their next cold start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components._options import child, stateful
from components.alarms import AlarmSpec, metric_alarm
from components.network import Network
from components.secrets import SecretSettings, create_secret, grant_secret_read
from infra import iam

PORT = 6379
MAX_NODES = 6
"""A primary and up to five replicas (cluster mode disabled)."""
# The only special characters ElastiCache accepts in an AUTH token (deploy rule 32: never '@', '"', '/' or space).
TOKEN_SPECIALS = "!&#$^<>-"
TOKEN_MIN_LENGTH, TOKEN_MAX_LENGTH = 16, 128
_TOKEN = re.compile(rf"[A-Za-z0-9{re.escape(TOKEN_SPECIALS)}]{{{TOKEN_MIN_LENGTH},{TOKEN_MAX_LENGTH}}}")
# Replication group ids: 1-40 of a-z, 0-9 and '-', a letter first, no '--' and no trailing '-'.
_GROUP_ID = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,38}[a-z0-9]|[a-z]")


def check_auth_token(token: str) -> str:
    """Fail the deploy here, not halfway through ``pulumi up`` with ``Invalid AuthToken provided``."""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"the Redis AUTH token must be {TOKEN_MIN_LENGTH}-{TOKEN_MAX_LENGTH} characters of letters, "
                         f"digits and {TOKEN_SPECIALS!r} (deploy rule 32)")
    return token


def connection_url(token: str, host: str, port: int = PORT) -> str:
    """``rediss://:<token>@host:port``: TLS scheme, password-only AUTH, token percent-encoded for URL parsers."""
    return f"rediss://:{quote(check_auth_token(token), safe='')}@{host}:{port}"


@dataclass(frozen=True, kw_only=True)
class CacheAlarmThresholds:
    cpu_percent: int = 75
    """``EngineCPUUtilization``: Redis runs commands on one core, so this is the figure that saturates first."""
    memory_percent: int = 80
    """``DatabaseMemoryUsagePercentage``: above it, eviction starts dropping cached keys (and sessions)."""


@dataclass(frozen=True, kw_only=True)
class RedisCacheArgs:
    stack: str
    account_id: pulumi.Input[str]
    """Scopes the log-delivery resource policy to this account."""
    network: Network
    secrets: SecretSettings
    alarm_topic_arn: pulumi.Input[str]
    base_name: str = "macro-cache"
    """Replication group ``{base_name}-{stack}`` (≤ 40 characters)."""
    url_secret_key: str = "macro_cache_secret_key"
    """Seed secret key holding the connection URL (``REDIS_URL``)."""
    allowed_from: Sequence[aws.ec2.SecurityGroup] = ()
    """Security groups whose members may connect (6379)."""
    engine_version: str = "7.1"
    """Redis OSS 7.x."""
    node_type: str = "cache.t4g.medium"
    nodes: int = 2
    """1 = a lone primary (dev); 2-6 = a primary and replicas spread over the private subnets' zones."""
    automatic_failover: bool | None = None
    """``None`` turns failover and multi-AZ on exactly when there are replicas; ``True`` needs ≥ 2 nodes."""
    snapshot_retention_days: int = 7
    """Daily snapshots kept (0 = none, dev); a final snapshot is taken on deletion when > 0."""
    snapshot_window: str = "05:00-06:00"
    maintenance_window: str = "sun:07:00-sun:08:00"
    """Must not overlap the snapshot window (UTC)."""
    slow_log: bool = True
    """Deliver the slow log to CloudWatch Logs (JSON)."""
    log_retention_days: int = 365
    log_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the log groups (CKV_AWS_158)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the data at rest and the snapshots (CKV_AWS_191); ``None`` = the service's key."""
    auth_token_length: int = 64
    thresholds: CacheAlarmThresholds = CacheAlarmThresholds()
    protect: bool = False

    def __post_init__(self) -> None:
        group_id = self.replication_group_id
        if not _GROUP_ID.fullmatch(group_id):
            raise ValueError(f"cache id {group_id!r} must be 1-40 of a-z, 0-9 and '-', start with a letter, and have "
                             f"no '--' or trailing '-'")
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"{group_id}: nodes must be 1-{MAX_NODES} (a primary and up to five replicas), "
                             f"got {self.nodes}")
        if self.automatic_failover and self.nodes < 2:
            raise ValueError(f"{group_id}: automatic failover needs at least 2 nodes, got {self.nodes} "
                             f"(deploy rule 33)")
        if not TOKEN_MIN_LENGTH <= self.auth_token_length <= TOKEN_MAX_LENGTH:
            raise ValueError(f"{group_id}: the AUTH token length must be {TOKEN_MIN_LENGTH}-{TOKEN_MAX_LENGTH}, "
                             f"got {self.auth_token_length} (deploy rule 32)")
        if not re.fullmatch(r"7\.\d+", self.engine_version):
            raise ValueError(f"{group_id}: engine version {self.engine_version!r} must be Redis OSS 7.x, e.g. 7.1")
        if not 0 <= self.snapshot_retention_days <= 35:
            raise ValueError(f"{group_id}: snapshot retention must be 0-35 days, got {self.snapshot_retention_days}")

    @property
    def replication_group_id(self) -> str:
        return f"{self.base_name}-{self.stack}"

    @property
    def failover(self) -> bool:
        return self.nodes >= 2 if self.automatic_failover is None else self.automatic_failover


class RedisCache(pulumi.ComponentResource):
    replication_group: aws.elasticache.ReplicationGroup
    security_group: aws.ec2.SecurityGroup
    subnet_group: aws.elasticache.SubnetGroup
    auth_token: random.RandomPassword
    url_secret: aws.secretsmanager.Secret
    slow_log_group: aws.cloudwatch.LogGroup | None
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: RedisCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:cache:RedisCache", name, None, opts)
        self._name = name
        self.args = args
        group_id = args.replication_group_id
        self.replication_group_id = group_id

        self.security_group = args.network.security_group(
            f"{name}-sg", description=f"Redis (TLS) to {group_id} from named groups only", port=PORT,
            allowed_from=args.allowed_from, parent=self)
        # ElastiCache.7: its own subnet group over every private subnet, so replicas can land in every zone.
        self.subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets", name=group_id, description=f"Private subnets of {group_id}",
            subnet_ids=args.network.private_subnet_ids, opts=child(self))

        self.auth_token = random.RandomPassword(
            f"{name}-auth-token", length=args.auth_token_length, special=True, override_special=TOKEN_SPECIALS,
            min_upper=2, min_lower=2, min_numeric=2, min_special=1, opts=child(self))

        self.slow_log_group = None
        log_delivery = []
        depends: list[pulumi.Resource] = []
        if args.slow_log:
            self.slow_log_group = aws.cloudwatch.LogGroup(
                f"{name}-slow-log", name=f"/aws/elasticache/{group_id}/slow-log",
                retention_in_days=args.log_retention_days, kms_key_id=args.log_kms_key_arn, opts=child(self))
            # Written explicitly so AWS does not append to its shared, account-wide delivery policy.
            depends.append(aws.cloudwatch.LogResourcePolicy(
                f"{name}-log-policy", policy_name=f"{group_id}-elasticache-logs",
                policy_document=iam.document([{
                    "Sid": "ElastiCacheDeliversLogs", "Effect": "Allow",
                    "Principal": {"Service": "delivery.logs.amazonaws.com"},
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [pulumi.Output.concat(self.slow_log_group.arn, ":*")],
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                }]), opts=child(self)))
            log_delivery.append({"destination": self.slow_log_group.name, "destination_type": "cloudwatch-logs",
                                 "log_format": "json", "log_type": "slow-log"})

        failover = args.failover
        snapshots = args.snapshot_retention_days > 0
        self.replication_group = aws.elasticache.ReplicationGroup(
            f"{name}-redis", replication_group_id=group_id,
            description=f"Redis for sessions, caching and pub/sub ({args.stack})",
            engine="redis", engine_version=args.engine_version, node_type=args.node_type, port=PORT,
            num_cache_clusters=args.nodes,
            # Deploy rule 33: failover needs ≥ 2 nodes and multi-AZ needs failover, so a lone node sets both False.
            automatic_failover_enabled=failover, multi_az_enabled=failover,
            subnet_group_name=self.subnet_group.name, security_group_ids=[self.security_group.id],
            # Deploy rule 32: the AUTH token is accepted only with transit encryption on.
            transit_encryption_enabled=True, transit_encryption_mode="required", at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            auth_token=self.auth_token.result,
            auto_minor_version_upgrade=True,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window=args.snapshot_window if snapshots else None,
            final_snapshot_identifier=f"{group_id}-final" if snapshots else None,
            maintenance_window=args.maintenance_window,
            log_delivery_configurations=log_delivery or None,
            apply_immediately=False,
            opts=stateful(self, args.protect, depends_on=depends))

        self.url_secret = create_secret(
            self, f"{name}-url", args.secrets, key=args.url_secret_key,
            description=f"Connection URL of {group_id}: rediss:// with the AUTH token (REDIS_URL)",
            value=pulumi.Output.all(self.auth_token.result, self.replication_group.primary_endpoint_address).apply(
                lambda v: connection_url(v[0], v[1])))

        self.alarms = self._alarms(name, group_id)
        self.register_outputs({
            "primary_endpoint": self.replication_group.primary_endpoint_address,
            "reader_endpoint": self.replication_group.reader_endpoint_address,
            "url_secret_arn": self.url_secret.arn,
        })

    def _alarms(self, name: str, group_id: str) -> list[aws.cloudwatch.MetricAlarm]:
        """CPU and memory per node. ElastiCache names the nodes of a replication group ``{id}-001``, ``{id}-002`` ...
        and publishes these metrics per node (``CacheClusterId``), so one alarm watches each."""
        t = self.args.thresholds
        topic = self.args.alarm_topic_arn
        alarms = []
        for n in range(1, self.args.nodes + 1):
            node = f"{n:03d}"
            dims = {"CacheClusterId": self.replication_group.id.apply(lambda rid, node=node: f"{rid}-{node}")}
            alarms.append(metric_alarm(self, f"{name}-cpu-alarm-{node}", AlarmSpec(
                name=f"{group_id}-{node}-cpu", description=f"{group_id}-{node}: Redis engine CPU above "
                f"{t.cpu_percent}% for 15 minutes.", namespace="AWS/ElastiCache", metric="EngineCPUUtilization",
                statistic="Average", dimensions=dims, threshold=t.cpu_percent, period=300, evaluation_periods=3),
                topic))
            alarms.append(metric_alarm(self, f"{name}-memory-alarm-{node}", AlarmSpec(
                name=f"{group_id}-{node}-memory", description=f"{group_id}-{node}: memory above {t.memory_percent}% "
                "of maxmemory; keys are being evicted.", namespace="AWS/ElastiCache",
                metric="DatabaseMemoryUsagePercentage", statistic="Maximum", dimensions=dims,
                threshold=t.memory_percent, period=300, evaluation_periods=2), topic))
        return alarms

    def grant_connect(self, grants: iam.Grants) -> None:
        """Read the URL secret clients connect with (network reach comes from ``allowed_from``)."""
        grant_secret_read(grants, self.url_secret.arn, f"{self.replication_group_id} connection URL",
                          self.args.secrets)
