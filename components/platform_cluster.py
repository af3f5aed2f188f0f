"""The ECS cluster the platform's services run in, with Container Insights, a container log group, and the alarms that
say a service or the public API is unhealthy. Alarms exist only for what the stack names, so an empty config is quiet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws

from components._options import child
from components.alarms import AlarmSpec, metric_alarm
from infra import iam

CONTAINER_INSIGHTS = ("enhanced", "enabled", "disabled")
ROUTE53_METRICS_REGION = "us-east-1"
"""Route 53 publishes health-check metrics only here, so the health-check alarm must live in this region."""
_SERVICE = re.compile(r"[a-z][a-z0-9-]{0,40}")


@dataclass(frozen=True, kw_only=True)
class ServiceAlarmThresholds:
    cpu_percent: int = 80
    memory_percent: int = 80
    min_running_tasks: int = 1
    """Alarm when fewer tasks than this run (tasks failing health checks are stopped, so the count drops)."""


@dataclass(frozen=True, kw_only=True)
class PlatformClusterArgs:
    stack: str
    region: str
    """The stack's region; the API health check needs ``us-east-1`` (where Route 53 metrics live)."""
    alarm_topic_arn: pulumi.Input[str]
    container_insights: str = "enhanced"
    """``enhanced`` (task- and container-level metrics), ``enabled`` (service-level) or ``disabled``."""
    log_retention_days: int = 365
    log_kms_key_arn: pulumi.Input[str] | None = None
    """Customer-managed key of the log groups (CKV_AWS_158)."""
    service_names: Sequence[str] = ()
    """ECS services that get CPU, memory and running-task alarms now; add more with ``service_alarms``."""
    thresholds: ServiceAlarmThresholds = ServiceAlarmThresholds()
    health_check_url: str | None = None
    """An ``https://`` API endpoint probed by a Route 53 health check with an alarm; ``None`` = no check."""
    health_check_failure_threshold: int = 3
    health_check_interval_seconds: int = 30

    def __post_init__(self) -> None:
        if self.container_insights not in CONTAINER_INSIGHTS:
            raise ValueError(f"container_insights must be one of {', '.join(CONTAINER_INSIGHTS)}, "
                             f"got {self.container_insights!r}")
        if self.container_insights == "disabled" and self.service_names:
            raise ValueError("service running-task alarms read Container Insights metrics; do not disable it")
        for service in self.service_names:
            _check_service(service)
        if len(set(self.service_names)) != len(self.service_names):
            raise ValueError(f"service_names lists a service twice: {list(self.service_names)}")
        if self.thresholds.min_running_tasks < 1:
            raise ValueError("thresholds.min_running_tasks must be at least 1")
        if self.health_check_url is not None:
            health_check_target(self.health_check_url)
            if self.region != ROUTE53_METRICS_REGION:
                raise ValueError(f"health_check_url: Route 53 health-check metrics exist only in "
                                 f"{ROUTE53_METRICS_REGION}, but this stack is in {self.region}; the alarm would never "
                                 f"see data")
        if self.health_check_interval_seconds not in (10, 30):
            raise ValueError("health_check_interval_seconds must be 10 or 30 (Route 53 request intervals)")
        if not 1 <= self.health_check_failure_threshold <= 10:
            raise ValueError("health_check_failure_threshold must be 1-10")


def _check_service(service: str) -> None:
    if not _SERVICE.fullmatch(service):
        raise ValueError(f"ECS service name {service!r} must be 1-41 of a-z, 0-9 and '-', starting with a letter")


