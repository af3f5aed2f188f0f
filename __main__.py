"""macro-infra: the whole platform, wired top to bottom. Read this file as the map of the system.

Order: configuration → provider and identity → network → topics → storage → messaging → tables → data stores and
secrets → data plane (functions and their triggers) → service roles → compute and monitoring → exports.
Components live in ``components/``; settings in ``Pulumi.<stack>.yaml`` (typed and validated in ``infra/config.py``).
"""

from typing import Any

import pulumi
import pulumi_aws as aws

from components.cache import CacheAlarmThresholds, RedisCache, RedisCacheArgs
from components.connection_table import ConnectionTable, ConnectionTableArgs
from components.document_bucket import (
    CorsSettings,
    DocumentBucket,
    DocumentBucketArgs,
    LifecycleRule,
    document_lifecycle,
)
from components.encrypted_topic import EncryptedTopic, EncryptedTopicArgs
from components.encryption_keys import EncryptionKeys, EncryptionKeysArgs
from components.event_rule import EventRule, EventRuleArgs, object_created_pattern
from components.function import Function, FunctionArgs, VpcPlacement, require_artifacts
from components.macro_database import DatabaseAlarmThresholds, MacroDatabase, MacroDatabaseArgs
from components.network import EgressRule, Network, NetworkArgs
from components.platform_cluster import PlatformCluster, PlatformClusterArgs
from components.platform_secrets import EXTERNAL_KEYS, PlatformSecrets, PlatformSecretsArgs
from components.queue_with_dlq import QueueWithDLQ, QueueWithDLQArgs, visibility_for_consumer
from components.search_domain import SearchDomain, SearchDomainArgs
from components.secrets import SecretSettings
from components.service_role import ServiceRole, ServiceRoleArgs
from components.table import GlobalIndex, Table, TableArgs
from infra import capacity
from infra.config import PROJECT, DatabaseConfig, StackConfig, check_known_keys, load, raw_values

# --- Configuration: validated before any resource exists ------------------------------------------------------------
stack = pulumi.get_stack()
project_config = pulumi.Config(PROJECT)
check_known_keys(stack, {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()})
cfg: StackConfig = load(stack, pulumi.Config("aws").get("region"), raw_values(project_config.get))
functions = cfg.data_plane.functions
require_artifacts()  # a real preview/up without `make build` stops here, before any resource

# --- Provider and identity ------------------------------------------------------------------------------------------
provider = aws.Provider("aws", region=cfg.region, default_tags={
    "tags": {"environment": cfg.environment, "project": PROJECT, "managed-by": "pulumi"}})
in_account = pulumi.ResourceOptions(providers={"aws": provider})
account_id = aws.get_caller_identity().account_id
# Customer-managed keys: secrets and log groups always; document objects when the stack asks for SSE-KMS (prod).
keys = EncryptionKeys("keys", EncryptionKeysArgs(
    stack=stack, account_id=account_id, region=cfg.region, documents=cfg.storage.kms_encryption,
    dr_region=cfg.storage.dr_region if cfg.storage.replication else None,
    # A key per data store (search, cache: both stacks); Performance Insights where it is on; tables in prod only.
    performance_insights=cfg.database.performance_insights or cfg.contacts_database.performance_insights,
    tables=cfg.is_production, protect=cfg.protect), in_account)
secret_settings = SecretSettings(stack=stack, recovery_window_days=cfg.secrets.recovery_window_days,
                                 kms_key_arn=keys.secrets.arn, region=cfg.region, protect=cfg.protect)
logs_key = keys.logs.arn

# --- Network: coparse_api_vpc ---------------------------------------------------------------------------------------
network = Network("network", NetworkArgs(
    stack=stack, cidr=cfg.network.cidr, nat_gateways=cfg.network.nat_gateways, flow_logs=cfg.network.flow_logs,
    log_retention_days=cfg.log_retention_days, log_kms_key_arn=logs_key), in_account)
# Clients of the data stores. Stores admit only these groups; clients reach AWS APIs (443) through the NAT and the
# stores inside the VPC. ECS services deployed from their own repositories join `services`.
client_egress = [EgressRule(port=443, cidr="0.0.0.0/0", description="AWS APIs through the NAT gateways"),
                 EgressRule(port=5432, cidr=cfg.network.cidr, description="PostgreSQL and RDS Proxy in the VPC"),
                 EgressRule(port=6379, cidr=cfg.network.cidr, description="Redis in the VPC")]
