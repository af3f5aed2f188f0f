"""Typed stack configuration: every setting the program reads, validated once, before any resource exists.

Each section of ``Pulumi.<stack>.yaml`` (``macro-infra:search``, ``macro-infra:database`` ...) is an object whose keys
are read into a frozen dataclass with a documented default. A wrong or missing value raises :class:`ConfigError` with
one message naming the key, the stack and the fix, e.g.::

    macro-infra:search.dataNodes must be a multiple of search.zoneCount (3) when zone awareness is on
    (stack prod, got 4). Fix: pulumi config set --path 'search.dataNodes' 6

The loader takes a plain ``get_object(section)`` callable so tests can feed dictionaries without the Pulumi engine.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROJECT = "macro-infra"

# CloudWatch Logs accepts only these retention periods (deploy rule 10).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
FUNCTION_NAMES = (
    "text_extractor", "docx_unzip", "bulk_upload", "delete_chat", "delete_document", "deleted_item_poller",
    "email_suppression", "user_link_cleanup", "email_attachment_cleanup", "db_credentials_rotation",
)
_SCHEDULE = re.compile(r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A stack setting is wrong or missing; the message names the key, the stack and the fix."""


# --------------------------------------------------------------------------------------------------------------------
# Sections. Defaults are the secure, production-shaped choice unless noted; dev relaxes them explicitly in its file.
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    cidr: str = "10.0.0.0/16"
    """VPC CIDR; the subnet layout (in components/network.py) carves /20s out of it, so it must be a /16."""
    nat_gateways: str = "perAz"
    """``single`` (one NAT for all AZs: cheap, dev) or ``perAz`` (one per AZ: no cross-AZ dependency, prod)."""
    flow_logs: bool = True
    """VPC flow logs to CloudWatch (EC2.6)."""


