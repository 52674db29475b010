"""Bad input to MeshedFargateService and the options it takes fails where it is given, naming
the prop, the value and what is allowed; valid edge values pass.

No test synthesizes: each checks what the constructor or the options class does with its input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as sm
from inputs_support import Platform, platform_fixtures
from validation_support import (
    ECS_CLUSTER,
    SCANNED_REPOSITORY,
    assert_refused,
    bad,
    case,
    options_refused,
    problem_lines,
    refused,
    refused_held,
    seconds,
    timeout_not_shorter,
    walk,
)

from trading_constructs import (
    AlarmThresholds,
    CapacityStrategy,
    ConnectionPoolOptions,
    CustomMetricTarget,
    HealthCheckOptions,
    Mesh,
    MeshedFargateService,
    OutlierOptions,
    ResiliencePolicy,
    RetryOptions,
    ScalingOptions,
    ServiceSecret,
    TradingCluster,
)
from trading_constructs.service import FARGATE_CPU_MEMORY

Props = dict[str, Any]


# -- the platform services are built on ---------------------------------------------------


platform, tidy = platform_fixtures()
"""The shared platform (a Service Connect cluster): a failing service adds nothing to the tree,
since validation runs before Construct.__init__, and ``tidy`` removes what a test adds."""


@pytest.fixture
def build(platform: Platform) -> Callable[..., MeshedFargateService]:
    """Build a service on the shared platform: valid props (and a name of its own) but for
    those given."""
    return platform.service


def api_key(platform: Platform) -> sm.Secret:
    """A secret of the test's own (removed after it, with the rest of what it adds)."""
    return sm.Secret(platform.stack, "ApiKey", encryption_key=platform.cluster.key)


def resolve_props(props: Props | Callable[[Platform], Props], platform: Platform) -> Props:
    return props(platform) if callable(props) else props


# -- MeshedFargateService: values and types ------------------------------------------------

SERVICE = "^MeshedFargateService 'Test/Svc': "
NAME = "1 to 32 lower-case letters, digits and hyphens, starting with a letter"
PORT = "an integer from 1024 to 65535"
RESERVED = "a port other than the mesh proxy's 15000, 15001 and 9901"
CPU = "256, 512, 1024, 2048, 4096, 8192, 16384"
COUNT = "an integer from 1 to 1000"
RETENTION = "1, 3, 5, 7, 14, 30, 60, 90"
VARIABLE = "variable names of letters, digits and underscores"


def bad_variable(id: str, environment: dict[str, str]) -> Any:
    """A row: the one variable of ``environment`` has a name ECS refuses."""
    (name,) = environment
    return case(id, {"environment": environment}, bad("environment/secrets", name, VARIABLE))


