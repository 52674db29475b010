"""A service's two roles and the managed policies its collaborators add to.

ECS starts a task with the execution role and runs its containers with the task role; both
must be able to do their work the moment the first task starts. CloudFormation only orders what
a reference says, so every ECS service of the service waits for both roles and for every policy
attached to them, including policies made after the ECS service was (a grant added later).
Statements go into managed policies, never inline ones, so that what a role may do reads as
one document per role.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from .compliance import acknowledge, acknowledge_wildcard_resource

_ECS_TASKS = "ecs-tasks.amazonaws.com"


class ServicePolicies:
    """The execution and task roles of one service, and their managed policies (made on first
    use: an empty policy is not a valid document)."""

    def __init__(self, scope: Construct, service_name: str) -> None:
        self._scope = scope
        self.execution_role: iam.Role = iam.Role(
            scope,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal(_ECS_TASKS),
            description=f"Starts {service_name} tasks: its images, its log groups, its secrets",
        )
        """The role ECS starts tasks with."""
        self.task_role: iam.Role = iam.Role(
            scope,
            "TaskRole",
            assumed_by=iam.ServicePrincipal(_ECS_TASKS),
            description=f"What {service_name}'s containers may call in AWS",
        )
        """The role the containers run with."""
        self._policies: dict[str, iam.ManagedPolicy] = {}
        self._waiting: list[IConstruct] = []

    def add_to_execution(self, *statements: iam.PolicyStatement) -> None:
        """Let ECS do more when it starts a task (pull an image, read a secret...)."""
        self._policy("ExecutionPolicy", self.execution_role).add_statements(*statements)

    def add_to_task(self, *statements: iam.PolicyStatement) -> None:
        """Let the containers call more of AWS."""
        self._policy("TaskPolicy", self.task_role).add_statements(*statements)

    def wait_for_roles(self, user: IConstruct) -> None:
        """Make ``user`` (an ECS service) start only once both roles and all their policies
        exist, those made later included."""
        user.node.add_dependency(self.execution_role, self.task_role, *self._policies.values())
        self._waiting.append(user)

    def _policy(self, id: str, role: iam.Role) -> iam.ManagedPolicy:
        if id not in self._policies:
            policy = iam.ManagedPolicy(self._scope, id, roles=[role])
            for user in self._waiting:
                user.node.add_dependency(policy)
            self._policies[id] = policy
            if role is self.execution_role:
                acknowledge_wildcard_resource(
                    policy,
                    "*",
                    reason="ecr:GetAuthorizationToken has no resource-level permissions; every "
                    "image pull, log write and secret read names its repository, log group or "
                    "secret.",
                )
        return self._policies[id]


def ecs_infrastructure_role(
    scope: Construct, id: str, *, policy_name: str, description: str, reason: str
) -> iam.Role:
    """A role ECS itself assumes for a feature (blue/green rule shifts, Service Connect TLS),
    holding the AWS managed policy AWS keeps in step with that feature, acknowledged so."""
    role = iam.Role(
        scope,
        id,
        assumed_by=iam.ServicePrincipal("ecs.amazonaws.com"),
        description=description,
        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(policy_name)],
    )
    acknowledge(
        role,
        f"{reason}; AWS maintains this policy with the feature.",
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        f"{policy_name}]",
    )
    return role