@dataclass(frozen=True, kw_only=True)
class StorageConfig:
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to PUT/GET documents directly; explicit, never ``*``."""
    transfer_acceleration: bool = False
    replication: bool = True
    """Cross-region replication of the document bucket to ``dr_region`` (S3.7)."""
    dr_region: str = "us-west-1"
    kms_encryption: bool = False
    """SSE-KMS with a bucket key on the document buckets (S3.17); SSE-S3 otherwise."""
    access_logging: bool = True
    """Server access logs of every bucket into the access-log bucket (S3.9)."""
    access_log_expiry_days: int = 365
    staging_expiry_days: int = 7
    """Days before uploaded bulk-upload zips under ``extract/`` expire."""
    attachments_expiry_days: int = 30
    """Backstop expiry of email attachments; the cleanup function deletes them first."""
    noncurrent_version_expiry_days: int = 30


@dataclass(frozen=True, kw_only=True)
class TablesConfig:
    point_in_time_recovery: bool = True
    deletion_protection: bool = True


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    engine_version: str = "OpenSearch_2.19"
    instance_type: str = "r7g.large.search"
    data_nodes: int = 3
    zone_count: int = 3
    """Availability zones the data nodes spread over; 1 means no zone awareness (and exactly one subnet)."""
    dedicated_masters: bool = True
    master_type: str = "r7g.large.search"
    master_count: int = 3
    ebs_size_gb: int = 200

    @property
    def zone_awareness(self) -> bool:
        return self.zone_count > 1


@dataclass(frozen=True, kw_only=True)
class DatabaseConfig:
    engine_version: str = "16"
    """A major version (RDS picks the current minor and upgrades it; a pinned minor fails once RDS retires it)."""
    instance_class: str = "db.t4g.large"
    allocated_storage_gb: int = 50
    max_allocated_storage_gb: int = 200
    multi_az: bool = True
    backup_retention_days: int = 7
    deletion_protection: bool = True
    final_snapshot: bool = True
    proxy: bool = True
    """An RDS Proxy in front of the instance (the handlers' ``DATABASE_URL_PROXY``)."""
    performance_insights: bool = True
    monitoring_interval: int = 60
    """Enhanced monitoring seconds (0 = off; RDS.6)."""


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    engine_version: str = "7.1"
    node_type: str = "cache.t4g.medium"
    nodes: int = 2
    """1 = a single primary (dev); ≥ 2 adds replicas with automatic failover and multi-AZ."""
    snapshot_retention_days: int = 7


@dataclass(frozen=True, kw_only=True)
class AlarmsConfig:
    emails: tuple[str, ...] = ()
    """On-call addresses subscribed to the alarm topic (each must confirm the subscription)."""
    rds_cpu_percent: int = 80
    rds_free_storage_gb: int = 5
    rds_connections: int = 200
    search_free_storage_mb: int = 20480
    search_jvm_pressure_percent: int = 80
    cache_cpu_percent: int = 75
    cache_memory_percent: int = 80
    function_duration_percent: int = 80
    """Alarm when a function's maximum duration exceeds this share of its timeout."""
    queue_oldest_message_seconds: int = 900


@dataclass(frozen=True, kw_only=True)
class SecretsConfig:
    recovery_window_days: int = 30
    """0 deletes at once (dev: names are reusable); 7-30 keeps a deleted secret recoverable (prod)."""
    rotation_days: int = 30
    """Rotation period of the database master credentials (when rotated)."""
    rotate_database_credentials: bool = True
    """Rotate the databases' master credentials (and the URL secrets derived from them) on a schedule."""


@dataclass(frozen=True, kw_only=True)
class FunctionSettings:
    memory_mb: int = 256
    timeout_seconds: int = 30
    reserved_concurrency: int = -1
    """-1 = unreserved. A reservation can fail the deploy in new accounts (deploy rule 7), so it is opt-in."""
    batch_size: int = 1
    """Records per SQS batch for queue-fed functions."""


_FUNCTION_DEFAULTS: dict[str, FunctionSettings] = {
    "text_extractor": FunctionSettings(memory_mb=1024, timeout_seconds=300, batch_size=1),
    "docx_unzip": FunctionSettings(memory_mb=1024, timeout_seconds=60),
    "bulk_upload": FunctionSettings(memory_mb=2048, timeout_seconds=300, batch_size=1),
    "delete_chat": FunctionSettings(memory_mb=256, timeout_seconds=30, batch_size=5),
    "delete_document": FunctionSettings(memory_mb=256, timeout_seconds=300, batch_size=1),
    "deleted_item_poller": FunctionSettings(memory_mb=256, timeout_seconds=120),
    "email_suppression": FunctionSettings(memory_mb=256, timeout_seconds=30),
    "user_link_cleanup": FunctionSettings(memory_mb=256, timeout_seconds=120),
    "email_attachment_cleanup": FunctionSettings(memory_mb=256, timeout_seconds=300),
    "db_credentials_rotation": FunctionSettings(memory_mb=256, timeout_seconds=60),
}


@dataclass(frozen=True, kw_only=True)
class DataPlaneConfig:
    functions: Mapping[str, FunctionSettings] = field(default_factory=lambda: dict(_FUNCTION_DEFAULTS))
    max_object_mb: int = 100
    """Largest document the extractor and unzip functions read."""
    max_pages: int = 2000
    max_decompressed_mb: int = 256
    """Cap on the total uncompressed size of an archive's (or OOXML document's) entries."""
    max_archive_entries: int = 10000
    max_compression_ratio: int = 100
    max_nesting_depth: int = 16
    """Folder levels in a member path of an archive (bulk zips and DOCX packages)."""
    max_text_chars: int = 64 * 1024 * 1024
    """Characters of text the extractor keeps from one document."""
    max_html_tags: int = 1_000_000
    """HTML tags the extractor parses in one document."""
    pdf_worker_memory_mb: int = 640
    """Address space of the extractor's PDF worker process (within the function's memory)."""
    pdf_worker_timeout_seconds: int = 120
    """Time the extractor's PDF worker may take for one document (within the function's timeout)."""
    deleted_item_min_age_days: int = 30
    deleted_item_redispatch_hours: int = 72
    """Hours after which the deleted-item poller dispatches again an item whose deletion job has not finished."""
    deleted_item_page_size: int = 500
    """Soft-deleted items the deleted-item poller reads per keyset page (one query per page)."""
    attachment_purge_page_size: int = 200
    """Attachments of deleted messages the attachment cleanup reads per keyset page (one query, then each purged)."""
    user_link_max_age_hours: int = 24
    """Age after which the user-link cleanup drops an unfinished account link."""
    attachment_cleanup_schedule: str = "rate(1 day)"
    deleted_item_poller_schedule: str = "rate(4 hours)"
    user_link_cleanup_schedule: str = "rate(8 hours)"
    tracing: bool = True
    """X-Ray active tracing (CKV_AWS_50)."""

    def settings(self, function: str) -> FunctionSettings:
        return self.functions[function]


@dataclass(frozen=True, kw_only=True)
class ServicesConfig:
    ecs_services: tuple[str, ...] = ()
    """ECS service names in the platform cluster that get CPU, memory and task-count alarms."""
    health_check_url: str | None = None
    """An HTTPS API endpoint probed by a Route 53 health check with an alarm (None = no check)."""


@dataclass(frozen=True, kw_only=True)
class CostConfig:
    """What the plan's monthly estimate assumes about usage (the fixed costs come from the records alone), and the
    budget its advisory rule compares the fixed costs with. One table of defaults; a stack overrides any key."""

    fixed_budget_usd: int | None = None
    """Advisory ceiling on the stack's fixed monthly cost (rule COST-BUDGET); None = no budget."""
    function_invocations: int = 100_000
    """Invocations per function per month."""
    function_average_ms: int = 1000
    """Average billed duration of one invocation."""
    bucket_stored_gb: int = 50
    """GB stored per bucket (its replica stores the same)."""
    bucket_put_requests: int = 100_000
    bucket_get_requests: int = 1_000_000
    queue_requests: int = 1_000_000
    """Requests per month on each queue that has consumers (send, receive, delete); dead-letter queues are idle."""
    table_reads: int = 1_000_000
    table_writes: int = 250_000
    table_stored_gb: int = 1
    log_ingest_gb: int = 1
    """GB ingested per log group per month; stored GB = ingest x retention months (at most 12)."""
    nat_processed_gb: int = 50
    """GB through each NAT gateway per month (S3 and DynamoDB bypass it through gateway endpoints)."""
    secret_reads: int = 10_000
    """API calls per secret per month."""
    key_requests: int = 10_000
    """Requests per KMS key per month."""


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    stack: str
    region: str
    environment: str
    """``dev`` or ``prod``: names, tags and which relaxations apply."""
    protect: bool
    """Protect stateful resources from deletion (prod) or keep the stack fully destroyable (dev)."""
    network: NetworkConfig
    storage: StorageConfig
    tables: TablesConfig
    search: SearchConfig
    database: DatabaseConfig
    contacts_database: DatabaseConfig
    cache: CacheConfig
    log_retention_days: int
    alarms: AlarmsConfig
    secrets: SecretsConfig
    data_plane: DataPlaneConfig
    services: ServicesConfig
    costs: CostConfig = CostConfig()

    @property
    def is_production(self) -> bool:
        return self.environment == "prod"


# --------------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------------


class _Section:
    """Reads one config object, converting camelCase keys, and rejects keys nobody reads (typos)."""

    def __init__(self, stack: str, name: str, raw: Any):
        self.stack, self.name = stack, name
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            self._fail("", f"must be an object of settings, got {type(raw).__name__}",
                       f"write it as a YAML mapping under {PROJECT}:{name}")
        self.raw: Mapping[str, Any] = raw
        self.read: set[str] = set()

    def key(self, key: str) -> str:
        return f"{PROJECT}:{self.name}.{key}" if key else f"{PROJECT}:{self.name}"

    def _fail(self, key: str, problem: str, fix: str) -> None:
        raise ConfigError(f"{self.key(key)} {problem} (stack {self.stack}). Fix: {fix}")

    def fail(self, key: str, problem: str, fix: str | None = None) -> None:
        value = self.raw.get(key, "<unset>")
        self._fail(key, f"{problem} (got {value!r})",
                   fix or f"pulumi config set --path '{self.name}.{key}' <value> --stack {self.stack}")

    def _get(self, key: str, default: Any) -> Any:
        self.read.add(key)
        return self.raw.get(key, default)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(key, "must be true or false")
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "must be a whole number")
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.fail(key, f"must be {bounds}")
        return value

    def string(self, key: str, default: str | None, *, pattern: str | None = None, choices: tuple[str, ...] = (),
            hint: str = "") -> str:
        value = self._get(key, default)
        if value is None:
            self.fail(key, "is required")
        if not isinstance(value, str) or not value:
            self.fail(key, "must be a non-empty string")
        if choices and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}")
        if pattern and not re.fullmatch(pattern, value):
            self.fail(key, f"must look like {hint or pattern}")
        return value

    def optional_str(self, key: str, *, pattern: str, hint: str) -> str | None:
        if self.raw.get(key) is None:
            self.read.add(key)
            return None
        return self.string(key, None, pattern=pattern, hint=hint)

    def str_list(self, key: str, default: tuple[str, ...] = (), *, item: re.Pattern[str] | None = None,
                 hint: str = "") -> tuple[str, ...]:
        value = self._get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(key, "must be a list of strings")
        for v in value:
            if item is not None and not item.fullmatch(v):
                self.fail(key, f"has {v!r}, which is not {hint}")
        return tuple(value)

    def object(self, key: str) -> Mapping[str, Any]:
        value = self._get(key, {})
        if not isinstance(value, Mapping):
            self.fail(key, "must be an object")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.read)
        if unknown:
            known = ", ".join(sorted(self.read))
            self._fail(unknown[0], "is not a known setting", f"remove it or use one of: {known}")


