"""Bad input, by category: ranges and grammars of values. CloudWatch metric names and
namespaces take printable ASCII, spaces included; VPC blocks keep out of the ranges AWS says a
VPC cannot or should not use.
"""

from __future__ import annotations

from typing import Any

import pytest
from validation_support import bad, refused

from trading_constructs import CustomMetricTarget, VpcOptions

NAME = "1 to 255 characters of printable ASCII (spaces too), not all spaces"
NAMESPACE = NAME + ", not starting with ':'"


@pytest.mark.parametrize(
    ("props", "message"),
    [
        refused(NAME, id="name-all-spaces", metric_name="   "),
        refused(NAME, id="name-tab", metric_name="in\tflight"),
        refused(NAME, id="name-not-ascii", metric_name="débit"),
        refused(NAMESPACE, id="namespace-colon", namespace=":Trading"),
        refused(NAMESPACE, id="namespace-all-spaces", namespace=" "),
    ],
)
def test_bad_cloudwatch_names(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^CustomMetricTarget: {message}"):
        CustomMetricTarget(**{"metric_name": "InFlight", "target": 10, **props})


def test_cloudwatch_names_may_have_spaces() -> None:
    # CloudWatch allows spaces in metric names and namespaces
    metric = CustomMetricTarget(
        metric_name="Requests in flight", namespace="Trading Platform/Orders", target=10
    )
    assert metric.metric("orders").metric_name == "Requests in flight"


@pytest.mark.parametrize(
    ("cidr", "reserved"),
    [
        ("169.254.0.0/16", "169.254.0.0/16 (link-local, which no VPC can use)"),
        ("172.17.0.0/16", "172.17.0.0/16 (used by AWS services (Docker's bridge)"),
        ("172.17.128.0/20", "172.17.0.0/16"),
    ],
)
def test_a_vpc_keeps_out_of_the_ranges_aws_reserves(cidr: str, reserved: str) -> None:
    with pytest.raises(
        ValueError, match=f"^VpcOptions: {bad('cidr', cidr, f'a block outside {reserved}')}"
    ):
        VpcOptions(cidr=cidr)


def test_a_private_range_beside_them_passes() -> None:
    assert VpcOptions(cidr="172.16.0.0/16").cidr == "172.16.0.0/16"
