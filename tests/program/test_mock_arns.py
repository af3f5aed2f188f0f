"""The mocks hand back ARNs in each service's real format (AWS's documented resource ARNs), deterministically, and no
ARN for types AWS gives none; an ARN-format linter or a moto-backed harness reading the records sees no noise."""

from __future__ import annotations

import re

import pytest
from pulumi.runtime import mocks as pulumi_mocks

from infra.records import StackRecords
from infra.sdk import has_arn
from plan.evaluate import PlatformMocks

R, A = r"[a-z]{2}-[a-z]+-\d", r"\d{12}"
HEX17 = r"[0-9a-f]{17}"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NAME = r"[A-Za-z0-9_.\-/]+"
# Written from the services' ARN formats, independently of the mock's templates.
FORMATS: dict[str, str] = {
    "aws:s3/bucket:Bucket": r"arn:aws:s3:::[a-z0-9.\-]{3,63}",
    "aws:sqs/queue:Queue": rf"arn:aws:sqs:{R}:{A}:[A-Za-z0-9_\-]+",
    "aws:sns/topic:Topic": rf"arn:aws:sns:{R}:{A}:[A-Za-z0-9_\-]+",
    "aws:sns/topicSubscription:TopicSubscription": rf"arn:aws:sns:{R}:{A}:[A-Za-z0-9_\-]+:{UUID}",
    "aws:iam/role:Role": rf"arn:aws:iam::{A}:role/[\w+=,.@\-]+",
    "aws:iam/policy:Policy": rf"arn:aws:iam::{A}:policy/[\w+=,.@\-]+",
    "aws:iam/serviceLinkedRole:ServiceLinkedRole":
        rf"arn:aws:iam::{A}:role/aws-service-role/[a-z.]+\.amazonaws\.com/AWSServiceRoleFor\w+",
    "aws:kms/key:Key": rf"arn:aws:kms:{R}:{A}:key/{UUID}",
    "aws:kms/alias:Alias": rf"arn:aws:kms:{R}:{A}:alias/[\w/\-]+",
    "aws:secretsmanager/secret:Secret": rf"arn:aws:secretsmanager:{R}:{A}:secret:{NAME}-[A-Za-z0-9]{{6}}",
    "aws:secretsmanager/secretVersion:SecretVersion": rf"arn:aws:secretsmanager:{R}:{A}:secret:{NAME}-[A-Za-z0-9]{{6}}",
    "aws:lambda/function:Function": rf"arn:aws:lambda:{R}:{A}:function:[A-Za-z0-9_\-]{{1,64}}",
    "aws:lambda/eventSourceMapping:EventSourceMapping": rf"arn:aws:lambda:{R}:{A}:event-source-mapping:{UUID}",
    "aws:cloudwatch/logGroup:LogGroup": rf"arn:aws:logs:{R}:{A}:log-group:[\w/.#\-]+",
    "aws:cloudwatch/metricAlarm:MetricAlarm": rf"arn:aws:cloudwatch:{R}:{A}:alarm:.+",
    "aws:cloudwatch/eventRule:EventRule": rf"arn:aws:events:{R}:{A}:rule/[\w.\-]+",
    "aws:scheduler/schedule:Schedule": rf"arn:aws:scheduler:{R}:{A}:schedule/[\w.\-]+/[\w.\-]+",
    "aws:opensearch/domain:Domain": rf"arn:aws:es:{R}:{A}:domain/[a-z][a-z0-9\-]{{2,27}}",
    "aws:dynamodb/table:Table": rf"arn:aws:dynamodb:{R}:{A}:table/[\w.\-]{{3,255}}",
    "aws:ecs/cluster:Cluster": rf"arn:aws:ecs:{R}:{A}:cluster/[\w\-]+",
    "aws:rds/instance:Instance": rf"arn:aws:rds:{R}:{A}:db:[a-z][a-z0-9\-]+",
    "aws:rds/proxy:Proxy": rf"arn:aws:rds:{R}:{A}:db-proxy:prx-[0-9a-z]{{17}}",
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
        rf"arn:aws:rds:{R}:{A}:target-group:prx-tg-[0-9a-z]{{17}}",
    "aws:rds/subnetGroup:SubnetGroup": rf"arn:aws:rds:{R}:{A}:subgrp:[\w.\- ]+",
    "aws:rds/parameterGroup:ParameterGroup": rf"arn:aws:rds:{R}:{A}:pg:[a-z][a-z0-9\-]+",
    "aws:elasticache/replicationGroup:ReplicationGroup":
        rf"arn:aws:elasticache:{R}:{A}:replicationgroup:[a-z][a-z0-9\-]+",
    "aws:elasticache/subnetGroup:SubnetGroup": rf"arn:aws:elasticache:{R}:{A}:subnetgroup:[a-z][a-z0-9\-]+",
    "aws:ec2/vpc:Vpc": rf"arn:aws:ec2:{R}:{A}:vpc/vpc-{HEX17}",
    "aws:ec2/subnet:Subnet": rf"arn:aws:ec2:{R}:{A}:subnet/subnet-{HEX17}",
    "aws:ec2/securityGroup:SecurityGroup": rf"arn:aws:ec2:{R}:{A}:security-group/sg-{HEX17}",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": rf"arn:aws:ec2:{R}:{A}:security-group/sg-{HEX17}",
    "aws:ec2/eip:Eip": rf"arn:aws:ec2:{R}:{A}:elastic-ip/eipalloc-{HEX17}",
    "aws:ec2/internetGateway:InternetGateway": rf"arn:aws:ec2:{R}:{A}:internet-gateway/igw-{HEX17}",
    "aws:ec2/routeTable:RouteTable": rf"arn:aws:ec2:{R}:{A}:route-table/rtb-{HEX17}",
    "aws:ec2/flowLog:FlowLog": rf"arn:aws:ec2:{R}:{A}:vpc-flow-log/fl-{HEX17}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": rf"arn:aws:ec2:{R}:{A}:vpc-endpoint/vpce-{HEX17}",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        rf"arn:aws:ec2:{R}:{A}:security-group-rule/sgr-{HEX17}",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
        rf"arn:aws:ec2:{R}:{A}:security-group-rule/sgr-{HEX17}",
    "aws:route53/healthCheck:HealthCheck": rf"arn:aws:route53:::healthcheck/{UUID}",
    # ARNs these types carry as an input (the resource they attach to), echoed unchanged.
    "aws:sns/topicPolicy:TopicPolicy": rf"arn:aws:sns:{R}:{A}:[A-Za-z0-9_\-]+",
    "aws:cloudwatch/eventTarget:EventTarget": r"arn:aws:(lambda|sqs):.+",
}