SERVICE_REFUSED: dict[Any, list[Any]] = {
    ValueError: [
        refused(NAME, id="name-upper-case", name="Orders"),
        refused(NAME, id="name-leading-digit", name="1orders"),
        refused(NAME, id="name-leading-hyphen", name="-orders"),
        refused(NAME, id="name-trailing-hyphen", name="orders-"),
        refused(NAME, id="name-underscore", name="order_book"),
        refused(NAME, id="name-dot", name="orders.v1"),
        refused(NAME, id="name-empty", name=""),
        refused(NAME, id="name-33-chars", name="a" * 33),
        refused(NAME, id="name-none", name=None),
        refused(PORT, id="port-1023", port=1023),
        refused(PORT, id="port-0", port=0),
        refused(PORT, id="port-65536", port=65536),
        refused(PORT, id="port-bool", port=True),
        refused(PORT, id="port-float", port=8080.0),
        refused(RESERVED, id="port-envoy-ingress", port=15000),
        refused(RESERVED, id="port-envoy-egress", port=15001),
        refused(RESERVED, id="port-envoy-admin", port=9901),
        refused(CPU, id="cpu-300", cpu=300),
        refused(CPU, id="cpu-128", cpu=128, memory_mib=512),
        refused(CPU, id="cpu-32768", cpu=32768),
        refused(CPU, id="cpu-string", cpu="512"),
        refused(
            "with cpu=256: 512, 1024, 2048", id="memory-above-256-cpu", memory_mib=4096, cpu=256
        ),
        refused(
            "with cpu=256: 512, 1024, 2048",
            id="memory-off-the-256-cpu-sizes",
            memory_mib=1536,
            cpu=256,
        ),
        refused(
            "with cpu=1024: 2048 to 8192 in steps of 1024",
            id="memory-below-1024-cpu",
            memory_mib=1024,
            cpu=1024,
        ),
        refused(
            "with cpu=8192: 16384 to 61440 in steps of 4096",
            id="memory-off-step-8192-cpu",
            memory_mib=18432,
            cpu=8192,
        ),
        refused(
            "with cpu=16384: 32768 to 122880 in steps of 8192",
            id="memory-above-16384-cpu",
            memory_mib=131072,
            cpu=16384,
        ),
        case(
            "scaling-and-desired-count",
            {"scaling": ScalingOptions(), "desired_count": 2},
            re.escape(
                "scaling and desired_count=2 were both given (allowed: scaling, which owns the "
                "count, or desired_count with scaling=None)"
            ),
        ),
        refused(COUNT, id="desired-count-0", desired_count=0),
        refused(COUNT, id="desired-count-negative", desired_count=-1),
        refused(COUNT, id="desired-count-1001", desired_count=1001),
        refused(RETENTION, id="log-retention-31", log_retention_days=31),
        refused("1, 3", id="log-retention-0", log_retention_days=0),
        refused("3288, 3653", id="log-retention-3650", log_retention_days=3650),
        bad_variable("env-name-leading-digit", {"1PORT": "8080"}),
        bad_variable("env-name-hyphen", {"LOG-LEVEL": "info"}),
        bad_variable("env-name-space", {"LOG LEVEL": "info"}),
        bad_variable("env-name-empty", {"": "info"}),
        bad_variable("env-name-256-chars", {"V" * 256: "1"}),
        case(
            "secret-name-hyphen",
            lambda p: {"secrets": {"api-key": ServiceSecret(secret=api_key(p))}},
            bad("environment/secrets", "api-key", VARIABLE),
        ),
        case(
            "env-and-secret-clash",
            lambda p: {
                "environment": {"API_KEY": "not-a-secret", "LOG_LEVEL": "info"},
                "secrets": {"API_KEY": ServiceSecret(secret=api_key(p))},
            },
            bad("secrets", ["API_KEY"], "names not also set in environment"),
        ),
        case(
            "secret-is-an-arn",
            {"secrets": {"API_KEY": "arn:aws:secretsmanager:us-east-1:1:secret:k"}},
            bad(
                "secrets['API_KEY']", "arn:aws:secretsmanager:us-east-1:1:secret:k", "ServiceSecret"
            ),
        ),
        case(
            "secret-is-an-unwrapped-isecret",
            lambda p: {"secrets": {"API_KEY": api_key(p)}},
            re.escape("secrets['API_KEY']=<aws_cdk.aws_secretsmanager.Secret object at ")
            + r".*\(allowed: a ServiceSecret\)",
        ),
        refused(
            "MeshedFargateService instances",
            id="backend-is-a-name",
            shown="orders",
            backends=["orders"],
        ),
        refused(
            "MeshedFargateService instances", id="backend-is-none", shown=None, backends=[None]
        ),
        case(
            "backend-is-the-cluster",
            lambda p: {"backends": [p.cluster]},
            re.escape("backends=<trading_constructs.cluster.TradingCluster object at ")
            + r".*\(allowed: MeshedFargateService instances\)",
        ),
    ],
    TypeError: [
        refused("TradingCluster", id="cluster-name", cluster="Platform"),
        refused_held(
            "TradingCluster", ECS_CLUSTER, id="cluster-ecs-cluster", cluster="cluster.cluster"
        ),
        refused("a TradingCluster", id="cluster-none", cluster=None),
        refused("ServiceImage", id="image-uri", image="orders:v1"),
        refused_held("ServiceImage", SCANNED_REPOSITORY, id="image-repository", image="repository"),
        refused("a ServiceImage", id="image-none", image=None),
        refused("HealthCheckOptions", id="health-check-dict", health_check={"path": "/ready"}),
        refused("ScalingOptions", id="scaling-dict", scaling={"min_capacity": 1}),
        case(
            "scaling-custom-metric",
            {"scaling": CustomMetricTarget(metric_name="InFlight", target=10)},
            r"scaling=CustomMetricTarget\(.*\(allowed: ScalingOptions\)",
        ),
        refused("CapacityStrategy", id="capacity-dict", capacity={"spot_weight": 1}),
        case(
            "resilience-retry-options",
            {"resilience": RetryOptions()},
            r"resilience=RetryOptions\(.*\(allowed: ResiliencePolicy\)",
        ),
        case(
            "resilience-mesh",
            {"resilience": Mesh.service_connect()},
            r"resilience=Mesh\(.*ResiliencePolicy",
        ),
        refused("AlarmThresholds", id="alarm-thresholds-dict", alarm_thresholds={"error_logs": 5}),
        refused("RemovalPolicy", id="removal-policy-string", removal_policy="retain"),
        refused("RemovalPolicy", id="removal-policy-bool", removal_policy=True),
    ],
}
"""What a service refuses, by the error it raises: a wrong type is a TypeError, named before
jsii would fail on it; a bad value of the right type is a ValueError."""


@walk(SERVICE_REFUSED, "error")
def test_bad_service_props(
    platform: Platform,
    build: Callable[..., MeshedFargateService],
    error: type[Exception],
    props: Props | Callable[[Platform], Props],
    message: str,
) -> None:
    # GIVEN the shared platform  WHEN a service gets one prop that breaks a rule
    # THEN the error names that prop alone, with what is allowed
    with pytest.raises(error, match=f"{SERVICE}{message}"):
        build(**resolve_props(props, platform))
    # AND nothing was added to the tree: the checks run before the construct exists
    assert platform.stack.node.try_find_child("Svc") is None


def test_a_wrong_type_is_raised_before_value_problems(
    build: Callable[..., MeshedFargateService],
) -> None:
    # GIVEN a wrong type and bad values in one call
    # THEN the TypeError comes first, alone: the values are judged once the types are right
    with pytest.raises(TypeError, match=f"{SERVICE}scaling=60 is not allowed") as raised:
        build(name="Bad", port=80, scaling=60)
    assert "port=" not in str(raised.value)