def _network(s: _Section) -> NetworkConfig:
    cidr = s.string("cidr", NetworkConfig.cidr)
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError:
        s.fail("cidr", "must be an IPv4 CIDR block such as 10.0.0.0/16")
    if net.version != 4 or net.prefixlen != 16 or not net.is_private:
        s.fail("cidr", "must be a private IPv4 /16 (the subnet layout carves /20s from it)")
    cfg = NetworkConfig(cidr=cidr, nat_gateways=s.string("natGateways", "perAz", choices=("single", "perAz")),
                        flow_logs=s.flag("flowLogs", True))
    s.done()
    return cfg


_ORIGIN = re.compile(r"^https?://(localhost|[a-z0-9*]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$")


def _storage(s: _Section) -> StorageConfig:
    origins = s.str_list("corsOrigins", item=_ORIGIN,
                         hint="an origin like https://app.macro.com (no path, no '*' alone)")
    cfg = StorageConfig(
        cors_origins=origins,
        transfer_acceleration=s.flag("transferAcceleration", False),
        replication=s.flag("replication", True),
        dr_region=s.string("drRegion", "us-west-1", pattern=r"[a-z]{2}(-gov)?-[a-z]+-\d",
                        hint="an AWS region like us-west-1"),
        kms_encryption=s.flag("kmsEncryption", False),
        access_logging=s.flag("accessLogging", True),
        access_log_expiry_days=s.integer("accessLogExpiryDays", 365, minimum=1, maximum=3650),
        staging_expiry_days=s.integer("stagingExpiryDays", 7, minimum=1, maximum=365),
        attachments_expiry_days=s.integer("attachmentsExpiryDays", 30, minimum=1, maximum=3650),
        noncurrent_version_expiry_days=s.integer("noncurrentVersionExpiryDays", 30, minimum=1, maximum=3650),
    )
    s.done()
    return cfg


