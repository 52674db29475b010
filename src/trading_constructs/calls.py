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
import weakref
from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
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
    assert backend.port is not None, "a worker is never a backend (the service refuses it)"
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
    replaced), through ECS UpdateService, from the stack of the construct it is created in.

    aws-cdk-lib's AwsCustomResource would grant the call in an inline policy (NIST 800-53 and
    PCI DSS: IAMNoInlinePolicy). Its function, one per stack, runs instead as a role of ours
    whose one managed policy holds every redeploy of the stack; each call waits for it."""

    def __init__(self, scope: MeshedFargateService, id: str, *, service: ecs.FargateService):
        super().__init__(scope, id)
        provider = _provider(Stack.of(self), scope.cluster.key)
        provider.policy.add_statements(
            iam.PolicyStatement(actions=["ecs:UpdateService"], resources=[service.service_arn])
        )
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
            role=provider.role,
            log_group=provider.log_group,
            install_latest_aws_sdk=False,
        )
        # Only once the role may make the call.
        self.resource.node.add_dependency(provider.policy)
        # After every ECS service of the later service exists and is stable.
        for later in scope.services.values():
            self.resource.node.add_dependency(later)
        _harden_provider(Stack.of(self), provider)


@dataclass
class _Provider:
    """What the redeploys of one stack share: the role of aws-cdk-lib's one AwsCustomResource
    function, its managed policy, its log group."""

    role: iam.Role
    policy: iam.ManagedPolicy
    log_group: logs.LogGroup
    hardened: bool = False


_PROVIDERS: weakref.WeakKeyDictionary[Stack, _Provider] = weakref.WeakKeyDictionary()


def _provider(stack: Stack, key: kms.IKey) -> _Provider:
    existing = _PROVIDERS.get(stack)
    if existing is not None:
        return existing
    role = iam.Role(
        stack,
        "RedeployRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Redeploys a service once the service it calls exists (ECS UpdateService)",
    )
    log_group = logs.LogGroup(
        stack,
        "RedeployLogs",
        retention=logs.RetentionDays.ONE_YEAR,
        encryption_key=key,
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )
    policy = iam.ManagedPolicy(
        stack,
        "RedeployPolicy",
        roles=[role],
        statements=[
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        ],
    )
    provider = _PROVIDERS[stack] = _Provider(role, policy, log_group)
    return provider


def _harden_provider(stack: Stack, provider: _Provider) -> None:
    """aws-cdk-lib's one AwsCustomResource function per stack: created after its policy, and
    acknowledged for what a function that runs only during deploys does without."""
    if provider.hardened:
        return
    function = stack.node.try_find_child(_PROVIDER_ID)
    if function is None:
        return
    provider.hardened = True
    function.node.add_dependency(provider.policy)
    ignore_redundant_depends_on(function)
    acknowledge(
        function,
        "aws-cdk-lib's AwsCustomResource provider: it runs only while CloudFormation deploys "
        "(to redeploy a service whose backend was created after it); it calls only the ECS "
        "API, so it needs no VPC, and a failure fails the deployment, so no dead-letter queue "
        "or reserved concurrency (a new account may have only 10) would serve it.",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
        "PCI.DSS.321::PCI.DSS.321-LambdaInsideVPC",
    )


_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