def test_all_problems_of_one_service_come_in_one_error(
    platform: Platform, build: Callable[..., MeshedFargateService]
) -> None:
    # WHEN one call breaks eight rules
    with pytest.raises(ValueError) as raised:
        build(
            name="Orders",
            port=15001,
            cpu=1024,
            memory_mib=512,
            environment={"LOG-LEVEL": "info"},
            scaling=ScalingOptions(),
            desired_count=0,
            log_retention_days=31,
            backends=["orders"],
        )
    # THEN one error lists them all, in the order of the props
    first, problems = problem_lines(raised.value, " were both given")
    assert first == "MeshedFargateService 'Test/Svc': 8 invalid props:"
    assert problems == [
        "  - name='Orders'",
        "  - port=15001",
        "  - memory_mib=512",
        "  - environment/secrets='LOG-LEVEL'",
        "  - scaling and desired_count=0",
        "  - desired_count=0",
        "  - log_retention_days=31",
        "  - backends='orders'",
    ]
    assert platform.stack.node.try_find_child("Svc") is None


def test_a_service_cannot_be_its_own_backend(build: Callable[..., MeshedFargateService]) -> None:
    service = build()
    with pytest.raises(ValueError, match=f"{SERVICE}a service cannot be its own backend$"):
        service.add_backend(service)


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        case("name", "orders", bad("backend", "orders", "a MeshedFargateService")),
        case("none", None, bad("backend", None, "a MeshedFargateService")),
        case(
            "cluster",
            lambda p: p.cluster,
            re.escape("backend=<trading_constructs.cluster.TradingCluster object at ")
            + r".*\(allowed: a MeshedFargateService\)",
        ),
    ],
)
def test_a_backend_must_be_a_service(
    platform: Platform,
    build: Callable[..., MeshedFargateService],
    backend: Any,
    message: str,
) -> None:
    service = build()
    with pytest.raises(TypeError, match=f"{SERVICE}{message}"):
        service.add_backend(backend(platform) if callable(backend) else backend)


# -- MeshedFargateService: valid edges -----------------------------------------------------


@pytest.mark.parametrize(
    ("cpu", "memory_mib"),
    [
        pytest.param(cpu, memory, id=f"{cpu}-{memory}")
        for cpu, sizes in FARGATE_CPU_MEMORY.items()
        for memory in sorted({sizes[0], sizes[-1]})
    ]
    + [pytest.param(256, 1024, id="256-1024"), pytest.param(4096, 16384, id="4096-16384")],
)
def test_fargate_cpu_memory_edges_pass(
    build: Callable[..., MeshedFargateService], cpu: int, memory_mib: int
) -> None:
    task_definition = build(cpu=cpu, memory_mib=memory_mib).task_definition.node.default_child
    assert isinstance(task_definition, ecs.CfnTaskDefinition)
    assert (task_definition.cpu, task_definition.memory) == (str(cpu), str(memory_mib))


@pytest.mark.parametrize("port", [1024, 9900, 9902, 14999, 15002, 65535])
def test_port_edges_pass(build: Callable[..., MeshedFargateService], port: int) -> None:
    assert build(port=port).port == port


@pytest.mark.parametrize("name", ["a", "a" * 32, "a1", "order-book-2", "z" + "-9" * 15 + "x"])
def test_name_edges_pass(build: Callable[..., MeshedFargateService], name: str) -> None:
    assert build(name=name).app_container.container_name == name


@pytest.mark.parametrize("days", [1, 3653])
def test_log_retention_edges_pass(build: Callable[..., MeshedFargateService], days: int) -> None:
    assert build(log_retention_days=days).log_groups


@pytest.mark.parametrize("count", [1, 1000])
def test_a_fixed_desired_count_turns_scaling_off(
    platform: Platform, build: Callable[..., MeshedFargateService], count: int
) -> None:
    # WHEN a fixed count is asked for, with scaling=None
    service = build(desired_count=count, scaling=None)
    # THEN the service has that count and no scaling
    assert service.scaling is None
    cfn_service = service.service.node.default_child
    assert isinstance(cfn_service, ecs.CfnService)
    assert platform.stack.resolve(cfn_service.desired_count) == count


@pytest.mark.parametrize(
    "scaling",
    [None, ScalingOptions(min_capacity=1, max_capacity=1)],
    ids=["default", "given"],
)
def test_a_scaled_service_sets_no_desired_count(
    platform: Platform, build: Callable[..., MeshedFargateService], scaling: Any
) -> None:
    service = build(scaling=scaling)
    assert service.scaling is not None
    cfn_service = service.service.node.default_child
    assert isinstance(cfn_service, ecs.CfnService)
    assert platform.stack.resolve(cfn_service.desired_count) is None


