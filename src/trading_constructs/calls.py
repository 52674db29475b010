"""Calls between services, in an order CloudFormation can always follow.

A Service Connect proxy resolves only the endpoints that existed when its task started (ECS
documentation, "Service Connect components"), so a caller's ECS service starts after its
backends'. Two services that call each other (or a ring of them) cannot both start after the
other: the call that would close a loop is not ordered. Instead, once both exist, a small
custom resource in the later service's stack redeploys the earlier service, whose new tasks
then resolve the later one. Security-group rules of a call live with the later of the two, so
every reference, in one stack or across stacks, points from later to earlier, and no
dependency cycle can form.
"""

from __future__ import annotations

import typing

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from .compliance import acknowledge, ignore_redundant_depends_on

if typing.TYPE_CHECKING:
    from .service import MeshedFargateService


def starts_after(service: MeshedFargateService, other: MeshedFargateService) -> bool:
    """Whether ``service`` already waits, directly or through others, for ``other``."""
    seen: set[int] = set()
    waiting = list(service.waits_for)
    while waiting:
        current = waiting.pop()
        if current is other:
            return True
        if id(current) not in seen:
            seen.add(id(current))
            waiting.extend(current.waits_for)
    return False


def order_call(caller: MeshedFargateService, backend: MeshedFargateService) -> None:
    """Order a call from ``caller`` to ``backend``: the caller starts after the backend, unless
    the backend already waits for the caller; then the backend stays later and the caller is
    redeployed once the backend exists (on meshes whose proxies need it)."""
    if starts_after(backend, caller):
        later, earlier = backend, caller
        if backend.cluster.mesh.resolves_endpoints_at_start:
            _redeploy_after(earlier, later)
    else:
        later, earlier = caller, backend
        later.wait_for(earlier)
    _allow(caller, backend, rules_with=later)


def _allow(
    caller: MeshedFargateService, backend: MeshedFargateService, *, rules_with: object
) -> None:
    """The caller's egress and the backend's ingress, on the port the backend's mesh listens
    on, both created in the stack of ``rules_with`` (the later service of the two)."""
    port = ec2.Port.tcp(backend.cluster.mesh.listener_port(backend.port))
    description = f"{caller.name} calls {backend.name}"
    if rules_with is caller:
        caller.connections.allow_to(backend.connections, port, description)
    else:
        backend.connections.allow_from(caller.connections, port, description)


def _redeploy_after(earlier: MeshedFargateService, later: MeshedFargateService) -> None:
    """Once ``later`` exists, start new tasks of ``earlier`` so its proxies resolve it."""
    for key, service in earlier.services.items():
        RedeployAfter(later, f"Redeploy{earlier.node.id}{key.capitalize()}", service=service)


class RedeployAfter(Construct):
    """Forces a new deployment of ``service`` when created (and when the service it follows is
    replaced), through ECS UpdateService, from the stack of the construct it is created in."""

    def __init__(self, scope: MeshedFargateService, id: str, *, service: ecs.FargateService):
        super().__init__(scope, id)
        call = cr.AwsSdkCall(
            service="ECS",
            action="updateService",
            parameters={
                "cluster": service.cluster.cluster_name,
                "service": service.service_name,
                "forceNewDeployment": True,
            },
            physical_resource_id=cr.PhysicalResourceId.of(f"redeploy-{id}"),
        )
        self.resource = cr.AwsCustomResource(
            self,
            "Resource",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [
                    iam.PolicyStatement(
                        actions=["ecs:UpdateService"], resources=[service.service_arn]
                    )
                ]
            ),
            install_latest_aws_sdk=False,
        )
        # After every ECS service of the later service exists and is stable.
        for later in scope.services.values():
            self.resource.node.add_dependency(later)
        _acknowledge_provider(Stack.of(self))


def _acknowledge_provider(stack: Stack) -> None:
    """aws-cdk-lib's one AwsCustomResource function per stack: it runs only during deploys."""
    provider = stack.node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
    if provider is None:
        return
    ignore_redundant_depends_on(provider)
    acknowledge(
        provider,
        "aws-cdk-lib's AwsCustomResource provider: it runs only while CloudFormation deploys "
        "(to redeploy a service whose backend was created after it); AWS maintains its "
        "basic execution policy, it needs no VPC, and a failure fails the deployment.",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "service-role/AWSLambdaBasicExecutionRole]",
        "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
        "PCI.DSS.321::PCI.DSS.321-IAMNoInlinePolicy",
        "PCI.DSS.321::PCI.DSS.321-LambdaInsideVPC",
    )
