"""The architecture diagram is derived from records: each edge kind and each collapse on small hand-built stacks, then
both recorded stacks (every trigger, DLQ route and grant the program declares is drawn; plumbing never is)."""

from __future__ import annotations

import json
import random
from typing import Any

from infra.records import ResourceRecord, StackRecords
from plan.diagram import NODE_KINDS, TIERS, Diagram, derive, diff, render, verb

ACCOUNT = "123456789012"
ARNS = {
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:us-east-1:" + ACCOUNT + ":{}",
    "aws:lambda/function:Function": "arn:aws:lambda:us-east-1:" + ACCOUNT + ":function:{}",
    "aws:sns/topic:Topic": "arn:aws:sns:us-east-1:" + ACCOUNT + ":{}",
    "aws:iam/role:Role": "arn:aws:iam::" + ACCOUNT + ":role/{}",
    "aws:dynamodb/table:Table": "arn:aws:dynamodb:us-east-1:" + ACCOUNT + ":table/{}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:us-east-1:" + ACCOUNT + ":rule/{}",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:us-east-1:" + ACCOUNT + ":secret:{}-AbCdEf",
    "aws:kms/key:Key": "arn:aws:kms:us-east-1:" + ACCOUNT + ":key/{}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:us-east-1:" + ACCOUNT + ":log-group:{}",
}


class Builder:
    """Records the way the mock engine registers them: components as parents, physical names, ARNs as outputs."""

    def __init__(self) -> None:
        self.records: list[ResourceRecord] = []

    def component(self, type_: str, name: str) -> str:
        urn = f"urn:pulumi:dev::macro-infra::{type_}::{name}"
        self.records.append(ResourceRecord(type=type_, name=name, urn=urn, custom=False))
        return urn

    def add(self, type_: str, logical: str, parent: str | None = None, /, physical: str | None = None,
            **inputs: Any) -> ResourceRecord:
        physical = physical or logical
        outputs = {"id": physical, "arn": ARNS.get(type_, "arn:aws:x:us-east-1:1:{}").format(physical), **inputs}
        if type_ == "aws:iam/role:Role":
            outputs["name"] = physical
        rec = ResourceRecord(type=type_, name=logical, urn=f"urn:pulumi:dev::macro-infra::{type_}::{logical}",
                             inputs=inputs, outputs=outputs, parent=parent)
        self.records.append(rec)
        return rec

    def stack(self) -> StackRecords:
        return StackRecords(stack="dev", records=tuple(self.records))


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str], *resources: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": list(resources)}


def function(b: Builder, name: str, *, grants: str | None = None, vpc: list[str] | None = None) -> str:
    """A Function component the way components/function.py builds one: role, policy, log group, alarm, function."""
    comp = b.component("macro:compute:Function", name)
    b.add("aws:cloudwatch/logGroup:LogGroup", f"{name}-logs", comp, name=f"/aws/lambda/{name}")
    b.add("aws:iam/role:Role", f"{name}-role", comp, physical=f"{name}-role", name=f"{name}-role")
    if grants:
        b.add("aws:iam/rolePolicy:RolePolicy", f"{name}-policy", comp, role=f"{name}-role", policy=grants)
    fn_inputs: dict[str, Any] = {"name": name, "role": ARNS["aws:iam/role:Role"].format(f"{name}-role"),
                                 "loggingConfig": {"logGroup": f"/aws/lambda/{name}"}}
    if vpc:
        fn_inputs["vpcConfig"] = {"subnetIds": vpc}
    b.add("aws:lambda/function:Function", f"{name}-function", comp, physical=name, **fn_inputs)
    b.add("aws:cloudwatch/metricAlarm:MetricAlarm", f"{name}-errors", comp, dimensions={"FunctionName": name})
    return comp


def queue(b: Builder, name: str) -> None:
    comp = b.component("macro:messaging:QueueWithDLQ", name)
    b.add("aws:sqs/queue:Queue", f"{name}-dlq", comp, physical=f"{name}-dlq", name=f"{name}-dlq")
    b.add("aws:sqs/queue:Queue", f"{name}-queue", comp, physical=name, name=name,
          redrivePolicy=json.dumps({"deadLetterTargetArn": ARNS["aws:sqs/queue:Queue"].format(f"{name}-dlq"),
                                    "maxReceiveCount": 3}))
    b.add("aws:cloudwatch/metricAlarm:MetricAlarm", f"{name}-dlq-alarm", comp, dimensions={"QueueName": f"{name}-dlq"})