service_clients = network.security_group(
    f"services-sg-{stack}", description="Platform services (ECS tasks) that reach the data stores",
    egress=client_egress)
function_clients = network.security_group(
    f"data-plane-functions-sg-{stack}", description="Data-plane Lambda functions that reach the data stores",
    egress=client_egress)
store_clients = [service_clients, function_clients]
in_vpc = VpcPlacement(subnet_ids=network.private_subnet_ids, security_group=function_clients, region=cfg.region,
                      account_id=account_id)

# --- Topics: on-call alarms; SES bounces and complaints -------------------------------------------------------------
on_call = EncryptedTopic("on-call", EncryptedTopicArgs(
    topic_name=f"macro-on-call-{stack}", account_id=account_id, emails=cfg.alarms.emails, protect=cfg.protect),
    in_account)
alarm_topic = on_call.arn
ses_bounces = EncryptedTopic("ses-bounces", EncryptedTopicArgs(
    topic_name=f"macro-email-bounce-{stack}", account_id=account_id, publishers=("ses.amazonaws.com",),
    protect=cfg.protect), in_account)
ses_complaints = EncryptedTopic("ses-complaints", EncryptedTopicArgs(
    topic_name=f"macro-email-complaint-{stack}", account_id=account_id, publishers=("ses.amazonaws.com",),
    protect=cfg.protect), in_account)

# --- Storage --------------------------------------------------------------------------------------------------------
bucket_defaults = {"stack": stack, "account_id": account_id, "force_destroy": not cfg.protect, "protect": cfg.protect}
access_logs = None
if cfg.storage.access_logging:
    access_logs = DocumentBucket("access-logs", DocumentBucketArgs(
        base_name="access-logs", versioned=False, receives_access_logs=True,
        lifecycle=(LifecycleRule(id="expire-logs", expire_days=cfg.storage.access_log_expiry_days,
                                 abort_multipart_days=1),), eventbridge=True, **bucket_defaults), in_account)
logs_to = access_logs.bucket.bucket if access_logs else None
objects_key = keys.documents.arn if keys.documents else None  # SSE-KMS (prod); the log bucket must stay SSE-S3
cors = CorsSettings(allowed_origins=cfg.storage.cors_origins)

documents = DocumentBucket("documents", DocumentBucketArgs(
    base_name="documents", versioned=True,
    lifecycle=document_lifecycle(cfg.storage.noncurrent_version_expiry_days),
    cors=CorsSettings(allowed_origins=cfg.storage.cors_origins,
                      expose_headers=("ETag", "Content-Length", "Content-Range")),
    transfer_acceleration=cfg.storage.transfer_acceleration, eventbridge=True,
    replica_region=cfg.storage.dr_region if cfg.storage.replication else None, access_log_bucket=logs_to,
    kms_key_arn=objects_key, region=cfg.region,
    replica_kms_key_arn=keys.documents_replica.arn if keys.documents_replica else None,
    **bucket_defaults), in_account)
docx_uploads = DocumentBucket("docx-upload", DocumentBucketArgs(
    base_name="docx-upload", versioned=False,
    lifecycle=(LifecycleRule(id="expire-uploads", expire_days=1, abort_multipart_days=1),),
    cors=cors, function_notifications=True, access_log_bucket=logs_to, kms_key_arn=objects_key,
    **bucket_defaults), in_account)
bulk_staging = DocumentBucket("bulk-upload-staging", DocumentBucketArgs(
    base_name="bulk-upload-staging", versioned=False,
    lifecycle=(LifecycleRule(id="expire-zips", prefix="extract/", expire_days=cfg.storage.staging_expiry_days),
               LifecycleRule(id="abort-incomplete-multipart", abort_multipart_days=1)),
    cors=cors, eventbridge=True, access_log_bucket=logs_to, kms_key_arn=objects_key,
    **bucket_defaults), in_account)
attachments = DocumentBucket("email-attachments", DocumentBucketArgs(
    base_name="email-attachments", versioned=False,
    lifecycle=(LifecycleRule(id="backstop-expiry", expire_days=cfg.storage.attachments_expiry_days,
                             abort_multipart_days=1),),
    eventbridge=True, access_log_bucket=logs_to, kms_key_arn=objects_key,
    **bucket_defaults), in_account)