def _tables(s: _Section) -> TablesConfig:
    cfg = TablesConfig(point_in_time_recovery=s.flag("pointInTimeRecovery", True),
                       deletion_protection=s.flag("deletionProtection", True))
    s.done()
    return cfg


def _search(s: _Section) -> SearchConfig:
    cfg = SearchConfig(
        engine_version=s.string("engineVersion", SearchConfig.engine_version, pattern=r"OpenSearch_\d+\.\d+",
                             hint="OpenSearch_2.19"),
        instance_type=s.string("instanceType", SearchConfig.instance_type, pattern=r"[a-z0-9]+\.[a-z0-9]+\.search",
                            hint="r7g.large.search"),
        data_nodes=s.integer("dataNodes", 3, minimum=1, maximum=80),
        zone_count=s.integer("zoneCount", 3, minimum=1, maximum=3),
        dedicated_masters=s.flag("dedicatedMasters", True),
        master_type=s.string("masterType", SearchConfig.master_type, pattern=r"[a-z0-9]+\.[a-z0-9]+\.search",
                          hint="r7g.large.search"),
        master_count=s.integer("masterCount", 3, minimum=3, maximum=5),
        ebs_size_gb=s.integer("ebsSizeGb", 200, minimum=10, maximum=3584),
    )
    if cfg.instance_type.split(".")[0] in ("t2", "m3", "r3"):
        s.fail("instanceType", "has no encryption at rest, which fine-grained access control needs (deploy rule 23)")
    if cfg.zone_count == 2 and cfg.data_nodes % 2:
        s.fail("dataNodes", "must be even for a two-zone deployment (deploy rule 20)")
    if cfg.zone_count == 3 and cfg.data_nodes % 3:
        s.fail("dataNodes", f"must be a multiple of search.zoneCount ({cfg.zone_count}) when zone awareness is on")
    if cfg.dedicated_masters and cfg.master_count % 2 == 0:
        s.fail("masterCount", "must be odd (3 or 5) so the masters keep a quorum (deploy rule 21)")
    s.done()
    return cfg