def bucket(b: Builder, name: str) -> str:
    comp = b.component("macro:storage:DocumentBucket", name)
    b.add("aws:s3/bucket:Bucket", f"{name}-bucket", comp, physical=name, bucket=name)
    b.add("aws:s3/bucketVersioning:BucketVersioning", f"{name}-versioning", comp, bucket=name)
    b.add("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-bpa", comp, bucket=name)
    b.add("aws:s3/bucketPolicy:BucketPolicy", f"{name}-policy", comp, bucket=name, policy=policy())
    return comp


def edges(d: Diagram, source: str, target: str) -> list[tuple[str, str]]:
    return [(e.kind, e.label) for e in d.edges_between(source, target)]


def test_s3_notification_is_a_trigger_and_the_bucket_plumbing_folds_into_the_bucket() -> None:
    b = Builder()
    comp = bucket(b, "uploads")
    function(b, "unzip")
    b.add("aws:s3/bucketNotification:BucketNotification", "uploads-notification", comp, bucket="uploads",
          lambdaFunctions=[{"lambdaFunctionArn": ARNS["aws:lambda/function:Function"].format("unzip"),
                            "events": ["s3:ObjectCreated:*"]}])
    d = derive(b.stack())
    assert edges(d, "uploads-bucket", "unzip-function") == [("trigger", "S3 notification")]
    labels = {n.label for n in d.nodes}
    assert labels == {"uploads-bucket", "unzip-function"}, "versioning, BPA, policy, role, log group, alarm fold"


def test_eventbridge_pattern_target_and_target_dlq() -> None:
    b = Builder()
    bucket(b, "documents")
    function(b, "extractor")
    rule = b.component("macro:events:EventRule", "extract-trigger")
    b.add("aws:sqs/queue:Queue", "extract-trigger-dlq", rule, physical="extract-dlq", name="extract-dlq")
    b.add("aws:cloudwatch/eventRule:EventRule", "extract-trigger-rule", rule, physical="extract-rule",
          name="extract-rule", eventPattern=json.dumps({"source": ["aws.s3"],
                                                        "detail": {"bucket": {"name": ["documents"]}}}))
    b.add("aws:cloudwatch/eventTarget:EventTarget", "extract-trigger-target", rule, rule="extract-rule",
          arn=ARNS["aws:lambda/function:Function"].format("extractor"),
          deadLetterConfig={"arn": ARNS["aws:sqs/queue:Queue"].format("extract-dlq")})
    d = derive(b.stack())
    assert edges(d, "documents-bucket", "extract-trigger-rule") == [("trigger", "EventBridge event")]
    assert edges(d, "extract-trigger-rule", "extractor-function") == [("trigger", "rule target")]
    assert edges(d, "extract-trigger-rule", "extract-trigger-dlq") == [("dlq", "DLQ")]