# --- Messaging: every key queue with its DLQ and alarm ---------------------------------------------------------------


queue_consumers: list[str] = []
"""Functions fed by an SQS mapping: together they share the database connections the data plane may use."""


def queue(base_name: str, *, consumer: str | None = None, max_receive_count: int = 5,
          oldest_message_alarm_seconds: int | None = None) -> QueueWithDLQ:
    """A queue named ``{base_name}-queue-{stack}``; a Lambda consumer's timeout sets the visibility it needs."""
    queue_consumers.extend([consumer] if consumer else [])
    visibility = visibility_for_consumer(functions[consumer].timeout_seconds) if consumer else 30
    return QueueWithDLQ(base_name, QueueWithDLQArgs(
        base_name=base_name, stack=stack, alarm_topic_arn=alarm_topic, visibility_timeout_seconds=visibility,
        max_receive_count=max_receive_count, oldest_message_alarm_seconds=oldest_message_alarm_seconds), in_account)


search_events = queue("search-event", oldest_message_alarm_seconds=cfg.alarms.queue_oldest_message_seconds)
contacts_queue = queue("contacts")
notifications = queue("notification")
push_delivery = queue("push-delivery")
document_deletions = queue("delete-document-handler", consumer="delete_document")
chat_deletions = queue("delete-chat-handler", consumer="delete_chat")
conversions = queue("convert-service", max_receive_count=2)
bulk_uploads = queue("bulk-upload", consumer="bulk_upload")
text_extraction = queue("document-text-extractor-lambda", consumer="text_extractor", max_receive_count=3)

# --- Tables ---------------------------------------------------------------------------------------------------------
pitr, table_deletion_protection = cfg.tables.point_in_time_recovery, cfg.tables.deletion_protection
tables_key = keys.tables.arn if keys.tables else None  # prod: our key; dev: the AWS-owned key
connections = ConnectionTable("connection-gateway", ConnectionTableArgs(
    table_name=f"connection-gateway-{stack}", point_in_time_recovery=pitr, kms_key_arn=tables_key, region=cfg.region,
    deletion_protection=table_deletion_protection, protect=cfg.protect), in_account)
bulk_requests = Table("bulk-upload", TableArgs(
    table_name=f"bulk-upload-{stack}", indexes=(GlobalIndex(name="DocumentPkIndex", hash_key="SK"),),
    ttl_attribute="expires_at", point_in_time_recovery=pitr, deletion_protection=table_deletion_protection,
    kms_key_arn=tables_key, region=cfg.region, protect=cfg.protect), in_account)
frecency = Table("frecency", TableArgs(
    table_name=f"frecency-{stack}", ttl_attribute="expires_at", point_in_time_recovery=pitr,
    deletion_protection=table_deletion_protection, kms_key_arn=tables_key, region=cfg.region, protect=cfg.protect),
    in_account)

# --- Data stores and secrets: search, MacroDB, ContactsDB, cache, application keys ----------------------------------
search = SearchDomain("search", SearchDomainArgs(
    domain_name=f"macro-search-{stack}", account_id=account_id, region=cfg.region, network=network,
    allowed_from=store_clients, settings=cfg.search, log_retention_days=cfg.log_retention_days,
    log_kms_key_arn=logs_key, kms_key_arn=keys.search.arn if keys.search else None, secrets=secret_settings,
    alarm_topic_arn=alarm_topic, free_storage_alarm_mb=cfg.alarms.search_free_storage_mb,
    jvm_pressure_alarm_percent=cfg.alarms.search_jvm_pressure_percent, protect=cfg.protect), in_account)

db_thresholds = DatabaseAlarmThresholds(cpu_percent=cfg.alarms.rds_cpu_percent,
                                        free_storage_gb=cfg.alarms.rds_free_storage_gb,
                                        connections=cfg.alarms.rds_connections)


# Every data-plane function but the rotation connects through the proxy; none may wait for a connection longer than
# the shortest of them may run (half of it, so it still has time to do its work).
database_clients = [f for f in functions if f != "db_credentials_rotation"]
borrow_timeout = min(functions[f].timeout_seconds for f in database_clients) // 2


