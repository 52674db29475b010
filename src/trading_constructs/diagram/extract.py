"""The architecture graph of a cloud assembly, read from its templates as CloudFormation states
them: nothing is drawn that a template does not say, so the picture follows the code.

What is read: VPCs and their subnets by Availability Zone, ECS clusters and services with every
container of their tasks (the first, or the one a load balancer targets, is the service; the
others are its sidecars), the calls between them (security group rules from one to another),
load balancers with their listeners and path rules, databases, secrets with their rotation and
readers, ECR repositories and pull-through caches the images come from, SNS topics with the
alarms that notify them and their subscribers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..readiness.assembly import StackInput, read_assembly
from ..readiness.graph import of_type, properties, references
from .model import ArchitectureGraph, Edge, Group, Node

_SUBNET_ORDER = {"Public": 0, "Private": 1, "Isolated": 2}
# construct ids that repeat a resource's type rather than name it
_GENERIC = {"Repository", "Secret", "Service", "Rule", "Topic", "Function", "LoadBalancer"}


class _Stack:
    """One stack's templates read into the graph; ids are construct paths."""

    def __init__(self, stack: StackInput, graph: ArchitectureGraph) -> None:
        self.stack, self.graph, self.template = stack, graph, stack.template
        self.owners: dict[str, str] = {}  # security group -> node id
        self.services: dict[str, str] = {}  # target group or service -> app node id
        self.vpc_group: str | None = None
        self.region = stack.path  # the stack's box: what is regional, outside any VPC
        # every resource's telling parts, by construct path: what a label must tell apart
        self._telling = {
            path: tuple(_telling_parts(path))
            for path in {self.id(logical_id) for logical_id in stack.resource_paths}
        }

    def id(self, logical_id: str) -> str:
        """A resource's construct path without its ``Resource`` tail (its logical ID when the
        assembly has no path for it)."""
        path = self.stack.resource_paths.get(logical_id, f"{self.stack.path}/{logical_id}")
        parts = [p for p in path.split("/") if p not in ("Resource", "Default")]
        return "/".join(parts)

    def name(self, logical_id: str) -> str:
        """A resource's label: the last two parts of its construct path that say more than
        its type (``MarketDataDbSecret``, ``Certificates / CaCertificate``), or as many more
        as it takes to tell it from another resource's (two users' ``Credentials /
        RotationFunction``)."""
        own = self.id(logical_id)
        parts = _telling_parts(own) or [logical_id]
        others = [telling for path, telling in self._telling.items() if path != own]
        size = min(2, len(parts))
        while size < len(parts) and any(other[-size:] == tuple(parts[-size:]) for other in others):
            size += 1
        return " / ".join(parts[-size:])

    def of_type(self, kind: str) -> dict[str, Any]:
        return dict(sorted(of_type(self.template, kind).items()))

    def draw(self) -> None:
        self.graph.groups.append(Group(id=self.stack.path, label=f"stack {self.stack.path}"))
        _draw_vpcs(self)
        _draw_services(self)
        _draw_load_balancers(self)
        _draw_databases(self)
        _draw_secrets(self)
        _draw_calls(self)
        _draw_images(self)
        _draw_topics(self)


def _telling_parts(path: str) -> list[str]:
    """A construct path's parts below the stack, without a last part that only names a type."""
    parts = path.split("/")[1:]
    while len(parts) > 1 and parts[-1] in _GENERIC:
        parts.pop()
    return parts


def _first(value: Any) -> str | None:
    """The one logical ID a value references, if it references exactly one."""
    found = references(value)
    return next(iter(found)) if len(found) == 1 else None


def _az(value: Any) -> str:
    """An Availability Zone as the template names it: ``Fn::Select`` of ``Fn::GetAZs`` is the
    region's n-th zone."""
    if isinstance(value, dict) and "Fn::Select" in value:
        return f"AZ {int(value['Fn::Select'][0]) + 1}"
    return str(value) if isinstance(value, str) else "AZ ?"


def _subnet_type(subnet: Mapping[str, Any]) -> str:
    tags = {t.get("Key"): t.get("Value") for t in properties(subnet).get("Tags", [])}
    return str(tags.get("aws-cdk:subnet-type") or tags.get("aws-cdk:subnet-name") or "Subnet")