def _database(s: _Section, defaults: DatabaseConfig) -> DatabaseConfig:
    cfg = DatabaseConfig(
        engine_version=s.string("engineVersion", defaults.engine_version, pattern=r"1[3-9](\.\d+)?",
                                hint="16 (or a minor such as 16.8)"),
        instance_class=s.string("instanceClass", defaults.instance_class, pattern=r"db\.[a-z0-9]+\.[a-z0-9]+",
                             hint="db.t4g.large"),
        allocated_storage_gb=s.integer("allocatedStorageGb", defaults.allocated_storage_gb, minimum=20, maximum=65536),
        max_allocated_storage_gb=s.integer("maxAllocatedStorageGb", defaults.max_allocated_storage_gb, minimum=20,
                                       maximum=65536),
        multi_az=s.flag("multiAz", defaults.multi_az),
        backup_retention_days=s.integer("backupRetentionDays", defaults.backup_retention_days, minimum=1, maximum=35),
        deletion_protection=s.flag("deletionProtection", defaults.deletion_protection),
        final_snapshot=s.flag("finalSnapshot", defaults.final_snapshot),
        proxy=s.flag("proxy", defaults.proxy),
        performance_insights=s.flag("performanceInsights", defaults.performance_insights),
        monitoring_interval=s.integer("monitoringInterval", defaults.monitoring_interval, minimum=0, maximum=60),
    )
    if cfg.monitoring_interval not in (0, 1, 5, 10, 15, 30, 60):
        s.fail("monitoringInterval", "must be one of 0, 1, 5, 10, 15, 30, 60")
    if cfg.max_allocated_storage_gb < cfg.allocated_storage_gb:
        s.fail("maxAllocatedStorageGb", f"must be at least {s.name}.allocatedStorageGb ({cfg.allocated_storage_gb})")
    s.done()
    return cfg


def _cache(s: _Section) -> CacheConfig:
    cfg = CacheConfig(
        engine_version=s.string("engineVersion", "7.1", pattern=r"7\.\d+", hint="7.1 (Redis OSS 7.x)"),
        node_type=s.string("nodeType", CacheConfig.node_type, pattern=r"cache\.[a-z0-9]+\.[a-z0-9]+",
                        hint="cache.t4g.medium"),
        nodes=s.integer("nodes", 2, minimum=1, maximum=6),
        snapshot_retention_days=s.integer("snapshotRetentionDays", 7, minimum=0, maximum=35),
    )
    s.done()
    return cfg


def _alarms(s: _Section) -> AlarmsConfig:
    cfg = AlarmsConfig(
        emails=s.str_list("emails", item=_EMAIL, hint="an email address"),
        rds_cpu_percent=s.integer("rdsCpuPercent", 80, minimum=1, maximum=100),
        rds_free_storage_gb=s.integer("rdsFreeStorageGb", 5, minimum=1),
        rds_connections=s.integer("rdsConnections", 200, minimum=1),
        search_free_storage_mb=s.integer("searchFreeStorageMb", 20480, minimum=1),
        search_jvm_pressure_percent=s.integer("searchJvmPressurePercent", 80, minimum=1, maximum=100),
        cache_cpu_percent=s.integer("cacheCpuPercent", 75, minimum=1, maximum=100),
        cache_memory_percent=s.integer("cacheMemoryPercent", 80, minimum=1, maximum=100),
        function_duration_percent=s.integer("functionDurationPercent", 80, minimum=1, maximum=100),
        queue_oldest_message_seconds=s.integer("queueOldestMessageSeconds", 900, minimum=60),
    )
    s.done()
    return cfg


