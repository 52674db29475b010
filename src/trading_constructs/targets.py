"""What a load balancer's target group must be for a Fargate service to register in it.

A target group of this app is read at synth (its CloudFormation resource says its target
type, protocol and VPC, and its listeners say whether one forwards to it); an imported one
is taken as given. Each check names the argument of ``attach_to_target_group`` to change,
instead of leaving ECS or the load balancer to refuse the deployment.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elb
from constructs import Dependable, IValidation

from ._validation import (
    CONNECTABLE,
    TARGET_GROUP,
    Problems,
    check_argument,
    check_type,
    is_token,
)


def check_target(
    owner: str,
    target_group: Any,
    load_balancer: Any,
    alternate_target: Any,
    *,
    vpc: ec2.IVpc,
    blue_green: bool,
    slots: int,
) -> None:
    """The arguments of ``attach_to_target_group``: their kinds, then what the group must be
    for the service (``blue_green``: its release is ECS native blue/green; ``slots``: how
    many ECS services it runs). A wrong kind raises at once, as a ``TypeError``."""
    check_argument(owner, "target_group", target_group, TARGET_GROUP)
    check_argument(owner, "load_balancer", load_balancer, CONNECTABLE)
    check_type(owner, "alternate_target", alternate_target, ecs.AlternateTarget)
    problems = Problems(owner)
    if blue_green and alternate_target is None:
        problems.add(
            "alternate_target",
            None,
            "an aws_ecs.AlternateTarget naming the green target group: the service's release "
            "is Release.blue_green(), which shifts traffic to it",
        )
    if slots > 1:
        problems.note(
            f"a service of {slots} slots (Release.weighted) cannot be a load balancer's target: "
            "only its first slot would register (allowed: Release.rolling() or "
            "Release.blue_green() for a service behind a load balancer)"
        )
    _check_group(problems, target_group, vpc)
    problems.raise_if_any()


def _check_group(problems: Problems, target_group: Any, vpc: ec2.IVpc) -> None:
    """A group of this app: IP targets (Fargate tasks have no instance), plain HTTP (the app
    port speaks HTTP), in the service's VPC. Its listener may come later in the code, so that
    is checked at synthesis (``NeedsListener``)."""
    resource = target_group.node.default_child
    if not isinstance(resource, elb.CfnTargetGroup):
        return  # imported: nothing is known at synth
    shown = target_group.node.path
    stack = Stack.of(target_group)
    # the L2 fills these lazily, as targets register: resolved, they say what it has now
    target_type, protocol = stack.resolve(resource.target_type), stack.resolve(resource.protocol)
    if target_type is not None and not is_token(target_type) and target_type != "ip":
        problems.add(
            "target_group",
            shown,
            f"a group of target_type=TargetType.IP: Fargate tasks register by IP, not as "
            f"{target_type!r} targets",
        )
    if protocol is not None and not is_token(protocol) and protocol != "HTTP":
        problems.add(
            "target_group",
            shown,
            f"a group of protocol=ApplicationProtocol.HTTP: the service's port speaks plain "
            f"HTTP, not {protocol}",
        )
    if _other_vpc(target_group, resource.vpc_id, vpc.vpc_id):
        problems.add(
            "target_group",
            shown,
            f"a group in the service's VPC {vpc.node.path!r}, the cluster's (this one is in "
            "another VPC)",
        )


def _other_vpc(target_group: Any, group_vpc: str | None, service_vpc: str) -> bool:
    """Whether two VPC ids are known to differ: resolved in the group's stack (one VPC's id
    is a reference to the same resource, through whichever token), unless one is concrete and
    the other a reference, which synth cannot compare."""
    if group_vpc is None or is_token(group_vpc) != is_token(service_vpc):
        return False
    stack = Stack.of(target_group)
    return bool(stack.resolve(group_vpc) != stack.resolve(service_vpc))


@jsii.implements(IValidation)
class NeedsListener:
    """At synthesis: a target group of this app that a listener forwards to. ECS refuses to
    create a service whose target group no load balancer uses, at deploy time."""

    def __init__(self, owner: str, target_group: elb.IApplicationTargetGroup) -> None:
        self.owner, self.target_group = owner, target_group

    def validate(self) -> list[str]:
        group = self.target_group
        if not isinstance(group.node.default_child, elb.CfnTargetGroup):
            return []  # imported: its listeners are not known here
        if Dependable.of(group.load_balancer_attached).dependency_roots:
            return []
        return [
            f"{self.owner}: target_group={group.node.path!r} is not allowed (allowed: a group a "
            "listener forwards to; add it to a listener or listener rule: ECS refuses a target "
            "group no load balancer uses)"
        ]
