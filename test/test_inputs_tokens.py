"""Bad input, by category: tokens. A token (a value CloudFormation resolves at deploy time)
is accepted wherever a value is, and skipped by the checks; where synthesis itself needs the
value (CDK carves subnets, counts NAT gateways, checks the Service Connect port, counts list
items), it is refused with a message that names the prop and says why, showing the token as a
token, never as the huge number CDK encodes a number token as.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import Duration, Fn, Token
from aws_cdk import aws_kms as kms
from inputs_support import Platform, platform_fixtures
from validation_support import case

from trading_constructs import (
    AlarmThresholds,
    CapacityStrategy,
    CustomMetricTarget,
    HealthCheckOptions,
    MeshTlsOptions,
    PullThroughCache,
    Release,
    ResiliencePolicy,
    RetryOptions,
    ScalingOptions,
    ScannedRepository,
    TargetHealthOptions,
    TradingEdge,
    VpcOptions,
)


def number(name: str) -> Any:
    return Token.as_number(Fn.import_value(name))


def string(name: str) -> str:
    return Token.as_string(Fn.import_value(name))


def strings(name: str) -> list[str]:
    return Token.as_list(Fn.import_value(name))


platform, tidy = platform_fixtures()


CONCRETE = r"is not allowed \(allowed: a concrete value, not a token: "
NO_ITEMS = r"is not allowed \(allowed: a list of .*; a list token has no items at synth"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        case(
            "port",
            lambda p: p.service("Svc", port=number("Port")),
            f"port='\\$\\{{Token.*{CONCRETE}",
        ),
        case(
            "log-retention-days",
            lambda p: p.service("Svc", log_retention_days=number("Days")),
            f"log_retention_days='\\$\\{{Token.*{CONCRETE}it selects one of CloudWatch Logs'",
        ),
        case(
            "backends-list-token",
            lambda p: p.service("Svc", backends=strings("Backends")),
            f"backends=.*{NO_ITEMS}",
        ),
        case(
            "nat-gateways",
            lambda p: VpcOptions(nat_gateways=number("Nat")),
            f"nat_gateways='\\$\\{{Token.*{CONCRETE}CDK creates the gateways at synth",
        ),
        case(
            "subnet-mask",
            lambda p: VpcOptions(private_subnet_mask=number("Mask")),
            f"private_subnet_mask='\\$\\{{Token.*{CONCRETE}CDK carves the subnets at synth",
        ),
        case(
            "availability-zones-list-token",
            lambda p: VpcOptions(availability_zones=strings("AZs")),
            f"availability_zones=.*{NO_ITEMS}",
        ),
        case(
            "path-patterns-list-token",
            lambda p: TradingEdge(
                p.stack, "Edge", cluster=p.cluster, service=p.gateway, path_patterns=strings("P")
            ),
            f"path_patterns=.*{NO_ITEMS}",
        ),
        case(
            "ingress-cidrs-list-token",
            lambda p: TradingEdge(
                p.stack, "Edge", cluster=p.cluster, service=p.gateway, ingress_cidrs=strings("C")
            ),
            f"ingress_cidrs=.*{NO_ITEMS}",
        ),
    ],
)
def test_a_token_synthesis_needs_is_refused_naming_the_prop(
    platform: Platform, make: Callable[[Platform], Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        make(platform)
    assert "e+289" not in str(raised.value)  # a number token is shown as a token


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: MeshTlsOptions(cert_days=number("Days")), id="cert-days"),
        pytest.param(lambda: MeshTlsOptions(renew_before_days=number("Days")), id="renew-days"),
        pytest.param(
            lambda: Release.weighted(blue=number("Blue"), green=number("Green")), id="weights"
        ),
        pytest.param(
            lambda: ResiliencePolicy(retry=RetryOptions(max_retries=number("Retries"))),
            id="retries",
        ),
        pytest.param(
            lambda: CapacityStrategy(
                fargate_base=number("A"),
                fargate_weight=number("B"),
                spot_base=number("C"),
                spot_weight=number("D"),
            ),
            id="capacity",
        ),
        pytest.param(
            lambda: ScalingOptions(
                min_capacity=number("Min"),
                max_capacity=number("Max"),
                cpu_target_percent=number("Cpu"),
                scale_in_cooldown=Duration.seconds(number("In")),
            ),
            id="scaling",
        ),
        pytest.param(
            lambda: HealthCheckOptions(
                retries=number("Retries"),
                interval=Duration.seconds(number("Interval")),
                path=string("Path"),
            ),
            id="health-check",
        ),
        pytest.param(
            lambda: TargetHealthOptions(
                healthy_threshold=number("Healthy"),
                timeout=Duration.seconds(number("Timeout")),
                healthy_http_codes=string("Codes"),
            ),
            id="target-health",
        ),
        pytest.param(lambda: AlarmThresholds(error_logs=number("Errors")), id="thresholds"),
        pytest.param(
            lambda: CustomMetricTarget(
                metric_name=string("Name"), namespace=string("Namespace"), target=number("T")
            ),
            id="custom-metric",
        ),
    ],
)
def test_options_accept_tokens(make: Callable[[], Any]) -> None:
    assert make() is not None


def test_constructs_accept_tokens_where_cloudformation_takes_them(platform: Platform) -> None:
    service = platform.service(
        "Svc",
        # the name stays concrete: construct ids, hence logical ids, derive from it
        name="tokens",
        cpu=number("Cpu"),
        memory_mib=number("Memory"),
        scaling=None,
        desired_count=number("Count"),
        environment={"LOG_LEVEL": string("Level")},
        public=True,
    )
    edge = TradingEdge(
        platform.stack,
        "Edge",
        cluster=platform.cluster,
        service=service,
        path_patterns=["/api/*", string("Pattern")],
        ingress_cidrs=[string("Cidr")],
        access_log_days=number("Days"),
    )
    repository = ScannedRepository(
        platform.stack,
        "Repo2",
        key=kms.Key.from_key_arn(platform.stack, "TokenKey", string("KeyArn")),
        repository_name=string("RepositoryName"),
    )
    cache = PullThroughCache(
        platform.stack,
        "Cache",
        key=platform.key,
        prefix=string("Prefix"),
        keep_last_images=number("N"),
    )
    assert edge.rules and repository.repository and cache.rule
