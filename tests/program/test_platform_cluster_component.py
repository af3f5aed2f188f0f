"""PlatformCluster under mocks: a bare cluster (no services, no URL) and a full one (services from args, one added later
with ``service_alarms``, an API health check). Each shape is evaluated once per module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.platform_cluster import PlatformClusterArgs, ServiceAlarmThresholds, health_check_target
from infra.records import ResourceRecord, StackRecords
from plan.evaluate import evaluate_program

TOPIC = "arn:aws:sns:us-east-1:123456789012:on-call-test"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
URL = "https://api.example.com/health?deep=1"

PROGRAM = f'''
import pulumi
from components.platform_cluster import PlatformCluster, PlatformClusterArgs, ServiceAlarmThresholds
from infra import iam

stack = pulumi.get_stack()
full = stack == "full"
cluster = PlatformCluster("platform", PlatformClusterArgs(
    stack=stack, region="us-east-1", alarm_topic_arn={TOPIC!r}, log_retention_days=30,
    service_names=["document-storage"] if full else [],
    thresholds=ServiceAlarmThresholds(cpu_percent=70, memory_percent=90, min_running_tasks=2),
    health_check_url={URL!r} if full else None))
if full:
    cluster.service_alarms("connection-gateway")
    try:
        cluster.service_alarms("document-storage")
    except ValueError as error:
        pulumi.export("duplicate_error", str(error))
grants = iam.Grants("task-execution")
cluster.grant_write_logs(grants)
pulumi.export("grants", grants.document())
'''


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StackRecords]:
    program = tmp_path_factory.mktemp("cluster_program") / "__main__.py"
    program.write_text(PROGRAM)
    return {stack: evaluate_program(stack, {}, [], program=program) for stack in ("bare", "full")}


def _one(records: StackRecords, type_token: str) -> ResourceRecord:
    found = records.of_type(type_token)
    assert len(found) == 1, f"expected one {type_token}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("shape", ["bare", "full"])
def test_cluster_has_container_insights_and_a_log_group(shapes: dict[str, StackRecords], shape: str) -> None:
    records = shapes[shape]
    cluster = _one(records, "aws:ecs/cluster:Cluster").inputs
    assert cluster["name"] == f"macro-platform-{shape}"
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    logs = _one(records, "aws:cloudwatch/logGroup:LogGroup").inputs
    assert logs == {**logs, "name": f"/ecs/macro-platform-{shape}", "retentionInDays": 30}
    component = _one(records, "macro:compute:PlatformCluster")
    assert all(r.parent == component.urn for r in records if r is not component)


def test_bare_cluster_has_no_alarms_and_no_health_check(shapes: dict[str, StackRecords]) -> None:
    records = shapes["bare"]
    assert records.of_type(ALARM) == []
    assert records.of_type(HEALTH_CHECK) == []


def _service_alarms(records: StackRecords, service: str) -> dict[str, dict[str, Any]]:
    return {a.inputs["metricName"]: a.inputs for a in records.of_type(ALARM)
            if a.inputs["dimensions"].get("ServiceName") == service}


@pytest.mark.parametrize("service", ["document-storage", "connection-gateway"])
def test_each_named_service_gets_cpu_memory_and_running_task_alarms(shapes: dict[str, StackRecords],
                                                                     service: str) -> None:
    alarms = _service_alarms(shapes["full"], service)
    assert set(alarms) == {"CPUUtilization", "MemoryUtilization", "RunningTaskCount"}
    for alarm in alarms.values():
        assert alarm["dimensions"] == {"ClusterName": "macro-platform-full", "ServiceName": service}
        assert alarm["alarmActions"] == [TOPIC] and alarm["okActions"] == [TOPIC]
        assert alarm["actionsEnabled"] is True
    cpu, memory, tasks = alarms["CPUUtilization"], alarms["MemoryUtilization"], alarms["RunningTaskCount"]
    assert (cpu["namespace"], cpu["threshold"], cpu["comparisonOperator"]) == ("AWS/ECS", 70,
                                                                               "GreaterThanThreshold")
    assert (memory["namespace"], memory["threshold"]) == ("AWS/ECS", 90)
    assert tasks["namespace"] == "ECS/ContainerInsights"
    assert (tasks["threshold"], tasks["comparisonOperator"]) == (2, "LessThanThreshold")
    assert tasks["treatMissingData"] == "breaching"


def test_service_alarms_are_created_once_per_service(shapes: dict[str, StackRecords]) -> None:
    records = shapes["full"]
    assert len(records.of_type(ALARM)) == 2 * 3 + 1
    assert "already exist" in records.outputs["duplicate_error"]
    assert len({a.inputs["name"] for a in records.of_type(ALARM)}) == 7


def test_health_check_probes_the_configured_url(shapes: dict[str, StackRecords]) -> None:
    check = _one(shapes["full"], HEALTH_CHECK).inputs
    assert check == {**check, "type": "HTTPS", "fqdn": "api.example.com", "port": 443, "resourcePath": "/health?deep=1",
                     "failureThreshold": 3, "requestInterval": 30, "measureLatency": True, "enableSni": True}


def test_health_check_alarm_watches_that_check(shapes: dict[str, StackRecords]) -> None:
    records = shapes["full"]
    check = _one(records, HEALTH_CHECK)
    [alarm] = [a for a in records.of_type(ALARM) if a.inputs["namespace"] == "AWS/Route53"]
    inputs = alarm.inputs
    assert (inputs["metricName"], inputs["threshold"], inputs["comparisonOperator"]) == (
        "HealthCheckStatus", 1, "LessThanThreshold")
    assert set(inputs["dimensions"]) == {"HealthCheckId"}
    assert check.urn in alarm.dependencies
    assert inputs["alarmActions"] == [TOPIC]


def test_grant_write_logs_is_scoped_to_the_cluster_log_group(shapes: dict[str, StackRecords]) -> None:
    records = shapes["bare"]
    group_arn = _one(records, "aws:cloudwatch/logGroup:LogGroup").outputs["arn"]
    [statement] = json.loads(records.outputs["grants"])["Statement"]
    assert statement["Resource"] == [f"{group_arn}:*"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]


def _args(**overrides: Any) -> PlatformClusterArgs:
    return PlatformClusterArgs(**{"stack": "dev", "region": "us-east-1", "alarm_topic_arn": TOPIC, **overrides})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"health_check_url": "http://api.example.com/health"}, "must be an https:// URL"),
    ({"health_check_url": "https:///health"}, "must be an https:// URL"),
    ({"health_check_url": URL, "region": "eu-west-1"}, "exist only in us-east-1"),
    ({"container_insights": "on"}, "container_insights must be one of"),
    ({"container_insights": "disabled", "service_names": ["api"]}, "Container Insights"),
    ({"service_names": ["Document_Storage"]}, "ECS service name"),
    ({"service_names": ["api", "api"]}, "lists a service twice"),
    ({"thresholds": ServiceAlarmThresholds(min_running_tasks=0)}, "min_running_tasks"),
    ({"health_check_interval_seconds": 20}, "10 or 30"),
])
def test_args_reject_bad_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _args(**overrides)


@pytest.mark.parametrize(("url", "target"), [
    ("https://api.example.com", ("api.example.com", 443, "/")),
    ("https://api.example.com:8443/v1/health", ("api.example.com", 8443, "/v1/health")),
    ("https://api.example.com/health?deep=1", ("api.example.com", 443, "/health?deep=1")),
])
def test_health_check_target_splits_the_url(url: str, target: tuple[str, int, str]) -> None:
    assert health_check_target(url) == target