def database(name: str, identifier: str, db_name: str, settings: DatabaseConfig, **secret_keys: str) -> MacroDatabase:
    return MacroDatabase(name, MacroDatabaseArgs(
        connection_borrow_timeout_seconds=borrow_timeout,
        identifier=identifier, stack=stack, db_name=db_name, network=network, secrets=secret_settings,
        alarm_topic_arn=alarm_topic, allowed_from=store_clients, settings=settings,
        log_retention_days=cfg.log_retention_days, log_kms_key_arn=logs_key, thresholds=db_thresholds,
        performance_insights_kms_key_arn=keys.performance_insights.arn if keys.performance_insights else None,
        rotated=cfg.secrets.rotate_database_credentials, protect=cfg.protect, **secret_keys), in_account)


macro_db = database("macrodb", "macrodb", "macrodb", cfg.database, url_secret_key="macro_db_secret_key",
                    proxy_url_secret_key="macro_db_proxy_secret_key")
contacts_db = database("contactsdb", "contacts-db", "contacts", cfg.contacts_database,
                       url_secret_key="contacts_db_secret_key")

cache = RedisCache("cache", RedisCacheArgs(
    stack=stack, account_id=account_id, network=network, secrets=secret_settings, alarm_topic_arn=alarm_topic,
    allowed_from=store_clients, engine_version=cfg.cache.engine_version, node_type=cfg.cache.node_type,
    nodes=cfg.cache.nodes, snapshot_retention_days=cfg.cache.snapshot_retention_days,
    log_retention_days=cfg.log_retention_days, log_kms_key_arn=logs_key,
    kms_key_arn=keys.cache.arn if keys.cache else None,
    thresholds=CacheAlarmThresholds(cpu_percent=cfg.alarms.cache_cpu_percent,
                                    memory_percent=cfg.alarms.cache_memory_percent),
    protect=cfg.protect), in_account)

app_secrets = PlatformSecrets("app-secrets", PlatformSecretsArgs(
    settings=secret_settings,
    external_values={key: project_config.get_secret(config_key) for key, (config_key, _) in EXTERNAL_KEYS.items()}),
    in_account)

# --- Data plane: nine functions and their triggers -------------------------------------------------------------------
dp = cfg.data_plane
database_url = {"DATABASE_SECRET_ARN": macro_db.client_url_secret.arn}
archive_limits = {"MAX_ARCHIVE_ENTRIES": str(dp.max_archive_entries),
                  "MAX_TOTAL_BYTES": str(dp.max_decompressed_mb * 1024 * 1024),
                  "MAX_ENTRY_BYTES": str(min(dp.max_object_mb, dp.max_decompressed_mb) * 1024 * 1024),
                  "MAX_COMPRESSION_RATIO": str(dp.max_compression_ratio),
                  "MAX_NESTING_DEPTH": str(dp.max_nesting_depth),
                  "MAX_OBJECT_BYTES": str(dp.max_object_mb * 1024 * 1024)}
# A DOCX is one document, not a folder of them: tighter entry and size limits than a bulk upload archive.
docx_limits = {"MAX_ARCHIVE_ENTRIES": str(min(1000, dp.max_archive_entries)),
               "MAX_TOTAL_BYTES": str(min(256, dp.max_decompressed_mb) * 1024 * 1024)}
# Optional tunables each handler reads with a default in code: declared here so the name lives in one place (the
# env contract test checks every name a handler reads is in its recorded environment).
extraction_limits = {"MAX_TEXT_CHARS": str(dp.max_text_chars), "MAX_HTML_TAGS": str(dp.max_html_tags),
                     "PDF_WORKER_MEMORY_MB": str(dp.pdf_worker_memory_mb),
                     "PDF_WORKER_TIMEOUT_SECONDS": str(dp.pdf_worker_timeout_seconds)}


# SQS consumers together stay within the share of MacroDB's connections the data plane may use.
consumer_concurrency = capacity.consumer_concurrency(macro_db.function_connection_budget, len(queue_consumers))


