"""Everything beyond the foundation, in both stacks: storage, queues, tables, stores, secrets, IAM, events,
functions."""

from __future__ import annotations

import json
import re

import pytest

from components.platform_secrets import EXTERNAL_KEYS, GENERATED_KEYS
from infra.records import ResourceRecord, StackRecords
from plan.evaluate import MOCK_SECRET_MARKER
from tests.program.conftest import policy

SEED_SECRETS = {"macro_db_secret_key", "macro_cache_secret_key", "macro_db_proxy_secret_key", "jwt_secret_key",
                "internal_api_key", "sync_service_auth_key", "authentication_service_secret_key",
                "opensearch_password_key", "document_storage_permissions_key", "fusionauth_client_id",
                "github_webhook_secret_key", "github_sync_app_pem"}
FUNCTIONS = ("text-extractor", "docx-unzip", "bulk-upload", "delete-chat", "delete-document", "deleted-item-poller",
             "email-suppression", "user-link-cleanup", "email-attachment-cleanup")
QUEUES = ("search-event", "contacts", "notification", "push-delivery", "delete-document-handler",
          "delete-chat-handler", "convert-service", "bulk-upload", "document-text-extractor-lambda")


def statements(records: StackRecords, policy_name: str) -> list[dict]:
    return policy(records.named(policy_name, "aws:iam/rolePolicy:RolePolicy"))["Statement"]


def actions_on(records: StackRecords, policy_name: str) -> dict[str, set[str]]:
    """Resource → actions the policy allows on it."""
    out: dict[str, set[str]] = {}
    for s in statements(records, policy_name):
        for resource in s["Resource"]:
            out.setdefault(resource, set()).update(s["Action"])
    return out


# --- Storage --------------------------------------------------------------------------------------------------------


def test_docx_bucket_expires_in_a_day_and_notifies_unzip_after_permission(stack: StackRecords) -> None:
    rules = stack.named("docx-upload-lifecycle").inputs["rules"]
    assert rules[0]["expiration"]["days"] == 1 and rules[0]["filter"]["prefix"] == ""
    notification = stack.named("docx-upload-notification", "aws:s3/bucketNotification:BucketNotification")
    target = notification.inputs["lambdaFunctions"][0]
    assert target["lambdaFunctionArn"] == stack.named("docx-unzip-function").outputs["arn"]
    assert target["events"] == ["s3:ObjectCreated:*"]
    permission = stack.named("docx-unzip-invoke-from-docx-upload", "aws:lambda/permission:Permission")
    assert permission.urn in notification.dependencies
    assert permission.inputs["principal"] == "s3.amazonaws.com"
    assert permission.inputs["sourceArn"] == stack.named("docx-upload-bucket").outputs["arn"]


def test_each_bucket_has_exactly_one_notification(stack: StackRecords) -> None:
    buckets = {b.outputs["bucket"] for b in stack.of_type("aws:s3/bucket:Bucket")}
    notified = [n.inputs["bucket"] for n in stack.of_type("aws:s3/bucketNotification:BucketNotification")]
    assert sorted(notified) == sorted(set(notified)), "a bucket has two notification resources"
    assert set(notified) == buckets, "every bucket reports its events (S3.11)"


def test_staging_zips_expire_and_attachments_have_a_backstop(stack: StackRecords) -> None:
    staging = {r["id"]: r for r in stack.named("bulk-upload-staging-lifecycle").inputs["rules"]}
    assert staging["expire-zips"]["filter"]["prefix"] == "extract/"
    assert staging["expire-zips"]["expiration"]["days"] == 7
    assert stack.named("bulk-upload-staging-notification").inputs["eventbridge"] is True
    backstop = stack.named("email-attachments-lifecycle").inputs["rules"][0]
    assert backstop["expiration"]["days"] == 30
    assert stack.named("email-attachments-notification").inputs["eventbridge"] is True


def test_access_logging_in_prod_only(dev: StackRecords, prod: StackRecords) -> None:
    assert not dev.of_type("aws:s3/bucketLogging:BucketLogging")
    logs = prod.named("access-logs-bucket").outputs["bucket"]
    logged = {r.name for r in prod.of_type("aws:s3/bucketLogging:BucketLogging")}
    assert logged == {"documents-logging", "docx-upload-logging", "bulk-upload-staging-logging",
                      "email-attachments-logging"}
    assert all(r.inputs["targetBucket"] == logs for r in prod.of_type("aws:s3/bucketLogging:BucketLogging"))
    delivery = policy(prod.named("access-logs-policy"))["Statement"][1]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert prod.named("access-logs-lifecycle").inputs["rules"][0]["expiration"]["days"] == 365


