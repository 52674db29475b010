"""Creation order: CloudFormation creates in parallel whatever no Ref, Fn::GetAtt, Fn::Sub or
DependsOn orders, so a resource that needs another at the moment it is created must say so."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from ..graph import (
    Template,
    as_list,
    created_before,
    cycles,
    dependency_graph,
    of_type,
    policies_of_role,
    properties,
    references,
    resources,
    role_users,
    stack_graph,
    targets,
)
from ..model import ReadinessOptions
from .databases import database_parts, service_reads


def policies_created_after_their_users(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """Everything that runs as a role (a function, an ECS service, a custom resource, a
    rotation...) waits for every policy that grants the role something."""
    graph = dependency_graph(template)
    for user, roles in sorted(role_users(template).items()):
        before = created_before(graph, user)
        for role in sorted(roles):
            for policy in sorted(policies_of_role(template, role) - before):
                yield user, f"runs as {role} before {policy} exists"


def services_started_before_their_database(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A service that uses a database starts once the database, its instances and the
    attachment that writes its endpoint into the secret exist: tasks that start earlier find no
    host in the secret or no instance to connect to, fail their health checks, and the
    deployment circuit breaker rolls the whole deployment back."""
    graph = dependency_graph(template)
    services = of_type(template, "AWS::ECS::Service")
    all_resources = resources(template)
    for cluster_id in sorted(of_type(template, "AWS::RDS::DBCluster")):
        parts = database_parts(template, cluster_id)
        instances = {
            k
            for k, r in of_type(template, "AWS::RDS::DBInstance").items()
            if cluster_id in references((r.get("Properties") or {}).get("DBClusterIdentifier"))
        }
        attachments = {
            p for p in parts if all_resources[p]["Type"].endswith("SecretTargetAttachment")
        }
        needed = {cluster_id} | instances | attachments
        for service_id in sorted(s for s in services if service_reads(template, s) & parts):
            missing = needed - created_before(graph, service_id)
            if missing:
                yield service_id, f"may start before {sorted(missing)} exist"


def services_before_capacity_providers(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """An ECS service that places its tasks by capacity provider (its own strategy, or the
    cluster's default when it names no launch type) is created after the association that
    gives its cluster those capacity providers: ECS refuses a strategy whose providers the
    cluster does not have yet."""
    graph = dependency_graph(template)
    associations = of_type(template, "AWS::ECS::ClusterCapacityProviderAssociations")
    for service_id, service in sorted(of_type(template, "AWS::ECS::Service").items()):
        props = properties(service)
        if props.get("LaunchType") and not as_list(props.get("CapacityProviderStrategy")):
            continue
        clusters = targets(props.get("Cluster"), template, "AWS::ECS::Cluster")
        needed = {
            association_id
            for association_id, association in associations.items()
            if clusters & references(properties(association).get("Cluster"))
        }
        missing = needed - created_before(graph, service_id)
        if missing:
            yield (
                service_id,
                f"may be created before {sorted(missing)} gives its cluster capacity providers",
            )


def dependency_cycles(template: Template, _options: ReadinessOptions) -> Iterator[tuple[str, str]]:
    """CloudFormation refuses a template whose resources wait for each other in a circle."""
    for cycle in cycles(dependency_graph(template)):
        yield cycle[0], f"cycle: {' -> '.join(cycle)}"


def stack_cycles(
    templates: Mapping[str, Template],
    dependencies: Mapping[str, Collection[str]],
    _options: ReadinessOptions,
) -> Iterator[tuple[str, str]]:
    """Across the stacks of one app: Fn::ImportValue of exports, and declared dependencies."""
    manifest = {
        "artifacts": {
            stack: {"type": "aws:cloudformation:stack", "dependencies": sorted(after)}
            for stack, after in dependencies.items()
        }
    }
    for cycle in cycles(stack_graph(templates, manifest)):
        yield cycle[0], f"stack cycle: {' -> '.join(cycle)}"