def health_check_target(url: str) -> tuple[str, int, str]:
    """(host, port, resource path with query) of an ``https://`` URL, as Route 53 probes it."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"health_check_url {url!r} must be an https:// URL with a host")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if len(path) > 255:
        raise ValueError(f"health_check_url {url!r}: Route 53 accepts a resource path of at most 255 characters")
    return parts.hostname, parts.port or 443, path


class PlatformCluster(pulumi.ComponentResource):
    cluster: aws.ecs.Cluster
    log_group: aws.cloudwatch.LogGroup
    health_check: aws.route53.HealthCheck | None
    health_check_alarm: aws.cloudwatch.MetricAlarm | None
    service_alarm_sets: dict[str, list[aws.cloudwatch.MetricAlarm]]

    def __init__(self, name: str, args: PlatformClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:compute:PlatformCluster", name, None, opts)
        self._name = name
        self.args = args
        self.cluster_name = f"macro-platform-{args.stack}"

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster", name=self.cluster_name,
            settings=[{"name": "containerInsights", "value": args.container_insights}], opts=child(self))
        # Task definitions send container logs here (awslogs driver, one stream prefix per service).
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/ecs/{self.cluster_name}", retention_in_days=args.log_retention_days,
            kms_key_id=args.log_kms_key_arn,
            opts=child(self))

        self.service_alarm_sets = {}
        for service in args.service_names:
            self.service_alarms(service)

        self.health_check = None
        self.health_check_alarm = None
        if args.health_check_url:
            self._api_health_check(name, args.health_check_url)

        self.register_outputs({
            "cluster_name": self.cluster.name, "cluster_arn": self.cluster.arn, "log_group": self.log_group.name,
            "health_check_id": self.health_check.id if self.health_check else None,
        })

    def service_alarms(self, service_name: str) -> list[aws.cloudwatch.MetricAlarm]:
        """CPU, memory and running-task alarms for one ECS service of this cluster; once per service."""
        _check_service(service_name)
        if service_name in self.service_alarm_sets:
            raise ValueError(f"{self._name}: alarms for ECS service {service_name!r} already exist")
        t = self.args.thresholds
        topic = self.args.alarm_topic_arn
        dims = {"ClusterName": self.cluster.name, "ServiceName": service_name}
        label = f"{service_name}-{self.args.stack}"
        prefix = f"{self._name}-{service_name}"
        alarms = [
            metric_alarm(self, f"{prefix}-cpu-alarm", AlarmSpec(
                name=f"{label}-ecs-cpu", description=f"{service_name}: CPU above {t.cpu_percent}% for 15 minutes.",
                namespace="AWS/ECS", metric="CPUUtilization", statistic="Average", dimensions=dims,
                threshold=t.cpu_percent, period=300, evaluation_periods=3), topic),
            metric_alarm(self, f"{prefix}-memory-alarm", AlarmSpec(
                name=f"{label}-ecs-memory",
                description=f"{service_name}: memory above {t.memory_percent}% for 15 minutes.",
                namespace="AWS/ECS", metric="MemoryUtilization", statistic="Average", dimensions=dims,
                threshold=t.memory_percent, period=300, evaluation_periods=3), topic),
            # Missing data means no task reports at all (or the service is gone): that is the outage itself.
            metric_alarm(self, f"{prefix}-tasks-alarm", AlarmSpec(
                name=f"{label}-ecs-running-tasks",
                description=f"{service_name}: fewer than {t.min_running_tasks} healthy task(s) running for 3 "
                "minutes; tasks are failing health checks or cannot start.",
                namespace="ECS/ContainerInsights", metric="RunningTaskCount", statistic="Minimum", dimensions=dims,
                threshold=t.min_running_tasks, comparison="LessThanThreshold", period=60, evaluation_periods=3,
                treat_missing_data="breaching"), topic),
        ]
        self.service_alarm_sets[service_name] = alarms
        return alarms

    def _api_health_check(self, name: str, url: str) -> None:
        args = self.args
        host, port, path = health_check_target(url)
        self.health_check = aws.route53.HealthCheck(
            f"{name}-api-health-check", type="HTTPS", fqdn=host, port=port, resource_path=path, enable_sni=True,
            failure_threshold=args.health_check_failure_threshold,
            request_interval=args.health_check_interval_seconds, measure_latency=True,
            tags={"Name": f"{self.cluster_name}-api"}, opts=child(self))
        # The stack is in us-east-1 (checked in the args), the only region with Route 53 metrics.
        self.health_check_alarm = metric_alarm(self, f"{name}-api-health-alarm", AlarmSpec(
            name=f"{self.cluster_name}-api-health",
            description=f"{url} is unhealthy: Route 53's checkers get no 2xx/3xx response over HTTPS.",
            namespace="AWS/Route53", metric="HealthCheckStatus", statistic="Minimum",
            dimensions={"HealthCheckId": self.health_check.id}, threshold=1, comparison="LessThanThreshold",
            period=60, evaluation_periods=2, treat_missing_data="breaching"), args.alarm_topic_arn)

    def grant_write_logs(self, grants: iam.Grants) -> None:
        """What a task execution role needs to ship container logs to the cluster's log group."""
        grants.allow(f"write logs {self.cluster_name}", ["logs:CreateLogStream", "logs:PutLogEvents"],
                     [pulumi.Output.concat(self.log_group.arn, ":*")])