def _secrets(s: _Section) -> SecretsConfig:
    window = s.integer("recoveryWindowDays", 30, minimum=0, maximum=30)
    if 0 < window < 7:
        s.fail("recoveryWindowDays", "must be 0 or between 7 and 30 (Secrets Manager rule, deploy rule 35)")
    cfg = SecretsConfig(recovery_window_days=window, rotation_days=s.integer("rotationDays", 30, minimum=1, maximum=90),
                        rotate_database_credentials=s.flag("rotateDatabaseCredentials", True))
    s.done()
    return cfg


def _data_plane(s: _Section) -> DataPlaneConfig:
    overrides = s.object("functions")
    functions: dict[str, FunctionSettings] = {}
    for name in overrides:
        if name not in FUNCTION_NAMES:
            s._fail(f"functions.{name}", "is not a function of the data plane",
                    f"use one of: {', '.join(FUNCTION_NAMES)}")
    for name in FUNCTION_NAMES:
        base = _FUNCTION_DEFAULTS[name]
        fs = _Section(s.stack, f"{s.name}.functions.{name}", overrides.get(name))
        functions[name] = FunctionSettings(
            memory_mb=fs.integer("memoryMb", base.memory_mb, minimum=128, maximum=10240),
            timeout_seconds=fs.integer("timeoutSeconds", base.timeout_seconds, minimum=1, maximum=900),
            reserved_concurrency=fs.integer("reservedConcurrency", base.reserved_concurrency, minimum=-1, maximum=1000),
            batch_size=fs.integer("batchSize", base.batch_size, minimum=1, maximum=10),
        )
        fs.done()
    schedule_hint = "rate(4 hours), rate(1 day) or cron(0 3 * * ? *) (deploy rule 38)"
    cfg = DataPlaneConfig(
        functions=functions,
        max_object_mb=s.integer("maxObjectMb", 100, minimum=1, maximum=5120),
        max_pages=s.integer("maxPages", 2000, minimum=1),
        max_decompressed_mb=s.integer("maxDecompressedMb", 256, minimum=1, maximum=8192),
        max_archive_entries=s.integer("maxArchiveEntries", 10000, minimum=1),
        max_compression_ratio=s.integer("maxCompressionRatio", 100, minimum=2),
        max_nesting_depth=s.integer("maxNestingDepth", 16, minimum=1, maximum=64),
        max_text_chars=s.integer("maxTextChars", 64 * 1024 * 1024, minimum=1),
        max_html_tags=s.integer("maxHtmlTags", 1_000_000, minimum=1),
        pdf_worker_memory_mb=s.integer("pdfWorkerMemoryMb", 640, minimum=128, maximum=10240),
        pdf_worker_timeout_seconds=s.integer("pdfWorkerTimeoutSeconds", 120, minimum=1, maximum=900),
        deleted_item_min_age_days=s.integer("deletedItemMinAgeDays", 30, minimum=1),
        deleted_item_redispatch_hours=s.integer("deletedItemRedispatchHours", 72, minimum=1),
        deleted_item_page_size=s.integer("deletedItemPageSize", 500, minimum=1, maximum=10000),
        attachment_purge_page_size=s.integer("attachmentPurgePageSize", 200, minimum=1, maximum=1000),
        user_link_max_age_hours=s.integer("userLinkMaxAgeHours", 24, minimum=1),
        attachment_cleanup_schedule=s.string("attachmentCleanupSchedule", "rate(1 day)", pattern=_SCHEDULE.pattern,
                                          hint=schedule_hint),
        deleted_item_poller_schedule=s.string("deletedItemPollerSchedule", "rate(4 hours)", pattern=_SCHEDULE.pattern,
                                           hint=schedule_hint),
        user_link_cleanup_schedule=s.string("userLinkCleanupSchedule", "rate(8 hours)", pattern=_SCHEDULE.pattern,
                                         hint=schedule_hint),
        tracing=s.flag("tracing", True),
    )
    s.done()
    return cfg


