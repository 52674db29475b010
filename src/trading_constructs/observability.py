"""Logs, error metrics and alarms of one service: what a platform dashboard is built from."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from ._validation import Problems
from .compliance import CONTROL_TOWER_CONTEXT, acknowledge_control, control_tower_profile
from .notifications import AlarmNotifications

LOG_RETENTION_DAYS = 30
"""Container logs are kept 30 days by default: a month to investigate an incident."""
CONTROL_TOWER_LOG_RETENTION_DAYS = 365
"""Container logs under the Control Tower profile: CT.CLOUDWATCH.PR.2 asks for a year or more."""

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy), as aws_logs names them.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

ERROR_LOGS = "ErrorLogs"
PROXY_5XX = "Proxy5xx"
TASKS_BELOW_DESIRED = "TasksBelowDesired"
MESH_REQUESTS = "MeshRequests"
MESH_RETRIED = "MeshRetriedRequests"
MESH_TLS_FAILURES = "MeshTlsFailures"
MESH_EJECTIONS = "MeshEjections"

# App logs are JSON with a level field; the Envoy access log is JSON with the status code.
ERROR_LEVEL_PATTERN = logs.FilterPattern.string_value("$.level", "=", "ERROR")
SERVER_ERROR_PATTERN = logs.FilterPattern.number_value("$.status", ">=", 500)
# The Envoy mesh's access log (a request per line, inbound and outbound) and its outlier events.
REQUEST_PATTERN = logs.FilterPattern.number_value("$.status", ">=", 0)
RETRIED_PATTERN = logs.FilterPattern.number_value("$.attempts", ">", 1)
# A TLS failure's reason: outbound, the upstream transport's (a TLS_error: the backend's
# certificate or ours refused; other connect failures carry no "TLS"); inbound, any reason the
# listener logs for a connection (PEER_DID_NOT_RETURN_A_CERTIFICATE, TLS_error:..., all with an
# underscore; an empty value is "-" or null).
TLS_FAILURE_PATTERN = logs.FilterPattern.any(
    logs.FilterPattern.string_value("$.upstream_failure", "=", "*TLS*"),
    logs.FilterPattern.string_value("$.downstream_failure", "=", "*_*"),
)
EJECTION_PATTERN = logs.FilterPattern.string_value("$.action", "=", "EJECT")


@dataclass(frozen=True)
class TaskCounts:
    """A slot's running and desired task counts (Container Insights), per minute."""

    running: cloudwatch.IMetric
    desired: cloudwatch.IMetric


@dataclass(frozen=True, kw_only=True)
class AlarmThresholds:
    """When a service's alarms fire: counts over five minutes, and missing tasks over
    three minutes in a row.

    Attributes:
        error_logs: ERROR-level app log lines in 5 minutes, 1 to 100000. Default: 10.
        proxy_5xx: 5xx responses the proxy saw in 5 minutes, 1 to 100000. Default: 10.
        tasks_below_desired: Tasks missing from the desired count, 1 to 1000. Default: 1.
        tls_failures: Failed mutual-TLS handshakes in 5 minutes (mutual-TLS mesh), 1 to
            100000. Default: 1 (a mesh of one CA should have none).
        ejections: Tasks ejected by outlier detection in 5 minutes (mutual-TLS mesh), 1 to
            100000. Default: 1.
    """

    error_logs: int = 10
    proxy_5xx: int = 10
    tasks_below_desired: int = 1
    tls_failures: int = 1
    ejections: int = 1

    def __post_init__(self) -> None:
        problems = Problems("AlarmThresholds")
        problems.int_range("error_logs", self.error_logs, 1, 100_000)
        problems.int_range("proxy_5xx", self.proxy_5xx, 1, 100_000)
        problems.int_range("tasks_below_desired", self.tasks_below_desired, 1, 1000)
        problems.int_range("tls_failures", self.tls_failures, 1, 100_000)
        problems.int_range("ejections", self.ejections, 1, 100_000)
        problems.raise_if_any()


def check_retention(problems: Problems, prop: str, days: int) -> None:
    """A retention CloudWatch Logs accepts, known at synth (it picks the RetentionDays)."""
    if not problems.concrete(prop, days, "it selects one of CloudWatch Logs' retentions"):
        return
    if isinstance(days, bool) or not isinstance(days, int) or days not in RETENTION_DAYS:
        problems.add(prop, days, ", ".join(str(d) for d in RETENTION_DAYS))