def _draw_vpcs(s: _Stack) -> None:
    """A box per VPC holding a node per Availability Zone that lists its subnets and NATs."""
    subnets = s.of_type("AWS::EC2::Subnet")
    nat_subnets = [
        _first(properties(n).get("SubnetId")) for n in s.of_type("AWS::EC2::NatGateway").values()
    ]
    for logical_id, vpc in s.of_type("AWS::EC2::VPC").items():
        group = s.id(logical_id)
        cidr = properties(vpc).get("CidrBlock")
        label = f"VPC {cidr}" if isinstance(cidr, str) else "VPC"
        s.graph.groups.append(Group(id=group, label=label, parent=s.stack.path))
        s.vpc_group = s.vpc_group or group
        zones: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for subnet_id, subnet in subnets.items():
            if _first(properties(subnet).get("VpcId")) != logical_id:
                continue
            kind = _subnet_type(subnet)
            cidr = properties(subnet).get("CidrBlock")
            text = f"{kind} {cidr}" if isinstance(cidr, str) else kind
            zones[_az(properties(subnet).get("AvailabilityZone"))].append(
                (_SUBNET_ORDER.get(kind, 3), text)
            )
            if subnet_id in nat_subnets:
                zones[_az(properties(subnet).get("AvailabilityZone"))].append((4, "NAT gateway"))
        for zone, lines in sorted(zones.items()):
            label = "\n".join([zone, *(text for _, text in sorted(lines))])
            s.graph.nodes.append(
                Node(id=f"{group}/{zone}", kind="availability-zone", label=label, group=group)
            )


