"""PlatformDashboard on the construct stacks of construct_platforms (Service Connect with an
edge; App Mesh with weighted slots and no edge): a row per service drawn from the service's own
metric_* methods and alarms, and a load balancer row drawn from the edge."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from construct_platforms import AppMeshPlatform, Built, ServiceConnectPlatform, am, sc
from construct_support import dashboard_body, metric_stat

from trading_constructs import MeshedFargateService

__all__ = ["am", "sc"]  # the session fixtures, used below


def _body(built: Built, dashboard: Any) -> dict[str, Any]:
    return dashboard_body(built.resource(dashboard.dashboard))


def _text(value: Any) -> str:
    """A resolved value as dashboard_body writes it."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    resource, attribute = value["Fn::GetAtt"]
    return f"<{resource}.{attribute}>"


def _drawn(built: Built, metric: cloudwatch.IMetric) -> list[str]:
    """What a widget line starts with for a metric: namespace, name, dimension pairs."""
    stat = metric_stat(built.stack, metric)
    pairs = [item for k, v in stat["dimensions"].items() for item in (k, _text(v))]
    return [stat["namespace"], stat["metric_name"], *pairs]


def _lines(widget: dict[str, Any]) -> list[list[str]]:
    return [[x for x in line if isinstance(x, str)] for line in widget["properties"]["metrics"]]


def _titles(body: dict[str, Any]) -> list[str]:
    return [w["properties"].get("markdown") or w["properties"]["title"] for w in body["widgets"]]


def _row(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    titles = _titles(body)
    start = titles.index(f"## {name}") + 1
    return list(body["widgets"][start : start + 4])


def test_a_row_per_service_then_the_load_balancer(sc: ServiceConnectPlatform) -> None:
    body = _body(sc, sc.dashboard)
    assert body["start"] == "-PT3H"
    assert _titles(body) == [
        "## quotes",
        "quotes: CPU and memory (%)",
        "quotes: running and desired tasks",
        "quotes: errors",
        "quotes: alarms",
        "## gateway",
        "gateway: CPU and memory (%)",
        "gateway: running and desired tasks",
        "gateway: errors",
        "gateway: alarms",
        "## Load balancer",
        "Requests",
        "Latency p50 / p99 (s)",
        "4xx / 5xx",
        "Healthy / unhealthy hosts",
        "Load balancer alarms",
    ]
    assert sc.properties(sc.dashboard.dashboard)["DashboardName"] == "trading-ops"


def test_without_an_edge_there_is_no_load_balancer_row(am: AppMeshPlatform) -> None:
    body = _body(am, am.dashboard)
    assert [t for t in _titles(body) if t.startswith("##")] == ["## prices", "## orders"]
    assert len(body["widgets"]) == 10
    assert "DashboardName" not in am.properties(am.dashboard.dashboard)  # a generated name


@pytest.mark.parametrize(
    ("platform", "names"),
    [
        pytest.param("sc", ("quotes", "gateway"), id="service-connect"),
        pytest.param("am", ("prices", "orders"), id="app-mesh-weighted"),
    ],
)
def test_service_rows_draw_the_services_own_metrics_and_alarms(
    request: pytest.FixtureRequest, platform: str, names: tuple[str, ...]
) -> None:
    built = request.getfixturevalue(platform)
    body = _body(built, built.dashboard)
    for name in names:
        service: MeshedFargateService = getattr(built, name)
        usage, tasks, errors, alarms = _row(body, name)
        assert _lines(usage) == [
            _drawn(built, service.metric_cpu_utilization()),
            _drawn(built, service.metric_memory_utilization()),
        ]
        assert usage["properties"]["yAxis"] == {"left": {"max": 100, "min": 0}}
        # desired then running, slot by slot
        assert _lines(tasks) == [
            _drawn(built, metric)
            for pair in zip(
                service.metric_desired_tasks(), service.metric_running_tasks(), strict=True
            )
            for metric in pair
        ]
        assert len(_lines(tasks)) == 2 * len(service.services)
        assert _lines(errors) == [
            _drawn(built, service.metric_error_logs()),
            _drawn(built, service.metric_proxy_5xx()),
        ]
        assert alarms["type"] == "alarm"
        assert alarms["properties"]["alarms"] == [
            f"<{built.id(alarm)}.Arn>" for alarm in service.alarms.values()
        ]


def test_errors_are_summed_and_usage_is_per_minute(sc: ServiceConnectPlatform) -> None:
    usage, _, errors, _ = _row(_body(sc, sc.dashboard), "quotes")
    assert [line[-1] for line in usage["properties"]["metrics"]] == [{"period": 60}] * 2
    assert [line[-1] for line in errors["properties"]["metrics"]] == [{"stat": "Sum"}] * 2
    assert _lines(errors)[1] == [
        "AWS/ECS",
        "HTTPCode_Target_5XX_Count",
        "TargetDiscoveryName",
        "quotes",
    ]


def test_the_load_balancer_row_reads_the_edge(sc: ServiceConnectPlatform) -> None:
    body = _body(sc, sc.dashboard)
    requests, latency, codes, hosts = _row(body, "Load balancer")
    balancer = ["LoadBalancer", f"<{sc.id(sc.edge.load_balancer)}.LoadBalancerFullName>"]
    alb = "AWS/ApplicationELB"
    assert requests["properties"]["metrics"] == [
        [alb, "RequestCount", *balancer, {"period": 60, "stat": "Sum"}]
    ]
    assert latency["properties"]["metrics"] == [
        [alb, "TargetResponseTime", *balancer, {"label": p, "period": 60, "stat": p}]
        for p in ("p50", "p99")
    ]
    assert _lines(codes) == [
        [alb, name, *balancer]
        for name in (
            "HTTPCode_Target_4XX_Count",
            "HTTPCode_Target_5XX_Count",
            "HTTPCode_ELB_5XX_Count",
        )
    ]
    # blue/green: both target groups, healthy (minimum) and unhealthy (maximum) hosts
    groups = sc.edge.target_groups
    assert len(groups) == 2
    assert [(line[1], line[-1]["stat"]) for line in hosts["properties"]["metrics"]] == [
        ("HealthyHostCount", "Minimum"),
        ("UnHealthyHostCount", "Maximum"),
    ] * 2
    assert [line[4:6] for line in hosts["properties"]["metrics"]] == [
        ["TargetGroup", f"<{sc.id(group)}.TargetGroupFullName>"]
        for group in groups
        for _ in range(2)
    ]
    # the load balancer by its full-name attribute, never cut out of an ARN (a dashboard in
    # another stack reads it with Fn::GetStackOutput, which Fn::Split cannot take)
    assert all(
        line[3] == f"<{sc.id(sc.edge.load_balancer)}.LoadBalancerFullName>"
        for line in hosts["properties"]["metrics"]
    )
    (edge_alarms,) = body["widgets"][-1:]
    assert edge_alarms["properties"]["alarms"] == [
        f"<{sc.id(alarm)}.Arn>" for alarm in sc.edge.alarms.values()
    ]
    assert len(sc.edge.alarms) == 3
