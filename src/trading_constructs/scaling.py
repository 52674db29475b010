"""Auto scaling of one service: target tracking on CPU, on memory and on the metric it emits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs

from ._validation import CLOUDWATCH_NAME, CLOUDWATCH_NAMESPACE, Problems, is_token

METRIC_NAMESPACE = "TradingPlatform"
"""Where the services write their custom metrics (CloudWatch Embedded Metric Format)."""

_STATISTICS = ("Average", "Sum", "Maximum", "Minimum", "SampleCount")
_ONE_MINUTE = Duration.minutes(1)
_FIVE_MINUTES = Duration.minutes(5)


@dataclass(frozen=True, kw_only=True)
class CustomMetricTarget:
    """Scale on a metric the service emits, dimensioned by ``Service``: for example requests in
    flight per task, or an analysis backlog.

    Attributes:
        metric_name: The metric's name in ``namespace``.
        target: The value target tracking holds the metric at, above 0.
        statistic: How the metric is aggregated over a minute. Default: 'Average'.
        namespace: The metric's namespace. Default: 'TradingPlatform'.
    """

    metric_name: str
    target: float
    statistic: str = "Average"
    namespace: str = METRIC_NAMESPACE

    def __post_init__(self) -> None:
        problems = Problems("CustomMetricTarget")
        problems.pattern(
            "metric_name",
            self.metric_name,
            CLOUDWATCH_NAME,
            "1 to 255 characters of printable ASCII (spaces too), not all spaces",
        )
        problems.pattern(
            "namespace",
            self.namespace,
            CLOUDWATCH_NAMESPACE,
            "1 to 255 characters of printable ASCII (spaces too), not all spaces, not starting "
            "with ':', and not starting with 'AWS/' (reserved for AWS)",
        )
        problems.one_of("statistic", self.statistic, _STATISTICS)
        if not is_token(self.target) and (
            isinstance(self.target, bool)
            or not isinstance(self.target, int | float)
            or not math.isfinite(self.target)
            or self.target <= 0
        ):
            problems.add("target", self.target, "a number above 0")
        problems.raise_if_any()

    def metric(self, service_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=self.metric_name,
            dimensions_map={"Service": service_name},
            statistic=self.statistic,
            period=_ONE_MINUTE,
        )


@dataclass(frozen=True, kw_only=True)
class ScalingOptions:
    """How many tasks a service runs and what moves the count.

    Three target tracking policies act together (CPU, memory and the service's own metric);
    ECS scales out when any asks to and in only when all allow it.

    Attributes:
        min_capacity: Fewest tasks, 1 to 1000; two keep a service up through one task's loss.
            Default: 2.
        max_capacity: Most tasks, from min_capacity to 1000. Default: 10.
        cpu_target_percent: Average CPU held by target tracking, 10 to 90. Default: 60.
        memory_target_percent: Average memory held by target tracking, 10 to 90. Default: 70.
        custom_metric: A metric the service emits to track as well. Default: None (CPU and memory
            only).
        scale_out_cooldown: Wait after a scale-out, 0 to 3600 s. Default: 1 minute.
        scale_in_cooldown: Wait after a scale-in, 0 to 3600 s; longer than scale-out so load spikes
            do not flap the count. Default: 5 minutes.
    """

    min_capacity: int = 2
    max_capacity: int = 10
    cpu_target_percent: int = 60
    memory_target_percent: int = 70
    custom_metric: CustomMetricTarget | None = None
    scale_out_cooldown: Duration = field(default=_ONE_MINUTE)
    scale_in_cooldown: Duration = field(default=_FIVE_MINUTES)

    def __post_init__(self) -> None:
        problems = Problems("ScalingOptions")
        problems.int_range("min_capacity", self.min_capacity, 1, 1000)
        problems.int_range("max_capacity", self.max_capacity, 1, 1000)
        if (
            not problems.problems
            and not is_token(self.min_capacity)
            and not is_token(self.max_capacity)
            and self.max_capacity < self.min_capacity
        ):
            problems.note(
                f"max_capacity={self.max_capacity} is below min_capacity={self.min_capacity} "
                "(allowed: max_capacity >= min_capacity)"
            )
        problems.int_range("cpu_target_percent", self.cpu_target_percent, 10, 90)
        problems.int_range("memory_target_percent", self.memory_target_percent, 10, 90)
        if self.custom_metric is not None and not isinstance(
            self.custom_metric, CustomMetricTarget
        ):
            problems.add("custom_metric", self.custom_metric, "a CustomMetricTarget or None")
        for prop in ("scale_out_cooldown", "scale_in_cooldown"):
            problems.seconds(prop, getattr(self, prop), 0, 3600)
        problems.raise_if_any()

    def apply(self, service: ecs.FargateService, service_name: str) -> ecs.ScalableTaskCount:
        """Attach the policies to a service; returns the scalable target."""
        scalable = service.auto_scale_task_count(
            min_capacity=self.min_capacity, max_capacity=self.max_capacity
        )
        scale_in, scale_out = self.scale_in_cooldown, self.scale_out_cooldown
        scalable.scale_on_cpu_utilization(
            "CpuScaling",
            target_utilization_percent=self.cpu_target_percent,
            scale_in_cooldown=scale_in,
            scale_out_cooldown=scale_out,
        )
        scalable.scale_on_memory_utilization(
            "MemoryScaling",
            target_utilization_percent=self.memory_target_percent,
            scale_in_cooldown=scale_in,
            scale_out_cooldown=scale_out,
        )
        if self.custom_metric is not None:
            scalable.scale_to_track_custom_metric(
                "CustomMetricScaling",
                metric=self.custom_metric.metric(service_name),
                target_value=self.custom_metric.target,
                scale_in_cooldown=scale_in,
                scale_out_cooldown=scale_out,
            )
        return scalable
