"""macro-infra: the whole platform, wired top to bottom. Read this file as the map of the system.

Order: configuration → provider and identity → network → on-call topic → storage → messaging → tables → data stores
→ exports. Components live in ``components/``; settings in ``Pulumi.<stack>.yaml`` (see ``infra/config.py``).
"""

import pulumi
import pulumi_aws as aws

from components.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.connection_table import ConnectionTable, ConnectionTableArgs
from components.document_bucket import CorsSettings, DocumentBucket, DocumentBucketArgs, document_lifecycle
from components.macro_database import DatabaseAlarmThresholds, MacroDatabase, MacroDatabaseArgs
from components.network import Network, NetworkArgs
from components.queue_with_dlq import QueueWithDLQ, QueueWithDLQArgs
from components.search_domain import SearchDomain, SearchDomainArgs
from components.secrets import SecretSettings
from infra.config import PROJECT, StackConfig, load, raw_values

# --- Configuration: validated before any resource exists ------------------------------------------------------------
stack = pulumi.get_stack()
cfg: StackConfig = load(stack, pulumi.Config("aws").get("region"), raw_values(pulumi.Config(PROJECT).get))

# --- Provider and identity ------------------------------------------------------------------------------------------
provider = aws.Provider("aws", region=cfg.region, default_tags={
    "tags": {"environment": cfg.environment, "project": PROJECT, "managed-by": "pulumi"}})
in_account = pulumi.ResourceOptions(providers={"aws": provider})
account_id = aws.get_caller_identity().account_id
secrets = SecretSettings(stack=stack, recovery_window_days=cfg.secrets.recovery_window_days, protect=cfg.protect)

# --- Network: coparse_api_vpc ---------------------------------------------------------------------------------------
network = Network("network", NetworkArgs(
    stack=stack, cidr=cfg.network.cidr, nat_gateways=cfg.network.nat_gateways, flow_logs=cfg.network.flow_logs,
    log_retention_days=cfg.log_retention_days), in_account)
# Clients of the data stores: services and VPC functions join one of these groups; stores admit only them.
service_clients = network.security_group(
    f"services-sg-{stack}", description="Platform services (ECS tasks) that reach the data stores")

# --- On-call topic: every alarm goes here ---------------------------------------------------------------------------
on_call = AlarmTopic("on-call", AlarmTopicArgs(
    topic_name=f"macro-on-call-{stack}", account_id=account_id, emails=cfg.alarms.emails), in_account)

# --- Storage --------------------------------------------------------------------------------------------------------
documents = DocumentBucket("documents", DocumentBucketArgs(
    base_name="documents", stack=stack, account_id=account_id, versioned=True,
    lifecycle=document_lifecycle(cfg.storage.noncurrent_version_expiry_days),
    cors=CorsSettings(allowed_origins=cfg.storage.cors_origins,
                      expose_headers=("ETag", "Content-Length", "Content-Range")),
    transfer_acceleration=cfg.storage.transfer_acceleration, eventbridge=True,
    replica_region=cfg.storage.dr_region if cfg.storage.replication else None,
    force_destroy=not cfg.protect, protect=cfg.protect), in_account)

# --- Messaging ------------------------------------------------------------------------------------------------------
search_events = QueueWithDLQ("search-event", QueueWithDLQArgs(
    base_name="search-event", stack=stack, alarm_topic_arn=on_call.arn,
    oldest_message_alarm_seconds=cfg.alarms.queue_oldest_message_seconds), in_account)

# --- Tables ---------------------------------------------------------------------------------------------------------
connections = ConnectionTable("connection-gateway", ConnectionTableArgs(
    table_name=f"connection-gateway-{stack}", point_in_time_recovery=cfg.tables.point_in_time_recovery,
    deletion_protection=cfg.tables.deletion_protection, protect=cfg.protect), in_account)

# --- Data stores: search and MacroDB --------------------------------------------------------------------------------
search = SearchDomain("search", SearchDomainArgs(
    domain_name=f"macro-search-{stack}", account_id=account_id, region=cfg.region, network=network,
    allowed_from=[service_clients], engine_version=cfg.search.engine_version,
    instance_type=cfg.search.instance_type, data_nodes=cfg.search.data_nodes, zone_count=cfg.search.zone_count,
    dedicated_masters=cfg.search.dedicated_masters, master_type=cfg.search.master_type,
    master_count=cfg.search.master_count, ebs_size_gb=cfg.search.ebs_size_gb,
    log_retention_days=cfg.log_retention_days, secrets=secrets, alarm_topic_arn=on_call.arn,
    free_storage_alarm_mb=cfg.alarms.search_free_storage_mb,
    jvm_pressure_alarm_percent=cfg.alarms.search_jvm_pressure_percent,
    create_service_linked_role=cfg.search.create_service_linked_role, protect=cfg.protect), in_account)

db_thresholds = DatabaseAlarmThresholds(cpu_percent=cfg.alarms.rds_cpu_percent,
                                        free_storage_gb=cfg.alarms.rds_free_storage_gb,
                                        connections=cfg.alarms.rds_connections)
macro_db = MacroDatabase("macrodb", MacroDatabaseArgs(
    identifier="macrodb", stack=stack, db_name="macrodb", network=network, secrets=secrets,
    alarm_topic_arn=on_call.arn, url_secret_key="macro_db_secret_key",
    proxy_url_secret_key="macro_db_proxy_secret_key", allowed_from=[service_clients],
    engine_version=cfg.database.engine_version, instance_class=cfg.database.instance_class,
    allocated_storage_gb=cfg.database.allocated_storage_gb,
    max_allocated_storage_gb=cfg.database.max_allocated_storage_gb, multi_az=cfg.database.multi_az,
    backup_retention_days=cfg.database.backup_retention_days,
    deletion_protection=cfg.database.deletion_protection, final_snapshot=cfg.database.final_snapshot,
    proxy=cfg.database.proxy, performance_insights=cfg.database.performance_insights,
    monitoring_interval=cfg.database.monitoring_interval, log_retention_days=cfg.log_retention_days,
    thresholds=db_thresholds, protect=cfg.protect), in_account)

# --- Exports: names, ARNs, endpoints and secret ARNs; never a secret value ------------------------------------------
pulumi.export("environment", cfg.environment)
pulumi.export("vpc_id", network.vpc.id)
pulumi.export("private_subnet_ids", network.private_subnet_ids)
pulumi.export("alarm_topic_arn", on_call.arn)
pulumi.export("document_bucket", documents.bucket.bucket)
pulumi.export("document_bucket_arn", documents.bucket.arn)
pulumi.export("document_replica_bucket", documents.replica.bucket if documents.replica else None)
pulumi.export("search_event_queue_url", search_events.queue.url)
pulumi.export("connection_table", connections.table.name)
pulumi.export("search_endpoint", search.domain.endpoint)
pulumi.export("search_password_secret_arn", search.master_password_secret.arn)
pulumi.export("macro_db_address", macro_db.instance.address)
pulumi.export("macro_db_proxy_endpoint", macro_db.proxy.endpoint if macro_db.proxy else None)
pulumi.export("macro_db_url_secret_arn", macro_db.url_secret.arn if macro_db.url_secret else None)
pulumi.export("macro_db_proxy_url_secret_arn", macro_db.proxy_url_secret.arn if macro_db.proxy_url_secret else None)
