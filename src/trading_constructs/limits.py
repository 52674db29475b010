"""CloudFormation's per-stack limits, checked at synthesis with advice that names services.

A stack holds at most 500 resources. A platform passes that near 27 services on Service
Connect (about 17 resources each) or 15 on App Mesh (about 28), and CloudFormation would
refuse it only at deploy time. The check runs once every construct exists and says how many
resources each service of the stack costs and which to move into a stack of their own.
"""

from __future__ import annotations

import math
import typing

import jsii
from aws_cdk import CfnResource, Stack
from constructs import IConstruct, IValidation

MAX_RESOURCES = 500
"""CloudFormation's limit of resources per stack."""

SECURITY_GROUP_RULES = 60
"""Inbound rules, and separately outbound rules, per security group: Amazon VPC's default
quota ("Inbound or outbound rules per security group", adjustable)."""

ALB_RULES = 100
"""Rules per Application Load Balancer, default rules excluded: Elastic Load Balancing's
default quota (adjustable)."""

QUOTA_CONTEXT = "trading-constructs:quota:"
"""Context key prefix of an account's raised quota, e.g.
``-c trading-constructs:quota:security-group-rules=120`` or ``...:alb-rules=200``."""

_WATCHED = "_trading_constructs_limits"


def watch_stack_limits(construct: IConstruct) -> None:
    """Check the limits of ``construct``'s stack at synthesis (once per stack)."""
    stack = Stack.of(construct)
    if not getattr(stack, _WATCHED, False):
        stack.node.add_validation(_StackLimits(stack))
        setattr(stack, _WATCHED, True)


def quota(scope: IConstruct, name: str, default: int) -> int:
    """An adjustable AWS quota: its default, unless the context raises it for this account
    (``trading-constructs:quota:<name>``)."""
    raised = scope.node.try_get_context(f"{QUOTA_CONTEXT}{name}")
    if raised is None:
        return default
    if isinstance(raised, bool) or not str(raised).isdigit() or int(raised) < 1:
        raise ValueError(
            f"context {QUOTA_CONTEXT}{name}={raised!r} is not allowed (allowed: a whole number "
            "above 0, the account's raised quota)"
        )
    return int(raised)


def resources_of(construct: IConstruct, stack: Stack) -> int:
    """CloudFormation resources under ``construct`` that belong to ``stack`` (not to a
    nested stack of it)."""
    return sum(
        1
        for child in construct.node.find_all()
        if isinstance(child, CfnResource) and Stack.of(child) is stack
    )


@jsii.implements(IValidation)
class _StackLimits:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def validate(self) -> list[str]:
        total = resources_of(self.stack, self.stack)
        if total <= MAX_RESOURCES:
            return []
        services = _services_of(self.stack)
        costs = {s.node.path: resources_of(s, self.stack) for s in services}
        advice = "move services into a stack of their own (one stack per service or group)"
        if costs:
            average = sum(costs.values()) / len(costs)
            to_move = math.ceil((total - MAX_RESOURCES) / average)
            movable = list(costs)[-to_move:]
            advice = (
                f"move at least {to_move} of its {len(costs)} services into another stack, "
                f"for example {', '.join(repr(p) for p in movable)} (each service costs "
                f"{min(costs.values())} to {max(costs.values())} resources here); see the "
                "README's multi-stack layout"
            )
        return [
            f"Stack {self.stack.node.path!r} has {total} resources, more than CloudFormation's "
            f"{MAX_RESOURCES} per stack: {advice}"
        ]


def _services_of(stack: Stack) -> list[typing.Any]:
    from .service import MeshedFargateService

    return [
        child
        for child in stack.node.find_all()
        if isinstance(child, MeshedFargateService) and Stack.of(child) is stack
    ]
