"""The foundation's resources in both stacks: network, buckets, queues, tables, search, database, topic, provider."""

from __future__ import annotations

import json
import re

from infra.records import StackRecords
from plan.evaluate import MOCK_SECRET_MARKER
from tests.program.conftest import child, component, descendants, policy

# --- Provider and topic ---------------------------------------------------------------------------------------------


def test_provider_default_tags(stack: StackRecords) -> None:
    provider = stack.named("aws", "pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"] if isinstance(provider.inputs["defaultTags"], str) \
        else provider.inputs["defaultTags"]["tags"]
    assert tags == {"environment": stack.stack, "project": "macro-infra", "managed-by": "pulumi"}
    assert all(r.provider is None or "providers:aws::aws" in r.provider for r in stack if r.type.startswith("aws:"))


def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack: StackRecords) -> None:
    topic = stack.named("on-call-topic", "aws:sns/topic:Topic")
    key = stack.named("on-call-key", "aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    services = [s for s in policy(key)["Statement"] if "Service" in s["Principal"]]
    assert any("cloudwatch.amazonaws.com" in s["Principal"]["Service"] and "kms:Decrypt" in s["Action"]
               for s in services)
    subs = stack.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert [s.inputs["endpoint"] for s in subs if s.name.startswith("on-call-email")] == (
        ["oncall@macro.com"] if stack.stack == "prod" else [])


# --- Network --------------------------------------------------------------------------------------------------------


def test_vpc_is_named_coparse_api_vpc_with_three_zones(stack: StackRecords) -> None:
    vpc = stack.named("network-vpc", "aws:ec2/vpc:Vpc")
    assert vpc.inputs["tags"]["Name"] == "coparse_api_vpc"
    subnets = stack.of_type("aws:ec2/subnet:Subnet")
    public = [s for s in subnets if s.inputs["tags"]["tier"] == "public"]
    private = [s for s in subnets if s.inputs["tags"]["tier"] == "private"]
    assert len(public) == len(private) == 3
    zones = {s.inputs["availabilityZoneId"] for s in private}  # by ID: the same physical zones in every account
    assert len(zones) == 3 and all(re.fullmatch(r"use1-az\d", z) for z in zones)
    assert not any("availabilityZone" in s.inputs for s in subnets)
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    expected = {"dev": "10.20.", "prod": "10.0."}[stack.stack]
    assert all(s.inputs["cidrBlock"].startswith(expected) for s in subnets)


def test_nat_gateways_single_in_dev_one_per_zone_in_prod(dev: StackRecords, prod: StackRecords) -> None:
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    for records in (dev, prod):
        private_tables = [r for r in records.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name]
        assert len(private_tables) == 3
        assert all(t.inputs["routes"][0]["natGatewayId"] for t in private_tables)


def test_default_security_group_has_no_rules(stack: StackRecords) -> None:
    default = stack.named("network-default-sg", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.inputs.get("ingress") and not default.inputs.get("egress")


def test_flow_logs_capture_all_traffic_to_a_retained_log_group(stack: StackRecords) -> None:
    flow = stack.named("network-flow-log", "aws:ec2/flowLog:FlowLog")
    group = stack.named("network-flow-logs", "aws:cloudwatch/logGroup:LogGroup")
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == {"dev": 30, "prod": 365}[stack.stack]


def test_ingress_only_from_security_groups_never_from_cidrs(stack: StackRecords) -> None:
    rules = stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rules
    for rule in rules:
        assert rule.inputs.get("referencedSecurityGroupId"), rule.name
        assert not rule.inputs.get("cidrIpv4") and not rule.inputs.get("cidrIpv6"), rule.name
    assert not any(sg.inputs.get("ingress") for sg in stack.of_type("aws:ec2/securityGroup:SecurityGroup"))


# --- Document bucket ------------------------------------------------------------------------------------------------


def test_document_bucket_is_private_encrypted_and_tls_only(stack: StackRecords) -> None:
    bucket = component(stack, "macro:storage:DocumentBucket", "documents")
    block = child(stack, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                  "documents-public-access-block")
    assert all(block.inputs[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                   "restrictPublicBuckets"))
    owner = child(stack, bucket, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "documents-ownership")
    assert owner.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    sse = child(stack, bucket, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "documents-encryption")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    deny = policy(stack.named("documents-policy", "aws:s3/bucketPolicy:BucketPolicy"))["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    versioning = stack.named("documents-versioning", "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"


def test_document_bucket_lifecycle_and_cors(stack: StackRecords) -> None:
    rules = {r["id"]: r for r in stack.named("documents-lifecycle").inputs["rules"]}
    assert rules["temp-files"]["filter"]["prefix"] == "temp_files/"
    assert rules["temp-files"]["expiration"]["days"] == 1
    assert rules["noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    markers = rules["expired-delete-markers"]["expiration"]
    assert markers == {"expiredObjectDeleteMarker": True}, "delete-marker cleanup must be its own rule"
    assert rules["abort-incomplete-multipart"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    cors = stack.named("documents-cors").inputs["corsRules"][0]
    assert {"ETag", "Content-Length", "Content-Range"} <= set(cors["exposeHeaders"])
    assert "*" not in cors["allowedOrigins"] and cors["allowedOrigins"]


def test_acceleration_prod_only_and_eventbridge_on(dev: StackRecords, prod: StackRecords) -> None:
    kind = "aws:s3/bucketAccelerateConfiguration:BucketAccelerateConfiguration"
    assert [r.name for r in dev.of_type(kind)] == []
    assert prod.named("documents-acceleration", kind).inputs["status"] == "Enabled"
    for records in (dev, prod):
        assert records.named("documents-notification").inputs["eventbridge"] is True


def test_replication_targets_dr_region_after_both_versionings(stack: StackRecords) -> None:
    replication = stack.named("documents-replication", "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    replica = stack.named("documents-replica", "aws:s3/bucket:Bucket")
    assert replica.inputs["region"] == "us-west-1"
    versionings = {stack.named(n).urn for n in ("documents-versioning", "documents-replica-versioning")}
    assert versionings <= set(replication.dependencies)
    rule = replication.inputs["rules"][0]
    assert rule["deleteMarkerReplication"]["status"] == "Enabled"
    assert rule["destination"]["bucket"] == replica.outputs["arn"]
    for part in ("public-access-block", "encryption", "policy", "versioning"):
        assert stack.named(f"documents-replica-{part}").inputs["region"] == "us-west-1"


def test_replication_role_may_only_replicate_between_the_two_buckets(stack: StackRecords) -> None:
    role = stack.named("documents-replication-role", "aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    doc = policy(stack.named("documents-replication-policy"))
    s3_statements = [s for s in doc["Statement"] if s["Action"][0].startswith("s3:")]
    actions = {a for s in s3_statements for a in s["Action"]}
    assert actions == {"s3:GetReplicationConfiguration", "s3:ListBucket", "s3:GetObjectVersionForReplication",
                       "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:ReplicateObject",
                       "s3:ReplicateDelete", "s3:ReplicateTags"}
    buckets = {stack.named("documents-bucket").outputs["arn"], stack.named("documents-replica").outputs["arn"]}
    for statement in s3_statements:
        for resource in statement["Resource"]:
            assert resource.removesuffix("/*") in buckets
    # SSE-KMS in prod: decrypt the source key and encrypt with the replica's key, each only through S3.
    kms = [s for s in doc["Statement"] if s["Action"][0].startswith("kms:")]
    if stack.stack == "prod":
        keys = {stack.named("keys-documents").outputs["arn"], stack.named("keys-documents-replica").outputs["arn"]}
        assert {r for s in kms for r in s["Resource"]} == keys
        assert all(s["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3.") for s in kms)
    else:
        assert kms == []


def test_dev_buckets_destroyable_prod_buckets_protected(dev: StackRecords, prod: StackRecords) -> None:
    for records, protected in ((dev, False), (prod, True)):
        for bucket in records.of_type("aws:s3/bucket:Bucket"):
            assert bucket.inputs.get("forceDestroy", False) is (not protected), bucket.name
            assert (bucket.protect, bucket.retain_on_delete) == (protected, protected), bucket.name


# --- Queues ---------------------------------------------------------------------------------------------------------


def test_every_queue_redrives_to_an_encrypted_dlq_of_its_type(stack: StackRecords) -> None:
    queues = {q.outputs["arn"]: q for q in stack.of_type("aws:sqs/queue:Queue")}
    mains = [q for q in queues.values() if q.inputs.get("redrivePolicy")]
    assert mains
    for queue in mains:
        redrive = json.loads(queue.inputs["redrivePolicy"])
        dlq = queues[redrive["deadLetterTargetArn"]]
        assert bool(queue.inputs.get("fifoQueue")) == bool(dlq.inputs.get("fifoQueue")), queue.name
        assert queue.inputs["name"].endswith(".fifo") == bool(queue.inputs.get("fifoQueue"))
        assert redrive["maxReceiveCount"] >= 1
        assert dlq.inputs["messageRetentionSeconds"] == 1209600
        assert queue.inputs["sqsManagedSseEnabled"] and dlq.inputs["sqsManagedSseEnabled"]
        assert "-queue-" in queue.inputs["name"] and "-dlq-" in dlq.inputs["name"]


def test_dlq_alarm_and_redrive_allow_policy(stack: StackRecords) -> None:
    topic = stack.named("on-call-topic").outputs["arn"]
    for dlq in [q for q in stack.of_type("aws:sqs/queue:Queue") if "-dlq-" in q.inputs["name"]]:
        base = dlq.name.removesuffix("-dlq")
        alarm = stack.named(f"{base}-dlq-alarm", "aws:cloudwatch/metricAlarm:MetricAlarm")
        assert alarm.inputs["dimensions"] == {"QueueName": dlq.inputs["name"]}
        assert alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
        assert (alarm.inputs["threshold"], alarm.inputs["period"], alarm.inputs["evaluationPeriods"]) == (0, 60, 1)
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["treatMissingData"] == "notBreaching"
        assert alarm.inputs["alarmActions"] == [topic]
        allow = json.loads(stack.named(f"{base}-dlq-redrive-allow").inputs["redriveAllowPolicy"])
        assert allow["sourceQueueArns"] == [stack.named(f"{base}-queue").outputs["arn"]]


def test_search_event_queue_defaults(stack: StackRecords) -> None:
    queue = stack.named("search-event-queue", "aws:sqs/queue:Queue")
    assert queue.inputs["name"] == f"search-event-queue-{stack.stack}"
    assert queue.inputs["visibilityTimeoutSeconds"] == 30
    assert json.loads(queue.inputs["redrivePolicy"])["maxReceiveCount"] == 5


# --- Connection table -----------------------------------------------------------------------------------------------


def test_connection_table_schema(stack: StackRecords) -> None:
    table = stack.named("connection-gateway-table", "aws:dynamodb/table:Table")
    assert (table.inputs["hashKey"], table.inputs["rangeKey"]) == ("PK", "SK")
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["serverSideEncryption"]["enabled"] is True
    index = table.inputs["globalSecondaryIndexes"][0]
    assert index["name"] == "ConnectionPkIndex" and index["projectionType"] == "ALL"
    assert index["keySchemas"] == [{"attributeName": "SK", "keyType": "HASH"},
                                   {"attributeName": "PK", "keyType": "RANGE"}]
    assert sorted(a["name"] for a in table.inputs["attributes"]) == ["PK", "SK"]


def test_connection_table_pitr_and_protection_by_stack(dev: StackRecords, prod: StackRecords) -> None:
    for records, on in ((dev, False), (prod, True)):
        table = records.named("connection-gateway-table", "aws:dynamodb/table:Table")
        assert table.inputs["pointInTimeRecovery"]["enabled"] is on
        assert table.inputs["deletionProtectionEnabled"] is on
        assert table.protect is on


# --- Search ---------------------------------------------------------------------------------------------------------


def test_dev_search_is_single_node_in_one_subnet(dev: StackRecords) -> None:
    domain = dev.named("search-domain", "aws:opensearch/domain:Domain")
    cluster = domain.inputs["clusterConfig"]
    assert cluster["instanceCount"] == 1 and cluster["zoneAwarenessEnabled"] is False
    assert not cluster.get("dedicatedMasterEnabled")
    assert len(domain.inputs["vpcOptions"]["subnetIds"]) == 1


def test_prod_search_spreads_over_three_zones_with_three_masters(prod: StackRecords) -> None:
    domain = prod.named("search-domain", "aws:opensearch/domain:Domain")
    cluster = domain.inputs["clusterConfig"]
    assert cluster["instanceCount"] >= 3 and cluster["instanceCount"] % 3 == 0
    assert cluster["zoneAwarenessEnabled"] is True
    assert cluster["zoneAwarenessConfig"]["availabilityZoneCount"] == 3
    assert cluster["dedicatedMasterEnabled"] is True and cluster["dedicatedMasterCount"] == 3
    assert len(domain.inputs["vpcOptions"]["subnetIds"]) == 3
    assert domain.protect


def test_search_security_settings(stack: StackRecords) -> None:
    domain = stack.named("search-domain", "aws:opensearch/domain:Domain")
    assert domain.inputs["encryptAtRest"]["enabled"] and domain.inputs["nodeToNodeEncryption"]["enabled"]
    endpoint = domain.inputs["domainEndpointOptions"]
    assert endpoint["enforceHttps"] is True and endpoint["tlsSecurityPolicy"] == "Policy-Min-TLS-1-2-PFS-2023-10"
    security = domain.inputs["advancedSecurityOptions"]
    assert security["enabled"] and security["internalUserDatabaseEnabled"]
    assert security["masterUserOptions"]["masterUserName"] == "macrouser"
    password = stack.named("search-master-password").outputs["result"]
    assert security["masterUserOptions"]["masterUserPassword"] == password
    stored = stack.named("search-master-password-secret-value").inputs["secretString"]
    assert stored == password
    # FGAC's internal users authenticate unsigned requests, so the policy cannot name IAM principals: it admits HTTP
    # actions on this domain only, which is reachable only inside the VPC from named groups, behind FGAC.
    for statement in policy(domain, "accessPolicies")["Statement"]:
        assert all(a.startswith("es:ESHttp") and "*" not in a for a in statement["Action"])
        assert statement["Resource"] == domain.outputs["arn"] + "/*"
    assert domain.inputs["vpcOptions"]["subnetIds"] and security["enabled"]
    published = {o["logType"] for o in domain.inputs["logPublishingOptions"]}
    assert published == {"INDEX_SLOW_LOGS", "SEARCH_SLOW_LOGS", "ES_APPLICATION_LOGS", "AUDIT_LOGS"}
    log_policy = stack.named("search-log-policy")
    assert log_policy.urn in domain.dependencies
    sg = stack.named("search-sg", "aws:ec2/securityGroup:SecurityGroup")
    assert domain.inputs["vpcOptions"]["securityGroupIds"] == [sg.outputs.get("id", "search-sg")]


def test_search_password_meets_opensearch_rules(stack: StackRecords) -> None:
    password = stack.named("search-master-password", "random:index/randomPassword:RandomPassword").inputs
    assert password["length"] >= 8 and password["length"] <= 128
    assert all(password[k] >= 1 for k in ("minUpper", "minLower", "minNumeric", "minSpecial"))


# --- Database -------------------------------------------------------------------------------------------------------


def test_macrodb_is_private_encrypted_and_tls_only(stack: StackRecords) -> None:
    db = stack.named("macrodb-instance", "aws:rds/instance:Instance")
    assert db.inputs["publiclyAccessible"] is False and db.inputs["storageEncrypted"] is True
    assert db.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    params = {p["name"]: p["value"] for p in stack.named("macrodb-parameters").inputs["parameters"]}
    assert params["rds.force_ssl"] == "1"
    assert db.inputs["parameterGroupName"] == stack.named("macrodb-parameters").inputs["name"]
    subnets = stack.named("macrodb-subnets").inputs["subnetIds"]
    assert len(subnets) >= 2 and all("private" in s for s in subnets)
    assert db.inputs["username"] not in ("admin", "postgres", "rdsadmin")
    assert not set('/@" ') & set(stack.named("macrodb-master-password").inputs["overrideSpecial"])


def test_macrodb_settings_by_stack(dev: StackRecords, prod: StackRecords) -> None:
    d = dev.named("macrodb-instance", "aws:rds/instance:Instance")
    p = prod.named("macrodb-instance", "aws:rds/instance:Instance")
    assert (d.inputs["multiAz"], p.inputs["multiAz"]) == (False, True)
    assert (d.inputs["deletionProtection"], p.inputs["deletionProtection"]) == (False, True)
    assert (d.inputs["skipFinalSnapshot"], p.inputs["skipFinalSnapshot"]) == (True, False)
    assert p.inputs["finalSnapshotIdentifier"] == "macrodb-prod-final"
    assert p.inputs["backupRetentionPeriod"] >= 7 and d.inputs["backupRetentionPeriod"] >= 1
    assert p.inputs["performanceInsightsEnabled"] is True
    assert (d.protect, p.protect) == (False, True)


def test_macrodb_credentials_secret_shape(dev: StackRecords) -> None:
    """Dev (no rotation) stores the credentials; prod's come from the rotation (test_rotation_scenario.py)."""
    value = json.loads(dev.named("macrodb-credentials-value").inputs["secretString"])
    assert set(value) == {"username", "password", "engine", "host", "port", "dbname"}
    assert value["password"] == dev.named("macrodb-master-password").outputs["result"]
    assert value["host"] == dev.named("macrodb-instance").outputs["address"]


def test_database_urls_are_secrets(stack: StackRecords) -> None:
    names = {stack.named(n).inputs["name"] for n in ("macrodb-url", "macrodb-proxy-url")}
    if stack.stack == "dev":
        direct = stack.named("macrodb-url-value").inputs["secretString"]
        proxied = stack.named("macrodb-proxy-url-value").inputs["secretString"]
        assert direct.startswith("postgresql://macrouser:") and direct.endswith("/macrodb?sslmode=require")
        assert stack.named("macrodb-proxy").outputs["endpoint"] in proxied
    assert names == {f"macro/{stack.stack}/macro_db_secret_key", f"macro/{stack.stack}/macro_db_proxy_secret_key"}


def test_proxy_requires_tls_and_reads_only_its_secret(stack: StackRecords) -> None:
    proxy = stack.named("macrodb-proxy", "aws:rds/proxy:Proxy")
    secret_arn = stack.named("macrodb-credentials").outputs["arn"]
    assert proxy.inputs["requireTls"] is True and proxy.inputs["engineFamily"] == "POSTGRESQL"
    assert proxy.inputs["auths"][0]["secretArn"] == secret_arn
    assert "username" not in proxy.inputs["auths"][0]
    assert proxy.inputs["vpcSubnetIds"] == stack.named("macrodb-subnets").inputs["subnetIds"]
    statements = policy(stack.named("macrodb-proxy-policy"))["Statement"]
    secrets_key = stack.named("keys-secrets", "aws:kms/key:Key").outputs["arn"]
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        (["secretsmanager:GetSecretValue"], [secret_arn]), (["kms:Decrypt"], [secrets_key])]
    assert statements[1]["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    target = stack.named("macrodb-proxy-target", "aws:rds/proxyTarget:ProxyTarget")
    assert target.inputs["dbInstanceIdentifier"] == f"macrodb-{stack.stack}"


def test_database_admits_postgres_only_from_named_groups(stack: StackRecords) -> None:
    sg = stack.named("macrodb-sg", "aws:ec2/securityGroup:SecurityGroup")
    rules = [r for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.name.startswith("macrodb-sg-from-")]
    assert rules and all(r.inputs["fromPort"] == r.inputs["toPort"] == 5432 for r in rules)
    assert all(r.inputs["securityGroupId"] == sg.outputs.get("id", sg.name) or r.inputs["securityGroupId"]
               for r in rules)


# --- Secrets hygiene ------------------------------------------------------------------------------------------------

SECRET_HOLDERS = {"aws:secretsmanager/secretVersion:SecretVersion", "random:index/randomPassword:RandomPassword",
                  "aws:opensearch/domain:Domain", "aws:rds/instance:Instance",
                  "aws:elasticache/replicationGroup:ReplicationGroup"}
"""Resources whose inputs legitimately carry a generated secret: the secret store, the generator, and the services
that must be told their own master password or token at creation."""


def test_no_secret_value_outside_secret_resources_or_in_outputs(stack: StackRecords) -> None:
    leaks = [r.name for r in stack
             if r.type not in SECRET_HOLDERS and MOCK_SECRET_MARKER in json.dumps(r.inputs, default=str)]
    assert leaks == []
    assert MOCK_SECRET_MARKER not in json.dumps(stack.outputs, default=str)
    generated = [r for r in stack.of_type("random:index/randomPassword:RandomPassword")]
    assert generated and all(MOCK_SECRET_MARKER in r.outputs["result"] for r in generated)


def test_every_component_child_is_prefixed_by_the_component_name(stack: StackRecords) -> None:
    for comp in [r for r in stack if not r.custom]:
        for item in descendants(stack, comp):
            if item.type.startswith("aws:ec2/securityGroup") or "securityGroup" in item.type:
                continue  # groups carry their physical name (network.security_group helper)
            assert item.name.startswith(comp.name), f"{item.name} under {comp.name}"