def _services(s: _Section) -> ServicesConfig:
    cfg = ServicesConfig(
        ecs_services=s.str_list("ecsServices", item=re.compile(r"[a-z][a-z0-9-]{0,40}"), hint="a service name"),
        health_check_url=s.optional_str("healthCheckUrl", pattern=r"https://[a-z0-9.-]+(:\d+)?(/\S*)?",
                                        hint="https://api.macro.com/health"),
    )
    s.done()
    return cfg


def costs_section(stack: str, raw: Any) -> CostConfig:
    """The ``costs`` section, validated like the others (the offline plan and the budget rule read it too)."""
    s = _Section(stack, "costs", raw)
    defaults = CostConfig()
    budget = s.raw.get("fixedBudgetUsd")
    values = {name: s.integer(key, getattr(defaults, name), minimum=0) for name, key in _COST_KEYS.items()}
    cfg = CostConfig(fixed_budget_usd=None if budget is None else s.integer("fixedBudgetUsd", 0, minimum=1),
                     **values)
    s.read.add("fixedBudgetUsd")
    s.done()
    return cfg


_COST_KEYS = {"function_invocations": "functionInvocations", "function_average_ms": "functionAverageMs",
              "bucket_stored_gb": "bucketStoredGb", "bucket_put_requests": "bucketPutRequests",
              "bucket_get_requests": "bucketGetRequests", "queue_requests": "queueRequests",
              "table_reads": "tableReads", "table_writes": "tableWrites", "table_stored_gb": "tableStoredGb",
              "log_ingest_gb": "logIngestGb", "nat_processed_gb": "natProcessedGb", "secret_reads": "secretReads",
              "key_requests": "keyRequests"}


def load(stack: str, region: str | None, get_object: Callable[[str], Any]) -> StackConfig:
    """Read and validate every setting of ``stack``; ``get_object(key)`` returns the raw value of
    ``macro-infra:key``."""
    if not region:
        raise ConfigError(f"aws:region is not set (stack {stack}). Fix: pulumi config set aws:region us-east-1")
    def section(name: str) -> _Section:
        return _Section(stack, name, get_object(name))

    environment = get_object("environment")
    if environment not in ("dev", "prod"):
        raise ConfigError(f"{PROJECT}:environment must be dev or prod (stack {stack}, got {environment!r}). "
                          f"Fix: pulumi config set environment dev --stack {stack}")
    protect = get_object("protect")
    if not isinstance(protect, bool):
        raise ConfigError(f"{PROJECT}:protect must be true or false (stack {stack}, got {protect!r}). "
                          f"Fix: pulumi config set --type bool protect {'true' if environment == 'prod' else 'false'}")
    retention = get_object("logRetentionDays")
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(f"{PROJECT}:logRetentionDays must be one of CloudWatch's periods "
                          f"{', '.join(map(str, LOG_RETENTION_DAYS))} (stack {stack}, got {retention!r}). "
                          f"Fix: pulumi config set --type int logRetentionDays 365 --stack {stack}")
    cfg = StackConfig(
        stack=stack,
        region=region,
        environment=environment,
        protect=protect,
        network=_network(section("network")),
        storage=_storage(section("storage")),
        tables=_tables(section("tables")),
        search=_search(section("search")),
        database=_database(section("database"), DatabaseConfig()),
        contacts_database=_database(section("contactsDatabase"),
                                    DatabaseConfig(instance_class="db.t4g.large", allocated_storage_gb=25,
                                                   max_allocated_storage_gb=100)),
        cache=_cache(section("cache")),
        log_retention_days=retention,
        alarms=_alarms(section("alarms")),
        secrets=_secrets(section("secrets")),
        data_plane=_data_plane(section("dataPlane")),
        services=_services(section("services")),
        costs=costs_section(stack, get_object("costs")),
    )
    _cross_checks(cfg)
    return cfg


