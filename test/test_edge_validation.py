"""Bad input to TradingEdge, releases (rolling, blue/green, weighted), mesh TLS and dashboards
fails where it is given, naming the owner, the prop, the value and what is allowed; valid edge
values pass, and a blue/green platform synthesizes what it promises.

Bad-input tests never synthesize: validation runs before ``Construct.__init__``, so a failing
call adds nothing to the tree. Two module-scoped stacks are synthesized once each: a Service
Connect platform with a blue/green edge, and an App Mesh platform with weighted slots.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_route53 as route53
from aws_cdk.assertions import Template
from inputs_support import cluster_with_image
from validation_support import (
    ECS_CLUSTER,
    FARGATE_SERVICE,
    bad,
    case,
    problem_lines,
    refused,
    refused_held,
    seconds,
    timeout_not_shorter,
    walk,
)

from trading_constructs import (
    DomainOptions,
    HealthCheckOptions,
    Mesh,
    MeshedFargateService,
    MeshTlsOptions,
    PlatformDashboard,
    Release,
    ScannedRepository,
    ServiceImage,
    TargetHealthOptions,
    TradingCluster,
    TradingEdge,
)
from trading_constructs.appmesh import AppMeshMembership

Props = dict[str, Any]
ENV = Environment(region="us-east-1")
CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)
HOOK_ARN = "arn:aws:lambda:us-east-1:123456789012:function:post-test-traffic"


def hosted_zone(stack: Stack, id: str) -> route53.IHostedZone:
    return route53.HostedZone.from_hosted_zone_attributes(
        stack, id, hosted_zone_id="Z0123456789ABCDEFGHIJ", zone_name="example.com"
    )


# -- the Service Connect platform bad input is given to ------------------------------------


@dataclass(frozen=True)
class Platform:
    """One Service Connect cluster and the services edges and dashboards are built on."""

    stack: Stack
    cluster: TradingCluster
    repository: ScannedRepository
    image: ServiceImage
    gw: MeshedFargateService
    """public, rolling"""
    bg: MeshedFargateService
    """public, ECS blue/green"""
    orders: MeshedFargateService
    """not public"""
    certificate: acm.ICertificate
    zone: route53.IHostedZone
    hook: lambda_.IFunction

    def edge(self, **props: Any) -> TradingEdge:
        return TradingEdge(
            self.stack, "Edge", **{"cluster": self.cluster, "service": self.gw, **props}
        )


@pytest.fixture(scope="module")
def platform() -> Platform:
    stack = Stack(App(), "Test", env=ENV)
    cluster, repository, image = cluster_with_image(stack)  # Service Connect, the default mesh

    def service(id: str, name: str, **props: Any) -> MeshedFargateService:
        return MeshedFargateService(
            stack, id, cluster=cluster, name=name, port=8082, image=image, **props
        )

    return Platform(
        stack=stack,
        cluster=cluster,
        repository=repository,
        image=image,
        gw=service("Gw", "gw", public=True),
        bg=service("Bg", "bg", public=True, release=Release.blue_green()),
        orders=service("Orders", "orders"),
        certificate=acm.Certificate.from_certificate_arn(stack, "Certificate", CERTIFICATE_ARN),
        zone=hosted_zone(stack, "Zone"),
        hook=lambda_.Function.from_function_arn(stack, "Hook", HOOK_ARN),
    )


@pytest.fixture(autouse=True)
def tidy(platform: Platform) -> Iterator[None]:
    """Remove whatever a test added to the shared stack, so a check that wrongly passes fails
    its own test only, not every later test that reuses the id."""
    before = {child.node.id for child in platform.stack.node.children}
    yield
    for child in list(platform.stack.node.children):
        if child.node.id not in before:
            platform.stack.node.try_remove_child(child.node.id)


# -- TradingEdge: values and types ---------------------------------------------------------

EDGE = "^TradingEdge 'Test/Edge': "
PATTERN = "1 to 128 of A-Z a-z 0-9 _-.$/~\"'@:+?*&"
CIDR = "an IPv4 CIDR block such as '10.0.0.0/16'"
PORT = "an integer from 1024 to 65535"
NOT_80_443 = "a port other than 80 and 443"
DAYS = "an integer from 1 to 3650"
SIX = [f"/p{i}/*" for i in range(6)]


def bad_cidr(id: str, cidr: Any, test: bool = False) -> Any:
    """A row: one range of ``ingress_cidrs`` (or of a blue/green edge's ``test_cidrs``) is
    not an IPv4 CIDR block."""

    def on_blue_green(p: Platform) -> Props:
        return {"service": p.bg, "test_cidrs": [cidr]}

    props = on_blue_green if test else {"ingress_cidrs": [cidr]}
    return case(id, props, bad("ingress_cidrs/test_cidrs", cidr, CIDR))


@pytest.mark.parametrize("port", [80, 443])
def test_test_port_80_and_443_are_out_of_range_and_taken(platform: Platform, port: int) -> None:
    # 80 and 443 are the production listeners' ports, below the test listener's range
    expected = f"{EDGE}{bad('test_port', port, PORT)}\\)$"
    with pytest.raises(ValueError, match=expected):
        platform.edge(service=platform.bg, test_port=port)
    assert platform.stack.node.try_find_child("Edge") is None


def test_a_service_with_traffic_slots_cannot_sit_behind_an_edge(app_mesh: AppMeshPlatform) -> None:
    # GIVEN a public App Mesh service with weighted blue and green slots
    # WHEN a TradingEdge fronts it  THEN it points to ECS blue/green instead
    message = bad(
        "service",
        "slots",
        "a single-slot service (Release.rolling() or Release.blue_green()); weighted slots "
        "are routed by the mesh, not by a load balancer",
    )
    with pytest.raises(ValueError, match=f"^TradingEdge 'Mesh/Edge': {message}\\)$"):
        TradingEdge(app_mesh.stack, "Edge", cluster=app_mesh.cluster, service=app_mesh.slots)
    assert app_mesh.stack.node.try_find_child("Edge") is None


def test_all_problems_of_one_edge_come_in_one_error(platform: Platform) -> None:
    # WHEN one call breaks seven rules
    with pytest.raises(ValueError) as raised:
        platform.edge(
            service=platform.orders,
            path_patterns=["/a b", "/x", "/x"],
            ingress_cidrs=["anywhere"],
            test_port=70000,
            deregistration_delay=seconds(7200),
            access_log_days=0,
        )
    # THEN one error lists them all, in the order of the props
    first, problems = problem_lines(raised.value)
    assert first == "TradingEdge 'Test/Edge': 7 invalid props:"
    assert problems == [
        "  - path_patterns='/a b'",
        "  - path_patterns=['/a b', '/x', '/x']",
        "  - service='orders'",
        "  - ingress_cidrs/test_cidrs='anywhere'",
        "  - test_port=70000",
        "  - deregistration_delay='2 hours'",
        "  - access_log_days=0",
    ]
    assert platform.stack.node.try_find_child("Edge") is None


EDGE_REFUSED: dict[Any, list[Any]] = {
    ValueError: [
        case(
            "service-not-public",
            lambda p: {"service": p.orders},
            bad("service", "orders", "a service with public=True (its mesh listener then takes"),
        ),
        case(
            "cluster-none",
            {"cluster": None},
            re.escape("cluster and service are required") + "$",
        ),
        case(
            "service-none",
            {"service": None},
            re.escape("cluster and service are required") + "$",
        ),
        refused("at least one path pattern", id="path-patterns-empty", path_patterns=[]),
        refused(PATTERN, id="path-pattern-space", shown="/api/ v1", path_patterns=["/api/ v1"]),
        refused(
            PATTERN,
            id="path-pattern-angle-brackets",
            shown="/orders/<id>",
            path_patterns=["/orders/<id>"],
        ),
        refused(PATTERN, id="path-pattern-hash", shown="/health#ok", path_patterns=["/health#ok"]),
        refused(PATTERN, id="path-pattern-empty-string", shown="", path_patterns=[""]),
        refused(
            PATTERN,
            id="path-pattern-129-chars",
            shown="/" + "a" * 128,
            path_patterns=["/" + "a" * 128],
        ),
        refused(PATTERN, id="path-pattern-string-129-chars", path_patterns="/" + "b" * 128),
        refused(
            "each pattern once",
            id="path-patterns-duplicate",
            path_patterns=["/api/*", "/health", "/api/*"],
        ),
        case(
            "path-patterns-with-blue-green",
            lambda p: {"service": p.bg, "path_patterns": ["/api/*"]},
            bad("path_patterns", ["/api/*"], "None with blue/green"),
        ),
        case(
            "certificate-and-domain",
            lambda p: {
                "certificate": p.certificate,
                "domain": DomainOptions(domain_name="api.example.com", hosted_zone=p.zone),
            },
            re.escape("certificate and domain were both given (allowed: one of them)") + "$",
        ),
        bad_cidr("ingress-cidr-word", "internet"),
        bad_cidr("ingress-cidr-host-bits", "10.0.0.1/8"),
        bad_cidr("ingress-cidr-ipv6", "::/0"),
        bad_cidr("ingress-cidr-octet-300", "300.0.0.0/8"),
        bad_cidr("test-cidr-prefix-33", "10.0.0.0/33", test=True),
        bad_cidr("test-cidr-none-entry", None, test=True),
        refused(PORT, id="test-port-1023", test_port=1023),
        refused(PORT, id="test-port-65536", test_port=65536),
        refused(PORT, id="test-port-0", test_port=0),
        refused(PORT, id="test-port-bool", test_port=True),
        refused(PORT, id="test-port-string", test_port="9443"),
        refused("0 to 3600 s", id="deregistration-3601s", deregistration_delay=seconds(3601)),
        refused("0 to 3600 s", id="deregistration-2h", deregistration_delay=Duration.hours(2)),
        refused("an aws_cdk.Duration", id="deregistration-int", deregistration_delay=30),
        refused("an aws_cdk.Duration", id="deregistration-string", deregistration_delay="30s"),
        refused(DAYS, id="access-log-days-0", access_log_days=0),
        refused(DAYS, id="access-log-days-3651", access_log_days=3651),
        refused(DAYS, id="access-log-days-float", access_log_days=90.0),
        refused(DAYS, id="access-log-days-bool", access_log_days=True),
    ],
    TypeError: [
        refused("TradingCluster", id="cluster-name", cluster="Platform"),
        refused_held(
            "TradingCluster",
            ECS_CLUSTER,
            id="cluster-ecs-cluster",
            end="$",
            cluster="cluster.cluster",
        ),
        refused("MeshedFargateService", id="service-name", service="gw"),
        refused_held(
            "MeshedFargateService",
            FARGATE_SERVICE,
            id="service-fargate-service",
            end="$",
            service="gw.service",
        ),
        refused("DomainOptions", id="domain-string", domain="api.example.com"),
        refused("DomainOptions", id="domain-dict", domain={"domain_name": "api.example.com"}),
        refused("TargetHealthOptions", id="health-dict", health={"interval": 15}),
        case(
            "health-container-health-check",
            {"health": HealthCheckOptions()},
            r"health=HealthCheckOptions\(.*\(allowed: TargetHealthOptions\)$",
        ),
        refused("RemovalPolicy", id="removal-policy-string", removal_policy="retain"),
        refused("RemovalPolicy", id="removal-policy-bool", removal_policy=False),
    ],
}
"""What an edge refuses, by the error it raises: a wrong type is a TypeError, named before jsii
would fail on it; a bad value of the right type is a ValueError."""


@walk(EDGE_REFUSED, "error")
def test_bad_edge_props(
    platform: Platform, error: type[Exception], props: Any, message: str
) -> None:
    # GIVEN the platform's public gateway  WHEN an edge gets one prop that breaks a rule
    # THEN the error names that prop alone, with what is allowed
    with pytest.raises(error, match=f"{EDGE}{message}"):
        platform.edge(**(props(platform) if callable(props) else props))
    # AND nothing was added to the tree: the checks run before the construct exists
    assert platform.stack.node.try_find_child("Edge") is None


def test_an_edge_type_error_comes_before_its_value_problems(platform: Platform) -> None:
    with pytest.raises(TypeError, match=f"{EDGE}health='fast' is not allowed") as raised:
        platform.edge(health="fast", test_port=1, access_log_days=0)
    assert "test_port" not in str(raised.value)


# -- TargetHealthOptions -------------------------------------------------------------------

CODES = "codes like '200,202-299'"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        refused("5 to 300", id="interval-4s", interval=seconds(4)),
        refused("5 to 300 seconds", id="interval-301s", interval=seconds(301)),
        refused("an aws_cdk.Duration", id="interval-int", interval=15),
        refused("2 to 120", id="timeout-1s", timeout=seconds(1)),
        refused("2 to 120 seconds", id="timeout-121s", timeout=seconds(121), interval=seconds(300)),
        refused("an aws_cdk.Duration", id="timeout-none", timeout=None),
        timeout_not_shorter("timeout-equals-interval", 10, 10, interval=seconds(10)),
        timeout_not_shorter("timeout-above-interval", 20, 15),
        refused("an integer from 2 to 10", id="healthy-threshold-1", healthy_threshold=1),
        refused("an integer from 2 to 10", id="healthy-threshold-11", healthy_threshold=11),
        refused("an integer from 2 to 10", id="healthy-threshold-bool", healthy_threshold=True),
        refused("an integer from 2 to 10", id="unhealthy-threshold-1", unhealthy_threshold=1),
        refused("an integer from 2 to 10", id="unhealthy-threshold-11", unhealthy_threshold=11),
        refused(CODES, id="codes-letters", healthy_http_codes="abc"),
        refused(CODES, id="codes-open-range", healthy_http_codes="200-"),
        refused(CODES, id="codes-empty", healthy_http_codes=""),
        refused(CODES, id="codes-four-digits", healthy_http_codes="2000"),
        refused(CODES, id="codes-double-comma", healthy_http_codes="200,,204"),
        refused(CODES, id="codes-spaces", healthy_http_codes="200, 204"),
        refused("codes 200 to 499", id="codes-199", healthy_http_codes="199"),
        refused("codes 200 to 499", id="codes-500", healthy_http_codes="500"),
        refused("codes 200 to 499", id="codes-range-into-5xx", healthy_http_codes="200-503"),
    ],
)
def test_bad_target_health_options(options: Props, message: str) -> None:
    with pytest.raises(ValueError, match=f"^TargetHealthOptions: {message}"):
        TargetHealthOptions(**options)


def test_target_health_timeout_order_is_judged_only_once_the_ranges_pass() -> None:
    # A timeout out of range is reported alone, not also as "not shorter than interval"
    with pytest.raises(ValueError) as raised:
        TargetHealthOptions(timeout=seconds(121), interval=seconds(60))
    assert str(raised.value) == (
        "TargetHealthOptions: timeout='2 minutes 1 second' is not allowed "
        "(allowed: 2 to 120 seconds)"
    )


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"healthy_http_codes": "200,202-299"}, id="codes-list-and-range"),
        pytest.param({"healthy_http_codes": "200-499"}, id="codes-widest-range"),
        pytest.param({"healthy_http_codes": "499"}, id="codes-499"),
        pytest.param({"interval": seconds(5), "timeout": seconds(2)}, id="shortest"),
        pytest.param({"interval": seconds(300), "timeout": seconds(120)}, id="longest"),
        pytest.param({"interval": seconds(6), "timeout": seconds(5)}, id="timeout-just-shorter"),
        pytest.param({"healthy_threshold": 2, "unhealthy_threshold": 10}, id="thresholds-2-10"),
        pytest.param({"healthy_threshold": 10, "unhealthy_threshold": 2}, id="thresholds-10-2"),
    ],
)
def test_target_health_edges_pass(options: Props) -> None:
    health = TargetHealthOptions(**options)
    assert all(getattr(health, prop) == value for prop, value in options.items())


# -- DomainOptions -------------------------------------------------------------------------

DNS = "a lower-case DNS name"


@pytest.mark.parametrize(
    ("domain_name", "message"),
    [
        case("upper-case", "API.example.com", bad("domain_name", "API.example.com", DNS)),
        case("empty-label", "api..example.com", bad("domain_name", "api..example.com", DNS)),
        case("leading-hyphen", "-api.example.com", bad("domain_name", "-api.example.com", DNS)),
        case("underscore", "api_v1.example.com", bad("domain_name", "api_v1.example.com", DNS)),
        case("url", "https://api.example.com", bad("domain_name", "https://api.example.com", DNS)),
        case("empty", "", bad("domain_name", "", DNS)),
        case(
            "label-64",
            "a" * 64 + ".example.com",
            bad("domain_name", "a" * 64 + ".example.com", DNS),
        ),
        case(
            "name-254",
            ".".join(["a" * 63] * 3 + ["b" * 62]),
            bad("domain_name", ".".join(["a" * 63] * 3 + ["b" * 62]), "at most 253 characters"),
        ),
        case("none", None, bad("domain_name", None, DNS)),
    ],
)
def test_bad_domain_name(platform: Platform, domain_name: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^DomainOptions: {message}"):
        DomainOptions(domain_name=domain_name, hosted_zone=platform.zone)


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param("Z0123456789ABCDEFGHIJ", id="zone-id-string"),
        pytest.param(None, id="none"),
        pytest.param({"hosted_zone_id": "Z0123"}, id="dict"),
    ],
)
def test_a_hosted_zone_must_be_a_zone(zone: Any) -> None:
    message = bad("hosted_zone", zone, "an aws_route53.IHostedZone")
    # a zone ID gets the way to import its zone
    hint = "; from a string: route53.HostedZone.from_hosted_zone_attributes("
    hint = hint if isinstance(zone, str) else ""
    with pytest.raises(ValueError, match=f"^DomainOptions: {message}{re.escape(hint)}.*\\)$"):
        DomainOptions(domain_name="api.example.com", hosted_zone=zone)


def test_a_hosted_zone_that_is_another_construct_is_not_a_zone(platform: Platform) -> None:
    with pytest.raises(ValueError, match=r"^DomainOptions: hosted_zone=<.*ScannedRepository"):
        DomainOptions(domain_name="api.example.com", hosted_zone=platform.repository)


def test_domain_problems_are_reported_together() -> None:
    with pytest.raises(ValueError, match=r"^DomainOptions: 2 invalid props:\n  - domain_name="):
        DomainOptions(domain_name="API", hosted_zone="zone")


@pytest.mark.parametrize(
    "domain_name",
    ["example.com", "api.example.com", "x1-y2.example.com", "a" * 63 + ".example.com"],
)
def test_domain_edges_pass(platform: Platform, domain_name: str) -> None:
    assert DomainOptions(domain_name=domain_name, hosted_zone=platform.zone).domain_name == (
        domain_name
    )


# -- Release -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        case(
            "bake-time-1441-minutes",
            lambda p: Release.blue_green(bake_time=Duration.minutes(1441)),
            bad("bake_time", "1 day 1 minute", "0 to 1440 minutes"),
        ),
        case(
            "bake-time-2-days",
            lambda p: Release.blue_green(bake_time=Duration.days(2)),
            bad("bake_time", "2 days", "0 to 1440 minutes"),
        ),
        case(
            "bake-time-90-seconds",
            lambda p: Release.blue_green(bake_time=seconds(90)),
            bad("bake_time", "1 minute 30 seconds", "whole minutes"),
        ),
        case(
            "bake-time-int",
            lambda p: Release.blue_green(bake_time=10),
            bad("bake_time", 10, "an aws_cdk.Duration"),
        ),
        case(
            "lifecycle-hook-arn",
            lambda p: Release.blue_green(lifecycle_hook=HOOK_ARN),
            bad("lifecycle_hook", HOOK_ARN, "an aws_lambda.IFunction"),
        ),
        case(
            "lifecycle-hook-callable",
            lambda p: Release.blue_green(lifecycle_hook=print),
            bad("lifecycle_hook", print, "an aws_lambda.IFunction"),
        ),
        case(
            "lifecycle-hook-a-repository",
            lambda p: Release.blue_green(lifecycle_hook=p.repository),
            r"lifecycle_hook=<.*ScannedRepository object at .*an aws_lambda\.IFunction\)$",
        ),
    ],
)
def test_bad_blue_green_release(
    platform: Platform, build: Callable[[Platform], Release], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^Release.blue_green: {message}"):
        build(platform)


def test_a_rolling_release_has_no_blue_green_settings_to_get_wrong() -> None:
    # the settings of one kind cannot be written on another: there is no parameter for them
    with pytest.raises(TypeError):
        Release.rolling(bake_time=Duration.minutes(1))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Release.blue_green(blue=90)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Release.weighted(bake_time=Duration.minutes(1))  # type: ignore[call-arg]


def test_blue_green_release_reports_every_problem_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        Release.blue_green(lifecycle_hook="hook", bake_time=seconds(30))  # type: ignore[arg-type]
    assert str(raised.value) == (
        "Release.blue_green: 2 invalid props:\n"
        "  - lifecycle_hook='hook' is not allowed (allowed: an aws_lambda.IFunction)\n"
        "  - bake_time='30 seconds' is not allowed (allowed: whole minutes)"
    )


def test_release_defaults() -> None:
    blue_green = Release.blue_green()
    assert blue_green.strategy == ecs.DeploymentStrategy.BLUE_GREEN
    assert blue_green.behind_load_balancer
    assert blue_green.bake_time is not None
    assert blue_green.bake_time.to_minutes() == 10
    assert blue_green.lifecycle_hook is None
    rolling = Release.rolling()
    assert (rolling.strategy, rolling.bake_time, rolling.lifecycle_hook) == (
        ecs.DeploymentStrategy.ROLLING,
        None,
        None,
    )
    assert not rolling.behind_load_balancer
    weighted = Release.weighted()
    assert (weighted.blue, weighted.green, weighted.green_image) == (100, 0, None)
    assert weighted.strategy == ecs.DeploymentStrategy.ROLLING


@pytest.mark.parametrize("minutes", [0, 1, 1440])
def test_bake_time_edges_pass(minutes: int) -> None:
    bake_time = Duration.minutes(minutes)
    assert Release.blue_green(bake_time=bake_time).bake_time is bake_time


def test_a_blue_green_lifecycle_hook_passes(platform: Platform) -> None:
    assert Release.blue_green(lifecycle_hook=platform.hook).lifecycle_hook is platform.hook


SHARE = "an integer from 0 to 100"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        refused(SHARE, id="blue-negative", blue=-1, green=100),
        refused(SHARE, id="green-negative", green=-10, blue=100),
        refused(SHARE, id="blue-101", blue=101, green=0),
        refused(SHARE, id="green-101", green=101, blue=0),
        refused(SHARE, id="blue-bool", blue=True, green=99),
        refused(SHARE, id="green-bool", green=False, blue=100),
        refused(SHARE, id="blue-float", blue=50.0, green=50),
        refused(SHARE, id="green-string", green="50", blue=50),
        case(
            "sum-90",
            {"blue": 60, "green": 30},
            re.escape("blue=60 and green=30 add up to 90 (allowed: weights that add up to 100)")
            + "$",
        ),
        case(
            "sum-110",
            {"blue": 100, "green": 10},
            re.escape("blue=100 and green=10 add up to 110"),
        ),
        case("sum-0", {"blue": 0, "green": 0}, re.escape("blue=0 and green=0 add up to 0")),
        case(
            "lone-blue-share",
            # green defaults to 0, so blue=50 alone is half the traffic gone nowhere
            {"blue": 50},
            re.escape("blue=50 and green=0 add up to 50"),
        ),
    ],
)
def test_bad_weighted_release(weights: Props, message: str) -> None:
    with pytest.raises(ValueError, match=f"^Release.weighted: {message}"):
        Release.weighted(**weights)


def test_weights_sum_is_judged_only_once_the_shares_pass() -> None:
    with pytest.raises(ValueError) as raised:
        Release.weighted(blue=-5, green=5)
    assert str(raised.value) == (
        "Release.weighted: blue=-5 is not allowed (allowed: an integer from 0 to 100)"
    )


def test_a_green_image_must_be_a_service_image() -> None:
    with pytest.raises(TypeError, match=bad("green_image", "orders:v2", "ServiceImage)")):
        Release.weighted(blue=90, green=10, green_image="orders:v2")  # type: ignore[arg-type]


@pytest.mark.parametrize(("blue", "green"), [(0, 100), (100, 0), (1, 99), (50, 50)])
def test_weight_edges_pass(blue: int, green: int) -> None:
    weighted = Release.weighted(blue=blue, green=green)
    assert (weighted.blue, weighted.green) == (blue, green)


# -- MeshedFargateService: the release prop ------------------------------------------------

SERVICE = "^MeshedFargateService 'Test/Svc': "


def build_service(platform: Platform, name: str, **props: Any) -> MeshedFargateService:
    return MeshedFargateService(
        platform.stack,
        "Svc",
        cluster=platform.cluster,
        name=name,
        image=platform.image,
        port=8080,
        **props,
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused("Release)", id="release-dict", release={"blue": 90, "green": 10}),
        refused("Release)", id="release-int", release=90),
        refused("Release)", id="release-string", release="blue_green"),
        refused("Release)", id="release-strategy-enum", release=ecs.DeploymentStrategy.BLUE_GREEN),
        case(
            "release-factory-not-called",
            {"release": Release.blue_green},
            r"release=<function Release\.blue_green.*\(allowed: Release\)$",
        ),
    ],
)
def test_release_wrong_types_are_type_errors(
    platform: Platform, props: Props, message: str
) -> None:
    with pytest.raises(TypeError, match=f"{SERVICE}{message}"):
        build_service(platform, "bluegreen", **props)
    assert platform.stack.node.try_find_child("Svc") is None


def test_service_connect_rejects_weighted_slots_before_building(platform: Platform) -> None:
    # GIVEN the Service Connect platform  WHEN a service asks for weighted slots
    # THEN the error points to the releases Service Connect can do, and nothing was built
    expected = (
        "release=Release.weighted(...) weighs blue and green slots, which this cluster's "
        "mesh cannot (allowed: Release.rolling(), or Release.blue_green() behind a "
        "TradingEdge; weighted slots need Mesh.app_mesh())"
    )
    with pytest.raises(ValueError, match=f"{SERVICE}{re.escape(expected)}$"):
        build_service(platform, "slotted", release=Release.weighted(blue=90, green=10))
    assert platform.stack.node.try_find_child("Svc") is None


# -- MeshTlsOptions and Mesh.mtls ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        refused("an integer from 2 to 397", id="cert-days-1", cert_days=1),
        refused("an integer from 2 to 397", id="cert-days-398", cert_days=398),
        refused("an integer from 2 to 397", id="cert-days-float", cert_days=30.0),
        refused("an integer from 1 to 29", id="renew-before-0", renew_before_days=0),
        refused(
            "an integer from 1 to 29",
            id="renew-before-equals-cert-days",
            renew_before_days=30,
            cert_days=30,
        ),
        refused(
            "an integer from 1 to 6",
            id="renew-before-above-cert-days",
            renew_before_days=10,
            cert_days=7,
        ),
        refused(
            "an integer from 1 to 1", id="renew-before-2-of-2", renew_before_days=2, cert_days=2
        ),
        refused("an integer from 1 to 29", id="renew-before-bool", renew_before_days=True),
    ],
)
def test_bad_mesh_tls_options(options: Props, message: str) -> None:
    with pytest.raises(ValueError, match=f"^MeshTlsOptions: {message}\\)$"):
        MeshTlsOptions(**options)


def test_renew_before_is_judged_only_once_cert_days_pass() -> None:
    with pytest.raises(ValueError) as raised:
        MeshTlsOptions(cert_days=0, renew_before_days=0)
    assert str(raised.value) == (
        "MeshTlsOptions: cert_days=0 is not allowed (allowed: an integer from 2 to 397)"
    )


@pytest.mark.parametrize(("cert_days", "renew"), [(2, 1), (30, 29), (397, 1), (397, 396)])
def test_mesh_tls_edges_pass(cert_days: int, renew: int) -> None:
    options = MeshTlsOptions(cert_days=cert_days, renew_before_days=renew)
    assert (options.cert_days, options.renew_before_days) == (cert_days, renew)


MTLS_SERVICE_CONNECT = re.escape(
    "mtls applies to the mutual-TLS mesh and App Mesh (allowed: None with Service Connect, "
    "whose TLS comes from AWS Private CA)"
)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        case(
            "mtls-with-service-connect",
            lambda: Mesh(kind="service-connect", mtls=MeshTlsOptions()),
            MTLS_SERVICE_CONNECT + "$",
        ),
        case(
            "mtls-string",
            lambda: Mesh.app_mesh(mtls="on"),
            bad("mtls", "on", "MeshTlsOptions or None)") + "$",
        ),
        case(
            "mtls-bool",
            lambda: Mesh.app_mesh(mtls=True),
            bad("mtls", True, "MeshTlsOptions or None)") + "$",
        ),
        case(
            "mtls-dict",
            lambda: Mesh(kind="appmesh", mtls={"cert_days": 30}),
            bad("mtls", {"cert_days": 30}, "MeshTlsOptions or None)") + "$",
        ),
        case(
            "mtls-wrong-type-with-service-connect",
            lambda: Mesh(kind="service-connect", mtls=True),
            re.escape("2 invalid props:\n  - ")
            + bad("mtls", True, "MeshTlsOptions or None)")
            + re.escape("\n  - ")
            + MTLS_SERVICE_CONNECT
            + "$",
        ),
    ],
)
def test_bad_mesh_mtls(build: Callable[[], Mesh], message: str) -> None:
    with pytest.raises(ValueError, match=f"^Mesh: {message}"):
        build()


def test_mesh_mtls_defaults() -> None:
    assert Mesh.app_mesh().mtls == MeshTlsOptions()
    assert Mesh.app_mesh(mtls=None).mtls is None
    assert Mesh.service_connect().mtls is None
    assert Mesh.from_name("service-connect").mtls is None
    options = MeshTlsOptions(cert_days=90, renew_before_days=30)
    assert Mesh.app_mesh(mtls=options).mtls is options


# -- PlatformDashboard ---------------------------------------------------------------------

DASHBOARD = "^PlatformDashboard 'Test/Dashboard': "
SERVICES = "one or more MeshedFargateService"
DASHBOARD_NAME = "1-255 of A-Za-z0-9-_"


def bad_dashboard_name(id: str, name: str) -> Any:
    """A row: a dashboard of the gateway named ``name``, which CloudWatch refuses."""

    def props(p: Platform) -> Props:
        return {"services": [p.gw], "dashboard_name": name}

    return case(id, props, bad("dashboard_name", name, DASHBOARD_NAME))


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(SERVICES, id="services-empty-list", services=[]),
        refused(SERVICES, id="services-empty-tuple", shown=[], services=()),
        case(
            "services-a-name",
            lambda p: {"services": [p.gw, "orders"]},
            r"services=\[<trading_constructs\.service\.MeshedFargateService object at .*, "
            r"'orders'\] is not allowed \(allowed: one or more MeshedFargateService\)$",
        ),
        case(
            "services-the-cluster",
            lambda p: {"services": [p.cluster]},
            r"services=\[<trading_constructs\.cluster\.TradingCluster object at .*\] is not "
            r"allowed \(allowed: one or more MeshedFargateService\)$",
        ),
        case(
            "services-the-ecs-service",
            lambda p: {"services": [p.gw.service]},
            r"services=\[<aws_cdk\.aws_ecs\.FargateService object at .*\(allowed: " + SERVICES,
        ),
        case(
            "edge-string",
            lambda p: {"services": [p.gw], "edge": "edge"},
            bad("edge", "edge", "a TradingEdge or None)") + "$",
        ),
        case(
            "edge-a-service",
            lambda p: {"services": [p.gw], "edge": p.gw},
            r"edge=<trading_constructs\.service\.MeshedFargateService object at .*\(allowed: "
            r"a TradingEdge or None\)$",
        ),
        bad_dashboard_name("dashboard-name-space", "trading platform"),
        bad_dashboard_name("dashboard-name-slash", "trading/prod"),
        bad_dashboard_name("dashboard-name-empty", ""),
        bad_dashboard_name("dashboard-name-256", "d" * 256),
    ],
)
def test_bad_dashboard(platform: Platform, props: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"{DASHBOARD}{message}"):
        PlatformDashboard(
            platform.stack, "Dashboard", **(props(platform) if callable(props) else props)
        )
    assert platform.stack.node.try_find_child("Dashboard") is None


def test_dashboard_problems_are_reported_together(platform: Platform) -> None:
    with pytest.raises(ValueError) as raised:
        PlatformDashboard(platform.stack, "Dashboard", services=[], edge=1, dashboard_name="a b")
    first, problems = problem_lines(raised.value)
    assert first == "PlatformDashboard 'Test/Dashboard': 3 invalid props:"
    assert problems == [
        "  - services=[]",
        "  - edge=1",
        "  - dashboard_name='a b'",
    ]


# -- a blue/green platform behind a TradingEdge, synthesized once --------------------------


@dataclass(frozen=True)
class BlueGreenPlatform:
    stack: Stack
    api: MeshedFargateService
    """public, Release.blue_green() defaults, behind ``edge``"""
    web: MeshedFargateService
    """public, rolling, behind ``web_edge``"""
    edge: TradingEdge
    web_edge: TradingEdge
    dashboard: PlatformDashboard
    template: Template

    def resource(self, construct: Any) -> dict[str, Any]:
        """The synthesized resource of an L2 construct."""
        logical_id = self.stack.get_logical_id(construct.node.default_child)
        resource: dict[str, Any] = self.template.to_json()["Resources"][logical_id]
        return resource

    def ref(self, construct: Any) -> dict[str, str]:
        return {"Ref": self.stack.get_logical_id(construct.node.default_child)}


FIVE = ["/api/*", "/health", "/v1/*", "/v2/*", "/ws"]
LONG_PATTERN = "/" + "x" * 126 + "*"  # 128 characters, the most a rule takes


@pytest.fixture(scope="module")
def blue_green() -> BlueGreenPlatform:
    stack = Stack(App(), "BlueGreen", env=ENV)
    cluster, _, image = cluster_with_image(stack)
    api = MeshedFargateService(
        stack,
        "Api",
        cluster=cluster,
        name="gw",
        port=8082,
        image=image,
        public=True,
        release=Release.blue_green(),
    )
    web = MeshedFargateService(
        stack, "Web", cluster=cluster, name="web", port=8083, image=image, public=True
    )
    # Every prop at an edge of what it allows
    edge = TradingEdge(
        stack,
        "Edge",
        cluster=cluster,
        service=api,
        certificate=acm.Certificate.from_certificate_arn(stack, "Certificate", CERTIFICATE_ARN),
        test_port=1024,
        test_cidrs=["10.1.0.0/16"],
        health=TargetHealthOptions(
            interval=seconds(300),
            timeout=seconds(120),
            healthy_threshold=10,
            unhealthy_threshold=2,
            healthy_http_codes="200,202-299",
        ),
        deregistration_delay=seconds(0),
        access_log_days=3650,
        removal_policy=RemovalPolicy.DESTROY,
    )
    web_edge = TradingEdge(
        stack,
        "WebEdge",
        cluster=cluster,
        service=web,
        path_patterns=[LONG_PATTERN, *FIVE],
        domain=DomainOptions(domain_name="web.example.com", hosted_zone=hosted_zone(stack, "Zone")),
        ingress_cidrs=["203.0.113.0/24", "198.51.100.7/32"],
        test_port=65535,
        deregistration_delay=seconds(3600),
        access_log_days=1,
    )
    dashboard = PlatformDashboard(
        stack, "Dashboard", services=[api, web], edge=edge, dashboard_name="D-_" + "d" * 252
    )
    return BlueGreenPlatform(stack, api, web, edge, web_edge, dashboard, Template.from_stack(stack))


def test_a_blue_green_service_deploys_blue_green_with_the_default_bake_time(
    blue_green: BlueGreenPlatform,
) -> None:
    config = blue_green.resource(blue_green.api.service)["Properties"]["DeploymentConfiguration"]
    assert config["Strategy"] == "BLUE_GREEN"
    assert config["BakeTimeInMinutes"] == 10
    assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_a_blue_green_service_gets_the_alternate_target_group_and_both_rules(
    blue_green: BlueGreenPlatform,
) -> None:
    edge = blue_green.edge
    (balancer,) = blue_green.resource(blue_green.api.service)["Properties"]["LoadBalancers"]
    assert balancer["TargetGroupArn"] == blue_green.ref(edge.target_groups[0])
    assert balancer["ContainerName"] == "gw"
    assert balancer["ContainerPort"] == 8082
    advanced = balancer["AdvancedConfiguration"]
    assert advanced["AlternateTargetGroupArn"] == blue_green.ref(edge.target_groups[1])
    assert advanced["ProductionListenerRule"] == blue_green.ref(edge.rules[0])
    assert advanced["TestListenerRule"] == blue_green.ref(edge.node.find_child("TestRule"))
    assert "RoleArn" in advanced


def test_blue_green_listeners_only_forward_every_path_to_the_service(
    blue_green: BlueGreenPlatform,
) -> None:
    # GIVEN a service released blue/green behind an edge: ECS native blue/green does
    # not support listeners whose rules mix forward and fixed-response actions
    edge = blue_green.edge
    blue, green = (blue_green.ref(group) for group in edge.target_groups)
    # THEN one production rule and one test rule, each matching every path
    assert len(edge.rules) == 1
    for rule in (edge.rules[0], edge.node.find_child("TestRule")):
        properties = blue_green.resource(rule)["Properties"]
        assert properties["Priority"] == 10
        assert properties["Conditions"] == [
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}
        ]
    # and every action of both listeners, their defaults included, is a forward
    assert edge.test_listener is not None
    for listener in (edge.listener, edge.test_listener):
        (default,) = blue_green.resource(listener)["Properties"]["DefaultActions"]
        assert default["Type"] == "forward"
    production = blue_green.resource(edge.listener)["Properties"]["DefaultActions"][0]
    assert [
        (g["TargetGroupArn"], g["Weight"]) for g in production["ForwardConfig"]["TargetGroups"]
    ] == [(blue, 100), (green, 0)]
    test = blue_green.resource(edge.test_listener)["Properties"]["DefaultActions"][0]
    assert test["TargetGroupArn"] == green


def test_a_rolling_edge_routes_its_paths_and_answers_404_to_the_rest(
    blue_green: BlueGreenPlatform,
) -> None:
    (default,) = blue_green.resource(blue_green.web_edge.listener)["Properties"]["DefaultActions"]
    assert default["Type"] == "fixed-response"
    assert default["FixedResponseConfig"]["StatusCode"] == "404"


def test_the_test_listener_takes_the_edge_port_and_cidrs(blue_green: BlueGreenPlatform) -> None:
    edge = blue_green.edge
    assert edge.test_listener is not None
    listener = blue_green.resource(edge.test_listener)["Properties"]
    assert (listener["Port"], listener["Protocol"]) == (1024, "HTTPS")
    ingress = blue_green.resource(edge.security_group)["Properties"]["SecurityGroupIngress"]
    assert {"CidrIp": "10.1.0.0/16", "FromPort": 1024, "ToPort": 1024, "IpProtocol": "tcp"} in [
        {k: rule[k] for k in ("CidrIp", "FromPort", "ToPort", "IpProtocol")} for rule in ingress
    ]


def test_edge_health_and_drain_values_reach_both_target_groups(
    blue_green: BlueGreenPlatform,
) -> None:
    for group in blue_green.edge.target_groups:
        properties = blue_green.resource(group)["Properties"]
        assert properties["Matcher"] == {"HttpCode": "200,202-299"}
        assert properties["HealthCheckIntervalSeconds"] == 300
        assert properties["HealthCheckTimeoutSeconds"] == 120
        assert properties["HealthyThresholdCount"] == 10
        assert properties["UnhealthyThresholdCount"] == 2
        assert properties["HealthCheckPath"] == "/health"
        assert {"Key": "deregistration_delay.timeout_seconds", "Value": "0"} in properties[
            "TargetGroupAttributes"
        ]


def test_a_rolling_service_behind_an_edge_keeps_a_plain_load_balancer(
    blue_green: BlueGreenPlatform,
) -> None:
    properties = blue_green.resource(blue_green.web.service)["Properties"]
    assert properties["DeploymentConfiguration"].get("Strategy", "ROLLING") == "ROLLING"
    assert "BakeTimeInMinutes" not in properties["DeploymentConfiguration"]
    (balancer,) = properties["LoadBalancers"]
    assert "AdvancedConfiguration" not in balancer
    assert blue_green.web_edge.test_listener is None
    assert len(blue_green.web_edge.target_groups) == 1


def test_six_patterns_without_blue_green_split_over_two_rules(
    blue_green: BlueGreenPlatform,
) -> None:
    rules = [blue_green.resource(rule)["Properties"] for rule in blue_green.web_edge.rules]
    assert [rule["Priority"] for rule in rules] == [10, 20]
    assert [rule["Conditions"][0]["PathPatternConfig"]["Values"] for rule in rules] == [
        [LONG_PATTERN, *FIVE[:4]],
        FIVE[4:],
    ]


def test_web_edge_values_at_their_other_limits(blue_green: BlueGreenPlatform) -> None:
    web_edge = blue_green.web_edge
    (group,) = web_edge.target_groups
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "3600"} in blue_green.resource(
        group
    )["Properties"]["TargetGroupAttributes"]
    rules = blue_green.resource(web_edge.access_logs)["Properties"]["LifecycleConfiguration"]
    assert rules["Rules"][0]["ExpirationInDays"] == 1
    ingress = blue_green.resource(web_edge.security_group)["Properties"]["SecurityGroupIngress"]
    assert sorted((rule["CidrIp"], rule["FromPort"]) for rule in ingress) == [
        ("198.51.100.7/32", 80),
        ("198.51.100.7/32", 443),
        ("203.0.113.0/24", 80),
        ("203.0.113.0/24", 443),
    ]
    # The domain gave it a DNS-validated certificate, so it listens on 443
    blue_green.template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {"DomainName": "web.example.com", "ValidationMethod": "DNS"},
    )
    assert blue_green.resource(web_edge.listener)["Properties"]["Port"] == 443


def test_the_dashboard_takes_the_longest_name(blue_green: BlueGreenPlatform) -> None:
    properties = blue_green.resource(blue_green.dashboard.dashboard)["Properties"]
    assert properties["DashboardName"] == "D-_" + "d" * 252
    assert len(properties["DashboardName"]) == 255


# -- App Mesh weighted slots, synthesized once ---------------------------------------------


@dataclass(frozen=True)
class AppMeshPlatform:
    stack: Stack
    cluster: TradingCluster
    weighted: MeshedFargateService
    """Release.weighted(blue=70, green=30), green on image v2"""
    idle_green: MeshedFargateService
    """Release.weighted(blue=100, green=0)"""
    promoted: MeshedFargateService
    """Release.weighted(blue=0, green=100)"""
    slots: MeshedFargateService
    """public, with slots: no TradingEdge takes it"""
    template: Template

    def properties(self, construct: Any) -> dict[str, Any]:
        logical_id = self.stack.get_logical_id(construct.node.default_child)
        properties: dict[str, Any] = self.template.to_json()["Resources"][logical_id]["Properties"]
        return properties


@pytest.fixture(scope="module")
def app_mesh() -> AppMeshPlatform:
    stack = Stack(App(), "Mesh", env=ENV)
    cluster, repository, image = cluster_with_image(stack, mesh=Mesh.app_mesh())

    def service(id: str, name: str, release: Release, **props: Any) -> MeshedFargateService:
        return MeshedFargateService(
            stack, id, cluster=cluster, name=name, port=8080, image=image, release=release, **props
        )

    weighted = service(
        "Weighted",
        "weighted",
        Release.weighted(
            blue=70, green=30, green_image=ServiceImage(repository=repository, tag="v2")
        ),
    )
    idle_green = service("IdleGreen", "idle-green", Release.weighted(blue=100, green=0))
    promoted = service("Promoted", "promoted", Release.weighted(blue=0, green=100))
    slots = service("Slots", "slots", Release.weighted(blue=90, green=10), public=True)
    return AppMeshPlatform(
        stack, cluster, weighted, idle_green, promoted, slots, Template.from_stack(stack)
    )


def weighted_targets(platform: AppMeshPlatform, service: MeshedFargateService) -> list[Any]:
    membership = service.membership
    assert isinstance(membership, AppMeshMembership)
    spec = platform.properties(membership.route)["Spec"]
    return [
        (
            target["VirtualNode"]["Fn::GetAtt"][0],
            target["Weight"],
        )
        for target in spec["HttpRoute"]["Action"]["WeightedTargets"]
    ]


def node_id(platform: AppMeshPlatform, service: MeshedFargateService, slot: str) -> str:
    membership = service.membership
    assert isinstance(membership, AppMeshMembership)
    node = membership.virtual_nodes[slot]
    return platform.stack.get_logical_id(node.node.default_child)


def test_weighted_traffic_gives_a_route_of_two_weighted_targets(
    app_mesh: AppMeshPlatform,
) -> None:
    service = app_mesh.weighted
    assert weighted_targets(app_mesh, service) == [
        (node_id(app_mesh, service, "Blue"), 70),
        (node_id(app_mesh, service, "Green"), 30),
    ]


def test_both_weighted_slots_run_tasks_with_no_fixed_count(app_mesh: AppMeshPlatform) -> None:
    services = app_mesh.weighted.services
    assert set(services) == {"blue", "green"}
    for slot in services.values():
        assert "DesiredCount" not in app_mesh.properties(slot)
    assert set(app_mesh.weighted.scalings) == {"blue", "green"}


def test_the_green_slot_runs_the_green_image(app_mesh: AppMeshPlatform) -> None:
    services = app_mesh.weighted.services
    images = {
        slot: json.dumps(
            app_mesh.properties(service.task_definition)["ContainerDefinitions"][0]["Image"]
        )
        for slot, service in services.items()
    }
    assert ":v1" in images["blue"]
    assert ":v2" in images["green"]


@pytest.mark.parametrize(
    ("which", "weights", "idle"),
    [
        pytest.param("idle_green", (100, 0), "green", id="blue-100-green-0"),
        pytest.param("promoted", (0, 100), "blue", id="blue-0-green-100"),
    ],
)
def test_a_slot_at_zero_runs_no_tasks(
    app_mesh: AppMeshPlatform, which: str, weights: tuple[int, int], idle: str
) -> None:
    service: MeshedFargateService = getattr(app_mesh, which)
    assert [weight for _, weight in weighted_targets(app_mesh, service)] == list(weights)
    busy = {"blue", "green"} - {idle}
    assert app_mesh.properties(service.services[idle])["DesiredCount"] == 0
    for slot in busy:
        assert "DesiredCount" not in app_mesh.properties(service.services[slot])
    # The idle slot is not scaled, so nothing raises it off zero
    assert set(service.scalings) == busy


def test_a_domain_outside_its_hosted_zone_is_an_error(platform: Platform) -> None:
    with pytest.raises(
        ValueError, match=r"domain_name='api\.other\.org'.*in the zone example\.com"
    ):
        DomainOptions(domain_name="api.other.org", hosted_zone=platform.zone)


def test_a_domain_gets_an_alias_record_for_the_load_balancer(
    blue_green: BlueGreenPlatform,
) -> None:
    # GIVEN the web edge with a domain, and the api edge with a certificate and no domain
    # WHEN synthesized  THEN one A record in the zone aliases the web edge's load balancer
    (record,) = blue_green.template.find_resources("AWS::Route53::RecordSet").values()
    properties = record["Properties"]
    assert properties["Name"] == "web.example.com."
    assert properties["Type"] == "A"
    assert properties["HostedZoneId"] == "Z0123456789ABCDEFGHIJ"
    load_balancer = blue_green.stack.get_logical_id(
        blue_green.web_edge.load_balancer.node.default_child  # type: ignore[arg-type]
    )
    assert load_balancer in json.dumps(properties["AliasTarget"])
    assert blue_green.web_edge.dns_record is not None
    assert blue_green.edge.dns_record is None


def test_a_blue_green_service_without_an_edge_fails_at_synth() -> None:
    # GIVEN a public service released blue/green and no TradingEdge in front of it
    app = App()
    stack = Stack(app, "Lonely", env=ENV)
    cluster, _, image = cluster_with_image(stack)
    MeshedFargateService(
        stack,
        "Gw",
        cluster=cluster,
        name="gw",
        port=8082,
        image=image,
        public=True,
        release=Release.blue_green(),
    )
    # WHEN synthesized  THEN the error names the service and what to add (ECS would reject it)
    with pytest.raises(RuntimeError, match=r"'Lonely/Gw': release=Release.blue_green\(\) needs a"):
        app.synth()
