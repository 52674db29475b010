"""Bad input, by category: limits. A load balancer takes 100 rules (adjustable) of at most 5
condition values and 5 wildcards each (not adjustable); a security group takes 60 inbound and
60 outbound rules (adjustable). Input beyond them fails at synth naming the prop; an account
with a raised quota says so in the context (``trading-constructs:quota:<name>``).
"""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_certificatemanager as acm
from inputs_support import CERTIFICATE_ARN, ENV, Platform, platform_fixtures, unique_name
from validation_support import bad

from trading_constructs import MeshedFargateService
from trading_constructs.edge import _rules_of
from trading_constructs.limits import quota

platform, tidy = platform_fixtures()


@pytest.mark.parametrize(
    ("patterns", "rules"),
    [
        # five to a rule while the wildcards fit: as edges always split them
        ([f"/p{i}/*" for i in range(6)], [5, 1]),
        ([f"/p{i}" for i in range(10)], [5, 5]),
        # three wildcards each: two would be six, so one to a rule
        (["/a/*/*/*", "/b/*/*/*", "/c"], [1, 2]),
    ],
)
def test_rules_take_five_patterns_and_five_wildcards(patterns: list[str], rules: list[int]) -> None:
    assert [len(rule) for rule in _rules_of(patterns)] == rules


def test_more_rules_than_a_load_balancer_takes_are_refused(platform: Platform) -> None:
    patterns = [f"/p{i}" for i in range(501)]  # 101 rules of 5
    message = bad("path_patterns", "501 patterns", "patterns that fit 100 listener rules")
    with pytest.raises(ValueError, match=message + r".*they need 101"):
        platform.edge(path_patterns=patterns)


def test_more_inbound_rules_than_the_load_balancers_group_takes_are_refused(
    platform: Platform,
) -> None:
    # 31 ranges on 80 and 443 are 62 rules
    cidrs = [f"10.{i}.0.0/16" for i in range(31)]
    certificate = acm.Certificate.from_certificate_arn(
        platform.stack, "Certificate", CERTIFICATE_ARN
    )
    message = bad(
        "ingress_cidrs/test_cidrs",
        "62 inbound rules",
        "at most 60 inbound rules in the load balancer's security group",
    )
    with pytest.raises(ValueError, match=message):
        platform.edge(ingress_cidrs=cidrs, certificate=certificate)


def test_a_call_beyond_the_security_group_quota_is_refused(platform: Platform) -> None:
    # GIVEN an account whose quota is 1 rule a direction (the context says so)
    tight = Stack(platform.app, "Tight", env=ENV)
    tight.node.set_context("trading-constructs:quota:security-group-rules", 1)
    caller = MeshedFargateService(
        tight,
        "Caller",
        cluster=platform.cluster,
        name=unique_name(),
        image=platform.image,
        port=8080,
    )
    # WHEN the caller, whose HTTPS rule to AWS APIs is its one outbound rule, calls a backend
    # THEN the call is refused, naming the group that would overflow
    allowed = (
        "a call within the security group quota: 'Tight/Caller' would have 2 outbound rules, "
        "more than 1"
    )
    with pytest.raises(ValueError, match=bad("backend", "gateway", allowed)):
        caller.add_backend(platform.gateway)


def test_a_raised_quota_comes_from_the_context() -> None:
    app = App(context={"trading-constructs:quota:alb-rules": "200"})
    stack = Stack(app, "Quota")
    assert quota(stack, "alb-rules", 100) == 200
    assert quota(stack, "security-group-rules", 60) == 60


def test_a_quota_that_is_not_a_number_is_refused() -> None:
    stack = Stack(App(context={"trading-constructs:quota:alb-rules": "lots"}), "Quota")
    message = (
        r"context trading-constructs:quota:alb-rules='lots' is not allowed \(allowed: a whole "
        "number"
    )
    with pytest.raises(ValueError, match=message):
        quota(stack, "alb-rules", 100)