# --- Messaging ------------------------------------------------------------------------------------------------------


def test_queue_inventory_and_names(stack: StackRecords) -> None:
    names = {q.inputs["name"] for q in stack.of_type("aws:sqs/queue:Queue") if q.inputs.get("redrivePolicy")}
    assert names == {f"{q}-queue-{stack.stack}" for q in QUEUES}
    assert len(stack.of_type("macro:messaging:QueueWithDLQ")) == len(QUEUES)


def test_consumer_queues_cover_their_function_timeout(stack: StackRecords) -> None:
    queues = {q.outputs["arn"]: q for q in stack.of_type("aws:sqs/queue:Queue")}
    functions = {f.outputs["arn"]: f for f in stack.of_type("aws:lambda/function:Function")}
    mappings = stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert {m.name for m in mappings} == {"text-extractor-mapping", "bulk-upload-mapping", "delete-chat-mapping",
                                          "delete-document-mapping"}
    for mapping in mappings:
        queue, function = queues[mapping.inputs["eventSourceArn"]], functions[mapping.inputs["functionName"]]
        assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * function.inputs["timeout"], mapping.name
        assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
        policy_record = stack.named(mapping.name.replace("-mapping", "-access-policy"))
        assert policy_record.urn in mapping.dependencies, "the role must read the queue before the mapping exists"
        granted = actions_on(stack, policy_record.name)[queue.outputs["arn"]]
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= granted


def test_ses_topics_are_encrypted_and_scoped_to_ses(stack: StackRecords) -> None:
    for name in ("ses-bounces", "ses-complaints"):
        topic = stack.named(f"{name}-topic", "aws:sns/topic:Topic")
        assert topic.inputs["kmsMasterKeyId"] == stack.named(f"{name}-key").outputs["arn"]
        statement = policy(stack.named(f"{name}-topic-policy"))["Statement"][0]
        assert statement["Principal"] == {"Service": ["ses.amazonaws.com"]}
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"]
        subscription = stack.named(f"email-suppression-subscription-{name}-topic")
        assert subscription.inputs["protocol"] == "lambda"
        assert subscription.inputs["topic"] == topic.outputs["arn"]


# --- Tables ---------------------------------------------------------------------------------------------------------


def test_bulk_upload_and_frecency_tables(dev: StackRecords, prod: StackRecords) -> None:
    for records, on in ((dev, False), (prod, True)):
        bulk = records.named("bulk-upload-table", "aws:dynamodb/table:Table")
        assert bulk.inputs["name"] == f"bulk-upload-{records.stack}"
        assert bulk.inputs["globalSecondaryIndexes"][0]["name"] == "DocumentPkIndex"
        assert bulk.inputs["globalSecondaryIndexes"][0]["keySchemas"] == [{"attributeName": "SK", "keyType": "HASH"}]
        frecency = records.named("frecency-table", "aws:dynamodb/table:Table")
        for table in (bulk, frecency):
            assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
            assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
            assert table.inputs["pointInTimeRecovery"]["enabled"] is on
            assert table.protect is on


def test_table_attributes_match_keys(stack: StackRecords) -> None:
    for table in stack.of_type("aws:dynamodb/table:Table"):
        keys = {table.inputs["hashKey"], table.inputs.get("rangeKey")} - {None}
        for index in table.inputs.get("globalSecondaryIndexes") or []:
            keys |= {k["attributeName"] for k in index["keySchemas"]}
        assert {a["name"] for a in table.inputs["attributes"]} == keys, table.name


# --- Databases and cache --------------------------------------------------------------------------------------------


def test_contacts_db_is_a_private_second_database(dev: StackRecords, prod: StackRecords) -> None:
    for records in (dev, prod):
        db = records.named("contactsdb-instance", "aws:rds/instance:Instance")
        assert db.inputs["dbName"] == "contacts" and db.inputs["publiclyAccessible"] is False
        assert db.inputs["storageEncrypted"] is True
    assert dev.named("contactsdb-instance").inputs["instanceClass"] == "db.t4g.micro"
    assert prod.named("contactsdb-instance").inputs["instanceClass"] == "db.t4g.large"


