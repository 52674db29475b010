"""Traffic that must flow once deployed: a load balancer's plain HTTP to its targets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..graph import Template, as_list, of_type, properties, resources, targets
from ..model import ReadinessOptions


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
