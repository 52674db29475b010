"""Traffic once deployed: a load balancer's plain HTTP to its targets, and what its security
group lets out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..graph import Template, as_list, of_type, properties, references, resources, targets
from ..model import ReadinessOptions

_EVERYWHERE = {"0.0.0.0/0", "::/0"}


def _port_names(task_definition: Mapping[str, Any], container: Any, port: Any) -> set[str]:
    return {
        mapping["Name"]
        for c in as_list(properties(task_definition).get("ContainerDefinitions"))
        if c.get("Name") == container
        for mapping in as_list(c.get("PortMappings"))
        if mapping.get("ContainerPort") == port and "Name" in mapping
    }


def _mesh_tls_on(template: Template, task: Mapping[str, Any], port: Any) -> Iterator[str]:
    """App Mesh virtual nodes of a task whose listener on ``port`` is TLS."""
    all_resources = resources(template)
    for node_id in sorted(targets(properties(task), template, "AWS::AppMesh::VirtualNode")):
        spec = properties(all_resources[node_id]).get("Spec", {})
        for listener in as_list(spec.get("Listeners")):
            if listener.get("PortMapping", {}).get("Port") == port and listener.get("TLS"):
                yield node_id


def tls_on_load_balancer_targets(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A load balancer health-checks and forwards plain HTTP to its target's container port:
    neither Service Connect TLS nor an App Mesh TLS listener may sit on that port."""
    all_resources = resources(template)
    for service_id, service in sorted(of_type(template, "AWS::ECS::Service").items()):
        props = properties(service)
        tasks = targets(props.get("TaskDefinition"), template, "AWS::ECS::TaskDefinition")
        connect = props.get("ServiceConnectConfiguration") or {}
        for target in as_list(props.get("LoadBalancers")):
            container, port = target.get("ContainerName"), target.get("ContainerPort")
            where = f"the load balancer's target {container}:{port}"
            for task_id in sorted(tasks):
                names = _port_names(all_resources[task_id], container, port)
                for entry in as_list(connect.get("Services")):
                    if entry.get("PortName") in names and entry.get("Tls"):
                        yield service_id, f"Service Connect TLS on {entry['PortName']!r}, {where}"
                for node_id in _mesh_tls_on(template, all_resources[task_id], port):
                    yield service_id, f"App Mesh TLS on {node_id}'s listener {port}, {where}"


def _allows_all_out(template: Template, group: str) -> str | None:
    """How a security group lets all traffic out, if it does."""
    own = properties(resources(template)[group]).get("SecurityGroupEgress")
    if own is None:
        return "no egress rule of its own, so EC2's default allow-all egress stays"
    separate = [
        properties(r)
        for r in of_type(template, "AWS::EC2::SecurityGroupEgress").values()
        if group in references(properties(r).get("GroupId"))
    ]
    for rule in [*as_list(own), *separate]:
        everywhere = {rule.get("CidrIp"), rule.get("CidrIpv6")} & _EVERYWHERE
        if str(rule.get("IpProtocol")) in {"-1", "all"} and everywhere:
            return f"an egress rule to {sorted(everywhere)[0]} on every protocol and port"
    return None


def open_load_balancer_egress(
    template: Template, _options: ReadinessOptions
) -> Iterator[tuple[str, str]]:
    """A load balancer only connects to its targets (and health checks them): its security
    group's egress is limited to the targets' ports, not left open to everything."""
    kinds = ("AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancing::LoadBalancer")
    for balancer_id, balancer in sorted(of_type(template, *kinds).items()):
        groups = targets(
            properties(balancer).get("SecurityGroups"), template, "AWS::EC2::SecurityGroup"
        )
        for group in sorted(groups):
            how = _allows_all_out(template, group)
            if how is not None:
                yield group, f"{balancer_id}'s security group has {how}"
