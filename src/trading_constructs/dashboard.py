"""PlatformDashboard: one CloudWatch dashboard for the platform's services and its edge."""

from __future__ import annotations

import typing
from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_elasticloadbalancingv2 as elb
from constructs import Construct

from ._validation import Problems, claim, construct_owner, environment_of, is_token
from .edge import TradingEdge
from .limits import watch_stack_limits
from .service import MeshedFargateService

_WIDTH = 24
_ONE_MINUTE = Duration.minutes(1)


class PlatformDashboard(Construct):
    """Per service: CPU, memory, running against desired tasks, error counts and alarm states,
    and on the mutual-TLS mesh its requests, retries, TLS failures and ejections; for the load
    balancer: requests, p50/p99 latency, 4xx/5xx and healthy hosts."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        services: Sequence[MeshedFargateService],
        edge: TradingEdge | None = None,
        dashboard_name: str | None = None,
    ) -> None:
        """
        :param services: the services to show, in order.
        :param edge: the load balancer to show. :default: none
        :param dashboard_name: 1 to 255 of A-Z a-z 0-9 - _. :default: a generated name
        """
        problems = Problems(construct_owner("PlatformDashboard", scope.node.path, id))
        listed: list[MeshedFargateService] = (
            []
            if services is None
            else [typing.cast(MeshedFargateService, services)]
            if isinstance(services, Construct)
            else list(services)
        )
        if not listed or any(not isinstance(s, MeshedFargateService) for s in listed):
            problems.add("services", listed, "one or more MeshedFargateService")
        elif len({s.node.path for s in listed}) != len(listed):
            problems.add("services", [s.name for s in listed], "each service once")
        if edge is not None and not isinstance(edge, TradingEdge):
            problems.add("edge", edge, "a TradingEdge or None")
        unique = _dashboard_names(scope, dashboard_name)
        if dashboard_name is not None:
            problems.pattern(
                "dashboard_name", dashboard_name, r"[A-Za-z0-9_-]{1,255}", "1-255 of A-Za-z0-9-_"
            )
            for name_key in unique:
                # CloudWatch dashboards are global: one name per account, whatever the region.
                where = "among the dashboards of an account (all regions)"
                problems.unique("dashboard_name", dashboard_name, scope, name_key, where)
        problems.raise_if_any()
        super().__init__(scope, id)
        watch_stack_limits(self)
        claim(self, *unique)
        self.dashboard: cloudwatch.Dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.hours(3),
        )
        """The CloudWatch dashboard."""
        for service in listed:
            self._service_row(service)
        if edge is not None:
            self._edge_row(edge)

    def _service_row(self, service: MeshedFargateService) -> None:
        title = service.name
        tasks = [
            metric
            for pair in zip(
                service.metric_desired_tasks(), service.metric_running_tasks(), strict=True
            )
            for metric in pair
        ]
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=f"## {title}", width=_WIDTH, height=1),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{title}: CPU and memory (%)",
                left=[
                    service.metric_cpu_utilization(period=_ONE_MINUTE),
                    service.metric_memory_utilization(period=_ONE_MINUTE),
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100),
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{title}: running and desired tasks",
                left=tasks,
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{title}: errors",
                left=[service.metric_error_logs(), *service.observability.proxy_5xx_metrics],
                width=6,
            ),
            cloudwatch.AlarmStatusWidget(
                title=f"{title}: alarms", alarms=list(service.alarms.values()), width=6
            ),
        )
        mesh = service.observability.mesh_metrics
        if mesh:
            self._mesh_row(title, mesh)

    def _mesh_row(self, title: str, mesh: dict[str, cloudwatch.IMetric]) -> None:
        """The Envoy mesh's view of a service: its requests and 5xx, the requests that needed
        a retry, failed mutual-TLS handshakes and outlier ejections."""
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{title}: mesh requests",
                left=[mesh[name] for name in ("MeshRequests", "Proxy5xx", "MeshRetriedRequests")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title=f"{title}: mTLS failures and ejections",
                left=[mesh["MeshTlsFailures"], mesh["MeshEjections"]],
                width=12,
            ),
        )

    def _edge_row(self, edge: TradingEdge) -> None:
        alb = edge.load_balancer.metrics
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(markdown="## Load balancer", width=_WIDTH, height=1)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Requests",
                left=[alb.request_count(period=_ONE_MINUTE, statistic="Sum")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Latency p50 / p99 (s)",
                left=[
                    alb.target_response_time(period=_ONE_MINUTE, statistic="p50", label="p50"),
                    alb.target_response_time(period=_ONE_MINUTE, statistic="p99", label="p99"),
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="4xx / 5xx",
                left=[
                    alb.http_code_target(
                        elb.HttpCodeTarget.TARGET_4XX_COUNT, period=_ONE_MINUTE, statistic="Sum"
                    ),
                    alb.http_code_target(
                        elb.HttpCodeTarget.TARGET_5XX_COUNT, period=_ONE_MINUTE, statistic="Sum"
                    ),
                    alb.http_code_elb(
                        elb.HttpCodeElb.ELB_5XX_COUNT, period=_ONE_MINUTE, statistic="Sum"
                    ),
                ],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Healthy / unhealthy hosts",
                left=[
                    metric
                    for pair in zip(
                        edge.metric_healthy_hosts(), edge.metric_unhealthy_hosts(), strict=True
                    )
                    for metric in pair
                ],
                width=6,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Load balancer alarms", alarms=list(edge.alarms.values()), width=_WIDTH
            )
        )


def _dashboard_names(scope: Construct, name: str | None) -> list[tuple[object, ...]]:
    env = environment_of(scope, regional=False)
    if env is None or not isinstance(name, str) or is_token(name):
        return []
    return [("dashboard", *env, name)]