def test_variables_secrets_and_backends_at_their_edges_pass(
    platform: Platform, build: Callable[..., MeshedFargateService]
) -> None:
    backend = build("Backend", name="orders", port=9090)
    secret = api_key(platform)
    service = build(
        environment={"_PRIVATE": "1", "V" * 255: "x", "logLevel": "info"},
        secrets={
            "API_KEY": ServiceSecret(secret=secret),
            "DB_PASSWORD": ServiceSecret(secret=secret, field="password"),
        },
        backends=[backend],
        health_check=HealthCheckOptions(path="/ready"),
        capacity=CapacityStrategy(fargate_base=0, spot_base=1),
        resilience=ResiliencePolicy(per_request_timeout=seconds(30)),
        alarm_thresholds=AlarmThresholds(error_logs=1),
        removal_policy=RemovalPolicy.DESTROY,
    )
    assert service.health_check.path == "/ready"


# -- HealthCheckOptions --------------------------------------------------------------------

COMMAND = "['CMD', '<program>', '<arg>', ...] or ['CMD-SHELL', '<command>'], none empty"
PATH = "an absolute URL path"


def test_health_check_timeout_order_is_judged_only_once_the_ranges_pass() -> None:
    # GIVEN an interval out of range and a timeout longer than it
    with pytest.raises(ValueError) as raised:
        HealthCheckOptions(interval=seconds(4), timeout=seconds(5))
    # THEN only the range is reported: the order follows once the interval is fixed
    assert str(raised.value) == (
        "HealthCheckOptions: interval='4 seconds' is not allowed (allowed: 5 to 300 seconds)"
    )


@pytest.mark.parametrize(
    "options",
    [
        {"interval": seconds(5), "timeout": seconds(2), "start_period": seconds(0), "retries": 1},
        {
            "interval": seconds(300),
            "timeout": seconds(60),
            "start_period": seconds(300),
            "retries": 10,
        },
        {"interval": seconds(6), "timeout": seconds(5)},
        {"path": "/"},
        {"path": "/" + "a" * 1023},
        {"path": "/v1/health-check_ready.~ok%20now"},
        {"command": ["CMD", "true"]},
        {"command": ("CMD-SHELL", "exit 0")},
    ],
    ids=[
        "low",
        "high",
        "timeout-just-below-interval",
        "root",
        "1024-chars",
        "unreserved-and-escapes",
        "cmd",
        "cmd-shell-tuple",
    ],
)
def test_health_check_edges_pass(options: Props) -> None:
    health = HealthCheckOptions(**options)
    assert health.container_health_check(8080).command[0] in ("CMD", "CMD-SHELL")


def test_the_default_health_check_runs_curl_without_a_shell() -> None:
    health = HealthCheckOptions(path="/v1/ready")
    command = health.container_health_check(8080).command
    assert command == ["CMD", "curl", "-fs", "http://localhost:8080/v1/ready"]


# -- ScalingOptions ------------------------------------------------------------------------

CAPACITY = "an integer from 1 to 1000"
PERCENT = "an integer from 10 to 90"
COOLDOWN = "0 to 3600 seconds"


def test_scaling_problems_are_reported_together() -> None:
    with pytest.raises(ValueError) as raised:
        ScalingOptions(min_capacity=0, cpu_target_percent=95, scale_in_cooldown=Duration.hours(2))
    message = str(raised.value)
    assert message.startswith("ScalingOptions: 3 invalid props:\n  - min_capacity=0")
    # AND the capacity order is not judged while a capacity is out of range
    assert "is below" not in message


@pytest.mark.parametrize(
    "options",
    [
        {"min_capacity": 1, "max_capacity": 1},
        {"min_capacity": 1000, "max_capacity": 1000},
        {"cpu_target_percent": 10, "memory_target_percent": 90},
        {"cpu_target_percent": 90, "memory_target_percent": 10},
        {"scale_out_cooldown": seconds(0), "scale_in_cooldown": seconds(3600)},
        {"custom_metric": CustomMetricTarget(metric_name="InFlight", target=0.001)},
    ],
    ids=["one-task", "most-tasks", "cpu-low", "cpu-high", "cooldowns", "custom-metric"],
)
def test_scaling_edges_pass(options: Props) -> None:
    assert ScalingOptions(**options).max_capacity >= 1


# -- CustomMetricTarget --------------------------------------------------------------------

NAMESPACE = "not starting with 'AWS/' (reserved for AWS)"
STATISTIC = "'Average', 'Sum', 'Maximum', 'Minimum', 'SampleCount'"
TARGET = "a number above 0"


@pytest.mark.parametrize("statistic", ["Average", "Sum", "Maximum", "Minimum", "SampleCount"])
def test_every_target_tracking_statistic_passes(statistic: str) -> None:
    target = CustomMetricTarget(
        metric_name="m" * 255, target=1e-6, statistic=statistic, namespace="TradingPlatform/x"
    )
    assert target.metric("orders").statistic == statistic


# -- RetryOptions --------------------------------------------------------------------------

HTTP_EVENTS = "a list of server-error, gateway-error, client-error, stream-error"
TCP_EVENTS = "a list of connection-error"


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": 0, "per_retry_timeout": Duration.millis(1)},
        {"max_retries": 10, "per_retry_timeout": Duration.minutes(5)},
        {"http_retry_events": ["server-error", "gateway-error", "client-error", "stream-error"]},
        {"http_retry_events": (), "tcp_retry_events": ["connection-error"]},
        {"http_retry_events": ["stream-error"], "tcp_retry_events": ()},
    ],
    ids=["fewest", "most", "every-http-event", "tcp-only", "http-only"],
)
def test_retry_edges_pass(options: Props) -> None:
    assert RetryOptions(**options).max_retries in range(11)


