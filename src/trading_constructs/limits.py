"""CloudFormation's per-stack limits, checked at synthesis with advice that names services.

A stack holds at most 500 resources, 200 outputs, 200 parameters and 200 mappings, and its
template at most 1 MB. A platform passes 500 resources near 27 services on Service Connect
(about 17 resources each) or 15 on App Mesh (about 28), and CloudFormation would refuse it only
at deploy time. The check runs once every construct exists and says how many resources each
service of the stack costs and which to move into a stack of their own.

The template's size is estimated from the resolved properties of its resources (the template
itself is written only after every check ran); that costs about 2 ms per resource, so it runs
only on stacks of more than ``SIZE_CHECK_FROM`` resources. Below that a template reaches 1 MB
only through resources of several kilobytes each, and the one such resource of ours that
grows with its props, the dashboard, checks its own size.
"""

from __future__ import annotations

import json
import math
import typing

import jsii
from aws_cdk import CfnMapping, CfnOutput, CfnParameter, CfnResource, Stack
from constructs import IConstruct, IValidation

MAX_RESOURCES = 500
"""CloudFormation's limit of resources per stack."""

MAX_TEMPLATE_BYTES = 1_000_000
"""CloudFormation's limit of a template's size (uploaded through S3, as the CDK CLI does)."""

MAX_DECLARATIONS = {"CfnOutput": 200, "CfnParameter": 200, "CfnMapping": 200}
"""CloudFormation's limits of outputs, parameters and mappings per template."""

SIZE_CHECK_FROM = 150
"""Stacks with more resources than this get their template size estimated at synthesis."""

# The estimate is of each resource's properties as CDK writes them (JSON, one-space indent,
# nested two levels deep) and what every resource adds beside them (type, path metadata,
# DependsOn, policies): measured 0.81 of the real size on the example, so it is scaled up.
_PER_RESOURCE_BYTES = 200
_ESTIMATE_SCALE = 1.25
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


def estimated_template_bytes(stack: Stack, resources: list[CfnResource]) -> int:
    """About how many bytes ``resources`` take in ``stack``'s template (see the module doc)."""
    properties = stack.resolve([resource._cfn_properties for resource in resources])
    rendered = (json.dumps(p, indent=1) for p in properties)
    raw = sum(len(text) + 2 * text.count("\n") + _PER_RESOURCE_BYTES for text in rendered)
    return math.ceil(raw * _ESTIMATE_SCALE)


@jsii.implements(IValidation)
class _StackLimits:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def validate(self) -> list[str]:
        resources, declared = self._elements()
        problems = [
            f"Stack {self.stack.node.path!r} has {count} {kind[3:].lower()}s, more than "
            f"CloudFormation's {MAX_DECLARATIONS[kind]} per template: move the constructs "
            "that add them into another stack"
            for kind, count in declared.items()
            if count > MAX_DECLARATIONS[kind]
        ]
        if len(resources) > MAX_RESOURCES:
            problems.append(
                f"Stack {self.stack.node.path!r} has {len(resources)} resources, more than "
                f"CloudFormation's {MAX_RESOURCES} per stack: {self._advice(len(resources))}"
            )
        elif len(resources) > SIZE_CHECK_FROM:
            size = estimated_template_bytes(self.stack, resources)
            if size > MAX_TEMPLATE_BYTES:
                problems.append(
                    f"Stack {self.stack.node.path!r} has a template of about {size:,} bytes, "
                    f"more than CloudFormation's {MAX_TEMPLATE_BYTES:,}: "
                    f"{self._advice(len(resources), size)}"
                )
        return problems

    def _elements(self) -> tuple[list[CfnResource], dict[str, int]]:
        resources: list[CfnResource] = []
        declared = dict.fromkeys(MAX_DECLARATIONS, 0)
        for child in self.stack.node.find_all():
            if Stack.of(child) is not self.stack:
                continue
            if isinstance(child, CfnResource):
                resources.append(child)
            elif isinstance(child, (CfnOutput, CfnParameter, CfnMapping)):
                declared[type(child).__name__] += 1
        return resources, declared

    def _advice(self, total: int, size: int | None = None) -> str:
        """Which services to move: enough of the last ones to bring the stack under."""
        services = _services_of(self.stack)
        costs = {s.node.path: resources_of(s, self.stack) for s in services}
        if not costs:
            return "move constructs into a stack of their own (see the README's multi-stack layout)"
        share = 1 - (MAX_TEMPLATE_BYTES / size if size else MAX_RESOURCES / total)
        to_move = min(
            len(costs), max(1, math.ceil(share * total / (sum(costs.values()) / len(costs))))
        )
        movable = list(costs)[-to_move:]
        return (
            f"move at least {to_move} of its {len(costs)} services into another stack, "
            f"for example {', '.join(repr(p) for p in movable)} (each service costs "
            f"{min(costs.values())} to {max(costs.values())} resources here); see the "
            "README's multi-stack layout"
        )


def _services_of(stack: Stack) -> list[typing.Any]:
    from .service import MeshedFargateService

    return [
        child
        for child in stack.node.find_all()
        if isinstance(child, MeshedFargateService) and Stack.of(child) is stack
    ]
