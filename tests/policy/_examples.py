"""Minimal violating and passing stacks for every rule, keyed by rule ID.

Each example is the smallest set of records that makes one rule fire (bad) or stay silent (good). Records point at
each other the way the mocks do: by id (= logical name here), ARN (``arn(name)``) or dependency URNs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from infra.records import ResourceRecord, StackRecords
from policy import types as T

DELETE = object()


def arn(name: str) -> str:
    return f"arn:aws:test:us-east-1:123456789012:{name}"


def res(type_: str, logical: str, /, *, deps: tuple[str, ...] = (), out: dict | None = None,
        opts: dict | None = None, **inputs: Any) -> dict:
    """``opts``: resource options the record carries (``protect``, ``ignore_changes``, ``delete_before_replace``)."""
    return {"type": type_, "name": logical, "deps": deps, "out": out or {}, "inputs": inputs, "opts": opts or {}}


def stack(*specs: dict, name: str = "dev", outputs: dict | None = None) -> StackRecords:
    urns = {s["name"]: f"urn:pulumi:{name}::macro-infra::{s['type']}::{s['name']}" for s in specs}
    records = []
    for s in specs:
        outs = {"id": s["name"], "arn": arn(s["name"]), **s["inputs"], **s["out"]}
        records.append(ResourceRecord(type=s["type"], name=s["name"], urn=urns[s["name"]], inputs=s["inputs"],
                                      outputs=outs, dependencies=tuple(urns[d] for d in s["deps"]), **s["opts"]))
    return StackRecords(stack=name, records=tuple(records), outputs=outputs or {})


def patch(d: dict, path: str, value: Any) -> dict:
    """A deep copy of ``d`` with ``a.b.c`` set (or removed with DELETE)."""
    out = copy.deepcopy(d)
    cur = out
    parts = path.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    if value is DELETE:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value
    return out


def doc(*stmts: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(stmts)})


def allow(action: Any, resource: Any = "arn:aws:sqs:us-east-1:123456789012:q", **extra: Any) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(*services: str) -> str:
    return doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": list(services)}})


# ---------------------------------------------------------------- compliant baselines

GITHUB_TRUST = doc({
    "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
    "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                   "token.actions.githubusercontent.com:sub": ["repo:example-org/app:pull_request"]}}})

BPA = dict(bucket="docs", blockPublicAcls=True, blockPublicPolicy=True, ignorePublicAcls=True,
           restrictPublicBuckets=True)
TLS_POLICY = doc({"Sid": "DenyInsecure", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                  "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
LIFECYCLE = dict(bucket="docs", rules=[{"id": "base", "status": "Enabled", "filter": {},
                                        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1},
                                        "noncurrentVersionExpiration": {"noncurrentDays": 30}}])
VERSIONING = dict(bucket="docs", versioningConfiguration={"status": "Enabled"})
QUEUE = dict(name="work-dev", sqsManagedSseEnabled=True, visibilityTimeoutSeconds=360,
             redrivePolicy=json.dumps({"deadLetterTargetArn": arn("dlq"), "maxReceiveCount": 5}))
DLQ = dict(name="work-dlq-dev", sqsManagedSseEnabled=True, messageRetentionSeconds=1_209_600)
FUNCTION = dict(name="fn-dev", runtime="python3.13", timeout=60, memorySize=256, kmsKeyArn=arn("key"),
                tracingConfig={"mode": "Active"}, loggingConfig={"logGroup": "/aws/lambda/fn-dev"},
                environment={"variables": {"ENVIRONMENT": "dev", "DATABASE_SECRET_ARN": arn("db-secret")}},
                vpcConfig={"subnetIds": ["sub-a", "sub-b"], "securityGroupIds": ["sg"]})
SUBNETS = (res(T.SUBNET, "sub-a", availabilityZone="us-east-1a", mapPublicIpOnLaunch=False),
           res(T.SUBNET, "sub-b", availabilityZone="us-east-1b", mapPublicIpOnLaunch=False))
ESM = dict(eventSourceArn=arn("work"), functionName=arn("fn"), batchSize=10,
           functionResponseTypes=["ReportBatchItemFailures"])
SQS_GRANT = doc(allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]))
ENI_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
TABLE = dict(name="bulk-dev", billingMode="PAY_PER_REQUEST", hashKey="PK", rangeKey="SK",
             attributes=[{"name": "PK", "type": "S"}, {"name": "SK", "type": "S"}],
             globalSecondaryIndexes=[{"name": "ByDoc", "hashKey": "SK", "projectionType": "ALL"}],
             pointInTimeRecovery={"enabled": True}, deletionProtectionEnabled=True,
             serverSideEncryption={"enabled": True, "kmsKeyArn": arn("key")})
DOMAIN = dict(
    domainName="search-prod", encryptAtRest={"enabled": True, "kmsKeyId": arn("key")},
    nodeToNodeEncryption={"enabled": True},
    vpcOptions={"subnetIds": ["a", "b", "c"], "securityGroupIds": ["sg"]},
    clusterConfig={"instanceType": "r7g.large.search", "instanceCount": 3, "zoneAwarenessEnabled": True,
                   "zoneAwarenessConfig": {"availabilityZoneCount": 3}, "dedicatedMasterEnabled": True,
                   "dedicatedMasterCount": 3, "dedicatedMasterType": "r7g.large.search"},
    advancedSecurityOptions={"enabled": True, "internalUserDatabaseEnabled": True,
                             "masterUserOptions": {"masterUserName": "macrouser", "masterUserPassword": "Aa1!aaaaaa"}},
    domainEndpointOptions={"enforceHttps": True, "tlsSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
    softwareUpdateOptions={"autoSoftwareUpdateEnabled": True},
    logPublishingOptions=[{"logType": "ES_APPLICATION_LOGS", "cloudwatchLogGroupArn": arn("lg")},
                          {"logType": "AUDIT_LOGS", "cloudwatchLogGroupArn": arn("lg")}])
LOG_POLICY = res(T.LOG_RESOURCE_POLICY, "es-logs",
                 policyDocument=doc({"Effect": "Allow", "Principal": {"Service": "es.amazonaws.com"},
                                     "Action": "logs:PutLogEvents", "Resource": "*"}))
RDS = dict(identifier="macrodb-prod", username="macroadmin", dbName="macrodb", manageMasterUserPassword=True,
           publiclyAccessible=False, dbSubnetGroupName="dbsubnets", storageEncrypted=True, multiAz=True,
           monitoringInterval=60, monitoringRoleArn=arn("mon"), deletionProtection=True,
           enabledCloudwatchLogsExports=["postgresql", "upgrade"], iamDatabaseAuthenticationEnabled=True,
           backupRetentionPeriod=7, copyTagsToSnapshot=True, caCertIdentifier="rds-ca-rsa2048-g1",
           performanceInsightsEnabled=True, performanceInsightsKmsKeyId=arn("key"), parameterGroupName="pg",
           skipFinalSnapshot=False,
           finalSnapshotIdentifier="macrodb-final")
PARAMS = res(T.RDS_PARAMETER_GROUP, "pg", family="postgres17",
             parameters=[{"name": "rds.force_ssl", "value": "1"}, {"name": "log_min_duration_statement",
                                                                   "value": "500"}])
CACHE = dict(description="cache", atRestEncryptionEnabled=True, transitEncryptionEnabled=True,
             authToken="a" * 32, subnetGroupName="cache-subnets", automaticFailoverEnabled=True,
             multiAzEnabled=True, numCacheClusters=2, snapshotRetentionLimit=7, kmsKeyId=arn("key"))
KEY = dict(enableKeyRotation=True, deletionWindowInDays=30,
           policy=doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*",
                       "Resource": "*"},
                      {"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                       "Action": ["kms:Encrypt*", "kms:Decrypt*"], "Resource": "*"},
                      {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                       "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}))
ALARM = dict(alarmActions=[arn("alerts")], period=60, evaluationPeriods=1, datapointsToAlarm=1,
             comparisonOperator="GreaterThanThreshold", threshold=0)


ROTATION = [
    res(T.SECRET, "creds", name="creds"), res(T.SECRET, "url", name="url"),
    res(T.FUNCTION, "rot", **patch(FUNCTION, "environment.variables", {
        "URL_SECRETS": json.dumps({arn("url"): "db.internal"}), "DB_INSTANCE_IDENTIFIER": "db-prod"})),
    res(T.SECRET_ROTATION, "rotation", secretId="creds", rotationLambdaArn=arn("rot"),
        rotationRules={"automaticallyAfterDays": 30}),
    res(T.RDS_INSTANCE, "db", opts={"ignore_changes": ("password",)}, **{**RDS, "identifier": "db-prod",
                                                                        "password": "Initial-Pa55"}),
]
PROXY = [res(T.RDS_PROXY, "px", name="px"),
         res(T.RDS_PROXY_TARGET_GROUP, "tg", dbProxyName="px", connectionPoolConfig={"connectionBorrowTimeout": 120})]


def one(type_: str, good: dict, path: str, bad_value: Any, stack_name: str = "dev", name: str = "r"):
    """A single-resource example: the good inputs, and the same with one path changed."""
    return (stack_name, [res(type_, name, **patch(good, path, bad_value))], [res(type_, name, **good)])


def bucket_with(*subs: dict, stack_name: str = "dev") -> list[dict]:
    return [res(T.BUCKET, "docs", bucket="docs-dev"), *subs]


EXAMPLES: dict[str, tuple[str, list[dict], list[dict]]] = {
    # ---------------------------------------------------------------- S3
    "S3.1": one(T.ACCOUNT_BPA, {k: v for k, v in BPA.items() if k != "bucket"}, "blockPublicPolicy", False),
    "S3.8": ("dev", bucket_with(res(T.BUCKET_BPA, "bpa", **patch(BPA, "ignorePublicAcls", False))),
             bucket_with(res(T.BUCKET_BPA, "bpa", **BPA))),
    "S3.2": one(T.BUCKET_POLICY, {"bucket": "docs", "policy": TLS_POLICY}, "policy",
                doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"})),
    "S3.5": ("dev", bucket_with(res(T.BUCKET_POLICY, "pol", bucket="docs", policy=doc(allow("s3:GetObject")))),
             bucket_with(res(T.BUCKET_POLICY, "pol", bucket="docs", policy=TLS_POLICY))),
    "S3.6": one(T.BUCKET_POLICY, {"bucket": "docs", "policy": TLS_POLICY}, "policy",
                doc(allow("s3:GetObject", Principal={"AWS": "arn:aws:iam::999999999999:root"}))),
    "S3.9": ("prod", bucket_with(), bucket_with(res(T.BUCKET, "logs", bucket="logs-prod"),
                                                res(T.BUCKET_LOGGING, "lg", bucket="docs", targetBucket="logs"))),
    "S3.13": ("dev", bucket_with(res(T.BUCKET_LIFECYCLE, "lc", **patch(LIFECYCLE, "rules", [{"id": "x",
                                                                                              "filter": {}}]))),
              bucket_with(res(T.BUCKET_LIFECYCLE, "lc", **LIFECYCLE))),
    "S3.10": ("dev", bucket_with(res(T.BUCKET_VERSIONING, "v", **VERSIONING), res(
        T.BUCKET_LIFECYCLE, "lc", bucket="docs", rules=[{"id": "x", "filter": {},
                                                         "abortIncompleteMultipartUpload": {}}])),
              bucket_with(res(T.BUCKET_VERSIONING, "v", **VERSIONING), res(T.BUCKET_LIFECYCLE, "lc", **LIFECYCLE))),
    "S3.11": ("dev", bucket_with(), bucket_with(res(T.BUCKET_NOTIFICATION, "n", bucket="docs", eventbridge=True))),
    "S3.12": ("dev", bucket_with(res(T.BUCKET_OWNERSHIP, "own", bucket="docs",
                                     rule={"objectOwnership": "ObjectWriter"})),
              bucket_with(res(T.BUCKET_OWNERSHIP, "own", bucket="docs",
                              rule={"objectOwnership": "BucketOwnerEnforced"}))),
    "CKV_AWS_19": ("dev", bucket_with(), bucket_with(res(T.BUCKET_SSE, "sse", bucket="docs", rules=[
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]))),
    "S3.17": ("prod", bucket_with(res(T.BUCKET_SSE, "sse", bucket="docs", rules=[
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}])),
              bucket_with(res(T.BUCKET_SSE, "sse", bucket="docs", rules=[
                  {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": True}]))),
    "S3.14": ("dev", bucket_with(), bucket_with(res(T.BUCKET_VERSIONING, "v", **VERSIONING))),
    "S3.7": ("prod", bucket_with(res(T.BUCKET_VERSIONING, "v", **VERSIONING)),
             bucket_with(res(T.BUCKET_VERSIONING, "v", **VERSIONING),
                         res(T.BUCKET_REPLICATION, "rep", bucket="docs", role=arn("rep-role"),
                             rules=[{"id": "all", "status": "Enabled", "destination": {"bucket": arn("replica")}}]))),
    "S3-CORS": one("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
                   {"bucket": "docs", "corsRules": [{"allowedOrigins": ["https://app.macro.com"],
                                                     "allowedMethods": ["GET"]}]},
                   "corsRules", [{"allowedOrigins": ["*"], "allowedMethods": ["GET"]}]),
    "DEPLOY-S3-NOTIFICATION": (
        "dev",
        bucket_with(res(T.FUNCTION, "fn", **FUNCTION),
                    res(T.BUCKET_NOTIFICATION, "n", bucket="docs",
                        lambdaFunctions=[{"lambdaFunctionArn": arn("fn"), "events": ["s3:ObjectCreated:*"]}])),
        bucket_with(res(T.FUNCTION, "fn", **FUNCTION),
                    res(T.PERMISSION, "perm", principal="s3.amazonaws.com", function="fn", sourceArn=arn("docs"),
                        sourceAccount="123456789012"),
                    res(T.BUCKET_NOTIFICATION, "n", deps=("perm",), bucket="docs",
                        lambdaFunctions=[{"lambdaFunctionArn": arn("fn"), "events": ["s3:ObjectCreated:*"]}]))),
    "DEPLOY-S3-NAME": one(T.BUCKET, {"bucket": "doc-storage-dev"}, "bucket", "Doc_Storage"),
    "DEPLOY-S3-ACCELERATION": (
        "dev", [res(T.BUCKET, "docs", bucket="docs.macro.com"), res(T.BUCKET_ACCELERATE, "acc", bucket="docs",
                                                                     status="Enabled")],
        [res(T.BUCKET, "docs", bucket="docs-macro-com"), res(T.BUCKET_ACCELERATE, "acc", bucket="docs",
                                                             status="Enabled")]),
    "DEPLOY-S3-REPLICATION": (
        "prod",
        [res(T.BUCKET, "docs", bucket="docs"), res(T.BUCKET, "replica", bucket="replica"),
         res(T.BUCKET_VERSIONING, "v", **VERSIONING),
         res(T.BUCKET_REPLICATION, "rep", deps=("v",), bucket="docs", role=arn("role"),
             rules=[{"id": "all", "status": "Enabled", "filter": {}, "destination": {"bucket": arn("replica")}}])],
        [res(T.BUCKET, "docs", bucket="docs"), res(T.BUCKET, "replica", bucket="replica"),
         res(T.BUCKET_VERSIONING, "v", **VERSIONING),
         res(T.BUCKET_VERSIONING, "rv", **patch(VERSIONING, "bucket", "replica")),
         res(T.ROLE, "role", assumeRolePolicy=trust("s3.amazonaws.com")),
         res(T.BUCKET_REPLICATION, "rep", deps=("v", "rv"), bucket="docs", role=arn("role"),
             rules=[{"id": "all", "status": "Enabled", "filter": {}, "deleteMarkerReplication": {"status": "Enabled"},
                     "destination": {"bucket": arn("replica")}}])]),
    "DEPLOY-S3-LIFECYCLE": one(T.BUCKET_LIFECYCLE, LIFECYCLE, "rules", [
        {"id": "markers", "status": "Enabled", "filter": {},
         "expiration": {"expiredObjectDeleteMarker": True, "days": 1}}]),
    "DEPLOY-S3-ACL": ("dev", [res(T.BUCKET_ACL, "acl", bucket="docs", acl="private")],
                      [res(T.BUCKET, "docs", bucket="docs")]),
    "DEPLOY-S3-ORDERING": (
        "dev", bucket_with(res(T.BUCKET_BPA, "bpa", **BPA), res(T.BUCKET_POLICY, "pol", bucket="docs",
                                                                policy=TLS_POLICY)),
        bucket_with(res(T.BUCKET_BPA, "bpa", **BPA), res(T.BUCKET_POLICY, "pol", deps=("bpa",), bucket="docs",
                                                         policy=TLS_POLICY))),
    # ---------------------------------------------------------------- SQS / SNS
    "SQS.1": one(T.QUEUE, QUEUE, "sqsManagedSseEnabled", False),
    "SQS.3": one(T.QUEUE_POLICY, {"queueUrl": "q", "policy": doc(allow("sqs:SendMessage", Principal={
        "Service": "events.amazonaws.com"}, Condition={"ArnEquals": {"aws:SourceArn": arn("rule")}}))},
        "policy", doc(allow("sqs:*", Principal="*"))),
    "SNS.1": ("dev", [res(T.TOPIC, "alerts", kmsMasterKeyId="alias/aws/sns"),
                      res(T.METRIC_ALARM, "alarm", **patch(ALARM, "alarmActions", [arn("alerts")]))],
              [res(T.KMS_KEY, "key", **KEY), res(T.TOPIC, "alerts", kmsMasterKeyId=arn("key")),
               res(T.METRIC_ALARM, "alarm", **patch(ALARM, "alarmActions", [arn("alerts")]))]),
    "SNS.4": one(T.TOPIC_POLICY, {"arn": arn("alerts"), "policy": doc(allow("sns:Publish", Principal={
        "Service": "cloudwatch.amazonaws.com"}, Condition={"StringEquals": {"aws:SourceAccount": "123456789012"}}))},
        "policy", doc(allow("sns:Publish", Principal={"AWS": "*"}))),
    "DEPLOY-SQS-DLQ": ("dev", [res(T.QUEUE, "work", **QUEUE), res(T.QUEUE, "dlq", **patch(DLQ, "fifoQueue", True))],
                       [res(T.QUEUE, "work", **QUEUE), res(T.QUEUE, "dlq", **DLQ)]),
    "DEPLOY-SQS-NAME": one(T.QUEUE, QUEUE, "name", "work-dev.fifo"),
    "DEPLOY-SQS-VISIBILITY": (
        "dev", [res(T.QUEUE, "work", **patch(QUEUE, "visibilityTimeoutSeconds", 30)), res(T.FUNCTION, "fn", **FUNCTION),
                res(T.ESM, "esm", **ESM)],
        [res(T.QUEUE, "work", **QUEUE), res(T.FUNCTION, "fn", **FUNCTION), res(T.ESM, "esm", **ESM)]),
    "DEPLOY-ESM-BATCH": ("dev", [res(T.QUEUE, "work", **QUEUE), res(T.ESM, "esm", **patch(ESM, "batchSize", 50))],
                         [res(T.QUEUE, "work", **QUEUE), res(T.ESM, "esm", **patch(
                             patch(ESM, "batchSize", 50), "maximumBatchingWindowInSeconds", 5))]),
    "DEPLOY-ESM-PARTIAL-BATCH": ("dev", [res(T.QUEUE, "work", **QUEUE),
                                         res(T.ESM, "esm", **patch(ESM, "functionResponseTypes", DELETE))],
                                 [res(T.QUEUE, "work", **QUEUE), res(T.ESM, "esm", **ESM)]),
    "DEPLOY-ESM-PERMISSIONS": ("dev", [res(T.QUEUE, "work", **QUEUE), res(T.ESM, "esm", **ESM)],
                               [res(T.QUEUE, "work", **QUEUE), res(T.ROLE_POLICY, "grant", role="r", policy=SQS_GRANT),
                                res(T.ESM, "esm", deps=("grant",), **ESM)]),
    # ---------------------------------------------------------------- Lambda
    "Lambda.1": one(T.PERMISSION, {"principal": "events.amazonaws.com", "function": "fn", "sourceArn": arn("rule")},
                    "principal", "*"),
    "Lambda.2": one(T.FUNCTION, FUNCTION, "runtime", "python3.9"),
    "Lambda.3": one(T.FUNCTION, FUNCTION, "vpcConfig", DELETE),
    "Lambda.5": ("dev", [*SUBNETS, res(T.FUNCTION, "fn", **patch(FUNCTION, "vpcConfig.subnetIds", ["sub-a"]))],
                 [*SUBNETS, res(T.FUNCTION, "fn", **FUNCTION)]),
    "CKV_AWS_50": one(T.FUNCTION, FUNCTION, "tracingConfig.mode", "PassThrough", "prod"),
    "CKV_AWS_116": ("dev", [res(T.FUNCTION, "fn", **FUNCTION), res(T.PERMISSION, "p", principal="s3.amazonaws.com",
                                                                   function="fn")],
                    [res(T.FUNCTION, "fn", **patch(FUNCTION, "deadLetterConfig", {"targetArn": arn("dlq")})),
                     res(T.PERMISSION, "p", principal="s3.amazonaws.com", function="fn")]),
    "CKV_AWS_173": one(T.FUNCTION, FUNCTION, "kmsKeyArn", DELETE),
    "DEPLOY-LAMBDA-RESERVED-ENV": one(T.FUNCTION, FUNCTION, "environment.variables.AWS_REGION", "us-east-1"),
    "DEPLOY-LAMBDA-CONCURRENCY": one(T.FUNCTION, FUNCTION, "reservedConcurrentExecutions", 5.0),
    "DEPLOY-LAMBDA-LIMITS": one(T.FUNCTION, FUNCTION, "timeout", 901.0),
    "DEPLOY-LAMBDA-ENI": ("dev", [res(T.FUNCTION, "fn", **FUNCTION)],
                          [res(T.ROLE_POLICY_ATTACHMENT, "eni", role="r", policyArn=ENI_ARN),
                           res(T.FUNCTION, "fn", deps=("eni",), **FUNCTION)]),
    "DEPLOY-LAMBDA-LOGGROUP": (
        "dev", [res(T.LOG_GROUP, "lg", name="/aws/lambda/fn-dev", retentionInDays=14),
                res(T.FUNCTION, "fn", **patch(FUNCTION, "loggingConfig", DELETE))],
        [res(T.LOG_GROUP, "lg", name="/aws/lambda/fn-dev", retentionInDays=14),
         res(T.FUNCTION, "fn", deps=("lg",), **patch(FUNCTION, "loggingConfig", DELETE))]),
    "DEPLOY-SCHEDULE-EXPRESSION": one(T.EVENT_RULE, {"scheduleExpression": "rate(4 hours)"}, "scheduleExpression",
                                      "rate(1 hours)"),
    "DEPLOY-EVENTS-PERMISSION": (
        "dev", [res(T.FUNCTION, "fn", **FUNCTION), res(T.EVENT_RULE, "rule", scheduleExpression="rate(4 hours)"),
                res(T.EVENT_TARGET, "t", rule="rule", arn=arn("fn"))],
        [res(T.FUNCTION, "fn", **FUNCTION), res(T.EVENT_RULE, "rule", scheduleExpression="rate(4 hours)"),
         res(T.EVENT_TARGET, "t", rule="rule", arn=arn("fn")),
         res(T.PERMISSION, "p", principal="events.amazonaws.com", function="fn", sourceArn=arn("rule"))]),
    # ---------------------------------------------------------------- DynamoDB
    "DynamoDB.1": one(T.TABLE, TABLE, "billingMode", "PROVISIONED"),
    "DynamoDB.2": one(T.TABLE, TABLE, "pointInTimeRecovery.enabled", False, "prod"),
    "DynamoDB.6": one(T.TABLE, TABLE, "deletionProtectionEnabled", DELETE, "prod"),
    "CKV_AWS_119": one(T.TABLE, TABLE, "serverSideEncryption.enabled", False, "prod"),
    "CKV_AWS_247": one(T.DOMAIN, DOMAIN, "encryptAtRest.kmsKeyId", DELETE),
    "DEPLOY-DYNAMODB-ATTRIBUTES": one(T.TABLE, TABLE, "attributes", [{"name": "PK", "type": "S"},
                                                                      {"name": "SK", "type": "S"},
                                                                      {"name": "status", "type": "S"}]),
    # ---------------------------------------------------------------- OpenSearch
    "Opensearch.1": one(T.DOMAIN, DOMAIN, "encryptAtRest.enabled", False),
    "Opensearch.2": one(T.DOMAIN, DOMAIN, "vpcOptions", DELETE),
    "Opensearch.3": one(T.DOMAIN, DOMAIN, "nodeToNodeEncryption", DELETE),
    "Opensearch.4": ("dev", [res(T.DOMAIN, "os", **DOMAIN)], [res(T.DOMAIN, "os", **DOMAIN), LOG_POLICY]),
    "Opensearch.5": one(T.DOMAIN, DOMAIN, "logPublishingOptions", DOMAIN["logPublishingOptions"][:1], "prod"),
    "Opensearch.6": one(T.DOMAIN, DOMAIN, "clusterConfig.instanceCount", 1, "prod"),
    "Opensearch.7": one(T.DOMAIN, DOMAIN, "advancedSecurityOptions.enabled", False),
    "Opensearch.8": one(T.DOMAIN, DOMAIN, "domainEndpointOptions.tlsSecurityPolicy", "Policy-Min-TLS-1-0-2019-07"),
    "Opensearch.ACCESS": one(T.DOMAIN, {**DOMAIN, "accessPolicies": doc({"Effect": "Allow", "Principal": {"AWS": "*"},
                                                                         "Action": "es:ESHttpGet", "Resource": "*"})},
                             "vpcOptions", DELETE),
    "Opensearch.10": one(T.DOMAIN, DOMAIN, "softwareUpdateOptions", DELETE),
    "Opensearch.11": one(T.DOMAIN, DOMAIN, "clusterConfig.dedicatedMasterEnabled", False, "prod"),
    "DEPLOY-OPENSEARCH-ZONES": one(T.DOMAIN, DOMAIN, "vpcOptions.subnetIds", ["a", "b"]),
    "DEPLOY-OPENSEARCH-MASTERS": one(T.DOMAIN, DOMAIN, "clusterConfig.dedicatedMasterCount", 2),
    "DEPLOY-OPENSEARCH-FGAC": one(T.DOMAIN, DOMAIN, "advancedSecurityOptions.masterUserOptions.masterUserPassword",
                                  "short"),
    "DEPLOY-OPENSEARCH-TYPES": one(T.DOMAIN, DOMAIN, "clusterConfig.instanceType", "r7g.large"),
    # ---------------------------------------------------------------- RDS
    "RDS.2": one(T.RDS_INSTANCE, RDS, "publiclyAccessible", True),
    "RDS.3": one(T.RDS_INSTANCE, RDS, "storageEncrypted", DELETE),
    "RDS.5": one(T.RDS_INSTANCE, RDS, "multiAz", False, "prod"),
    "RDS.6": one(T.RDS_INSTANCE, RDS, "monitoringInterval", 0, "prod"),
    "RDS.8": one(T.RDS_INSTANCE, RDS, "deletionProtection", False, "prod"),
    "RDS.9": one(T.RDS_INSTANCE, RDS, "enabledCloudwatchLogsExports", ["postgresql"]),
    "RDS.10": one(T.RDS_INSTANCE, RDS, "iamDatabaseAuthenticationEnabled", DELETE),
    "RDS.11": one(T.RDS_INSTANCE, RDS, "backupRetentionPeriod", 1, "prod"),
    "RDS.13": one(T.RDS_INSTANCE, RDS, "autoMinorVersionUpgrade", False),
    "RDS.17": one(T.RDS_INSTANCE, RDS, "copyTagsToSnapshot", False),
    "RDS.25": one(T.RDS_INSTANCE, RDS, "username", "postgres"),
    "CKV2_AWS_69": ("dev", [res(T.RDS_INSTANCE, "db", **patch(RDS, "parameterGroupName", "default.postgres17"))],
                    [PARAMS, res(T.RDS_INSTANCE, "db", **RDS)]),
    "CKV_AWS_211": one(T.RDS_INSTANCE, RDS, "caCertIdentifier", "rds-ca-2019"),
    "CKV_AWS_353": one(T.RDS_INSTANCE, RDS, "performanceInsightsEnabled", DELETE, "prod"),
    "CKV_AWS_354": one(T.RDS_INSTANCE, RDS, "performanceInsightsKmsKeyId", DELETE, "prod"),
    "SecretsManager.1-RDS": one(T.RDS_INSTANCE, RDS, "manageMasterUserPassword", DELETE),
    "RDS.43": one(T.RDS_PROXY, {"name": "proxy", "requireTls": True}, "requireTls", False),
    "DEPLOY-RDS-PASSWORD": one(T.RDS_INSTANCE, RDS, "password", "pass word@1"),
    "DEPLOY-RDS-USERNAME": one(T.RDS_INSTANCE, RDS, "username", "admin"),
    "DEPLOY-RDS-DBNAME": one(T.RDS_INSTANCE, RDS, "dbName", "macro-db"),
    "DEPLOY-RDS-DESTROY": one(T.RDS_INSTANCE, RDS, "finalSnapshotIdentifier", DELETE, "prod"),
    "DEPLOY-RDS-SUBNET-AZS": ("dev", [*SUBNETS, res(T.RDS_SUBNET_GROUP, "g", subnetIds=["sub-a"])],
                              [*SUBNETS, res(T.RDS_SUBNET_GROUP, "g", subnetIds=["sub-a", "sub-b"])]),
    "DEPLOY-RDS-PROXY-SUBNETS": (
        "dev", [*SUBNETS, res(T.RDS_PROXY, "proxy", vpcSubnetIds=["sub-a", "sub-b"],
                              auths=[{"authScheme": "SECRETS", "secretArn": arn("s"), "username": "macroadmin"}])],
        [*SUBNETS, res(T.RDS_PROXY, "proxy", vpcSubnetIds=["sub-a", "sub-b"],
                       auths=[{"authScheme": "SECRETS", "secretArn": arn("s")}])]),
    "DEPLOY-RDS-PROXY-SECRET": (
        "dev", [res(T.SECRET, "s"), res(T.SECRET_VERSION, "sv", secretId=arn("s"), secretString="postgresql://x"),
                res(T.RDS_PROXY, "proxy", roleArn=arn("role"), auths=[{"secretArn": arn("s")}])],
        [res(T.SECRET, "s"), res(T.SECRET_VERSION, "sv", secretId=arn("s"),
                                 secretString=json.dumps({"username": "u", "password": "p" * 20})),
         res(T.RDS_PROXY, "proxy", roleArn=arn("role"), auths=[{"secretArn": arn("s")}]),
         res(T.RDS_PROXY_TARGET, "target", dbProxyName="proxy", targetGroupName="default")]),
    # ---------------------------------------------------------------- ElastiCache
    "ElastiCache.1": one(T.REPLICATION_GROUP, CACHE, "snapshotRetentionLimit", 0, "prod"),
    "ElastiCache.2": one(T.REPLICATION_GROUP, CACHE, "autoMinorVersionUpgrade", False),
    "ElastiCache.3": one(T.REPLICATION_GROUP, CACHE, "multiAzEnabled", False, "prod"),
    "ElastiCache.4": one(T.REPLICATION_GROUP, CACHE, "atRestEncryptionEnabled", DELETE),
    "CKV_AWS_191": one(T.REPLICATION_GROUP, CACHE, "kmsKeyId", DELETE),
    "ElastiCache.5": one(T.REPLICATION_GROUP, CACHE, "transitEncryptionEnabled", False),
    "ElastiCache.6": one(T.REPLICATION_GROUP, CACHE, "authToken", DELETE),
    "ElastiCache.7": one(T.REPLICATION_GROUP, CACHE, "subnetGroupName", DELETE),
    "DEPLOY-ELASTICACHE-AUTH": one(T.REPLICATION_GROUP, CACHE, "authToken", "short/token"),
    "DEPLOY-ELASTICACHE-FAILOVER": one(T.REPLICATION_GROUP, CACHE, "numCacheClusters", 1),
    # ---------------------------------------------------------------- IAM / KMS / secrets
    "IAM.1": one(T.ROLE_POLICY_ATTACHMENT, {"role": "r", "policyArn": ENI_ARN}, "policyArn",
                 "arn:aws:iam::aws:policy/AmazonS3FullAccess"),
    "IAM.21": one(T.ROLE_POLICY, {"role": "r", "policy": SQS_GRANT}, "policy", doc(allow("dynamodb:*"))),
    "KMS.2": one(T.IAM_POLICY, {"policy": doc(allow("kms:Decrypt", arn("key")))}, "policy",
                 doc(allow("kms:Decrypt", "*"))),
    "CKV_AWS_60": one(T.ROLE, {"assumeRolePolicy": trust("lambda.amazonaws.com")}, "assumeRolePolicy",
                      trust("lambda.amazonaws.com", "ec2.amazonaws.com")),
    "CKV_AWS_358": one(T.ROLE, {"assumeRolePolicy": GITHUB_TRUST}, "assumeRolePolicy", doc(patch(
        json.loads(GITHUB_TRUST)["Statement"][0], "Condition",
        {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
         "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example-org/*"}}))),
    "IAM.POLICY-STYLE": (
        "dev", [res(T.ROLE, "r", assumeRolePolicy=trust("lambda.amazonaws.com"), managedPolicyArns=[ENI_ARN]),
                res(T.ROLE_POLICY, "p", role="r", policy=SQS_GRANT)],
        [res(T.ROLE, "r", assumeRolePolicy=trust("lambda.amazonaws.com")),
         res(T.ROLE_POLICY_ATTACHMENT, "a", role="r", policyArn=ENI_ARN), res(T.ROLE_POLICY, "p", role="r",
                                                                             policy=SQS_GRANT)]),
    "DEPLOY-IAM-LIMITS": ("dev", [res(T.ROLE, "r", name="x" * 65, assumeRolePolicy=trust("lambda.amazonaws.com"))],
                          [res(T.ROLE, "r", name="x" * 64, assumeRolePolicy=trust("lambda.amazonaws.com"))]),
    "KMS.4": one(T.KMS_KEY, KEY, "enableKeyRotation", False),
    "KMS.3": one(T.KMS_KEY, KEY, "deletionWindowInDays", 7, "prod"),
    "KMS.5": one(T.KMS_KEY, KEY, "policy", DELETE),
    "DEPLOY-KMS-LOGS": ("dev", [res(T.KMS_KEY, "key", **patch(KEY, "policy", doc(allow("kms:*", "*")))),
                                res(T.LOG_GROUP, "lg", kmsKeyId=arn("key"), retentionInDays=14)],
                        [res(T.KMS_KEY, "key", **KEY), res(T.LOG_GROUP, "lg", kmsKeyId=arn("key"),
                                                           retentionInDays=14)]),
    "SecretsManager.1": ("prod", [res(T.SECRET, "s")],
                         [res(T.SECRET, "s"), res(T.SECRET_ROTATION, "rot", secretId=arn("s"),
                                                  rotationRules={"automaticallyAfterDays": 30})]),
    "CKV_AWS_149": one(T.SECRET, {"kmsKeyId": arn("key")}, "kmsKeyId", "alias/aws/secretsmanager", "prod"),
    "DEPLOY-SECRET-RECOVERY": one(T.SECRET, {"recoveryWindowInDays": 0}, "recoveryWindowInDays", 3),
    "CKV_AWS_45": one(T.FUNCTION, FUNCTION, "environment.variables.DATABASE_URL", "postgresql://u:hunter22@db/x"),
    "SECRET-INPUTS": (
        "dev", [res(T.RANDOM_PASSWORD, "pw", out={"result": "S3cr3t-value!"}),
                res(T.QUEUE, "q", **patch(QUEUE, "tags", {"note": "S3cr3t-value!"}))],
        [res(T.RANDOM_PASSWORD, "pw", out={"result": "S3cr3t-value!"}),
         res(T.SECRET_VERSION, "sv", secretId="s", secretString="S3cr3t-value!"), res(T.QUEUE, "q", **QUEUE)]),
    "SECRET-OUTPUTS": ("dev", [res(T.RANDOM_PASSWORD, "pw", out={"result": "S3cr3t-value!"})],
                       [res(T.RANDOM_PASSWORD, "pw", out={"result": "S3cr3t-value!"})]),
    # ---------------------------------------------------------------- network
    "EC2.18": one(T.SG_INGRESS, {"securityGroupId": "sg", "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
                                 "referencedSecurityGroupId": "other", "description": "db"},
                  "cidrIpv4", "0.0.0.0/0"),
    "CKV_AWS_382": one(T.SG_EGRESS, {"securityGroupId": "sg", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                                     "cidrIpv4": "0.0.0.0/0", "description": "https"}, "ipProtocol", "-1"),
    "CKV_AWS_23": one(T.SECURITY_GROUP, {"name": "sg", "description": "database", "vpcId": "vpc"}, "description", ""),
    "EC2.2": ("dev", [res(T.VPC, "vpc"), res(T.DEFAULT_SECURITY_GROUP, "dsg", vpcId="vpc",
                                             ingress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}])],
              [res(T.VPC, "vpc"), res(T.DEFAULT_SECURITY_GROUP, "dsg", vpcId="vpc")]),
    "EC2.6": ("prod", [res(T.VPC, "vpc")], [res(T.VPC, "vpc"), res(T.FLOW_LOG, "fl", vpcId="vpc", trafficType="ALL")]),
    "EC2.15": one(T.SUBNET, {"vpcId": "vpc", "mapPublicIpOnLaunch": False}, "mapPublicIpOnLaunch", True),
    "EC2.21": one(T.NETWORK_ACL_RULE, {"ruleAction": "allow", "cidrBlock": "10.0.0.0/16", "fromPort": 22,
                                       "toPort": 22, "egress": False, "protocol": "tcp", "ruleNumber": 100},
                  "cidrBlock", "0.0.0.0/0"),
    "CKV2_AWS_19": ("dev", [res(T.EIP, "eip", domain="vpc")],
                    [res(T.EIP, "eip", domain="vpc"), res(T.NAT_GATEWAY, "nat", deps=("eip",), allocationId="eip")]),
    "CKV2_AWS_5": ("dev", [res(T.SECURITY_GROUP, "sg", description="x")],
                   [res(T.SECURITY_GROUP, "sg", description="x"),
                    res(T.FUNCTION, "fn", deps=("sg",), **FUNCTION)]),
    "SG.RULE-STYLE": (
        "dev", [res(T.SECURITY_GROUP, "sg", description="x", egress=[{"protocol": "tcp", "fromPort": 443,
                                                                       "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]),
                res(T.SG_INGRESS, "in", securityGroupId="sg", referencedSecurityGroupId="o", description="x")],
        [res(T.SECURITY_GROUP, "sg", description="x"),
         res(T.SG_INGRESS, "in", securityGroupId="sg", referencedSecurityGroupId="o", description="x")]),
    # ---------------------------------------------------------------- CloudWatch
    "CloudWatch.15": one(T.METRIC_ALARM, ALARM, "alarmActions", []),
    "CKV_AWS_66": one(T.LOG_GROUP, {"name": "/aws/lambda/fn", "retentionInDays": 14}, "retentionInDays", DELETE),
    "CloudWatch.16": one(T.LOG_GROUP, {"name": "/aws/lambda/fn", "retentionInDays": 365}, "retentionInDays", 30,
                         "prod"),
    "CKV_AWS_158": one(T.LOG_GROUP, {"name": "/aws/lambda/fn", "kmsKeyId": arn("key")}, "kmsKeyId", DELETE, "prod"),
    # dev's budget (Pulumi.dev.yaml costs.fixedBudgetUsd = 250) against 8 NAT gateways (8 x 730 h x $0.045 = $262.80)
    # and against one ($32.85)
    "COST-BUDGET": ("dev", [res(T.NAT_GATEWAY, f"nat-{i}") for i in range(8)], [res(T.NAT_GATEWAY, "nat-0")]),
    "DEPLOY-LOG-RETENTION": one(T.LOG_GROUP, {"name": "/aws/lambda/fn", "retentionInDays": 14}, "retentionInDays",
                                10),
    "DEPLOY-ALARM-PERIOD": one(T.METRIC_ALARM, ALARM, "period", 45),
    "DEPLOY-NAME-LENGTH": one(T.FUNCTION, FUNCTION, "name", "f" * 65),
    # ---------------------------------------------------------------- lifecycle
    # The exact form issue 8 found: a rotated secret keeps a Pulumi-managed first version (with ignore_changes).
    "DEPLOY-ROTATION-ROLLBACK": (
        "prod", [*ROTATION, res(T.SECRET_VERSION, "creds-value", secretId="creds", secretString='{"password": "p"}',
                                opts={"ignore_changes": ("secretString",)})],
        ROTATION),
    "DEPLOY-REPLACE": ("dev", [res(T.QUEUE, "q", **QUEUE)],
                       [res(T.QUEUE, "q", opts={"delete_before_replace": True}, **QUEUE),
                        res(T.QUEUE, "auto", sqsManagedSseEnabled=True)]),
    "DEPLOY-ESM-CONCURRENCY": (
        "dev", [res(T.QUEUE, "work", **QUEUE), res(T.FUNCTION, "fn", **FUNCTION), res(T.ESM, "m", **ESM)],
        [res(T.QUEUE, "work", **QUEUE), res(T.FUNCTION, "fn", **FUNCTION),
         res(T.ESM, "m", scalingConfig={"maximumConcurrency": 2}, **ESM)]),
    "DEPLOY-RDS-PROXY-BORROW": (
        "dev", [*PROXY, res(T.FUNCTION, "fn", **FUNCTION)],
        [*PROXY, res(T.FUNCTION, "fn", **patch(FUNCTION, "timeout", 150))]),
}

# Further violating forms of a rule, beside its main example: each is a shape that once slipped through.
MORE_VIOLATIONS: dict[str, list[tuple[str, list[dict]]]] = {
    # Encryption switched on, but with the AWS-owned key: enabled=True and no kms_key_arn.
    "CKV_AWS_119": [("prod", [res(T.TABLE, "r", **patch(TABLE, "serverSideEncryption", {"enabled": True}))])],
    "CKV_AWS_247": [("dev", [res(T.DOMAIN, "r", **patch(DOMAIN, "encryptAtRest", {"enabled": True}))]),
                    ("dev", [res(T.DOMAIN, "r", **patch(DOMAIN, "encryptAtRest.kmsKeyId", "alias/aws/es"))])],
    "CKV_AWS_191": [("dev", [res(T.REPLICATION_GROUP, "r", **patch(CACHE, "kmsKeyId", ""))])],
    "CKV_AWS_354": [("prod", [res(T.RDS_INSTANCE, "r", **patch(RDS, "performanceInsightsKmsKeyId",
                                                                  "alias/aws/rds"))])],
}

# SECRET-OUTPUTS needs a stack output, which ``stack()`` takes separately.
STACK_OUTPUTS: dict[str, tuple[dict, dict]] = {
    "SECRET-OUTPUTS": ({"dbPassword": "S3cr3t-value!"}, {"dbSecretArn": arn("s")}),
}


def build(rule_id: str) -> tuple[StackRecords, StackRecords]:
    stack_name, bad, good = EXAMPLES[rule_id]
    bad_out, good_out = STACK_OUTPUTS.get(rule_id, ({}, {}))
    return stack(*bad, name=stack_name, outputs=bad_out), stack(*good, name=stack_name, outputs=good_out)