def _cross_checks(cfg: StackConfig) -> None:
    """Rules that span sections or tie a setting to the environment."""

    def fail(key: str, problem: str, fix: str) -> None:
        raise ConfigError(f"{PROJECT}:{key} {problem} (stack {cfg.stack}). Fix: {fix}")

    if not cfg.database.proxy:
        fail("database.proxy", "must be true: the data-plane functions connect to MacroDB through its RDS Proxy, whose "
             "certificate the Lambda trust store verifies (the instance's RDS CA is not in it)",
             f"pulumi config set --path 'database.proxy' true --stack {cfg.stack}")
    if cfg.alarms.search_free_storage_mb >= cfg.search.ebs_size_gb * 1024:
        fail("alarms.searchFreeStorageMb", f"must be below the node's storage, search.ebsSizeGb "
             f"({cfg.search.ebs_size_gb} GB), or the alarm never clears",
             f"pulumi config set --path 'alarms.searchFreeStorageMb' {cfg.search.ebs_size_gb * 1024 // 5}")
    if cfg.is_production:
        if not cfg.protect:
            fail("protect", "must be true in prod: stateful resources must survive an accidental destroy",
                 "pulumi config set --type bool protect true --stack prod")
        for key, db in (("database", cfg.database), ("contactsDatabase", cfg.contacts_database)):
            if not db.deletion_protection or not db.final_snapshot:
                fail(f"{key}.deletionProtection", "and finalSnapshot must be true in prod",
                     f"pulumi config set --path '{key}.deletionProtection' true --stack prod")
        if 0 < cfg.secrets.recovery_window_days < 7 or cfg.secrets.recovery_window_days == 0:
            fail("secrets.recoveryWindowDays", "must be at least 7 in prod so a deleted secret can be recovered",
                 "pulumi config set --path 'secrets.recoveryWindowDays' 30 --stack prod")
        if not cfg.alarms.emails:
            fail("alarms.emails", "must name at least one on-call address in prod",
                 "pulumi config set --path 'alarms.emails[0]' oncall@example.com --stack prod")
    if cfg.cache.nodes == 1 and cfg.is_production:
        fail("cache.nodes", "must be at least 2 in prod (automatic failover, ElastiCache.3)",
             "pulumi config set --path 'cache.nodes' 2 --stack prod")
    if cfg.storage.replication and cfg.storage.dr_region == cfg.region:
        fail("storage.drRegion", f"must differ from the primary region {cfg.region} for cross-region replication",
             f"pulumi config set --path 'storage.drRegion' us-west-1 --stack {cfg.stack}")
    if cfg.search.zone_awareness and not cfg.search.dedicated_masters and cfg.is_production:
        fail("search.dedicatedMasters", "must be true in prod with zone awareness (Opensearch.11)",
             "pulumi config set --path 'search.dedicatedMasters' true --stack prod")


TOP_LEVEL_KEYS = frozenset({
    "environment", "protect", "logRetentionDays", "network", "storage", "tables", "search", "database",
    "contactsDatabase", "cache", "alarms", "secrets", "dataPlane", "services", "costs",
    # secret values, set with `pulumi config set --secret` (read by the program, not by this module)
    "fusionauthClientId", "githubWebhookSecret", "githubSyncAppPem",
})


def check_known_keys(stack: str, keys: Iterable[str]) -> None:
    """A misspelled top-level key would otherwise be ignored and its section silently take the defaults."""
    for key in sorted(keys):
        namespace, _, name = key.partition(":")
        if namespace == PROJECT and name not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(name, TOP_LEVEL_KEYS, n=1)
            known = ", ".join(sorted(TOP_LEVEL_KEYS))
            hint = f"did you mean {PROJECT}:{close[0]}?" if close else f"known keys: {known}"
            raise ConfigError(f"{key} is not a known setting (stack {stack}). Fix: remove it; {hint}")


def raw_values(get: Callable[[str], str | None]) -> Callable[[str], Any]:
    """Adapt ``pulumi.Config(PROJECT).get`` to the loader: objects, lists, numbers and booleans arrive as JSON text,
    plain strings as themselves."""

    def value(key: str) -> Any:
        text = get(key)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    return value