# -- OutlierOptions and ConnectionPoolOptions ----------------------------------------------


def test_outlier_and_connection_pool_edges_pass() -> None:
    OutlierOptions(
        max_server_errors=1,
        interval=seconds(1),
        base_ejection_duration=seconds(1),
        max_ejection_percent=1,
    )
    OutlierOptions(
        max_server_errors=1000,
        interval=Duration.minutes(5),
        base_ejection_duration=Duration.hours(1),
        max_ejection_percent=100,
    )
    ConnectionPoolOptions(max_connections=1, max_pending_requests=1)
    ConnectionPoolOptions(max_connections=10_000, max_pending_requests=10_000)


# -- ResiliencePolicy -------------------------------------------------------------------------


def test_the_retry_budget_is_judged_only_once_the_timeouts_pass() -> None:
    # GIVEN retries that do not fit, and an idle timeout out of range
    with pytest.raises(ValueError) as raised:
        ResiliencePolicy(
            retry=RetryOptions(max_retries=3, per_retry_timeout=seconds(5)),
            idle_timeout=Duration.millis(1),
        )
    # THEN the range comes alone
    assert str(raised.value).startswith("ResiliencePolicy: idle_timeout='1 milli' is not allowed")


@pytest.mark.parametrize(
    ("max_retries", "per_retry_timeout", "per_request_timeout"),
    [
        pytest.param(2, seconds(5), seconds(15), id="3-tries-of-5s-in-15s"),
        pytest.param(10, Duration.millis(1), Duration.millis(11), id="11-tries-of-1ms-in-11ms"),
        pytest.param(0, Duration.minutes(5), Duration.minutes(5), id="one-try-of-5min"),
        pytest.param(3, seconds(2), seconds(8), id="default-retries-in-8s"),
        pytest.param(10, Duration.minutes(5), Duration.minutes(55), id="most-tries-in-55min"),
    ],
)
def test_retries_that_exactly_fit_the_timeout_pass(
    max_retries: int, per_retry_timeout: Duration, per_request_timeout: Duration
) -> None:
    retry = RetryOptions(max_retries=max_retries, per_retry_timeout=per_retry_timeout)
    policy = ResiliencePolicy(retry=retry, per_request_timeout=per_request_timeout)
    assert policy.retry is retry


def test_resilience_edges_pass() -> None:
    ResiliencePolicy(
        retry=RetryOptions(max_retries=0, per_retry_timeout=Duration.millis(1)),
        per_request_timeout=Duration.millis(1),
        idle_timeout=seconds(1),
    )
    ResiliencePolicy(per_request_timeout=Duration.hours(1), idle_timeout=Duration.hours(1))


# -- Mesh ----------------------------------------------------------------------------------

KINDS = "'mutual-tls', 'service-connect', 'appmesh'"
ENVOY = "an App Mesh Envoy release tag such as 'v1.29.12.1-prod'"
MESH_NAME = "1 to 255 of A-Z a-z 0-9 _ -"


@pytest.mark.parametrize("name", ["istio", "AppMesh", "app-mesh", "", "service_connect"])
def test_an_unknown_mesh_name_is_an_error(name: str) -> None:
    # The name comes from `-c mesh=...`, so the error names that context key
    with pytest.raises(ValueError, match=f"^Mesh: {bad('mesh', name, KINDS)}\\)$"):
        Mesh.from_name(name)


def test_the_factories_validate_too() -> None:
    with pytest.raises(ValueError, match=f"^Mesh: {bad('envoy_version', 'v1.29', ENVOY)}"):
        Mesh.app_mesh(envoy_version="v1.29")
    with pytest.raises(ValueError, match=f"^Mesh: {bad('mesh_name', 'a/b', MESH_NAME)}"):
        Mesh.app_mesh(mesh_name="a/b")


@pytest.mark.parametrize("name", ["appmesh", "service-connect"])
def test_known_mesh_names_pass(name: str) -> None:
    resilience = ResiliencePolicy(per_request_timeout=seconds(30))
    mesh = Mesh.from_name(name, resilience=resilience)
    assert (mesh.kind, mesh.resilience) == (name, resilience)


def test_mesh_edges_pass() -> None:
    mesh = Mesh.app_mesh(envoy_version="v10.0.0.0-prod", mesh_name="M_" + "m" * 253)
    assert len(mesh.mesh_name or "") == 255
    assert Mesh.app_mesh(mesh_name="a").mesh_name == "a"


# -- AlarmThresholds -----------------------------------------------------------------------