def function(name: str, folder: str | None = None, **kwargs: Any) -> Function:
    """A data-plane function in the VPC (every one reaches MacroDB through the proxy) with the stack's settings."""
    folder = folder or name.replace("-", "_")
    kwargs.setdefault("secret_arns", database_url)
    if "consumes" in kwargs:
        kwargs["max_concurrency"] = consumer_concurrency
    return Function(name, FunctionArgs(
        function=folder, stack=stack, settings=functions[folder], log_retention_days=cfg.log_retention_days,
        log_kms_key_arn=logs_key, secret_settings=secret_settings, alarm_topic_arn=alarm_topic, vpc=in_vpc,
        tracing=dp.tracing, duration_alarm_percent=cfg.alarms.function_duration_percent,
        kms_key_arn=keys.functions.arn, **kwargs), in_account)


text_extractor = function(
    "text-extractor", consumes=text_extraction, asynchronous=True,
    environment={"DOCUMENT_BUCKET": documents.bucket.bucket, "SEARCH_QUEUE_URL": search_events.queue.url,
                 "MAX_OBJECT_BYTES": archive_limits["MAX_OBJECT_BYTES"], "MAX_PAGES": str(dp.max_pages),
                 "MAX_DECOMPRESSED_BYTES": archive_limits["MAX_TOTAL_BYTES"], **extraction_limits},
    access=[documents.grant_read, search_events.grant_send])
docx_unzip = function(
    "docx-unzip", asynchronous=True,
    # No DOCX_UPLOAD_BUCKET: the function reads the bucket from the S3 notification that triggers it.
    environment={"DOCUMENT_BUCKET": documents.bucket.bucket, "CONVERT_QUEUE_URL": conversions.queue.url,
                 **archive_limits, **docx_limits},
    access=[docx_uploads.grant_read, lambda g: documents.grant_read(g, "docx-parts/"),
            lambda g: documents.grant_write(g, "docx-parts/"), conversions.grant_send])
bulk_upload = function(
    "bulk-upload", consumes=bulk_uploads,
    environment={"BULK_UPLOAD_TABLE": bulk_requests.table.name, "STAGING_BUCKET": bulk_staging.bucket.bucket,
                 "DOCUMENT_BUCKET": documents.bucket.bucket, "DOCX_UPLOAD_BUCKET": docx_uploads.bucket.bucket,
                 "MAX_RECEIVE_COUNT": str(bulk_uploads.args.max_receive_count),
                 **archive_limits},
    ephemeral_storage_mb=max(2048, 2 * dp.max_object_mb),
    access=[lambda g: bulk_staging.grant_read(g, "extract/"), documents.grant_read, documents.grant_write,
            docx_uploads.grant_read, docx_uploads.grant_write, bulk_requests.grant_read_write])
delete_chat = function("delete-chat", consumes=chat_deletions)
replica = ({"REPLICA_BUCKET": documents.replica.bucket, "REPLICA_REGION": cfg.storage.dr_region}
           if documents.replica else {})
delete_document = function(
    "delete-document", consumes=document_deletions,
    environment={"DOCUMENT_BUCKET": documents.bucket.bucket, **replica},
    access=[documents.grant_read, documents.grant_delete,
            *([documents.grant_delete_replica] if documents.replica else [])])
deleted_item_poller = function(
    "deleted-item-poller", asynchronous=True,
    environment={"SEARCH_QUEUE_URL": search_events.queue.url,
                 "DELETE_DOCUMENT_QUEUE_URL": document_deletions.queue.url,
                 "DELETE_CHAT_QUEUE_URL": chat_deletions.queue.url,
                 "DELETED_ITEM_MIN_AGE_DAYS": str(dp.deleted_item_min_age_days),
                 "DELETED_ITEM_PAGE_SIZE": str(dp.deleted_item_page_size),
                 "DELETED_ITEM_REDISPATCH_HOURS": str(dp.deleted_item_redispatch_hours)},
    access=[search_events.grant_send, document_deletions.grant_send, chat_deletions.grant_send])
email_suppression = function("email-suppression", asynchronous=True)
user_link_cleanup = function("user-link-cleanup", asynchronous=True,
                             environment={"USER_LINK_MAX_AGE_HOURS": str(dp.user_link_max_age_hours)})
attachment_cleanup = function(
    "email-attachment-cleanup", asynchronous=True,
    environment={"ATTACHMENTS_BUCKET": attachments.bucket.bucket,
                 "ATTACHMENT_PURGE_PAGE_SIZE": str(dp.attachment_purge_page_size)},
    access=[attachments.grant_read, attachments.grant_delete])

