"""The example's context values: what ``-c name=value`` turns into, and what it refuses."""

from __future__ import annotations

import pytest
from aws_cdk import App

from examples.trading_platform.app import _alarm_subscriptions, _domain, _flag, _mesh
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
    assert _flag(None, default=False) is False
    assert _flag("true", default=False) is True
    with pytest.raises(ValueError, match="allowed: true, false"):
        _flag("yes", default=False)