OPTIONS_REFUSED: dict[Any, list[Any]] = {
    HealthCheckOptions: [
        refused(PATH, id="path-relative", path="health"),
        refused(PATH, id="path-empty", path=""),
        refused(PATH, id="path-space", path="/health check"),
        refused(PATH, id="path-query", path="/health?full=1"),
        refused(PATH, id="path-1025-chars", path="/" + "a" * 1024),
        refused(PATH, id="path-none", path=None),
        refused(COMMAND, id="command-string", command="curl -f localhost"),
        refused(COMMAND, id="command-alone", command=["CMD"]),
        refused(COMMAND, id="command-empty", command=[]),
        refused(COMMAND, id="command-no-cmd", command=["curl", "-f", "localhost"]),
        # a shell would run these characters, and ; or & would chain another command
        refused(PATH, id="path-semicolon", path="/health;reboot"),
        refused(PATH, id="path-dollar", path="/h$(id)"),
        refused(PATH, id="path-ampersand", path="/a&b"),
        refused(PATH, id="path-bad-escape", path="/a%zz"),
        # an empty command counts as healthy whatever the app does
        refused(COMMAND, id="command-shell-empty", command=["CMD-SHELL", " "]),
        refused(COMMAND, id="command-cmd-empty", command=["CMD", ""]),
        refused(COMMAND, id="command-shell-two-strings", command=["CMD-SHELL", "curl", "-f"]),
        refused(COMMAND, id="command-lower-case", command=["cmd-shell", "exit 0"]),
        refused("5 to 300", id="interval-4s", interval=seconds(4)),
        refused("5 to 300 seconds", id="interval-301s", interval=seconds(301)),
        refused("an aws_cdk.Duration", id="interval-int", interval=15),
        refused("2 to 60 seconds", id="timeout-1s", timeout=seconds(1)),
        refused("2 to 60 seconds", id="timeout-61s", timeout=seconds(61), interval=seconds(120)),
        refused("0 to 300 seconds", id="start-period-301s", start_period=seconds(301)),
        refused("an aws_cdk.Duration", id="start-period-string", start_period="20s"),
        refused("an integer from 1 to 10", id="retries-0", retries=0),
        refused("an integer from 1 to 10", id="retries-11", retries=11),
        refused("an integer from 1 to 10", id="retries-bool", retries=True),
        timeout_not_shorter("timeout-equals-interval", 15, 15, interval=seconds(15)),
        timeout_not_shorter("timeout-above-interval", 20, 10, interval=seconds(10)),
    ],
    ScalingOptions: [
        refused(CAPACITY, id="min-0", min_capacity=0),
        refused(CAPACITY, id="min-1001", min_capacity=1001),
        refused(CAPACITY, id="min-bool", min_capacity=True),
        refused(CAPACITY, id="max-0", max_capacity=0),
        refused(CAPACITY, id="max-1001", max_capacity=1001),
        case(
            "max-below-min",
            {"min_capacity": 5, "max_capacity": 4},
            re.escape(
                "max_capacity=4 is below min_capacity=5 (allowed: max_capacity >= min_capacity)"
            ),
        ),
        case(
            "max-below-default-min",
            {"max_capacity": 1},
            re.escape("max_capacity=1 is below min_capacity=2"),
        ),
        refused(PERCENT, id="cpu-target-5", cpu_target_percent=5),
        refused(PERCENT, id="cpu-target-95", cpu_target_percent=95),
        refused(PERCENT, id="cpu-target-float", cpu_target_percent=60.5),
        refused(PERCENT, id="memory-target-5", memory_target_percent=5),
        refused(PERCENT, id="memory-target-95", memory_target_percent=95),
        refused(COOLDOWN, id="scale-out-cooldown-3601s", scale_out_cooldown=seconds(3601)),
        refused(COOLDOWN, id="scale-in-cooldown-2h", scale_in_cooldown=Duration.hours(2)),
        refused("an aws_cdk.Duration", id="scale-in-cooldown-int", scale_in_cooldown=300),
        refused(
            "a CustomMetricTarget or None",
            id="custom-metric-dict",
            custom_metric={"metric_name": "InFlight", "target": 10},
        ),
        refused("a CustomMetricTarget or None", id="custom-metric-name", custom_metric="InFlight"),
    ],
    partial(CustomMetricTarget, metric_name="InFlight", target=10): [
        refused(NAMESPACE, id="namespace-aws-ecs", namespace="AWS/ECS"),
        refused(NAMESPACE, id="namespace-aws", namespace="AWS/"),
        refused(NAMESPACE, id="namespace-empty", namespace=""),
        refused(NAMESPACE, id="namespace-256", namespace="n" * 256),
        refused(STATISTIC, id="statistic-avg", statistic="avg"),
        refused(STATISTIC, id="statistic-lower", statistic="average"),
        refused(STATISTIC, id="statistic-p99", statistic="p99"),
        refused(TARGET, id="target-0", target=0),
        refused(TARGET, id="target-negative", target=-5.5),
        refused(TARGET, id="target-bool", target=True),
        refused(TARGET, id="target-string", target="10"),
        refused("1 to 255 characters", id="name-empty", metric_name=""),
        refused("1 to 255 characters", id="name-256", metric_name="m" * 256),
        refused("1 to 255 characters", id="name-none", metric_name=None),
    ],
    RetryOptions: [
        refused("from 0 to 10", id="max-retries-11", max_retries=11),
        refused("from 0 to 10", id="max-retries-negative", max_retries=-1),
        refused(
            "1 ms to 300000 ms", id="per-retry-timeout-0", per_retry_timeout=Duration.millis(0)
        ),
        refused(
            "1 ms to 300000 ms", id="per-retry-timeout-6min", per_retry_timeout=Duration.minutes(6)
        ),
        refused("an aws_cdk.Duration", id="per-retry-timeout-int", per_retry_timeout=2),
        refused(HTTP_EVENTS, id="http-event-unknown", http_retry_events=["5xx"]),
        refused(HTTP_EVENTS, id="http-event-string", http_retry_events="server-error"),
        refused(TCP_EVENTS, id="tcp-event-unknown", tcp_retry_events=["timeout"]),
        refused(
            "each event at most once",
            id="http-event-twice",
            shown=["server-error", "server-error"],
            http_retry_events=("server-error", "server-error"),
        ),
        refused(
            "each event at most once",
            id="tcp-event-twice",
            tcp_retry_events=["connection-error", "connection-error"],
        ),
        case(
            "events-both-empty",
            {"http_retry_events": (), "tcp_retry_events": ()},
            re.escape(
                "http_retry_events and tcp_retry_events are both empty (allowed: at least one "
                "event; use max_retries=0 to turn retries off)"
            ),
        ),
    ],
    OutlierOptions: [
        refused("from 1 to 1000", id="max-server-errors-0", max_server_errors=0),
        refused("from 1 to 1000", id="max-server-errors-1001", max_server_errors=1001),
        refused("1000 ms to 300000 ms", id="interval-999ms", interval=Duration.millis(999)),
        refused("1000 ms to 300000 ms", id="interval-6min", interval=Duration.minutes(6)),
        refused(
            "1000 ms to 3600000 ms",
            id="ejection-999ms",
            base_ejection_duration=Duration.millis(999),
        ),
        refused(
            "1000 ms to 3600000 ms", id="ejection-2h", base_ejection_duration=Duration.hours(2)
        ),
        refused("from 1 to 100", id="ejection-percent-0", max_ejection_percent=0),
        refused("from 1 to 100", id="ejection-percent-101", max_ejection_percent=101),
    ],
    ConnectionPoolOptions: [
        refused("1 to 10000", id="connections-0", max_connections=0),
        refused("1 to 10000", id="connections-10001", max_connections=10_001),
        refused("1 to 10000", id="pending-0", max_pending_requests=0),
        refused("1 to 10000", id="pending-10001", max_pending_requests=10_001),
        refused("1 to 10000", id="pending-bool", max_pending_requests=True),
    ],
    ResiliencePolicy: [
        refused("RetryOptions", id="retry-dict", retry={"max_retries": 1}),
        refused("OutlierOptions", id="outlier-string", outlier="strict"),
        refused("ConnectionPoolOptions", id="connection-pool-int", connection_pool=256),
        refused(
            "1 ms to 3600000 ms", id="per-request-timeout-0", per_request_timeout=Duration.millis(0)
        ),
        refused(
            "1 ms to 3600000 ms", id="per-request-timeout-2h", per_request_timeout=Duration.hours(2)
        ),
        refused(
            "1000 ms to 3600000 ms", id="idle-timeout-999ms", idle_timeout=Duration.millis(999)
        ),
        refused("1000 ms to 3600000 ms", id="idle-timeout-2h", idle_timeout=Duration.hours(2)),
        case(
            "4-tries-of-5s-in-15s",
            {"retry": RetryOptions(max_retries=3, per_retry_timeout=seconds(5))},
            re.escape(
                "retry: 4 tries of per_retry_timeout=5 seconds need 20000 ms, more than "
                "per_request_timeout=15 seconds (allowed: retries that fit inside the "
                "request's timeout)"
            ),
        ),
        case(
            "default-retries-in-5s",
            {"per_request_timeout": seconds(5)},
            re.escape("retry: 4 tries of per_retry_timeout=2 seconds need 8000 ms, more than"),
        ),
        case(
            "11-tries-of-1s-in-10s",
            {
                "retry": RetryOptions(max_retries=10, per_retry_timeout=seconds(1)),
                "per_request_timeout": seconds(10),
            },
            re.escape("retry: 11 tries of per_retry_timeout=1 second need 11000 ms"),
        ),
        case(
            "one-ms-over",
            {
                "retry": RetryOptions(max_retries=1, per_retry_timeout=Duration.millis(501)),
                "per_request_timeout": seconds(1),
            },
            re.escape("retry: 2 tries of per_retry_timeout=501 millis need 1002 ms"),
        ),
    ],
    Mesh: [
        refused(KINDS, id="kind-istio", kind="istio"),
        refused(KINDS, id="kind-camel-case", kind="AppMesh"),
        refused(KINDS, id="kind-underscore", kind="service_connect"),
        refused(KINDS, id="kind-none", kind=None),
        refused(ENVOY, id="envoy-without-v", envoy_version="1.29.12.1-prod", kind="appmesh"),
        refused(ENVOY, id="envoy-without-prod", envoy_version="v1.29.12.1", kind="appmesh"),
        refused(ENVOY, id="envoy-three-parts", envoy_version="v1.29.12-prod", kind="appmesh"),
        refused(ENVOY, id="envoy-latest", envoy_version="latest", kind="appmesh"),
        refused(MESH_NAME, id="mesh-name-space", mesh_name="trading mesh", kind="appmesh"),
        refused(MESH_NAME, id="mesh-name-empty", mesh_name="", kind="appmesh"),
        refused(MESH_NAME, id="mesh-name-256", mesh_name="m" * 256, kind="appmesh"),
        refused(
            "a ResiliencePolicy",
            id="resilience-dict",
            resilience={"per_request_timeout": 15},
            kind="service-connect",
        ),
    ],
    AlarmThresholds: [
        refused("from 1 to 100000", id="error-logs-0", error_logs=0),
        refused("from 1 to 100000", id="error-logs-100001", error_logs=100_001),
        refused("from 1 to 100000", id="proxy-5xx-0", proxy_5xx=0),
        refused("from 1 to 100000", id="proxy-5xx-float", proxy_5xx=2.5),
        refused("from 1 to 1000", id="tasks-below-desired-0", tasks_below_desired=0),
        refused("from 1 to 1000", id="tasks-below-desired-1001", tasks_below_desired=1001),
    ],
}
"""What each options class refuses: a row's props over valid ones, and the words of the
message (after ``<Class>: ``)."""