# Database credentials rotate on a schedule; the rotation function also rewrites the URL secrets derived from them.
rotations = []
if cfg.secrets.rotate_database_credentials:
    for db in (macro_db, contacts_db):
        rotation = function(f"{db.args.identifier}-rotation", folder="db_credentials_rotation", secret_arns={},
                            environment=db.rotation_environment(), access=[db.grant_rotate])
        db.rotate_with(rotation.function.arn, rotation.allow_invoke(
            "secretsmanager.amazonaws.com", db.credentials_secret.arn, account_id, label="secrets-manager"),
            cfg.secrets.rotation_days)
        rotations.append(rotation)

# S3 → DOCX unzip: the bucket's one notification, created after the invoke permission.
docx_uploads.notify_function(
    docx_unzip.function.arn,
    docx_unzip.allow_invoke("s3.amazonaws.com", docx_uploads.bucket.arn, account_id, label="docx-upload"),
    suffix=".docx")
# SES bounces and complaints → email suppression.
for topic in (ses_bounces, ses_complaints):
    email_suppression.subscribe(topic.topic, account_id)

# EventBridge: object events and schedules. Each target retries and dead-letters.
extract_on_upload = EventRule("text-extractor-trigger", EventRuleArgs(
    rule_name="text-extractor-rule", stack=stack, account_id=account_id, alarm_topic_arn=alarm_topic,
    description="New documents (not temp files) to the text extractor",
    # DOCX parts (docx-parts/{sha256}) are not documents: excluded with temp files, so they never wake the extractor.
    event_pattern=object_created_pattern(documents.bucket.bucket,
                                         [{"anything-but": {"prefix": ["temp_files/", "docx-parts/"]}}])),
    in_account)
extract_on_upload.send_to_function(text_extractor)
bulk_on_upload = EventRule("bulk-upload-trigger", EventRuleArgs(
    rule_name="bulk-upload-rule", stack=stack, account_id=account_id, alarm_topic_arn=alarm_topic,
    description="Uploaded bulk-upload zips (extract/) to the bulk upload queue",
    event_pattern=object_created_pattern(bulk_staging.bucket.bucket, [{"prefix": "extract/"}])), in_account)
bulk_on_upload.send_to_queue(bulk_uploads)
for rule_name, schedule, target in (
        ("deleted-item-poller-rule", dp.deleted_item_poller_schedule, deleted_item_poller),
        ("user-link-cleanup-rule", dp.user_link_cleanup_schedule, user_link_cleanup),
        ("email-attachment-cleanup-rule", dp.attachment_cleanup_schedule, attachment_cleanup)):
    EventRule(rule_name.replace("-rule", "-schedule"), EventRuleArgs(
        rule_name=rule_name, stack=stack, account_id=account_id, alarm_topic_arn=alarm_topic,
        description=f"Runs {target.function_name} on {schedule}", schedule_expression=schedule),
        in_account).send_to_function(target)

# --- Service roles: who may do what (one role and one policy per service; Lambda roles are above) --------------------
SERVICE_ACCESS = {
    "document-storage-service": [
        documents.grant_read, documents.grant_write, documents.grant_delete, docx_uploads.grant_write,
        lambda g: bulk_staging.grant_write(g, "extract/"), bulk_requests.grant_read_write,
        frecency.grant_read_write, search_events.grant_send, document_deletions.grant_send,
        chat_deletions.grant_send, conversions.grant_send, text_extraction.grant_send, contacts_queue.grant_send,
        notifications.grant_send, macro_db.grant_connect, cache.grant_connect,
        lambda g: app_secrets.grant_read(g, "jwt_secret_key", "internal_api_key",
                                         "document_storage_permissions_key")],
    "connection-gateway": [
        connections.grant_read_write, frecency.grant_read_write, cache.grant_connect, contacts_queue.grant_send,
        lambda g: app_secrets.grant_read(g, "jwt_secret_key", "internal_api_key")],
    "search-processing-service": [
        search_events.grant_consume, search.grant_http, documents.grant_read, macro_db.grant_connect,
        lambda g: app_secrets.grant_read(g, "internal_api_key")],
    "contacts-service": [
        contacts_queue.grant_consume, contacts_db.grant_connect,
        lambda g: app_secrets.grant_read(g, "jwt_secret_key", "internal_api_key")],
    "notification-service": [
        notifications.grant_consume, push_delivery.grant_send, push_delivery.grant_consume, macro_db.grant_connect,
        lambda g: app_secrets.grant_read(g, "internal_api_key")],
    "convert-service": [
        conversions.grant_consume, documents.grant_read, documents.grant_write, docx_uploads.grant_read,
        macro_db.grant_connect],
    "authentication-service": [
        macro_db.grant_connect, lambda g: app_secrets.grant_read(
            g, "jwt_secret_key", "authentication_service_secret_key", "fusionauth_client_id")],
    "sync-service": [
        macro_db.grant_connect, lambda g: app_secrets.grant_read(
            g, "sync_service_auth_key", "github_webhook_secret_key", "github_sync_app_pem")],
}
service_roles = {service: ServiceRole(service, ServiceRoleArgs(service=service, stack=stack, access=access),
                                      in_account) for service, access in SERVICE_ACCESS.items()}