def test_every_recorded_arn_has_its_service_format(stack: StackRecords) -> None:
    wrong = []
    for r in stack:
        if not r.custom or r.type.startswith(("pulumi:", "random:")):
            continue
        arn = r.outputs.get("arn")
        if not has_arn(r.type):
            assert arn is None, f"{r.type} has no ARN in AWS, but the mock gave {r.name} {arn}"
            continue
        assert r.type in FORMATS, f"{r.type} ({r.name}): add its ARN format to the mocks and to this test"
        if not re.fullmatch(FORMATS[r.type], arn or ""):
            wrong.append((r.type, r.name, arn))
    assert not wrong, wrong


def test_key_ids_are_the_uuids_of_their_arns(stack: StackRecords) -> None:
    keys = stack.of_type("aws:kms/key:Key")
    assert keys
    for key in keys:
        assert key.outputs["arn"].endswith(f":key/{key.outputs['keyId']}") and key.outputs["id"] == key.outputs["keyId"]


def test_secret_versions_carry_their_secrets_arn(stack: StackRecords) -> None:
    secrets = {s.outputs["arn"] for s in stack.of_type("aws:secretsmanager/secret:Secret")}
    versions = stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert versions and all(v.outputs["arn"] in secrets for v in versions)


def test_replica_resources_carry_their_own_region(prod: StackRecords) -> None:
    replica_key = prod.named("keys-documents-replica", "aws:kms/key:Key")
    assert replica_key.outputs["arn"].startswith("arn:aws:kms:us-west-1:")


@pytest.mark.parametrize("typ", ["aws:kms/key:Key", "aws:secretsmanager/secret:Secret", "aws:ec2/vpc:Vpc"])
def test_the_same_resource_always_gets_the_same_arn(typ: str) -> None:
    def arn(logical: str) -> str:
        args = pulumi_mocks.MockResourceArgs(typ=typ, name=logical, inputs={"name": "macro-thing"}, provider="",
                                             resource_id="", custom=True)
        return PlatformMocks().new_resource(args)[1]["arn"]

    assert arn("a") == arn("a") != arn("b")