class ServiceObservability(Construct):
    """One log group per container (encrypted, retained), metric filters that count errors,
    and alarms on them and on tasks missing from the desired count."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        service_name: str,
        key: kms.IKey,
        retention_days: int | None = None,
        thresholds: AlarmThresholds | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        notifications: AlarmNotifications | None = None,
    ) -> None:
        super().__init__(scope, id)
        self._service_name = service_name
        self._notifications = notifications
        self._key = key
        self._control_tower = control_tower_profile(self)
        self._chosen_retention = retention_days is not None
        self.retention_days: int = (
            retention_days
            if retention_days is not None
            else CONTROL_TOWER_LOG_RETENTION_DAYS
            if self._control_tower
            else LOG_RETENTION_DAYS
        )
        """Days the container logs are kept."""
        self._retention = RETENTION_DAYS[self.retention_days]
        self._removal_policy = removal_policy
        self._thresholds = thresholds or AlarmThresholds()
        self.namespace = f"TradingPlatform/{service_name}"
        self.log_groups: dict[str, logs.LogGroup] = {}
        """Log groups by container name."""
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        """Alarms by name: ErrorLogs, Proxy5xx, TasksBelowDesired."""
        self._error_logs: cloudwatch.IMetric | None = None
        self._proxy_5xx: cloudwatch.IMetric | None = None
        self.mesh_metrics: dict[str, cloudwatch.IMetric] = {}
        """The Envoy mesh's metrics by name (MeshRequests, Proxy5xx, MeshRetriedRequests,
        MeshTlsFailures, MeshEjections), each summed over 5 minutes; empty on other meshes."""
        self.task_counts: list[TaskCounts] = []
        """Running and desired tasks of each slot, in slot order."""

    def log_group(self, container_name: str) -> logs.LogGroup:
        """The log group of one container, created on first use."""
        if container_name not in self.log_groups:
            construct_id = "".join(p.capitalize() for p in container_name.split("-")) + "Logs"
            self.log_groups[container_name] = logs.LogGroup(
                self,
                construct_id,
                retention=self._retention,
                encryption_key=self._key,
                removal_policy=self._removal_policy,
            )
            self._acknowledge_retention(self.log_groups[container_name])
        return self.log_groups[container_name]

    def _acknowledge_retention(self, log_group: logs.LogGroup) -> None:
        """Outside the Control Tower profile, a retention under CT.CLOUDWATCH.PR.2's year is the
        platform's choice, said once per log group; under the profile the validator reports an
        explicit shorter one, since the control's hook would fail the deploy."""
        days = self.retention_days
        if self._control_tower or days >= CONTROL_TOWER_LOG_RETENTION_DAYS:
            return
        why = "log_retention_days chosen" if self._chosen_retention else "the default month"
        acknowledge_control(
            log_group,
            f"Container logs are kept {days} days ({why}, to investigate an incident; a year "
            "would multiply their storage). Where Control Tower's CT.CLOUDWATCH.PR.2 runs, "
            f"the context {CONTROL_TOWER_CONTEXT}=true keeps them "
            f"{CONTROL_TOWER_LOG_RETENTION_DAYS} days, as does log_retention_days=365.",
            "CT.CLOUDWATCH.PR.2",
        )

    @property
    def error_logs(self) -> cloudwatch.IMetric:
        """ERROR-level lines of the app's logs, summed over 5 minutes."""
        if self._error_logs is None:
            raise ValueError(f"{self._service_name}: its app's errors are not counted yet")
        return self._error_logs

    @property
    def proxy_5xx(self) -> cloudwatch.IMetric:
        """5xx responses of the service's mesh proxy, summed over 5 minutes."""
        if self._proxy_5xx is None:
            raise ValueError(
                f"{self._service_name}: no proxy 5xx metric (it has joined no mesh yet, or it "
                "is a Service Connect worker, whose proxy serves nothing)"
            )
        return self._proxy_5xx

    @property
    def proxy_5xx_metrics(self) -> list[cloudwatch.IMetric]:
        """The proxy's 5xx metric, or none: a Service Connect worker serves nothing, so its
        proxy publishes no 5xx of its own."""
        return [] if self._proxy_5xx is None else [self._proxy_5xx]

    def count_errors(self, container_name: str) -> None:
        """Count ERROR-level lines of a container's JSON logs, and alarm on them."""
        self._error_logs = self._count(
            container_name, ERROR_LOGS, ERROR_LEVEL_PATTERN, self._thresholds.error_logs
        )

    def count_proxy_5xx(self, container_name: str) -> None:
        """Count 5xx responses in a proxy's JSON access log, and alarm on them (once, however
        many slots share the log group)."""
        if self._proxy_5xx is None:
            self._proxy_5xx = self._count(
                container_name, PROXY_5XX, SERVER_ERROR_PATTERN, self._thresholds.proxy_5xx
            )

    def count_envoy(self, container_name: str) -> None:
        """Count what the mutual-TLS mesh's Envoy logs: requests, 5xx, retried requests,
        failed TLS handshakes and outlier ejections; alarm on 5xx, TLS failures and ejections."""
        self.count_proxy_5xx(container_name)
        assert self._proxy_5xx is not None
        self.mesh_metrics[PROXY_5XX] = self._proxy_5xx
        thresholds = self._thresholds
        for name, pattern, threshold in (
            (MESH_REQUESTS, REQUEST_PATTERN, None),
            (MESH_RETRIED, RETRIED_PATTERN, None),
            (MESH_TLS_FAILURES, TLS_FAILURE_PATTERN, thresholds.tls_failures),
            (MESH_EJECTIONS, EJECTION_PATTERN, thresholds.ejections),
        ):
            self.mesh_metrics[name] = self._count(container_name, name, pattern, threshold)

    def publish_proxy_5xx(self, metric: cloudwatch.IMetric) -> None:
        """A proxy's own 5xx metric, where it publishes one (Service Connect); alarmed on
        once the service has a caller (``alarm_on_proxy_5xx``)."""
        self._proxy_5xx = metric

    def alarm_on_proxy_5xx(self) -> None:
        """Alarm on the published proxy 5xx metric, once: called when the first caller is
        declared, since without one the metric has no data and the alarm could never fire."""
        if PROXY_5XX not in self.alarms:
            self._alarm(PROXY_5XX, self.proxy_5xx, self._thresholds.proxy_5xx)

    def _count(
        self, container_name: str, name: str, pattern: logs.IFilterPattern, threshold: int | None
    ) -> cloudwatch.IMetric:
        log_group = self.log_group(container_name)
        metric_filter = log_group.add_metric_filter(
            f"{name}Filter",
            filter_pattern=pattern,
            metric_namespace=self.namespace,
            metric_name=name,
            metric_value="1",
            default_value=0,
        )
        metric = metric_filter.metric(statistic="Sum", period=Duration.minutes(5))
        if threshold is not None:
            self._alarm(name, metric, threshold)
        return metric

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: int) -> None:
        self.alarms[name] = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            metric=metric,
            alarm_description=f"{self._service_name}: {name} reached {threshold} in 5 minutes",
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._notify(self.alarms[name])

    def _notify(self, alarm: cloudwatch.Alarm) -> None:
        if self._notifications is not None:
            self._notifications.notify(alarm)

    def watch_task_count(self, cluster_name: str, ecs_service_name: str, slot: str = "") -> None:
        """Alarm when fewer tasks run than ECS wants (Container Insights metrics), per slot."""
        dimensions = {"ClusterName": cluster_name, "ServiceName": ecs_service_name}

        def insight(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="ECS/ContainerInsights",
                metric_name=metric_name,
                dimensions_map=dimensions,
                statistic="Average",
                period=Duration.minutes(1),
            )

        self.task_counts.append(
            TaskCounts(running=insight("RunningTaskCount"), desired=insight("DesiredTaskCount"))
        )
        missing = cloudwatch.MathExpression(
            expression="desired - running",
            using_metrics={
                "desired": insight("DesiredTaskCount"),
                "running": insight("RunningTaskCount"),
            },
            label="Tasks below desired",
            period=Duration.minutes(1),
        )
        self.alarms[f"{slot}{TASKS_BELOW_DESIRED}"] = missing.create_alarm(
            self,
            f"{slot}{TASKS_BELOW_DESIRED}Alarm",
            alarm_description=(
                f"{self._service_name}{f' {slot.lower()} slot' if slot else ''}: "
                "fewer tasks running than desired"
            ),
            threshold=self._thresholds.tasks_below_desired,
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        self._notify(self.alarms[f"{slot}{TASKS_BELOW_DESIRED}"])