def test_mapping_redrive_and_on_failure_fold_the_grants_that_enable_them() -> None:
    b = Builder()
    queue(b, "jobs")
    jobs_arn = ARNS["aws:sqs/queue:Queue"].format("jobs")
    failures_arn = ARNS["aws:sqs/queue:Queue"].format("worker-failed")
    comp = function(b, "worker", grants=policy(
        allow(["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], jobs_arn),
        allow(["sqs:SendMessage"], failures_arn)))
    b.add("aws:sqs/queue:Queue", "worker-failures", comp, physical="worker-failed", name="worker-failed")
    b.add("aws:lambda/eventSourceMapping:EventSourceMapping", "worker-mapping", comp, eventSourceArn=jobs_arn,
          functionName=ARNS["aws:lambda/function:Function"].format("worker"))
    b.add("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "worker-async", comp,
          functionName="worker", destinationConfig={"onFailure": {"destination": failures_arn}})
    d = derive(b.stack())
    assert edges(d, "jobs-queue", "worker-function") == [("trigger", "event source mapping")]
    assert edges(d, "jobs-queue", "jobs-dlq") == [("dlq", "DLQ")]
    assert edges(d, "worker-function", "worker-failures") == [("dlq", "on failure")]
    assert edges(d, "worker-function", "jobs-queue") == [], "consuming the mapped queue folds into the mapping"


def test_sns_subscription_and_rotation_schedule_are_triggers() -> None:
    b = Builder()
    topic = b.component("macro:messaging:EncryptedTopic", "bounces")
    b.add("aws:sns/topic:Topic", "bounces-topic", topic, physical="bounces", name="bounces")
    function(b, "suppress")
    function(b, "rotate")
    db = b.component("macro:database:MacroDatabase", "db")
    b.add("aws:rds/instance:Instance", "db-instance", db, physical="db", identifier="db")
    b.add("aws:secretsmanager/secret:Secret", "db-credentials", db, physical="db-creds", name="db-creds")
    b.add("aws:sns/topicSubscription:TopicSubscription", "sub", topic, protocol="lambda",
          topic=ARNS["aws:sns/topic:Topic"].format("bounces"),
          endpoint=ARNS["aws:lambda/function:Function"].format("suppress"))
    b.add("aws:secretsmanager/secretRotation:SecretRotation", "db-rotation", db, secretId="db-creds",
          rotationLambdaArn=ARNS["aws:lambda/function:Function"].format("rotate"))
    d = derive(b.stack())
    assert edges(d, "bounces-topic", "suppress-function") == [("trigger", "lambda subscription")]
    assert edges(d, "db-instance", "rotate-function") == [("trigger", "rotation schedule")]


def test_grants_map_actions_to_verbs_and_arns_to_their_owners() -> None:
    b = Builder()
    bucket(b, "docs")
    table = b.component("macro:data:Table", "prefs")
    b.add("aws:dynamodb/table:Table", "prefs-table", table, physical="prefs", name="prefs")
    db = b.component("macro:database:MacroDatabase", "db")
    b.add("aws:rds/instance:Instance", "db-instance", db, physical="db", identifier="db")
    b.add("aws:secretsmanager/secret:Secret", "db-url", db, physical="db-url", name="db-url")
    keys = b.component("macro:security:EncryptionKeys", "keys")
    b.add("aws:kms/key:Key", "keys-secrets", keys, physical="k1")
    function(b, "api", grants=policy(
        allow(["s3:GetObject"], "arn:aws:s3:::docs/uploads/*"),
        allow(["s3:DeleteObject"], "arn:aws:s3:::docs/*"),
        allow(["dynamodb:PutItem", "dynamodb:Query"], ARNS["aws:dynamodb/table:Table"].format("prefs"),
              ARNS["aws:dynamodb/table:Table"].format("prefs") + "/index/*"),
        allow(["secretsmanager:GetSecretValue"], ARNS["aws:secretsmanager/secret:Secret"].format("db-url")),
        allow(["kms:Decrypt"], ARNS["aws:kms/key:Key"].format("k1")),
        allow(["logs:PutLogEvents"], ARNS["aws:cloudwatch/logGroup:LogGroup"].format("/aws/lambda/api") + ":*")))
    d = derive(b.stack())
    assert edges(d, "api-function", "docs-bucket") == [("grant", "deletes, reads")]
    assert edges(d, "api-function", "prefs-table") == [("grant", "reads, writes")]
    assert edges(d, "api-function", "db-instance") == [("grant", "reads secret")], "a DB's secret folds into the DB"
    assert not any(n.label.startswith("keys") for n in d.nodes), "key use is implied, not drawn"
    assert not [e for e in d.edges if e.source == e.target], "a function writing its own logs draws nothing"


def test_a_component_without_a_node_stands_for_its_role_only_when_it_has_an_edge() -> None:
    b = Builder()
    bucket(b, "docs")
    for name, grants in (("storage-service", [allow(["s3:PutObject"], "arn:aws:s3:::docs/*")]),
                         ("idle-service", [allow(["logs:PutLogEvents"], "*")])):
        comp = b.component("macro:iam:ServiceRole", name)
        b.add("aws:iam/role:Role", f"{name}-role", comp, physical=name, name=name)
        b.add("aws:iam/rolePolicy:RolePolicy", f"{name}-policy", comp, role=name, policy=policy(*grants))
    d = derive(b.stack())
    node = d.node("storage-service (ServiceRole)")
    assert node.kind == "component" and node.tier == "outside the VPC"
    assert edges(d, "storage-service (ServiceRole)", "docs-bucket") == [("grant", "writes")]
    assert "idle-service (ServiceRole)" not in {n.label for n in d.nodes}


def test_names_shared_across_types_resolve_to_the_type_the_input_expects() -> None:
    """A service role named like a table (connection-gateway-dev) still owns its own policy."""
    b = Builder()
    table = b.component("macro:data:ConnectionTable", "gateway")
    b.add("aws:dynamodb/table:Table", "gateway-table", table, physical="gateway-dev", name="gateway-dev")
    comp = b.component("macro:iam:ServiceRole", "gateway-service")
    b.add("aws:iam/role:Role", "gateway-service-role", comp, physical="gateway-dev", name="gateway-dev")
    b.add("aws:iam/rolePolicy:RolePolicy", "gateway-service-policy", comp, role="gateway-dev",
          policy=policy(allow(["dynamodb:GetItem"], ARNS["aws:dynamodb/table:Table"].format("gateway-dev"))))
    d = derive(b.stack())
    assert edges(d, "gateway-service (ServiceRole)", "gateway-table") == [("grant", "reads")]


def test_tiers_come_from_subnets_and_their_route_tables() -> None:
    b = Builder()
    net = b.component("macro:network:Network", "network")
    b.add("aws:ec2/internetGateway:InternetGateway", "igw", net)
    b.add("aws:ec2/subnet:Subnet", "public-0", net)
    b.add("aws:ec2/subnet:Subnet", "private-0", net)
    b.add("aws:ec2/routeTable:RouteTable", "public-rt", net, routes=[{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw"}])
    b.add("aws:ec2/routeTable:RouteTable", "private-rt", net,
          routes=[{"cidrBlock": "0.0.0.0/0", "natGatewayId": "nat-0"}])
    b.add("aws:ec2/routeTableAssociation:RouteTableAssociation", "rta-0", net, subnetId="public-0",
          routeTableId="public-rt")
    b.add("aws:ec2/routeTableAssociation:RouteTableAssociation", "rta-1", net, subnetId="private-0",
          routeTableId="private-rt")
    b.add("aws:ec2/natGateway:NatGateway", "nat-0", net, subnetId="public-0")
    function(b, "in-vpc", vpc=["private-0"])
    db = b.component("macro:database:MacroDatabase", "db")
    b.add("aws:rds/subnetGroup:SubnetGroup", "db-subnets", db, physical="db-subnets", name="db-subnets",
          subnetIds=["private-0"])
    b.add("aws:rds/instance:Instance", "db-instance", db, physical="db", identifier="db",
          dbSubnetGroupName="db-subnets")
    bucket(b, "docs")
    d = derive(b.stack())
    assert d.node("nat-0").tier == "public subnets"
    assert d.node("in-vpc-function").tier == d.node("db-instance").tier == "private subnets"
    assert d.node("docs-bucket").tier == "outside the VPC"


def test_render_is_deterministic_mermaid_grouped_by_tier_then_component() -> None:
    b = Builder()
    queue(b, "jobs")
    function(b, "worker")
    stack = b.stack()
    text = render(derive(stack))
    reordered = StackRecords(stack="dev", records=tuple(reversed(stack.records)))
    assert text == render(derive(reordered))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph t2["outside the VPC"]' in lines
    assert any('["jobs (QueueWithDLQ)"]' in line for line in lines)
    assert "  n_queue_jobs_queue ==>|DLQ| n_queue_jobs_dlq" in lines


def test_verbs() -> None:
    assert [verb(a) for a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObjectVersion", "sqs:SendMessage",
                              "sqs:ReceiveMessage", "kms:Decrypt", "es:ESHttpPost", "s3:ReplicateObject",
                              "lambda:InvokeFunction")] == [
        "reads", "writes", "deletes", "sends", "consumes", None, "writes", "replicates", "invokes"]
    assert verb("textract:AnalyzeDocument") == "textract:AnalyzeDocument", "an unknown action is shown by name"


# ------------------------------------------------------------------------------------------------ both stacks


def test_the_text_extractor_has_its_eventbridge_and_sqs_triggers(stack: StackRecords) -> None:
    d = derive(stack)
    assert edges(d, "text-extractor-trigger-rule", "text-extractor-function") == [("trigger", "rule target")]
    assert edges(d, "document-text-extractor-lambda-queue", "text-extractor-function") == [
        ("trigger", "event source mapping")]
    assert edges(d, "documents-bucket", "text-extractor-trigger-rule") == [("trigger", "EventBridge event")]
    assert ("grant", "sends") in edges(d, "text-extractor-function", "search-event-queue")


def test_every_recorded_trigger_and_dead_letter_route_is_drawn(stack: StackRecords) -> None:
    d = derive(stack)
    by_label = {n.label.split("<br/>")[0]: n.id for n in d.nodes}
    drawn = {(e.source, e.target, e.kind) for e in d.edges}
    queues = {r.outputs["arn"]: r.name for r in stack.of_type("aws:sqs/queue:Queue")}
    redriven = [q for q in stack.of_type("aws:sqs/queue:Queue") if q.inputs.get("redrivePolicy")]
    assert len(redriven) >= 9
    for q in redriven:
        dlq = queues[json.loads(q.inputs["redrivePolicy"])["deadLetterTargetArn"]]
        assert (by_label[q.name], by_label[dlq], "dlq") in drawn, q.name
    for cfg in stack.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"):
        target = queues[cfg.inputs["destinationConfig"]["onFailure"]["destination"]]
        assert any(e.target == by_label[target] and e.label == "on failure" for e in d.edges), cfg.name
    for t in stack.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert any(e.target == by_label[queues[t.inputs["deadLetterConfig"]["arn"]]] and e.label == "DLQ"
                   for e in d.edges), t.name
    mappings = stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert len([e for e in d.edges if e.label == "event source mapping"]) == len(mappings)
    targets = stack.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len([e for e in d.edges if e.label == "rule target"]) == len(targets)


def test_nodes_are_the_records_a_reader_looks_for_and_nothing_else(stack: StackRecords) -> None:
    d = derive(stack)
    wanted = {r.name for r in stack if r.type in NODE_KINDS}
    labels = {n.label.split("<br/>")[0] for n in d.nodes if n.kind != "component"}
    assert labels == wanted
    assert {n.tier for n in d.nodes if n.kind == "function"} == {"private subnets"}
    assert {n.tier for n in d.nodes if n.kind == "gateway"} == {"public subnets"}
    assert {n.tier for n in d.nodes if n.kind in ("queue", "topic")} == {"outside the VPC"}
    services = {r.name for r in stack if r.type == "macro:iam:ServiceRole"}
    assert {n.label.split(" ")[0] for n in d.nodes if n.group.endswith("(ServiceRole)")} == services
    assert all(n.tier in TIERS for n in d.nodes)


def test_every_data_grant_of_a_function_role_is_drawn(stack: StackRecords) -> None:
    """Each function's policy statements that name a node's ARN with a drawn verb appear as an edge (or fold)."""
    d = derive(stack)
    fn = d.node("docx-unzip-function")
    targets = {e.target for e in d.edges if e.source == fn.id and e.kind in ("grant", "dlq")}
    for name in ("documents-bucket", "docx-upload-bucket", "convert-service-queue", "macrodb-instance",
                 "docx-unzip-failures"):
        assert d.node(name).id in targets, name


def test_prod_diff_names_the_nodes_and_edges_only_prod_has(dev: StackRecords, prod: StackRecords) -> None:
    lines = diff(derive(dev), derive(prod), "dev", "prod")
    assert "+ node only in prod: macrodb-rotation-function (function)" in lines
    assert "+ node only in prod: network-nat-2 (gateway)" in lines
    assert "+ trigger only in prod: macrodb-instance -> macrodb-rotation-function (rotation schedule)" in lines
    assert not [line for line in lines if line.startswith("-")], "dev declares nothing prod lacks"


def test_the_derivation_does_not_depend_on_registration_order(stack: StackRecords) -> None:
    """The engine registers resources on a thread pool, so their order varies between runs."""
    expected = render(derive(stack))
    for seed in (1, 2):
        shuffled = random.Random(seed).sample(list(stack.records), len(stack.records))
        assert render(derive(StackRecords(stack=stack.stack, records=tuple(shuffled)))) == expected
