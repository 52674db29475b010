"""Databases: reachable by the services that use it, and used by some service."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..graph import (
    Template,
    as_list,
    of_type,
    policies_of_role,
    properties,
    references,
    resources,
    targets,
)
from ..model import ReadinessOptions

DEFAULT_PORTS = {
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "oracle": 1521,
    "sqlserver": 1433,
}
"""The port of each engine family when a database sets none (RDS defaults)."""


def _database_port(database: Mapping[str, Any]) -> int | None:
    props = properties(database)
    if isinstance(props.get("Port"), int | str) and str(props.get("Port")).isdigit():
        return int(props["Port"])
    engine = str(props.get("Engine", ""))
    return next((p for name, p in DEFAULT_PORTS.items() if name in engine), None)


def database_parts(template: Template, database: str) -> set[str]:
    """The database, its secrets (referenced or attached) and their attachments."""
    all_resources = resources(template)
    parts = {database} | targets(
        properties(all_resources[database]), template, "AWS::SecretsManager::Secret"
    )
    for logical_id, attachment in of_type(
        template, "AWS::SecretsManager::SecretTargetAttachment"
    ).items():
        if database in references(properties(attachment).get("TargetId")):
            parts |= {logical_id} | references(properties(attachment).get("SecretId"))
    return parts


def service_reads(template: Template, service: str) -> set[str]:
    """Everything a service's tasks read: its and its task definition's references, and the
    resources its roles' policies name."""
    all_resources = resources(template)
    props = properties(all_resources[service])
    read = references(props)
    for task in targets(props.get("TaskDefinition"), template, "AWS::ECS::TaskDefinition"):
        task_props = properties(all_resources[task])
        read |= references(task_props)
        for role in targets(task_props, template, "AWS::IAM::Role"):
            read |= references(properties(all_resources[role]).get("Policies"))
            for policy in policies_of_role(template, role):
                read |= references(properties(all_resources[policy]).get("PolicyDocument"))
    return read


def _port_number(value: Any, port: int, database: str | None) -> int | None:
    """A rule's port: a number, or the database's own ``Endpoint.Port`` (which is ``port``);
    any other token cannot be read here, and proves nothing."""
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        return int(value)
    if database is not None and value == {"Fn::GetAtt": [database, "Endpoint.Port"]}:
        return port
    return None


def covers(rule: Mapping[str, Any], port: int, database: str | None = None) -> bool:
    """Whether a security-group rule lets TCP ``port`` through."""
    if str(rule.get("IpProtocol")) in {"-1", "all"}:
        return True
    if str(rule.get("IpProtocol")).lower() not in {"tcp", "6"}:
        return False
    low = _port_number(rule.get("FromPort"), port, database)
    high = _port_number(rule.get("ToPort"), port, database)
    return low is not None and high is not None and low <= port <= high


def group_rules(template: Template, group: str, direction: str) -> list[dict[str, Any]] | None:
    """A security group's ingress or egress rules, its own and those of separate resources;
    None for egress when the group declares none (EC2's default: all outbound)."""
    inline = "SecurityGroupIngress" if direction == "ingress" else "SecurityGroupEgress"
    own = properties(resources(template)[group]).get(inline)
    if own is None and direction == "egress":
        return None
    kind = (
        "AWS::EC2::SecurityGroupIngress"
        if direction == "ingress"
        else ("AWS::EC2::SecurityGroupEgress")
    )
    return [dict(rule) for rule in as_list(own)] + [
        properties(r)
        for r in of_type(template, kind).values()
        if group in references(properties(r).get("GroupId"))
    ]


def _egress_allows(
    template: Template, group: str, destination: set[str], port: int, database: str
) -> bool:
    rules = group_rules(template, group, "egress")
    if rules is None:
        return True
    return any(
        covers(rule, port, database)
        and (
            rule.get("CidrIp") == "0.0.0.0/0"
            or bool(references(rule.get("DestinationSecurityGroupId")) & destination)
        )
        for rule in rules
    )


def _databases(template: Template) -> dict[str, Any]:
    """Clusters, and instances that are not a cluster's members."""
    return {
        k: r
        for k, r in of_type(template, "AWS::RDS::DBCluster", "AWS::RDS::DBInstance").items()
        if not properties(r).get("DBClusterIdentifier") or r["Type"] == "AWS::RDS::DBCluster"
    }


def _users(template: Template, database_id: str) -> list[str]:
    parts = database_parts(template, database_id)
    services = of_type(template, "AWS::ECS::Service")
    return sorted(s for s in services if service_reads(template, s) & parts)


def unreachable_databases(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """Each service that uses a database (reads its secret, its attachment or its endpoint) may
    connect: ingress into the database's security group from the service's, on the database
    port, and egress that lets it out."""
    all_resources = resources(template)
    for database_id, database in sorted(_databases(template).items()):
        port = _database_port(database)
        props = properties(database)
        groups = targets(
            [props.get("VpcSecurityGroupIds"), props.get("VPCSecurityGroups")],
            template,
            "AWS::EC2::SecurityGroup",
        )
        for service_id in _users(template, database_id):
            configuration = properties(all_resources[service_id]).get("NetworkConfiguration", {})
            service_groups = targets(configuration, template, "AWS::EC2::SecurityGroup")
            reachable = port is not None and any(
                covers(rule, port, database_id)
                and references(rule.get("SourceSecurityGroupId")) & service_groups
                for group in groups
                for rule in group_rules(template, group, "ingress") or []
            )
            if not reachable:
                yield (
                    database_id,
                    f"{service_id} uses it, but no ingress from its security groups "
                    f"{sorted(service_groups)} into {sorted(groups)} on port {port}",
                )
            elif port is not None and not any(
                _egress_allows(template, g, groups, port, database_id) for g in service_groups
            ):
                yield database_id, f"{service_id}'s egress does not reach port {port}"


def unused_databases(template: Template, _options: ReadinessOptions) -> Iterator[tuple[str, str]]:
    """A database that no ECS service of its stack uses costs and nothing reaches it (a database
    used from another stack, or by something other than an ECS service, is acknowledged)."""
    for database_id in sorted(_databases(template)):
        if not _users(template, database_id):
            yield database_id, "no ECS service of the stack uses it"
