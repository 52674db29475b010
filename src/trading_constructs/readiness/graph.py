"""Reading a synthesized CloudFormation template as CloudFormation does: who references whom,
in which order resources are created, which roles run what, and which policies say what.

Plain template dicts only (no CDK objects), so a rule reads the same on a synthesized stack, on
an assembly read back from disk and on a hand-written negative control.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

Template = Mapping[str, Any]
"""A CloudFormation template as a dict (``json.load`` of a ``.template.json``)."""
Graph = dict[str, set[str]]

_SUB_VARIABLE = re.compile(r"\$\{(?!!)([^}]+)\}")


# -- references ---------------------------------------------------------------------------------


def _sub_names(value: Any) -> set[str]:
    """Names a Fn::Sub reads: ``${Name}`` and ``${Name.Attr}``, less its own variables."""
    own: Mapping[str, Any]
    if isinstance(value, str):
        text, own = value, {}
    elif isinstance(value, list) and value and isinstance(value[0], str):
        text = value[0]
        own = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
    else:
        return set()
    names = {match.split(".")[0] for match in _SUB_VARIABLE.findall(text)}
    return {n for n in names if n not in own and not n.startswith("AWS::")}


def references(value: Any) -> set[str]:
    """Every logical ID (resource or parameter) a value reads through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if key == "Ref" and isinstance(inner, str) and not inner.startswith("AWS::"):
                    found.add(inner)
                elif key == "Fn::GetAtt":
                    if isinstance(inner, list) and inner and isinstance(inner[0], str):
                        found.add(inner[0])
                    elif isinstance(inner, str):
                        found.add(inner.split(".")[0])
                elif key == "Fn::Sub":
                    found |= _sub_names(inner)
                    if isinstance(inner, list) and len(inner) > 1:
                        stack.append(inner[1])
                    continue
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def imports(value: Any) -> list[Any]:
    """The export names a value reads with Fn::ImportValue."""
    found: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if key == "Fn::ImportValue":
                    found.append(inner)
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def resources(template: Template) -> dict[str, Any]:
    found: dict[str, Any] = template.get("Resources") or {}
    return found


def of_type(template: Template, *kinds: str) -> dict[str, Any]:
    return {k: r for k, r in resources(template).items() if r.get("Type") in kinds}