def test_cache_topology_by_stack(dev: StackRecords, prod: StackRecords) -> None:
    d = dev.named("cache-redis", "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    p = prod.named("cache-redis", "aws:elasticache/replicationGroup:ReplicationGroup").inputs
    assert (d["numCacheClusters"], d["automaticFailoverEnabled"], d["multiAzEnabled"]) == (1, False, False)
    assert p["numCacheClusters"] >= 2 and p["automaticFailoverEnabled"] and p["multiAzEnabled"]
    assert (d.get("snapshotRetentionLimit", 0), p["snapshotRetentionLimit"]) == (0, 7)
    for inputs in (d, p):
        assert inputs["transitEncryptionEnabled"] and inputs["atRestEncryptionEnabled"] and inputs["authToken"]


# --- Secrets --------------------------------------------------------------------------------------------------------


def test_the_twelve_seed_secrets_exist_with_one_name_pattern(stack: StackRecords) -> None:
    names = {r.inputs["name"] for r in stack.of_type("aws:secretsmanager/secret:Secret")}
    expected = {f"macro/{stack.stack}/{key}" for key in SEED_SECRETS}
    assert expected <= names
    assert all(re.fullmatch(rf"macro/{stack.stack}/[a-z_]+", n) for n in names)
    window = {"dev": 0, "prod": 30}[stack.stack]
    assert all(r.inputs["recoveryWindowInDays"] == window for r in stack.of_type("aws:secretsmanager/secret:Secret"))


def test_generated_and_external_secrets(stack: StackRecords) -> None:
    versions = {r.name for r in stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    for key in GENERATED_KEYS:
        assert f"app-secrets-{key}-value" in versions, key
        assert stack.named(f"app-secrets-{key}-value", "random:index/randomPassword:RandomPassword")
    for key in EXTERNAL_KEYS:
        assert f"app-secrets-{key}-value" not in versions, "no value in config: the secret awaits one"


def test_external_secret_values_come_from_secret_config() -> None:
    from plan.evaluate import evaluate_program, read_stack_config

    _, config, secret_keys = read_stack_config("dev")
    config["macro-infra:githubWebhookSecret"] = f"{MOCK_SECRET_MARKER}-webhook"
    records = evaluate_program("dev", config, [*secret_keys, "macro-infra:githubWebhookSecret"])
    version = records.named("app-secrets-github_webhook_secret_key-value")
    assert version.inputs["secretString"] == f"{MOCK_SECRET_MARKER}-webhook"
    assert "secretString" in version.secret_inputs


def test_no_secret_value_reaches_an_env_var(stack: StackRecords) -> None:
    for function in stack.of_type("aws:lambda/function:Function"):
        variables = function.inputs["environment"]["variables"]
        assert MOCK_SECRET_MARKER not in json.dumps(variables), function.name
        assert not any("://" in v and "@" in v for v in variables.values()), function.name
        if "DATABASE_SECRET_ARN" in variables:  # the rotation functions read the credentials they are handed
            assert variables["DATABASE_SECRET_ARN"].startswith("arn:aws:secretsmanager:")


def test_prod_stateful_resources_are_protected_dev_destroyable(dev: StackRecords, prod: StackRecords) -> None:
    stateful = ("aws:s3/bucket:Bucket", "aws:dynamodb/table:Table", "aws:rds/instance:Instance",
                "aws:opensearch/domain:Domain", "aws:elasticache/replicationGroup:ReplicationGroup",
                "aws:secretsmanager/secret:Secret")
    for records, on in ((dev, False), (prod, True)):
        for record in records.matching(stateful):
            assert (record.protect, record.retain_on_delete) == (on, on), f"{records.stack} {record.name}"
    assert prod.named("macrodb-instance").inputs["deletionProtection"] is True
    assert prod.named("connection-gateway-table").inputs["deletionProtectionEnabled"] is True


# --- IAM ------------------------------------------------------------------------------------------------------------

SERVICES = ("document-storage-service", "connection-gateway", "search-processing-service", "contacts-service",
            "notification-service", "convert-service")


def test_one_role_and_policy_per_service(stack: StackRecords) -> None:
    for service in SERVICES:
        role = stack.named(f"{service}-role", "aws:iam/role:Role")
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]
        assert stack.named(f"{service}-access-policy").inputs["name"] == f"{service}-access-policy-{stack.stack}"
    for function in FUNCTIONS:
        assert stack.named(f"{function}-access-policy").inputs["name"] == f"{function}-access-policy-{stack.stack}"


def test_every_statement_lists_concrete_actions_and_resources(stack: StackRecords) -> None:
    wildcard_allowed = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "secretsmanager:GetRandomPassword",
                        "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}
    for record in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for s in policy(record)["Statement"]:
            assert all("*" not in a for a in s["Action"]), record.name
            if "*" in s["Resource"]:
                assert set(s["Action"]) <= wildcard_allowed, record.name
    for record in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        assert "FullAccess" not in record.inputs["policyArn"]
        # Not AWSLambdaVPCAccessExecutionRole: it re-grants logs:* on "*" (functions write only their own log group)
        assert record.inputs["policyArn"].endswith("AmazonRDSEnhancedMonitoringRole")


def test_every_trust_policy_names_one_service(stack: StackRecords) -> None:
    for role in stack.of_type("aws:iam/role:Role"):
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert len(trust) == 1 and list(trust[0]["Principal"]) == ["Service"], role.name
        assert isinstance(trust[0]["Principal"]["Service"], str)


@pytest.mark.parametrize(("function", "expected"), [
    ("delete-document", {"documents": {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject",
                                       "s3:DeleteObjectVersion"},
                         "documents-replica": {"s3:DeleteObject", "s3:DeleteObjectVersion"}}),
    ("email-attachment-cleanup", {"email-attachments": {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject",
                                                        "s3:DeleteObjectVersion"}}),
    ("docx-unzip", {"documents": {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:AbortMultipartUpload"},
                    "docx-upload": {"s3:GetObject", "s3:GetObjectVersion"}}),
])
def test_function_object_grants_are_exact(stack: StackRecords, function: str, expected: dict[str, set[str]]) -> None:
    granted = actions_on(stack, f"{function}-access-policy")
    objects = {resource: acts for resource, acts in granted.items() if resource.startswith("arn:aws:s3:::")
               and "/" in resource}
    by_bucket: dict[str, set[str]] = {}
    for resource, acts in objects.items():
        base = resource.split(":::")[1].split("/")[0]
        bucket = next(b.name.removesuffix("-bucket") for b in stack.of_type("aws:s3/bucket:Bucket")
                      if b.outputs["bucket"] == base)
        by_bucket.setdefault(bucket, set()).update(acts)
    assert by_bucket == expected


def test_docx_unzip_writes_only_under_docx_parts(stack: StackRecords) -> None:
    granted = actions_on(stack, "docx-unzip-access-policy")
    writes = [r for r, acts in granted.items() if "s3:PutObject" in acts]
    assert writes and all(r.endswith("/docx-parts/*") for r in writes)


# --- Functions and triggers -----------------------------------------------------------------------------------------


def fn(records: StackRecords, name: str) -> ResourceRecord:
    return records.named(f"{name}-function", "aws:lambda/function:Function")


def test_functions_runtime_architecture_and_log_group_first(stack: StackRecords) -> None:
    for name in FUNCTIONS:
        function = fn(stack, name)
        assert function.inputs["runtime"] == "python3.13" and function.inputs["architectures"] == ["arm64"]
        assert function.inputs["handler"] == f"{name.replace('-', '_')}.handler.handler"
        log_group = stack.named(f"{name}-logs", "aws:cloudwatch/logGroup:LogGroup")
        assert log_group.urn in function.dependencies
        assert log_group.inputs["name"] == f"/aws/lambda/{function.inputs['name']}"
        assert log_group.inputs["retentionInDays"] == {"dev": 30, "prod": 365}[stack.stack]
        assert stack.named(f"{name}-access-policy").urn in function.dependencies
        eni = actions_on(stack, f"{name}-access-policy")
        assert any("ec2:CreateNetworkInterface" in acts for acts in eni.values()), "ENI permissions before the function"
        assert len(function.inputs["vpcConfig"]["subnetIds"]) == 3
        assert function.inputs["kmsKeyArn"] == stack.named("keys-functions").outputs["arn"]


def test_function_settings_and_tracing_by_stack(dev: StackRecords, prod: StackRecords) -> None:
    assert fn(dev, "bulk-upload").inputs["memorySize"] == 1024
    assert fn(prod, "bulk-upload").inputs["memorySize"] == 2048
    assert fn(dev, "text-extractor").inputs["tracingConfig"]["mode"] == "PassThrough"
    assert fn(prod, "text-extractor").inputs["tracingConfig"]["mode"] == "Active"
    assert fn(prod, "text-extractor").inputs["timeout"] == 300


def test_function_alarms_target_on_call(stack: StackRecords) -> None:
    topic = stack.named("on-call-topic").outputs["arn"]
    for name in FUNCTIONS:
        function_name = fn(stack, name).inputs["name"]
        for metric in ("errors", "throttles", "duration"):
            alarm = stack.named(f"{function_name}-{metric}-alarm", "aws:cloudwatch/metricAlarm:MetricAlarm")
            assert alarm.inputs["alarmActions"] == [topic]
        duration = stack.named(f"{function_name}-duration-alarm")
        assert duration.inputs["threshold"] == fn(stack, name).inputs["timeout"] * 1000 * 0.8


def test_async_functions_have_an_on_failure_destination(stack: StackRecords) -> None:
    for name in ("text-extractor", "docx-unzip", "deleted-item-poller", "email-suppression", "user-link-cleanup",
                 "email-attachment-cleanup"):
        config = stack.named(f"{name}-async-config", "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
        failures = stack.named(f"{name}-failures", "aws:sqs/queue:Queue")
        assert config.inputs["destinationConfig"]["onFailure"]["destination"] == failures.outputs["arn"]
        assert actions_on(stack, f"{name}-access-policy")[failures.outputs["arn"]] == {"sqs:SendMessage"}


def test_invoke_permissions_are_scoped_by_source(stack: StackRecords) -> None:
    permissions = stack.of_type("aws:lambda/permission:Permission")
    # S3 → unzip, 2 × SNS → suppression, 4 × EventBridge; prod adds Secrets Manager → 2 rotation functions
    assert len(permissions) == {"dev": 7, "prod": 9}[stack.stack]
    for permission in permissions:
        assert permission.inputs["sourceArn"] and permission.inputs["sourceAccount"] == "123456789012"
        assert permission.inputs["principal"].endswith(".amazonaws.com")


def test_event_rules_and_schedules(stack: StackRecords) -> None:
    rules = {r.name: r for r in stack.of_type("aws:cloudwatch/eventRule:EventRule")}
    schedules = {n: r.inputs["scheduleExpression"] for n, r in rules.items() if r.inputs.get("scheduleExpression")}
    assert schedules == {"deleted-item-poller-schedule-rule": "rate(4 hours)",
                         "user-link-cleanup-schedule-rule": "rate(8 hours)",
                         "email-attachment-cleanup-schedule-rule": "rate(1 day)"}
    extractor = json.loads(rules["text-extractor-trigger-rule"].inputs["eventPattern"])
    assert extractor["detail"]["bucket"]["name"] == [stack.named("documents-bucket").outputs["bucket"]]
    assert extractor["detail"]["object"]["key"] == [{"anything-but": {"prefix": ["temp_files/", "docx-parts/"]}}]
    bulk = json.loads(rules["bulk-upload-trigger-rule"].inputs["eventPattern"])
    assert bulk["detail"]["object"]["key"] == [{"prefix": "extract/"}]
    for target in stack.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert target.inputs["retryPolicy"]["maximumRetryAttempts"] >= 1
        assert target.inputs["deadLetterConfig"]["arn"].startswith("arn:aws:sqs:")
    bulk_target = stack.named("bulk-upload-trigger-target-bulk-upload")
    assert bulk_target.inputs["arn"] == stack.named("bulk-upload-queue").outputs["arn"]
    queue_policy = policy(stack.named("bulk-upload-policy", "aws:sqs/queuePolicy:QueuePolicy"))["Statement"][0]
    assert queue_policy["Condition"]["ArnEquals"]["aws:SourceArn"] == [rules["bulk-upload-trigger-rule"].outputs["arn"]]


# --- Observability --------------------------------------------------------------------------------------------------


def test_data_store_alarms(stack: StackRecords) -> None:
    alarms = {r.inputs["metricName"] for r in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert {"CPUUtilization", "FreeStorageSpace", "DatabaseConnections", "ClusterStatus.red",
            "JVMMemoryPressure", "AutomatedSnapshotFailure", "EngineCPUUtilization",
            "DatabaseMemoryUsagePercentage"} <= alarms
    # a single data node can never place replica shards, so a yellow alarm would never clear in dev
    assert ("ClusterStatus.yellow" in alarms) is (stack.stack == "prod")
    storage = stack.named("search-storage-alarm").inputs["threshold"]
    ebs = stack.named("search-domain").inputs["ebsOptions"]["volumeSize"]
    assert storage < ebs * 1024, "the free-storage alarm must be able to clear"
    topic = stack.named("on-call-topic").outputs["arn"]
    assert all(a.inputs["alarmActions"] == [topic] for a in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))


def test_ecs_cluster_with_container_insights(stack: StackRecords) -> None:
    cluster = stack.named("platform-cluster", "aws:ecs/cluster:Cluster")
    assert cluster.inputs["settings"][0]["name"] == "containerInsights"
    assert cluster.inputs["settings"][0]["value"] in ("enabled", "enhanced")


def test_every_log_group_has_retention(stack: StackRecords) -> None:
    assert all(g.inputs.get("retentionInDays") for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup"))


def test_outputs_list_names_and_arns_but_no_secret(stack: StackRecords) -> None:
    outputs = stack.outputs
    assert set(outputs["secret_arns"]) >= SEED_SECRETS
    assert all(v.startswith("arn:aws:secretsmanager:") for v in outputs["secret_arns"].values() if v)
    assert set(outputs["queue_urls"]) == set(QUEUES)
    assert MOCK_SECRET_MARKER not in json.dumps(outputs, default=str)


# --- Customer-managed keys ------------------------------------------------------------------------------------------


def test_secrets_and_log_groups_use_platform_keys(stack: StackRecords) -> None:
    secrets_key = stack.named("keys-secrets", "aws:kms/key:Key")
    logs_key = stack.named("keys-logs", "aws:kms/key:Key")
    assert all(s.inputs["kmsKeyId"] == secrets_key.outputs["arn"]
               for s in stack.of_type("aws:secretsmanager/secret:Secret"))
    assert all(g.inputs["kmsKeyId"] == logs_key.outputs["arn"]
               for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup"))
    logs_service = [s for s in policy(logs_key)["Statement"] if "Service" in s["Principal"]]
    assert logs_service[0]["Principal"]["Service"] == "logs.us-east-1.amazonaws.com"
    assert "kms:EncryptionContext:aws:logs:arn" in logs_service[0]["Condition"]["ArnLike"]
    for key in stack.of_type("aws:kms/key:Key"):
        assert key.inputs["enableKeyRotation"] is True
        assert all("*" not in a for s in policy(key)["Statement"] for a in s["Action"])


def test_function_reading_a_secret_may_decrypt_it_only_through_secrets_manager(stack: StackRecords) -> None:
    secrets_key = stack.named("keys-secrets").outputs["arn"]
    for name in FUNCTIONS:
        kms = [s for s in statements(stack, f"{name}-access-policy") if secrets_key in s["Resource"]]
        assert len(kms) == 1 and kms[0]["Action"] == ["kms:Decrypt"], name
        assert kms[0]["Condition"]["StringEquals"]["kms:ViaService"] == "secretsmanager.us-east-1.amazonaws.com"


def test_document_buckets_sse_kms_in_prod_sse_s3_in_dev(dev: StackRecords, prod: StackRecords) -> None:
    buckets = ("documents", "docx-upload", "bulk-upload-staging", "email-attachments")
    for name in buckets:
        d = dev.named(f"{name}-encryption").inputs["rules"][0]
        p = prod.named(f"{name}-encryption").inputs["rules"][0]
        assert d["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
        assert p["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert p["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == prod.named("keys-documents").outputs["arn"]
        assert p["bucketKeyEnabled"] is True
    logs = prod.named("access-logs-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert logs["sseAlgorithm"] == "AES256", "S3 delivers access logs only to SSE-S3 buckets"
    replica = prod.named("documents-replica-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert replica["kmsMasterKeyId"] == prod.named("keys-documents-replica").outputs["arn"]
    rule = prod.named("documents-replication").inputs["rules"][0]
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"] == replica["kmsMasterKeyId"]


def test_prod_bucket_readers_and_writers_get_the_documents_key(prod: StackRecords) -> None:
    key = prod.named("keys-documents").outputs["arn"]
    reader = [s for s in statements(prod, "delete-document-access-policy") if key in s["Resource"]]
    assert [s["Action"] for s in reader] == [["kms:Decrypt"]]
    writer = [s for s in statements(prod, "bulk-upload-access-policy") if key in s["Resource"]]
    assert ["kms:Decrypt", "kms:GenerateDataKey"] in [s["Action"] for s in writer]


def test_database_credentials_rotate_in_prod_only(dev: StackRecords, prod: StackRecords) -> None:
    assert not dev.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    assert dev.named("macrodb-instance").inputs.get("password")
    for db, identifier in (("macrodb", "macrodb"), ("contactsdb", "contacts-db")):
        rotation = prod.named(f"{db}-credentials-rotation", "aws:secretsmanager/secretRotation:SecretRotation")
        function = prod.named(f"{identifier}-rotation-function", "aws:lambda/function:Function")
        instance = prod.named(f"{db}-instance")
        assert rotation.inputs["secretId"] == prod.named(f"{db}-credentials").outputs["id"]  # a secret's id is its ARN
        assert rotation.inputs["rotationLambdaArn"] == function.outputs["arn"]
        assert rotation.inputs["rotationRules"]["automaticallyAfterDays"] <= 90
        permission = prod.named(f"{identifier}-rotation-invoke-from-secrets-manager")
        assert permission.inputs["principal"] == "secretsmanager.amazonaws.com"
        # Rotation starts at once and seeds the empty secrets from the instance: it waits for both.
        assert {permission.urn, instance.urn} <= set(rotation.dependencies)
        variables = function.inputs["environment"]["variables"]
        hosts = json.loads(variables["URL_SECRETS"])
        assert prod.named(f"{db}-url").outputs["arn"] in hosts
        assert variables["DB_INSTANCE_IDENTIFIER"] == instance.outputs["identifier"]
        assert "DATABASE_SECRET_ARN" not in variables
        granted = actions_on(prod, f"{identifier}-rotation-access-policy")
        assert granted[prod.named(f"{db}-credentials").outputs["arn"]] >= {
            "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}
        assert granted[instance.outputs["arn"]] == {"rds:DescribeDBInstances", "rds:ModifyDBInstance"}
        assert granted["*"] == {"secretsmanager:GetRandomPassword", "xray:PutTraceSegments",
                                "xray:PutTelemetryRecords", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}


# --- Each function's role, exactly ----------------------------------------------------------------------------------

READ, WRITE = {"s3:GetObject", "s3:GetObjectVersion"}, {"s3:PutObject", "s3:AbortMultipartUpload"}
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}
SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes"}
DB_URL = {"macrodb-proxy-url": {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"},
          "keys-secrets": {"kms:Decrypt"}}
TABLE_RW = {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DescribeTable",
            "dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
            "dynamodb:BatchWriteItem"}
EXPECTED_ACCESS: dict[str, dict[str, set[str]]] = {
    "text-extractor": {**DB_URL, "documents": {"s3:ListBucket"}, "documents/*": READ, "keys-documents": {"kms:Decrypt"},
                       "document-text-extractor-lambda-queue": CONSUME, "search-event-queue": SEND,
                       "text-extractor-failures": {"sqs:SendMessage"}},
    "docx-unzip": {**DB_URL, "documents": {"s3:ListBucket"}, "documents/docx-parts/*": READ | WRITE,
                   "docx-upload": {"s3:ListBucket"}, "docx-upload/*": READ,
                   "keys-documents": {"kms:Decrypt", "kms:GenerateDataKey"}, "convert-service-queue": SEND,
                   "docx-unzip-failures": {"sqs:SendMessage"}},
    "bulk-upload": {**DB_URL, "bulk-upload-staging": {"s3:ListBucket"}, "bulk-upload-staging/extract/*": READ,
                    "documents": {"s3:ListBucket"}, "documents/*": READ | WRITE, "docx-upload": {"s3:ListBucket"},
                    "docx-upload/*": READ | WRITE, "keys-documents": {"kms:Decrypt", "kms:GenerateDataKey"},
                    "bulk-upload-table": TABLE_RW, "bulk-upload-table/index/*": TABLE_RW - {
                        "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"},
                    "keys-tables": {"kms:Decrypt", "kms:GenerateDataKey"}, "bulk-upload-queue": CONSUME},
    "delete-chat": {**DB_URL, "delete-chat-handler-queue": CONSUME},
    "delete-document": {**DB_URL, "documents": {"s3:ListBucket", "s3:ListBucketVersions"},
                        "documents/*": READ | {"s3:DeleteObject", "s3:DeleteObjectVersion"},
                        # version deletes never replicate: the DR replica is cleaned too
                        "documents-replica": {"s3:ListBucket", "s3:ListBucketVersions"},
                        "documents-replica/*": {"s3:DeleteObject", "s3:DeleteObjectVersion"},
                        "keys-documents": {"kms:Decrypt"}, "delete-document-handler-queue": CONSUME},
    "deleted-item-poller": {**DB_URL, "search-event-queue": SEND, "delete-document-handler-queue": SEND,
                            "delete-chat-handler-queue": SEND, "deleted-item-poller-failures": {"sqs:SendMessage"}},
    "email-suppression": {**DB_URL, "email-suppression-failures": {"sqs:SendMessage"}},
    "user-link-cleanup": {**DB_URL, "user-link-cleanup-failures": {"sqs:SendMessage"}},
    # list_object_versions / delete with VersionId (``null`` in an unversioned bucket) need the version actions
    "email-attachment-cleanup": {**DB_URL, "email-attachments": {"s3:ListBucket", "s3:ListBucketVersions"},
                                 "email-attachments/*": READ | {"s3:DeleteObject", "s3:DeleteObjectVersion"},
                                 "keys-documents": {"kms:Decrypt"},
                                 "email-attachment-cleanup-failures": {"sqs:SendMessage"}},
}


def labelled_access(records: StackRecords, policy_name: str) -> dict[str, set[str]]:
    """The policy's grants keyed by the logical name of what they reach, minus logging and tracing."""
    arns = {r.outputs["arn"]: r.name.removesuffix("-bucket")
            for r in records.matching(("aws:s3/bucket:Bucket", "aws:sqs/queue:Queue", "aws:dynamodb/table:Table",
                                       "aws:secretsmanager/secret:Secret", "aws:kms/key:Key"))}
    out: dict[str, set[str]] = {}
    for resource, actions in actions_on(records, policy_name).items():
        if ":log-group:" in resource or resource == "*" or resource.startswith("arn:aws:ec2:"):
            continue  # logs, tracing and ENIs: test_lifecycle.py checks the network interface statements
        base = next((arn for arn in arns if resource == arn or resource.startswith(arn + "/")), None)
        assert base is not None, f"{policy_name} grants {resource}, which the program does not own"
        out[arns[base] + resource[len(base):]] = actions
    return out


@pytest.mark.parametrize("function", sorted(EXPECTED_ACCESS))
def test_each_function_role_grants_exactly_what_it_needs(prod: StackRecords, function: str) -> None:
    assert labelled_access(prod, f"{function}-access-policy") == EXPECTED_ACCESS[function]


# --- dev and prod differ on purpose ---------------------------------------------------------------------------------


def dig(inputs: dict, path: str) -> object:
    value: object = inputs
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]  # type: ignore[index]
    return value


@pytest.mark.parametrize(("resource", "path", "dev_value", "prod_value"), [
    ("macrodb-instance", "instanceClass", "db.t4g.micro", "db.r7g.large"),
    ("macrodb-instance", "allocatedStorage", 20, 100),
    ("macrodb-instance", "maxAllocatedStorage", 40, 500),
    ("macrodb-instance", "performanceInsightsEnabled", False, True),
    ("macrodb-instance", "monitoringInterval", 0, 60),
    ("contactsdb-instance", "multiAz", False, True),
    ("contactsdb-instance", "deletionProtection", False, True),
    ("contactsdb-instance", "skipFinalSnapshot", True, False),
    ("contactsdb-instance", "instanceClass", "db.t4g.micro", "db.t4g.large"),
    ("search-domain", "clusterConfig.instanceType", "t3.medium.search", "r7g.large.search"),
    ("search-domain", "ebsOptions.volumeSize", 20, 200),
    ("cache-redis", "nodeType", "cache.t4g.micro", "cache.r7g.large"),
    ("documents-cors", "corsRules.0.allowedOrigins",
     ["http://localhost:3000", "http://host.local:3000", "https://dev.macro.com"],
     ["https://macro.com", "https://app.macro.com", "https://chat.macro.com"]),
    ("network-flow-logs", "retentionInDays", 30, 365),
    ("keys-documents", None, "absent", "present"),
    ("macrodb-monitoring-role", None, "absent", "present"),
    ("access-logs-bucket", None, "absent", "present"),
])
def test_dev_and_prod_differ_as_configured(dev: StackRecords, prod: StackRecords, resource: str, path: str | None,
                                          dev_value: object, prod_value: object) -> None:
    for records, expected in ((dev, dev_value), (prod, prod_value)):
        found = [r for r in records if r.name == resource]
        if path is None:
            assert ("present" if found else "absent") == expected, f"{records.stack}: {resource}"
        else:
            assert len(found) == 1 and dig(found[0].inputs, path) == expected, f"{records.stack}: {resource}.{path}"


def test_every_queue_has_a_sender_and_a_consumer(stack: StackRecords) -> None:
    """A queue nobody may send to, or nobody consumes, is a pipeline that silently does nothing."""
    granted: dict[str, set[str]] = {}
    for record in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for resource, actions in actions_on(stack, record.name).items():
            granted.setdefault(resource, set()).update(actions)
    for target in stack.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        granted.setdefault(target.inputs["arn"], set()).add("sqs:SendMessage")
    for queue in [q for q in stack.of_type("aws:sqs/queue:Queue") if q.inputs.get("redrivePolicy")]:
        actions = granted.get(queue.outputs["arn"], set())
        assert "sqs:SendMessage" in actions, f"nobody may send to {queue.inputs['name']}"
        assert "sqs:ReceiveMessage" in actions, f"nobody consumes {queue.inputs['name']}"


def test_the_opensearch_service_linked_role_is_created_only_where_it_is_missing(dev: StackRecords) -> None:
    """A new account gets the role from its first stack (deploy rule 24); once it exists no stack declares it, so a
    later stack, or a redeploy after `pulumi destroy`, never fails with "role already exists". (The session's ``dev``
    records are the new account: the default mocks report no existing role.)"""
    from plan.evaluate import PlatformMocks, evaluate_program, read_stack_config

    _, config, secret_keys = read_stack_config("dev")
    fresh = dev
    role = fresh.named("search-service-linked-role", "aws:iam/serviceLinkedRole:ServiceLinkedRole")
    assert role.retain_on_delete and role.urn in fresh.named("search-domain").dependencies
    existing = evaluate_program("dev", config, secret_keys, mocks=PlatformMocks(
        iam_roles=("AWSServiceRoleForAmazonOpenSearchService",)))
    assert not existing.of_type("aws:iam/serviceLinkedRole:ServiceLinkedRole")