@options_refused(OPTIONS_REFUSED)
def test_bad_options(options_class: Any, options: dict[str, Any], message: str) -> None:
    # GIVEN an options class and props that break one of its rules
    # WHEN it is built  THEN it refuses them, naming the class, the prop, the value and
    # what is allowed
    assert_refused(options_class, options, message)


def test_alarm_threshold_edges_pass() -> None:
    AlarmThresholds(error_logs=1, proxy_5xx=1, tasks_below_desired=1)
    AlarmThresholds(error_logs=100_000, proxy_5xx=100_000, tasks_below_desired=1000)


def test_alarm_threshold_problems_are_reported_together() -> None:
    with pytest.raises(ValueError, match=r"^AlarmThresholds: 3 invalid props:\n  - error_logs=0"):
        AlarmThresholds(error_logs=0, proxy_5xx=0, tasks_below_desired=0)


# -- gaps found and closed: values AWS or jsii would reject --------------------------------


def test_two_services_of_one_name_on_one_cluster_is_an_error(
    build: Callable[..., MeshedFargateService],
) -> None:
    build("First", name="orders-dup")
    with pytest.raises(ValueError, match=r"^MeshedFargateService 'Test/Second': name='orders-dup'"):
        build("Second", name="orders-dup")


@pytest.mark.parametrize("days", [True, 30.0])
def test_log_retention_days_must_be_an_int(
    build: Callable[..., MeshedFargateService], days: object
) -> None:
    with pytest.raises(ValueError, match=f"{SERVICE}log_retention_days={days!r}"):
        build(log_retention_days=days)