def _containers(s: _Stack, service: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The service's container (the one its load balancer targets, else the first) and all of
    its task's containers."""
    task = s.template["Resources"].get(_first(properties(service).get("TaskDefinition")) or "")
    containers = list(properties(task or {}).get("ContainerDefinitions", []))
    targeted = [lb.get("ContainerName") for lb in properties(service).get("LoadBalancers", [])]
    names = [str(c.get("Name")) for c in containers]
    app = next((n for n in targeted if n in names), names[0] if names else "service")
    return app, containers


def _draw_services(s: _Stack) -> None:
    """A box per ECS cluster, in it a box per service holding its containers."""
    for logical_id, cluster in s.of_type("AWS::ECS::Cluster").items():
        name = properties(cluster).get("ClusterName")
        label = f"ECS cluster {name}" if isinstance(name, str) else "ECS cluster"
        s.graph.groups.append(
            Group(id=s.id(logical_id), label=label, parent=s.vpc_group or s.stack.path)
        )
    for logical_id, service in s.of_type("AWS::ECS::Service").items():
        group = s.id(logical_id)
        cluster = _first(properties(service).get("Cluster"))
        app, containers = _containers(s, service)
        in_stack = cluster is not None and cluster in s.template["Resources"]
        parent = s.id(cluster) if in_stack and cluster else s.vpc_group or s.region
        s.graph.groups.append(Group(id=group, label=f"{app} service", parent=parent))
        for container in containers:
            name = str(container.get("Name"))
            kind = "container" if name == app else "sidecar"
            s.graph.nodes.append(Node(id=f"{group}/{name}", kind=kind, label=name, group=group))
        node = f"{group}/{app}"
        s.services[logical_id] = node
        network = properties(service).get("NetworkConfiguration", {})
        for sg in network.get("AwsvpcConfiguration", {}).get("SecurityGroups", []):
            if (sg_id := _first(sg)) is not None:
                s.owners[sg_id] = node
        for lb in properties(service).get("LoadBalancers", []):
            advanced = lb.get("AdvancedConfiguration", {})
            for target in (lb.get("TargetGroupArn"), advanced.get("AlternateTargetGroupArn")):
                if (target_id := _first(target)) is not None:
                    s.services[target_id] = node


def _forwards(actions: Iterable[Mapping[str, Any]]) -> set[str]:
    """The target groups listener actions forward to."""
    found: set[str] = set()
    for action in actions:
        found |= references(action.get("TargetGroupArn"))
        for target in action.get("ForwardConfig", {}).get("TargetGroups", []):
            found |= references(target.get("TargetGroupArn"))
    return found


def _listener_routes(s: _Stack, balancer: str) -> dict[str, set[str]]:
    """What each service behind a load balancer is reached by: ``HTTP:80 /api/*``."""
    routes: dict[str, set[str]] = defaultdict(set)
    rules = s.of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values()
    for listener_id, listener in s.of_type("AWS::ElasticLoadBalancingV2::Listener").items():
        props = properties(listener)
        if _first(props.get("LoadBalancerArn")) != balancer:
            continue
        entry = f"{props.get('Protocol', '')}:{props.get('Port', '')}"
        paths: list[tuple[set[str], str]] = [(_forwards(props.get("DefaultActions", [])), "")]
        for rule in rules:
            rule_props = properties(rule)
            if _first(rule_props.get("ListenerArn")) == listener_id:
                patterns = [
                    value
                    for condition in rule_props.get("Conditions", [])
                    for value in condition.get("PathPatternConfig", {}).get("Values", [])
                ]
                paths.append((_forwards(rule_props.get("Actions", [])), " ".join(patterns)))
        ruled = {target for targets, pattern in paths if pattern for target in targets}
        for targets, pattern in paths:
            for target in targets:
                if target in s.services and (pattern or target not in ruled):
                    routes[s.services[target]].add(f"{entry} {pattern}".strip())
    return routes


def _draw_load_balancers(s: _Stack) -> None:
    for logical_id, balancer in s.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").items():
        node = s.id(logical_id)
        scheme = properties(balancer).get("Scheme", "internet-facing")
        label = f"load balancer ({scheme})" if isinstance(scheme, str) else "load balancer"
        s.graph.nodes.append(
            Node(id=node, kind="load-balancer", label=label, group=s.vpc_group or s.region)
        )
        for sg in properties(balancer).get("SecurityGroups", []):
            if (sg_id := _first(sg)) is not None:
                s.owners[sg_id] = node
        for target, labels in sorted(_listener_routes(s, logical_id).items()):
            s.graph.edges.append(Edge(source=node, target=target, label=", ".join(sorted(labels))))


def _draw_databases(s: _Stack) -> None:
    instances = s.of_type("AWS::RDS::DBInstance")
    for logical_id, cluster in s.of_type("AWS::RDS::DBCluster").items():
        props = properties(cluster)
        count = sum(
            1
            for i in instances.values()
            if _first(properties(i).get("DBClusterIdentifier")) == logical_id
        )
        engine = f"{props.get('Engine', 'database')} {props.get('EngineVersion', '')}".strip()
        label = f"{s.name(logical_id)}\n{engine}, {count} instances"
        node = s.id(logical_id)
        s.graph.nodes.append(
            Node(id=node, kind="database", label=label, group=s.vpc_group or s.region)
        )
        for sg in props.get("VpcSecurityGroupIds", []):
            if (sg_id := _first(sg)) is not None:
                s.owners[sg_id] = node


def _rotation(schedule: Mapping[str, Any]) -> str:
    rules = properties(schedule).get("RotationRules", {})
    if isinstance(rules.get("ScheduleExpression"), str):
        return f"rotates: {rules['ScheduleExpression']}"
    if "AutomaticallyAfterDays" in rules:
        return f"rotates every {rules['AutomaticallyAfterDays']} days"
    return "rotates"


def _draw_secrets(s: _Stack) -> None:
    """Secrets, the functions that rotate them, the database they hold credentials of, and the
    services whose task definitions read them."""
    functions = s.of_type("AWS::Lambda::Function")
    for logical_id in s.of_type("AWS::SecretsManager::Secret"):
        s.graph.nodes.append(
            Node(id=s.id(logical_id), kind="secret", label=s.name(logical_id), group=s.region)
        )
    for schedule in s.of_type("AWS::SecretsManager::RotationSchedule").values():
        secret, function = (
            _first(properties(schedule).get(key)) for key in ("SecretId", "RotationLambdaARN")
        )
        if secret is None or function not in functions:
            continue
        node = s.id(function)
        in_vpc = "VpcConfig" in properties(functions[function])
        s.graph.nodes.append(
            Node(
                id=node,
                kind="rotation",
                label=f"{s.name(function)}",
                group=s.vpc_group if in_vpc else None,
            )
        )
        s.graph.edges.append(Edge(source=node, target=s.id(secret), label=_rotation(schedule)))
        for sg in properties(functions[function]).get("VpcConfig", {}).get("SecurityGroupIds", []):
            if (sg_id := _first(sg)) is not None:
                s.owners[sg_id] = node
    for attachment in s.of_type("AWS::SecretsManager::SecretTargetAttachment").values():
        secret, target = (_first(properties(attachment).get(k)) for k in ("SecretId", "TargetId"))
        if secret is not None and target is not None:
            s.graph.edges.append(
                Edge(source=s.id(secret), target=s.id(target), label="credentials")
            )
    secrets = set(s.of_type("AWS::SecretsManager::Secret"))
    for service_id, service in s.of_type("AWS::ECS::Service").items():
        _, containers = _containers(s, service)
        for secret in sorted(references(containers) & secrets):
            s.graph.edges.append(
                Edge(source=s.services[service_id], target=s.id(secret), label="reads")
            )


def _draw_calls(s: _Stack) -> None:
    """A security group rule from one drawn thing's group to another's is a call between them
    (a load balancer's are its listener routes, drawn with it)."""
    balancers = {s.id(b) for b in s.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer")}
    for rule in s.of_type("AWS::EC2::SecurityGroupIngress").values():
        props = properties(rule)
        source = s.owners.get(_first(props.get("SourceSecurityGroupId")) or "")
        target = s.owners.get(_first(props.get("GroupId")) or "")
        if source is None or target is None or source in balancers or source == target:
            continue
        low, high = props.get("FromPort"), props.get("ToPort")
        port = f"{low}" if low == high else f"{low}-{high}"
        s.graph.edges.append(Edge(source=source, target=target, label=f"tcp {port}"))


def _draw_images(s: _Stack) -> None:
    """Where each container's image comes from: a repository of the stack, or a pull-through
    cache rule whose prefix its image URI holds."""
    repositories = s.of_type("AWS::ECR::Repository")
    for logical_id in repositories:
        s.graph.nodes.append(
            Node(id=s.id(logical_id), kind="repository", label=s.name(logical_id), group=s.region)
        )
    caches = {}
    for logical_id, rule in s.of_type("AWS::ECR::PullThroughCacheRule").items():
        props = properties(rule)
        prefix, upstream = props.get("EcrRepositoryPrefix"), props.get("UpstreamRegistryUrl")
        label = f"pull-through cache {prefix}/\n{upstream}"
        s.graph.nodes.append(
            Node(id=s.id(logical_id), kind="image-cache", label=label, group=s.region)
        )
        caches[f"/{prefix}/"] = s.id(logical_id)
    for service_id, service in s.of_type("AWS::ECS::Service").items():
        group = s.services[service_id].rsplit("/", 1)[0]
        for container in _containers(s, service)[1]:
            image = container.get("Image")
            node = f"{group}/{container.get('Name')}"
            for repository in sorted(references(image) & set(repositories)):
                s.graph.edges.append(Edge(source=s.id(repository), target=node, label="image"))
            text = json.dumps(image)
            for prefix, cache in caches.items():
                if prefix in text:
                    s.graph.edges.append(Edge(source=cache, target=node, label="image"))


def _draw_topics(s: _Stack) -> None:
    """Topics, the alarms that notify each, and who is subscribed."""
    alarms = s.of_type("AWS::CloudWatch::Alarm").values()
    subscriptions = s.of_type("AWS::SNS::Subscription").values()
    for logical_id in s.of_type("AWS::SNS::Topic"):
        node = s.id(logical_id)
        s.graph.nodes.append(Node(id=node, kind="topic", label=s.name(logical_id), group=s.region))
        count = sum(
            1
            for alarm in alarms
            if logical_id
            in references([properties(alarm).get(k) for k in ("AlarmActions", "OKActions")])
        )
        if count:
            source = f"{node}/alarms"
            s.graph.nodes.append(
                Node(id=source, kind="alarms", label=f"{count} CloudWatch alarms", group=s.region)
            )
            s.graph.edges.append(Edge(source=source, target=node, label="notify"))
        for subscription in subscriptions:
            props = properties(subscription)
            if _first(props.get("TopicArn")) != logical_id:
                continue
            endpoint = props.get("Endpoint")
            label = (
                f"{props.get('Protocol')}: {endpoint}"
                if isinstance(endpoint, str)
                else str(props.get("Protocol"))
            )
            target = f"{node}/{label}"
            s.graph.nodes.append(Node(id=target, kind="subscriber", label=label, group=s.region))
            s.graph.edges.append(Edge(source=node, target=target, label="subscribed"))


def graph_of_stacks(stacks: Iterable[StackInput]) -> ArchitectureGraph:
    """The graph of these stacks (as ``read_assembly`` gives them)."""
    graph = ArchitectureGraph()
    for stack in stacks:
        _Stack(stack, graph).draw()
    return graph


def graph_of_assembly(directory: Path | str) -> ArchitectureGraph:
    """The graph of every stack of a cloud assembly (``cdk.out``), stages' included."""
    return graph_of_stacks(stack for stacks in read_assembly(directory) for stack in stacks)
