"""The example's context values: what ``-c name=value`` turns into, and what it refuses."""

from __future__ import annotations

import pytest
from aws_cdk import App

from examples.trading_platform.app import (
    ContextValues,
    _alarm_subscriptions,
    _domain,
    _mesh,
    create_app,
)
from examples.trading_platform.platform_stack import DomainContext
from trading_constructs import AlarmSubscription

ZONE = {"hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com"}


def test_mutual_tls_is_the_default_mesh_and_the_others_are_asked_for() -> None:
    assert _mesh(App()).kind == "mutual-tls"
    assert _mesh(App(context={"mesh": "service-connect"})).kind == "service-connect"
    assert _mesh(App(context={"mesh": "appmesh"})).kind == "appmesh"


def test_the_docker_hub_secret_comes_from_context_on_the_mutual_tls_mesh() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf"
    mesh = _mesh(App(context={"docker_hub_credentials": arn}))
    assert (mesh.kind, mesh.docker_hub_credentials) == ("mutual-tls", arn)
    assert _mesh(App()).docker_hub_credentials is None


def test_a_domain_takes_all_three_values() -> None:
    assert _domain(App()) is None
    context = {"domain_name": "api.example.com", **ZONE}
    assert _domain(App(context=context)) == DomainContext(**context)


@pytest.mark.parametrize("missing", ["domain_name", "hosted_zone_id", "hosted_zone_name"])
def test_a_domain_missing_a_value_names_it(missing: str) -> None:
    context = {"domain_name": "api.example.com", **ZONE}
    del context[missing]
    with pytest.raises(ValueError, match=f"^context {missing} missing: .*all three, or none"):
        _domain(App(context=context))


def test_alarm_subscriptions_come_from_context() -> None:
    assert _alarm_subscriptions(App()) == []
    app = App(
        context={
            "alarm_email": "oncall@example.com",
            "alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:chatbot",
        }
    )
    assert _alarm_subscriptions(app) == [
        AlarmSubscription.email("oncall@example.com"),
        AlarmSubscription.topic("arn:aws:sns:us-east-1:123456789012:chatbot"),
    ]


def test_deletion_protection_is_a_true_or_false_flag() -> None:
    assert ContextValues(App()).flag("deletion_protection", default=False) is False
    values = ContextValues(App(context={"deletion_protection": "true"}))
    assert values.flag("deletion_protection", default=False) is True
    values = ContextValues(App(context={"deletion_protection": "yes"}))
    values.flag("deletion_protection", default=False)
    with pytest.raises(
        ValueError,
        match=r"^context: deletion_protection='yes' is not allowed \(allowed: true, false\)$",
    ):
        values.raise_if_any()


CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)


def test_numbers_arn_and_region_from_context_are_read_as_given() -> None:
    context = {
        "nat_gateways": "2",
        "green_weight": 10,
        "certificate_arn": CERTIFICATE_ARN,
        "region": "eu-west-1",
    }
    values = ContextValues(App(context=context))
    assert values.integer("nat_gateways", default=3, low=1, high=3) == 2
    assert values.integer("green_weight", default=0, low=0, high=100) == 10
    assert values.certificate_arn() == CERTIFICATE_ARN
    assert values.region("us-east-1") == "eu-west-1"
    values.raise_if_any()
    # AND left out, each takes its default
    empty = ContextValues(App())
    assert empty.integer("nat_gateways", default=3, low=1, high=3) == 3
    assert (empty.certificate_arn(), empty.region("us-east-1")) == (None, "us-east-1")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"nat_gateways": "two"},
            "nat_gateways='two' is not allowed (allowed: an integer from 1 to 3)",
        ),
        (
            {"nat_gateways": "0"},
            "nat_gateways='0' is not allowed (allowed: an integer from 1 to 3)",
        ),
        (
            {"green_weight": "150"},
            "green_weight='150' is not allowed (allowed: an integer from 0 to 100)",
        ),
        (
            {"green_weight": "ten"},
            "green_weight='ten' is not allowed (allowed: an integer from 0 to 100)",
        ),
        (
            {"certificate_arn": "arn:aws:iam::123456789012:server-certificate/api"},
            "certificate_arn='arn:aws:iam::123456789012:server-certificate/api' is not allowed "
            "(allowed: an ACM certificate ARN, arn:aws:acm:<region>:<account>:certificate/<id>)",
        ),
        (
            {"region": "US East"},
            "region='US East' is not allowed (allowed: a Region code, such as us-east-1)",
        ),
        (
            {"registry_scanning": "on"},
            "registry_scanning='on' is not allowed (allowed: true, false)",
        ),
        ({"control_tower": "1"}, "control_tower='1' is not allowed (allowed: true, false)"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_a_bad_context_value_fails_before_synth_naming_it(
    context: dict[str, str], message: str
) -> None:
    # GIVEN one bad -c value WHEN the app is built THEN the error names it, as given, and
    # what is allowed, in the library's words, before any construct is made
    with pytest.raises(ValueError) as raised:
        create_app(context)
    assert str(raised.value) == f"context: {message}"


def test_every_bad_context_value_is_in_one_error() -> None:
    with pytest.raises(ValueError) as raised:
        create_app({"nat_gateways": "two", "certificate_arn": "not-an-arn"})
    lines = str(raised.value).splitlines()
    assert lines[0] == "context: 2 invalid values:"
    assert [line.split("=")[0] for line in lines[1:]] == ["  - nat_gateways", "  - certificate_arn"]