def test_environment_values_must_be_strings(build: Callable[..., MeshedFargateService]) -> None:
    with pytest.raises(ValueError, match=re.escape("environment['PORT']=8080")):
        build(environment={"PORT": 8080})


def test_the_256_cpu_memory_message_does_not_promise_1536(
    build: Callable[..., MeshedFargateService],
) -> None:
    with pytest.raises(ValueError) as raised:
        build(cpu=256, memory_mib=1536)
    assert "in steps of 512" not in str(raised.value)


@pytest.mark.parametrize(
    "build_options",
    [
        lambda: HealthCheckOptions(interval=Duration.millis(5500)),
        lambda: ScalingOptions(scale_in_cooldown=Duration.millis(1500)),
    ],
    ids=["health-check-interval", "scaling-cooldown"],
)
def test_fractional_seconds_are_value_errors(build_options: Callable[[], object]) -> None:
    with pytest.raises(
        ValueError, match=r"^\w+: \w+='[^']+ millis' is not allowed .*whole seconds"
    ):
        build_options()


@pytest.mark.parametrize("mtls", [True, False], ids=["mutual-tls", "no-tls"])
def test_calling_a_public_service_inside_app_mesh_needs_its_plain_listener(
    platform: Platform, mtls: bool
) -> None:
    # GIVEN an App Mesh platform (a stack of the shared app, removed after the test) and a
    # public service (its listener takes the ALB's plain HTTP)
    stack = platform.stack_in("Mesh")
    mesh = Mesh.app_mesh() if mtls else Mesh.app_mesh(mtls=None)
    cluster = TradingCluster(stack, "Platform", mesh=mesh)
    image = platform.image
    gateway = MeshedFargateService(
        stack, "Gw", cluster=cluster, name="gw", port=8082, image=image, public=True
    )
    caller = MeshedFargateService(stack, "Svc", cluster=cluster, name="svc", port=8080, image=image)
    if not mtls:
        # WHEN the mesh has no mutual TLS  THEN the call is plain HTTP on both sides: allowed
        caller.add_backend(gateway)
        return
    # WHEN the mesh requires mutual TLS  THEN the caller's certificate would meet a plain
    # listener and every call would fail: rejected at synth, naming both services
    with pytest.raises(
        ValueError, match=r"^MeshedFargateService 'Mesh/Svc': backend 'gw' is public"
    ):
        caller.add_backend(gateway)