def properties(resource: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = resource.get("Properties") or {}
    return found


def refers_to(value: Any, logical_id: str) -> bool:
    return logical_id in references(value)


def targets(value: Any, template: Template, *kinds: str) -> set[str]:
    """The resources of the given types (any type if none) that a value references."""
    all_resources = resources(template)
    return {
        ref
        for ref in references(value)
        if ref in all_resources and (not kinds or all_resources[ref].get("Type") in kinds)
    }


def is_custom_resource(resource: Mapping[str, Any]) -> bool:
    kind = str(resource.get("Type", ""))
    return kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"


# -- creation order -----------------------------------------------------------------------------


def depends_on(resource: Mapping[str, Any]) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def dependency_graph(template: Template) -> Graph:
    """What each resource waits for: Ref/GetAtt/Sub in its body, and DependsOn."""
    all_resources = resources(template)
    graph: Graph = {}
    for logical_id, resource in all_resources.items():
        body = {k: v for k, v in resource.items() if k not in {"DependsOn", "Type"}}
        graph[logical_id] = {
            r for r in references(body) | set(depends_on(resource)) if r in all_resources
        }
    return graph


def created_before(graph: Graph, logical_id: str) -> set[str]:
    """Everything CloudFormation must finish before it starts ``logical_id`` (transitively)."""
    seen: set[str] = set()
    stack = list(graph.get(logical_id, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return seen


def cycles(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node, or a node waiting on itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> Iterator[str]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return iter(sorted(graph.get(node, ())))

    def close(node: str) -> None:
        component = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            component.append(member)
            if member == node:
                break
        if len(component) > 1 or node in graph.get(node, ()):
            found.append(sorted(component))

    for root in sorted(graph):  # iterative Tarjan: templates can be deep
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, visit(root))]
        while work:
            node, children = work[-1]
            child = next((c for c in children if c not in index or c in on_stack), None)
            if child is not None and child not in index:
                work.append((child, visit(child)))
                continue
            if child is not None:
                low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                close(node)
    return found


# -- apps ---------------------------------------------------------------------------------------


def stack_graph(
    templates: Mapping[str, Template], manifest: Mapping[str, Any] | None = None
) -> Graph:
    """Which stack waits for which: Fn::ImportValue of another stack's export, and the stack
    dependencies the cloud assembly's manifest declares."""
    exporters: dict[str, str] = {}
    for stack, template in templates.items():
        for output in (template.get("Outputs") or {}).values():
            name = (output.get("Export") or {}).get("Name")
            if name is not None:
                exporters[json.dumps(name, sort_keys=True)] = stack
    graph: Graph = {stack: set() for stack in templates}
    for stack, template in templates.items():
        read = imports(template.get("Resources") or {}) + imports(template.get("Outputs") or {})
        for name in read:
            exporter = exporters.get(json.dumps(name, sort_keys=True))
            if exporter is not None:
                graph[stack].add(exporter)
    for artifact, entry in (manifest or {}).get("artifacts", {}).items():
        if entry.get("type") != "aws:cloudformation:stack" or artifact not in graph:
            continue
        graph[artifact] |= {d for d in entry.get("dependencies", []) if d in graph}
    return graph


def split_stack_outputs(value: Any, inside_split: bool = False) -> list[Any]:
    """Every Fn::GetStackOutput under an Fn::Split: cfn-lint rejects it (E1022) and
    CloudFormation takes the intrinsic only in the positions cfn-lint lists."""
    found: list[Any] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Fn::GetStackOutput" and inside_split:
                found.append(inner)
            found += split_stack_outputs(inner, inside_split or key == "Fn::Split")
    elif isinstance(value, list):
        for inner in value:
            found += split_stack_outputs(inner, inside_split)
    return found


# -- IAM ----------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def statements(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def grants_action(statement: Mapping[str, Any], action: str) -> bool:
    """Whether the statement's Action covers ``action`` (wildcards as IAM reads them)."""

    def matches(patterns: Any) -> bool:
        return any(
            isinstance(p, str) and fnmatch.fnmatchcase(action.lower(), p.lower())
            for p in as_list(patterns)
        )

    if "NotAction" in statement:
        return not matches(statement["NotAction"])
    return matches(statement.get("Action"))


def service_principals(statement: Mapping[str, Any]) -> set[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return {"*"}
    if not isinstance(principal, dict):
        return set()
    found = {p for p in as_list(principal.get("Service")) if isinstance(p, str)}
    if "*" in as_list(principal.get("AWS")):
        found.add("*")
    return found


POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")


def policies_of_role(template: Template, role: str) -> set[str]:
    """Policies attached to a role by their own resource (not the role's inline ones)."""
    found = set()
    for logical_id, resource in of_type(template, *POLICY_TYPES).items():
        props = properties(resource)
        holders = as_list(props.get("Roles")) + as_list(props.get("RoleName"))
        if any(refers_to(holder, role) for holder in holders):
            found.add(logical_id)
    return found


def roles_in(value: Any, template: Template) -> set[str]:
    return targets(value, template, "AWS::IAM::Role")


def functions_in(value: Any, template: Template) -> set[str]:
    """Lambda functions a value reaches, directly or through a version or an alias."""
    all_resources = resources(template)
    found = set()
    for ref in targets(
        value, template, "AWS::Lambda::Function", "AWS::Lambda::Version", "AWS::Lambda::Alias"
    ):
        if all_resources[ref]["Type"] == "AWS::Lambda::Function":
            found.add(ref)
        else:
            found |= functions_in(properties(all_resources[ref]).get("FunctionName"), template)
    return found


def invoked_functions(value: Any, template: Template) -> set[str]:
    """The functions a custom resource runs: its ServiceToken's function, and those that
    function calls in turn (a provider framework's onEvent calls the user's handler)."""
    all_resources = resources(template)
    found: set[str] = set()
    frontier = functions_in(value, template)
    while frontier:
        function = frontier.pop()
        if function in found:
            continue
        found.add(function)
        frontier |= functions_in(properties(all_resources[function]).get("Environment"), template)
    return found


ROLE_USERS = frozenset(
    {
        "AWS::StepFunctions::StateMachine",
        "AWS::Events::ReadinessRule",
        "AWS::Scheduler::Schedule",
        "AWS::Pipes::Pipe",
        "AWS::CodeBuild::Project",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::AppSync::DataSource",
        # a flow log starts delivering at once, as its DeliverLogsPermissionArn role
        "AWS::EC2::FlowLog",
        # enhanced monitoring starts with the database, as its MonitoringRoleArn role
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
    }
)
"""Resources that hand a role to a service which uses it as soon as the resource is created."""

_RUNS_AS_ROLE = {
    "AWS::Lambda::Function",
    "AWS::ECS::Service",
    "AWS::SecretsManager::RotationSchedule",
    "AWS::Lambda::EventSourceMapping",
    "AWS::CloudFormation::CustomResource",
} | ROLE_USERS


def _roles_of_functions(value: Any, template: Template, *, invoked: bool = False) -> set[str]:
    functions = invoked_functions(value, template) if invoked else functions_in(value, template)
    return {role for function in functions for role in roles_run_by(function, template)}


def roles_run_by(logical_id: str, template: Template) -> set[str]:
    """The roles a resource runs as, or hands a service, at the moment it is created."""
    all_resources = resources(template)
    resource = all_resources[logical_id]
    kind, props = resource["Type"], properties(resource)
    if kind == "AWS::Lambda::Function":
        return roles_in(props.get("Role"), template)
    if kind == "AWS::ECS::Service":
        found = roles_in(props, template)
        for task in targets(props.get("TaskDefinition"), template, "AWS::ECS::TaskDefinition"):
            found |= roles_in(properties(all_resources[task]), template)
        return found
    if is_custom_resource(resource):
        return _roles_of_functions(props, template, invoked=True)
    if kind == "AWS::SecretsManager::RotationSchedule":  # rotates right away by default
        return _roles_of_functions(props.get("RotationLambdaARN"), template)
    if kind == "AWS::Lambda::EventSourceMapping":  # checks the source is readable
        return _roles_of_functions(props.get("FunctionName"), template)
    if kind in ROLE_USERS:
        return roles_in(props, template)
    return set()


def role_users(template: Template) -> dict[str, set[str]]:
    """Every resource that runs as a role of the template, with the roles it runs as."""
    found = {}
    for logical_id, resource in resources(template).items():
        if resource.get("Type", "") in _RUNS_AS_ROLE or is_custom_resource(resource):
            roles = roles_run_by(logical_id, template)
            if roles:
                found[logical_id] = roles
    return found
