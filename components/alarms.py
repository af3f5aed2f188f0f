"""CloudWatch alarm helpers: every alarm notifies the on-call topic on ALARM and on OK, and obeys CloudWatch's period
rules (10, 20, 30 or a multiple of 60 seconds; at most a day of evaluation), checked here rather than at deploy."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components._options import child

COMPARISONS = ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold",
               "LessThanOrEqualToThreshold")


@dataclass(frozen=True, kw_only=True)
class AlarmSpec:
    name: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, pulumi.Input[str]]
    threshold: float
    comparison: str = "GreaterThanThreshold"
    statistic: str = "Maximum"
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    treat_missing_data: str = "notBreaching"
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.period not in (10, 20, 30) and self.period % 60:
            raise ValueError(f"alarm {self.name}: period must be 10, 20, 30 or a multiple of 60 seconds")
        if self.period * self.evaluation_periods > 86400:
            raise ValueError(f"alarm {self.name}: period x evaluation periods must stay within one day")
        if self.datapoints_to_alarm and self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(f"alarm {self.name}: datapoints_to_alarm exceeds evaluation_periods")
        if self.comparison not in COMPARISONS:
            raise ValueError(f"alarm {self.name}: unknown comparison {self.comparison}")


def metric_alarm(parent: pulumi.Resource, logical_name: str, spec: AlarmSpec,
                 topic_arn: pulumi.Input[str]) -> aws.cloudwatch.MetricAlarm:
    return aws.cloudwatch.MetricAlarm(
        logical_name, name=spec.name, alarm_description=spec.description, namespace=spec.namespace,
        metric_name=spec.metric, dimensions=spec.dimensions, statistic=spec.statistic, period=spec.period,
        evaluation_periods=spec.evaluation_periods, datapoints_to_alarm=spec.datapoints_to_alarm,
        threshold=spec.threshold, comparison_operator=spec.comparison, treat_missing_data=spec.treat_missing_data,
        actions_enabled=True, alarm_actions=[topic_arn], ok_actions=[topic_arn], opts=child(parent))


def function_alarms(parent: pulumi.Resource, name: str, function_name: pulumi.Input[str], timeout_seconds: int,
                    duration_percent: int, topic_arn: pulumi.Input[str]) -> list[aws.cloudwatch.MetricAlarm]:
    """Errors, throttles and a maximum duration close to the timeout for one Lambda function."""
    dims = {"FunctionName": function_name}
    near_timeout_ms = timeout_seconds * 1000 * duration_percent / 100
    return [
        metric_alarm(parent, f"{name}-errors-alarm", AlarmSpec(
            name=f"{name}-errors", description=f"{name} raised errors (failed invocations).",
            namespace="AWS/Lambda", metric="Errors", statistic="Sum", dimensions=dims, threshold=1,
            comparison="GreaterThanOrEqualToThreshold", period=300), topic_arn),
        metric_alarm(parent, f"{name}-throttles-alarm", AlarmSpec(
            name=f"{name}-throttles", description=f"{name} was throttled: raise its concurrency or slow the source.",
            namespace="AWS/Lambda", metric="Throttles", statistic="Sum", dimensions=dims, threshold=1,
            comparison="GreaterThanOrEqualToThreshold", period=300), topic_arn),
        metric_alarm(parent, f"{name}-duration-alarm", AlarmSpec(
            name=f"{name}-duration", description=f"{name} ran within {100 - duration_percent}% of its timeout.",
            namespace="AWS/Lambda", metric="Duration", statistic="Maximum", dimensions=dims,
            threshold=near_timeout_ms, comparison="GreaterThanOrEqualToThreshold", period=300), topic_arn),
    ]