# --- Compute and monitoring: the ECS cluster, service alarms and API health check ------------------------------------
platform = PlatformCluster("platform", PlatformClusterArgs(
    stack=stack, region=cfg.region, alarm_topic_arn=alarm_topic, log_retention_days=cfg.log_retention_days,
    log_kms_key_arn=logs_key, service_names=cfg.services.ecs_services,
    health_check_url=cfg.services.health_check_url), in_account)

# --- Exports: names, ARNs, endpoints and secret ARNs; never a secret value ------------------------------------------
pulumi.export("environment", cfg.environment)
pulumi.export("vpc_id", network.vpc.id)
pulumi.export("private_subnet_ids", network.private_subnet_ids)
pulumi.export("public_subnet_ids", [s.id for s in network.public_subnets])
pulumi.export("service_security_group_id", service_clients.id)
pulumi.export("alarm_topic_arn", alarm_topic)
pulumi.export("ses_bounce_topic_arn", ses_bounces.arn)
pulumi.export("ses_complaint_topic_arn", ses_complaints.arn)
pulumi.export("buckets", {
    "documents": documents.bucket.bucket, "docx_upload": docx_uploads.bucket.bucket,
    "bulk_upload_staging": bulk_staging.bucket.bucket, "email_attachments": attachments.bucket.bucket,
    "documents_replica": documents.replica.bucket if documents.replica else None,
    "access_logs": access_logs.bucket.bucket if access_logs else None})
pulumi.export("queue_urls", {q.args.base_name: q.queue.url for q in (
    search_events, contacts_queue, notifications, push_delivery, document_deletions, chat_deletions, conversions,
    bulk_uploads, text_extraction)})
pulumi.export("tables", {"connection_gateway": connections.table.name, "bulk_upload": bulk_requests.table.name,
                         "frecency": frecency.table.name})
pulumi.export("search_endpoint", search.domain.endpoint)
pulumi.export("macro_db_address", macro_db.instance.address)
pulumi.export("macro_db_proxy_endpoint", macro_db.proxy.endpoint if macro_db.proxy else None)
pulumi.export("contacts_db_address", contacts_db.instance.address)
pulumi.export("cache_endpoint", cache.replication_group.primary_endpoint_address)
pulumi.export("secret_arns", {
    "macro_db_secret_key": macro_db.url_secret.arn if macro_db.url_secret else None,
    "macro_db_proxy_secret_key": macro_db.proxy_url_secret.arn if macro_db.proxy_url_secret else None,
    "macro_cache_secret_key": cache.url_secret.arn,
    "opensearch_password_key": search.master_password_secret.arn,
    "contacts_db_secret_key": contacts_db.url_secret.arn if contacts_db.url_secret else None,
    **{key: secret.arn for key, secret in app_secrets.secrets.items()}})
pulumi.export("function_names", {f.args.function: f.function.name for f in (
    text_extractor, docx_unzip, bulk_upload, delete_chat, delete_document, deleted_item_poller, email_suppression,
    user_link_cleanup, attachment_cleanup, *rotations)})
pulumi.export("service_role_arns", {name: role.role.arn for name, role in service_roles.items()})
pulumi.export("ecs_cluster_arn", platform.cluster.arn)
