"""Deploy-readiness rules (DESIGN.md, "Deploy-time rules"; issue 8): what synth, cfn-lint and
cdk-nag let through and CloudFormation or the running platform then trips on.

Each rule is a small function over a template dict (or an app's templates) that returns every
violation as a sentence; each is run over every template the test suite synthesizes (ids
``<source>/<stack>``), and each has a negative control below that proves it can fail. When a new
deploy-time failure class is found, add a rule here, with its control.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_edge_validation
import test_images
import test_service_validation
import test_supply_chain
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template as CdkTemplate
from cfn_graph import (
    Template,
    as_list,
    created_before,
    cycles,
    dependency_graph,
    grants_action,
    of_type,
    policies_of_role,
    properties,
    read_manifest,
    references,
    resources,
    role_users,
    service_principals,
    stack_graph,
    statements,
    targets,
)
from conftest import ENV, SynthesizedApp

ROOT = Path(__file__).resolve().parents[1]

# -- the templates of the test suite --------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One synthesized app (or construct-level stack) of the test suite."""

    templates: dict[str, Template]
    outdir: Path | None = None


def _app(app: SynthesizedApp) -> Source:
    return Source(dict(app.templates), app.outdir)


def _stack(name: str, template: CdkTemplate) -> Source:
    return Source({name: template.to_json()})


# How each source is built: the session fixtures of conftest, and the fixtures of other modules
# (called through ``__wrapped__``, the function the fixture decorator wraps, so this module
# checks exactly what those modules build).
BUILDERS: dict[str, Callable[[pytest.FixtureRequest], Source]] = {
    "example": lambda r: _app(r.getfixturevalue("example")),
    "service-connect": lambda r: _app(r.getfixturevalue("service_connect")),
    "mutual-tls": lambda r: _app(r.getfixturevalue("mutual_tls")),
    "cluster": lambda r: _app(r.getfixturevalue("cluster_stacks").app),
    "ci-images": lambda r: _app(
        test_supply_chain.ci_images.__wrapped__(r.getfixturevalue("tmp_path_factory"))
    ),
    "grants": lambda r: _stack(
        "Grants", test_supply_chain.grants.__wrapped__(r.getfixturevalue("tmp_path_factory"))
    ),
    "edge-platform": lambda r: _stack("Test", _edge_platform()),
    "edge-blue-green": lambda r: _stack(
        "BlueGreen", test_edge_validation.blue_green.__wrapped__().template
    ),
    "edge-app-mesh": lambda r: _stack("Mesh", test_edge_validation.app_mesh.__wrapped__().template),
    "service-platform": lambda r: _stack(
        "Test", CdkTemplate.from_stack(test_service_validation.platform.__wrapped__().stack)
    ),
    # a service per image source, the deploy-time copy among them (built once per session)
    "images": lambda r: _app(test_images.images_app().app),
}
# The stacks each source synthesizes; a stack added to a source must be listed here (checked).
STACKS: dict[str, tuple[str, ...]] = {
    "example": ("TradingPlatform",),
    "service-connect": ("TradingPlatform",),
    "mutual-tls": ("TradingPlatform",),
    "cluster": ("Custom", "Default", "Existing"),
    "ci-images": ("TradingPlatform",),
    "grants": ("Grants",),
    "edge-platform": ("Test",),
    "edge-blue-green": ("BlueGreen",),
    "edge-app-mesh": ("Mesh",),
    "service-platform": ("Test",),
    "images": ("Images",),
}


def _edge_platform() -> CdkTemplate:
    """The edge tests' shared platform, finished as a user would: its blue/green service
    behind an edge of its own (the bad-input tests build and drop edges on it)."""
    platform = test_edge_validation.platform.__wrapped__()
    platform.edge(service=platform.bg)
    return CdkTemplate.from_stack(platform.stack)


TEMPLATE_IDS = [f"{source}/{stack}" for source, stacks in STACKS.items() for stack in stacks]


@pytest.fixture(scope="module")
def sources(request: pytest.FixtureRequest) -> Callable[[str], Source]:
    """Build each source once for the module, the first time a test asks for it."""
    built: dict[str, Source | Exception] = {}

    def load(source: str) -> Source:
        if source not in built:
            try:
                built[source] = BUILDERS[source](request)
            except Exception as exc:  # a source that does not build fails its tests, once
                built[source] = exc
        result = built[source]
        if isinstance(result, Exception):
            pytest.fail(f"source {source!r} does not build: {result!r}", pytrace=False)
        return result

    return load


@pytest.fixture
def template(request: pytest.FixtureRequest, sources: Callable[[str], Source]) -> Template:
    source, stack = request.param.split("/", 1)
    templates = sources(source).templates
    assert stack in templates, f"{source} synthesized no stack {stack} (it has {sorted(templates)})"
    return templates[stack]


@pytest.fixture
def reserved_concurrency_opt_ins() -> dict[str, set[str]]:
    """Functions built with reserved concurrency on purpose, by template id: none."""
    return {}


@pytest.fixture
def deletion_protection_opt_ins() -> dict[str, set[str]]:
    """Resources built with deletion protection on purpose, by template id: none (a test
    stack that must be torn down after a failed first create may not protect itself)."""
    return {}


def each_template(test: Callable[..., None]) -> Callable[..., None]:
    return pytest.mark.parametrize("template", TEMPLATE_IDS, indirect=True)(test)


def _report(violations: Iterable[str]) -> str:
    return "\n".join(["", *violations])


# -- rule 1: policies before the resources that run as their role ---------------------------------


def policies_created_after_their_users(template: Template) -> list[str]:
    """Everything that runs as a role (a function, an ECS service, a custom resource, a
    rotation...) must wait for every policy that grants the role something: CloudFormation only
    orders what a Ref/GetAtt/Sub/DependsOn says."""
    graph = dependency_graph(template)
    violations = []
    for user, roles in sorted(role_users(template).items()):
        before = created_before(graph, user)
        for role in sorted(roles):
            for policy in sorted(policies_of_role(template, role) - before):
                violations.append(f"{user} uses {role} before {policy} exists")
    return violations


# -- rule 2: no reserved concurrency unless asked -------------------------------------------------


def reserved_concurrency(template: Template, allowed: set[str]) -> list[str]:
    """New accounts have 10 concurrent executions and must keep 10 unreserved: any reservation
    fails their deploy."""
    return [
        f"{logical_id} reserves {properties(f)['ReservedConcurrentExecutions']} concurrent "
        "executions"
        for logical_id, f in sorted(of_type(template, "AWS::Lambda::Function").items())
        if "ReservedConcurrentExecutions" in properties(f) and logical_id not in allowed
    ]


# -- rule 3: alarms can publish to their topic -----------------------------------------------------

CLOUDWATCH = "cloudwatch.amazonaws.com"


def _only_over_plain_http(statement: Mapping[str, Any]) -> bool:
    """A deny that applies only to requests without TLS (CloudWatch publishes over TLS)."""
    condition = statement.get("Condition") or {}
    return condition == {"Bool": {"aws:SecureTransport": "false"}} or condition == {
        "Bool": {"aws:SecureTransport": False}
    }


def _allows(document: Any, actions: Iterable[str], resource_ids: set[str]) -> list[str]:
    """The actions a policy document does not let CloudWatch take on the resource."""
    missing = []
    for action in actions:
        allowed = any(
            s.get("Effect") == "Allow"
            and CLOUDWATCH in service_principals(s)
            and grants_action(s, action)
            and (
                "*" in as_list(s.get("Resource"))
                or bool(references(s.get("Resource")) & resource_ids)
                or not resource_ids
            )
            for s in statements(document)
        )
        denied = any(
            s.get("Effect") == "Deny"
            and service_principals(s) & {CLOUDWATCH, "*"}
            and grants_action(s, action)
            and not _only_over_plain_http(s)
            for s in statements(document)
        )
        if not allowed or denied:
            missing.append(action)
    return missing


def undeliverable_alarm_actions(template: Template) -> list[str]:
    """Every alarm action that is a topic of the template: its topic policy (if any) lets
    CloudWatch publish, and its KMS key (if any) lets CloudWatch use it."""
    all_resources = resources(template)
    topic_policies = of_type(template, "AWS::SNS::TopicPolicy")
    violations = []
    for alarm_id, alarm in sorted(of_type(template, "AWS::CloudWatch::Alarm").items()):
        props = properties(alarm)
        actions = [
            *as_list(props.get("AlarmActions")),
            *as_list(props.get("OKActions")),
            *as_list(props.get("InsufficientDataActions")),
        ]
        for topic in sorted(targets(actions, template, "AWS::SNS::Topic")):
            for policy_id, policy in sorted(topic_policies.items()):
                policy_props = properties(policy)
                if not any(topic in references(t) for t in as_list(policy_props.get("Topics"))):
                    continue
                if _allows(policy_props.get("PolicyDocument"), ["sns:Publish"], {topic}):
                    violations.append(
                        f"{alarm_id} publishes to {topic}, whose policy {policy_id} does not "
                        f"let {CLOUDWATCH} sns:Publish"
                    )
            key = properties(all_resources[topic]).get("KmsMasterKeyId")
            if key is None:
                continue
            keys = targets(key, template, "AWS::KMS::Key", "AWS::KMS::Alias")
            keys = {
                k
                if all_resources[k]["Type"] == "AWS::KMS::Key"
                else next(iter(targets(properties(all_resources[k]), template, "AWS::KMS::Key")), k)
                for k in keys
            }
            if not keys:
                violations.append(
                    f"{alarm_id} publishes to {topic}, encrypted with {key!r}: CloudWatch cannot "
                    "use an AWS managed key"
                )
            for key_id in sorted(keys):
                missing = _allows(
                    properties(all_resources[key_id]).get("KeyPolicy"),
                    ["kms:Decrypt", "kms:GenerateDataKey"],  # what "GenerateDataKey*" grants
                    set(),
                )
                if missing:
                    violations.append(
                        f"{alarm_id} publishes to {topic}, whose key {key_id} does not let "
                        f"{CLOUDWATCH} {', '.join(missing)}"
                    )
    return violations


# -- rule 4: a failed first create rolls back to nothing that blocks a retry -----------------------

# The property that fixes a resource's physical name, by type.
NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Backup::BackupVault": "BackupVaultName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::S3::Bucket": "BucketName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "Name",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Events::EventBus": "Name",
    "AWS::EFS::FileSystem": "FileSystemTags",
}
NAME_PROPERTIES.pop("AWS::EFS::FileSystem")  # tags do not collide

STATEFUL_TYPES = (
    "AWS::Logs::LogGroup",
    "AWS::SecretsManager::Secret",
    "AWS::KMS::Key",
    "AWS::ECR::Repository",
    "AWS::S3::Bucket",
    "AWS::Backup::BackupVault",
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::DynamoDB::Table",
    "AWS::EFS::FileSystem",
)


def _fixed_name(resource: Mapping[str, Any], template: Template) -> Any:
    """The resource's physical name when a retry would get the same one: a literal, or built
    from parameters and pseudo parameters only (a name built from another resource's generated
    name changes with it)."""
    name = properties(resource).get(NAME_PROPERTIES.get(resource.get("Type", ""), ""))
    if name is None or references(name) & set(resources(template)):
        return None
    return name


def retained_with_fixed_names(template: Template) -> list[str]:
    """DeletionPolicy Retain keeps a resource when a first create fails and rolls back; with a
    fixed name, the retry then collides with the leftover."""
    return [
        f"{logical_id} ({r['Type']}) is retained on a failed create with the fixed "
        f"{NAME_PROPERTIES[r['Type']]} {_fixed_name(r, template)!r}"
        for logical_id, r in sorted(resources(template).items())
        if r.get("DeletionPolicy") == "Retain" and _fixed_name(r, template) is not None
    ]


def deletion_protection_on(template: Template, allowed: set[str]) -> list[str]:
    """Deletion protection turns the rollback of a failed first create into ROLLBACK_FAILED:
    it is for production, turned on by the user, never on by default."""
    violations = []
    for logical_id, r in sorted(resources(template).items()):
        if logical_id in allowed:
            continue
        props = properties(r)
        for name in ("DeletionProtection", "DeletionProtectionEnabled"):
            if props.get(name) in (True, "true", "True"):
                violations.append(f"{logical_id} ({r['Type']}) has {name} on")
        for attribute in as_list(props.get("LoadBalancerAttributes")):
            if attribute.get("Key") == "deletion_protection.enabled" and attribute.get("Value") in (
                True,
                "true",
            ):
                violations.append(f"{logical_id} ({r['Type']}) has deletion_protection.enabled")
    return violations


def stateful_retained_on_failed_create(template: Template) -> list[str]:
    """Stateful resources kept on delete are RetainExceptOnCreate (or Snapshot for RDS), so a
    failed first create leaves nothing behind."""
    return [
        f"{logical_id} ({r['Type']}) has DeletionPolicy Retain, not RetainExceptOnCreate"
        for logical_id, r in sorted(of_type(template, *STATEFUL_TYPES).items())
        if r.get("DeletionPolicy") == "Retain"
    ]


# -- rule 5: no TLS on a load balancer's target ----------------------------------------------------


def _port_names(task_definition: Mapping[str, Any], container: Any, port: Any) -> set[str]:
    return {
        mapping["Name"]
        for c in as_list(properties(task_definition).get("ContainerDefinitions"))
        if c.get("Name") == container
        for mapping in as_list(c.get("PortMappings"))
        if mapping.get("ContainerPort") == port and "Name" in mapping
    }


def tls_on_load_balancer_targets(template: Template) -> list[str]:
    """A load balancer health-checks and forwards plain HTTP to its target's container port:
    neither Service Connect TLS nor an App Mesh TLS listener may sit on that port."""
    all_resources = resources(template)
    violations = []
    for service_id, service in sorted(of_type(template, "AWS::ECS::Service").items()):
        props = properties(service)
        task_definitions = targets(
            props.get("TaskDefinition"), template, "AWS::ECS::TaskDefinition"
        )
        for target in as_list(props.get("LoadBalancers")):
            container, port = target.get("ContainerName"), target.get("ContainerPort")
            for task_id in sorted(task_definitions):
                task = all_resources[task_id]
                names = _port_names(task, container, port)
                connect = props.get("ServiceConnectConfiguration") or {}
                for entry in as_list(connect.get("Services")):
                    if entry.get("PortName") in names and entry.get("Tls"):
                        violations.append(
                            f"{service_id}: Service Connect TLS on {entry['PortName']!r}, the "
                            f"load balancer's target {container}:{port}"
                        )
                for node_id in sorted(
                    targets(properties(task), template, "AWS::AppMesh::VirtualNode")
                ):
                    spec = properties(all_resources[node_id]).get("Spec", {})
                    for listener in as_list(spec.get("Listeners")):
                        if listener.get("PortMapping", {}).get("Port") == port and listener.get(
                            "TLS"
                        ):
                            violations.append(
                                f"{service_id}: App Mesh TLS on {node_id}'s listener {port}, the "
                                f"load balancer's target {container}:{port}"
                            )
    return violations


# -- rule 6: Lambda runtimes supported on the build date ------------------------------------------

# Deprecation dates of Lambda's managed runtimes, as of 2026-11-30, from the "Supported runtimes"
# and "Deprecated runtimes" tables of https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
# (cross-checked with https://endoflife.date/aws-lambda). Refresh it when it goes stale (checked).
RUNTIMES_AS_OF = date(2026, 11, 30)
RUNTIME_DEPRECATION = {
    "nodejs24.x": date(2028, 4, 30),
    "nodejs22.x": date(2027, 4, 30),
    "nodejs20.x": date(2026, 4, 30),
    "nodejs18.x": date(2025, 9, 1),
    "nodejs16.x": date(2024, 6, 12),
    "python3.14": date(2029, 6, 30),
    "python3.13": date(2029, 6, 30),
    "python3.12": date(2028, 10, 31),
    "python3.11": date(2027, 6, 30),
    "python3.10": date(2026, 6, 30),
    "python3.9": date(2025, 12, 15),
    "python3.8": date(2024, 10, 14),
    "java25": date(2029, 6, 30),
    "java21": date(2029, 6, 30),
    "java17": date(2029, 6, 30),
    "java11": date(2026, 6, 30),
    "java8.al2": date(2026, 6, 30),
    "dotnet10": date(2028, 11, 14),
    "dotnet8": date(2026, 11, 10),
    "ruby3.4": date(2028, 3, 31),
    "ruby3.3": date(2027, 3, 31),
    "ruby3.2": date(2026, 3, 31),
    "provided.al2023": date(2029, 6, 30),
    "provided.al2": date(2026, 6, 30),
}
RUNTIME_NOTICE = timedelta(days=90)
# AWS::SecretsManager::RotationSchedule HostedRotationLambda: the CloudFormation docs say AWS's
# hosted rotation function deploys Python 3.10 binaries.
HOSTED_ROTATION_RUNTIME = "python3.10"


def lambda_runtimes(template: Template) -> dict[str, str]:
    """The runtime of every function the template creates, its own or made for it."""
    found = {
        logical_id: properties(f).get("Runtime", "")
        for logical_id, f in of_type(template, "AWS::Lambda::Function").items()
        if properties(f).get("PackageType") != "Image"
    }
    globals_ = template.get("Globals", {}).get("Function", {})
    for logical_id, f in of_type(template, "AWS::Serverless::Function").items():
        if properties(f).get("PackageType") != "Image":
            found[logical_id] = properties(f).get("Runtime", globals_.get("Runtime", ""))
    for logical_id, schedule in of_type(template, "AWS::SecretsManager::RotationSchedule").items():
        if "HostedRotationLambda" in properties(schedule):
            found[f"{logical_id} (HostedRotationLambda)"] = HOSTED_ROTATION_RUNTIME
    return found


def unsupported_runtimes(template: Template, build_date: date) -> list[str]:
    violations = []
    for logical_id, runtime in sorted(lambda_runtimes(template).items()):
        deprecation = RUNTIME_DEPRECATION.get(runtime)
        if not isinstance(runtime, str) or deprecation is None:
            violations.append(f"{logical_id}: runtime {runtime!r} is not in the dated table")
        elif deprecation <= build_date + RUNTIME_NOTICE:
            violations.append(
                f"{logical_id}: {runtime} is deprecated on {deprecation.isoformat()} "
                f"(build date {build_date.isoformat()}, notice {RUNTIME_NOTICE.days} days)"
            )
    return violations


# -- rule 7: no dependency cycle -------------------------------------------------------------------


def dependency_cycles(template: Template) -> list[str]:
    return [f"cycle: {' -> '.join(c)}" for c in cycles(dependency_graph(template))]


def stack_cycles(
    templates: Mapping[str, Template], manifest: Mapping[str, Any] | None
) -> list[str]:
    """Across the stacks of one app: Fn::ImportValue of exports, and declared dependencies."""
    return [f"stack cycle: {' -> '.join(c)}" for c in cycles(stack_graph(templates, manifest))]


# -- rule 8: every database reachable by the services that use it ---------------------------------

DEFAULT_PORTS = {
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "oracle": 1521,
    "sqlserver": 1433,
}


def _database_port(database: Mapping[str, Any]) -> int | None:
    props = properties(database)
    if isinstance(props.get("Port"), int | str) and str(props.get("Port")).isdigit():
        return int(props["Port"])
    engine = str(props.get("Engine", ""))
    return next((p for name, p in DEFAULT_PORTS.items() if name in engine), None)


def _database_parts(template: Template, database: str) -> set[str]:
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


def _service_reads(template: Template, service: str) -> set[str]:
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


def _covers(rule: Mapping[str, Any], port: int, database: str | None = None) -> bool:
    if str(rule.get("IpProtocol")) in {"-1", "all"}:
        return True
    if str(rule.get("IpProtocol")).lower() not in {"tcp", "6"}:
        return False
    low = _port_number(rule.get("FromPort"), port, database)
    high = _port_number(rule.get("ToPort"), port, database)
    return low is not None and high is not None and low <= port <= high


def _ingress(template: Template, group: str) -> list[dict[str, Any]]:
    all_resources = resources(template)
    rules = [
        dict(rule) for rule in as_list(properties(all_resources[group]).get("SecurityGroupIngress"))
    ]
    rules += [
        properties(r)
        for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if group in references(properties(r).get("GroupId"))
    ]
    return rules


def _egress_allows(
    template: Template, group: str, destination: set[str], port: int, database: str
) -> bool:
    own = properties(resources(template)[group]).get("SecurityGroupEgress")
    if own is None:
        return True  # no egress rules declared: EC2's default allows all outbound
    rules = list(as_list(own)) + [
        properties(r)
        for r in of_type(template, "AWS::EC2::SecurityGroupEgress").values()
        if group in references(properties(r).get("GroupId"))
    ]
    return any(
        _covers(rule, port, database)
        and (
            rule.get("CidrIp") == "0.0.0.0/0"
            or bool(references(rule.get("DestinationSecurityGroupId")) & destination)
        )
        for rule in rules
    )


def unreachable_databases(template: Template) -> list[str]:
    """Each database is used by some service, and each service that uses it (reads its secret,
    its attachment or its endpoint) may connect: ingress into the database's security group from
    the service's, on the database port, and egress that lets it out."""
    all_resources = resources(template)
    databases = {
        k: r
        for k, r in of_type(template, "AWS::RDS::DBCluster", "AWS::RDS::DBInstance").items()
        if not properties(r).get("DBClusterIdentifier") or r["Type"] == "AWS::RDS::DBCluster"
    }
    services = of_type(template, "AWS::ECS::Service")
    violations = []
    for database_id, database in sorted(databases.items()):
        parts = _database_parts(template, database_id)
        port = _database_port(database)
        props = properties(database)
        groups = targets(
            [props.get("VpcSecurityGroupIds"), props.get("VPCSecurityGroups")],
            template,
            "AWS::EC2::SecurityGroup",
        )
        users = sorted(s for s in services if _service_reads(template, s) & parts)
        if not users:
            violations.append(
                f"{database_id}: no service uses it (it costs and nothing reaches it)"
            )
        for service_id in users:
            configuration = properties(all_resources[service_id]).get("NetworkConfiguration", {})
            service_groups = targets(configuration, template, "AWS::EC2::SecurityGroup")
            reachable = port is not None and any(
                _covers(rule, port, database_id)
                and references(rule.get("SourceSecurityGroupId")) & service_groups
                for group in groups
                for rule in _ingress(template, group)
            )
            if not reachable:
                violations.append(
                    f"{database_id}: {service_id} uses it, but no ingress from its security groups "
                    f"{sorted(service_groups)} into {sorted(groups)} on port {port}"
                )
            elif port is not None and not any(
                _egress_allows(template, g, groups, port, database_id) for g in service_groups
            ):
                violations.append(
                    f"{database_id}: {service_id}'s egress does not reach port {port}"
                )
    return violations


def services_started_before_their_database(template: Template) -> list[str]:
    """A service that uses a database starts only once the database, its instances and the
    attachment that writes its endpoint into the secret exist: tasks that start earlier find
    no host in the secret or no instance to connect to, fail their health checks, and the
    circuit breaker rolls the whole deployment back."""
    graph = dependency_graph(template)
    services = of_type(template, "AWS::ECS::Service")
    violations = []
    for cluster_id in sorted(of_type(template, "AWS::RDS::DBCluster")):
        parts = _database_parts(template, cluster_id)
        instances = {
            k
            for k, r in of_type(template, "AWS::RDS::DBInstance").items()
            if cluster_id in references(properties(r).get("DBClusterIdentifier"))
        }
        attachments = {
            p for p in parts if resources(template)[p]["Type"].endswith("SecretTargetAttachment")
        }
        needed = {cluster_id} | instances | attachments
        for service_id in sorted(s for s in services if _service_reads(template, s) & parts):
            missing = needed - created_before(graph, service_id)
            if missing:
                violations.append(f"{service_id} may start before {sorted(missing)} exist")
    return violations


# -- rule 9: alarms and scaling read metrics that are emitted -------------------------------------


def _metric_convention() -> tuple[str, str, dict[str, set[str]]]:
    """The EMF namespace and dimension of the example services (services/common/metrics.py),
    and the metric names each service emits."""
    source = (ROOT / "examples/trading_platform/services/common/metrics.py").read_text()
    namespace = re.search(r'^NAMESPACE = "([^"]+)"', source, re.M)
    dimension = re.search(r'^DIMENSION = "([^"]+)"', source, re.M)
    assert namespace and dimension, "metrics.py no longer names NAMESPACE and DIMENSION"
    emitted: dict[str, set[str]] = {}
    for app in (ROOT / "examples/trading_platform/services").glob("*/*.py"):
        names = set(re.findall(r'Metric\(\s*"([A-Za-z0-9_.:/#-]+)"', app.read_text()))
        if names:
            emitted.setdefault(app.parent.name.replace("_", "-"), set()).update(names)
    return namespace.group(1), dimension.group(1), emitted


EMF_NAMESPACE, EMF_DIMENSION, EMF_METRICS = _metric_convention()


def _reads(template: Template) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(reader, namespace, metric name, dimensions) of every alarm and target tracking policy."""
    found = []

    def add(reader: str, metric: Mapping[str, Any], ns: str, name: str) -> None:
        dimensions = {d.get("Name"): d.get("Value") for d in as_list(metric.get("Dimensions"))}
        found.append((reader, metric.get(ns), metric.get(name), dimensions))

    for alarm_id, alarm in of_type(template, "AWS::CloudWatch::Alarm").items():
        props = properties(alarm)
        if "MetricName" in props:
            add(alarm_id, props, "Namespace", "MetricName")
        for query in as_list(props.get("Metrics")):
            if "MetricStat" in query:
                add(alarm_id, query["MetricStat"]["Metric"], "Namespace", "MetricName")
    for policy_id, policy in of_type(
        template, "AWS::ApplicationAutoScaling::ScalingPolicy"
    ).items():
        tracking = properties(policy).get("TargetTrackingScalingPolicyConfiguration") or {}
        custom = tracking.get("CustomizedMetricSpecification")
        if custom and "MetricName" in custom:
            add(policy_id, custom, "Namespace", "MetricName")
        for query in as_list((custom or {}).get("Metrics")):
            if "MetricStat" in query:
                add(policy_id, query["MetricStat"]["Metric"], "Namespace", "MetricName")
    return found


def unemitted_metrics(template: Template) -> list[str]:
    """A custom metric an alarm or a scaling policy reads must be emitted: by a metric filter of
    the template (same namespace, name and dimension names), or by the services in EMF (the
    library's namespace, the single ``Service`` dimension, and for the example services a
    metric name their code emits)."""
    filters = {
        (t.get("MetricNamespace"), t.get("MetricName"), frozenset(t.get("Dimensions") or {}))
        for f in of_type(template, "AWS::Logs::MetricFilter").values()
        for t in as_list(properties(f).get("MetricTransformations"))
    }
    violations = []
    for reader, namespace, name, dimensions in sorted(_reads(template), key=str):
        if not isinstance(namespace, str) or namespace.startswith("AWS/"):
            continue
        if namespace == "ECS/ContainerInsights":
            continue
        if (namespace, name, frozenset(dimensions)) in filters:
            continue
        service = dimensions.get(EMF_DIMENSION)
        emf = namespace == EMF_NAMESPACE and set(dimensions) == {EMF_DIMENSION}
        if emf and (service not in EMF_METRICS or name in EMF_METRICS[service]):
            continue
        violations.append(
            f"{reader} reads {namespace}/{name} {sorted(dimensions)}, which nothing emits"
            + (f" ({service} emits {sorted(EMF_METRICS[service])})" if emf else "")
        )
    return violations


# -- rule: task definitions within ECS's size limit ------------------------------------------------

TASK_DEFINITION_LIMIT = 64 * 1024
"""ECS RegisterTaskDefinition refuses a task definition over 64 KiB (ECS service quotas: "Task
definition size, 64 KiB")."""


def oversized_task_definitions(template: Template) -> list[str]:
    """A task definition must fit ECS's 64 KiB once registered: its properties as JSON, counted
    as CloudFormation sends them (intrinsics count with their own text, a close upper bound for
    the ARNs and names they resolve to). Long inline configuration (a sidecar's) is what fills
    it."""
    violations = []
    for logical_id, task in sorted(of_type(template, "AWS::ECS::TaskDefinition").items()):
        size = len(json.dumps(properties(task), separators=(",", ":")))
        if size > TASK_DEFINITION_LIMIT:
            violations.append(f"{logical_id} is {size} bytes, over ECS's {TASK_DEFINITION_LIMIT}")
    return violations


# -- the rules over every template of the suite ----------------------------------------------------


@pytest.mark.parametrize("source", list(STACKS))
def test_every_synthesized_stack_is_checked(source: str, sources: Callable[[str], Source]) -> None:
    assert tuple(sorted(sources(source).templates)) == tuple(sorted(STACKS[source]))


@each_template
def test_policies_exist_before_what_runs_as_their_role(template: Template) -> None:
    violations = policies_created_after_their_users(template)
    assert not violations, _report(violations)


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_no_reserved_concurrency_unless_asked(
    template_id: str,
    sources: Callable[[str], Source],
    reserved_concurrency_opt_ins: dict[str, set[str]],
) -> None:
    source, stack = template_id.split("/", 1)
    violations = reserved_concurrency(
        sources(source).templates[stack], reserved_concurrency_opt_ins.get(template_id, set())
    )
    assert not violations, _report(violations)


@each_template
def test_alarm_actions_can_be_delivered(template: Template) -> None:
    violations = undeliverable_alarm_actions(template)
    assert not violations, _report(violations)


@each_template
def test_nothing_retained_with_a_fixed_name(template: Template) -> None:
    violations = retained_with_fixed_names(template)
    assert not violations, _report(violations)


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_no_deletion_protection_unless_asked(
    template_id: str,
    sources: Callable[[str], Source],
    deletion_protection_opt_ins: dict[str, set[str]],
) -> None:
    source, stack = template_id.split("/", 1)
    violations = deletion_protection_on(
        sources(source).templates[stack], deletion_protection_opt_ins.get(template_id, set())
    )
    assert not violations, _report(violations)


@each_template
def test_stateful_resources_are_not_retained_on_a_failed_create(template: Template) -> None:
    violations = stateful_retained_on_failed_create(template)
    assert not violations, _report(violations)


@each_template
def test_no_tls_on_a_load_balancer_target(template: Template) -> None:
    violations = tls_on_load_balancer_targets(template)
    assert not violations, _report(violations)


@each_template
def test_lambda_runtimes_are_supported_on_the_build_date(template: Template) -> None:
    violations = unsupported_runtimes(template, date.today())
    assert not violations, _report(violations)


def test_the_runtime_table_is_not_stale() -> None:
    assert date.today() - RUNTIMES_AS_OF < timedelta(days=180), (
        "refresh RUNTIME_DEPRECATION from the Lambda runtimes page"
    )


@each_template
def test_no_dependency_cycle_in_a_stack(template: Template) -> None:
    violations = dependency_cycles(template)
    assert not violations, _report(violations)


@pytest.mark.parametrize("source", list(STACKS))
def test_no_dependency_cycle_across_stacks(source: str, sources: Callable[[str], Source]) -> None:
    built = sources(source)
    violations = stack_cycles(built.templates, read_manifest(built.outdir))
    assert not violations, _report(violations)


@each_template
def test_every_database_is_reachable_by_the_services_that_use_it(template: Template) -> None:
    violations = unreachable_databases(template)
    assert not violations, _report(violations)


@each_template
def test_services_start_after_the_database_they_use(template: Template) -> None:
    violations = services_started_before_their_database(template)
    assert not violations, _report(violations)


@each_template
def test_task_definitions_fit_ecs_size_limit(template: Template) -> None:
    assert oversized_task_definitions(template) == [], _report(oversized_task_definitions(template))


def test_control_an_oversized_task_definition() -> None:
    def template(command_bytes: int) -> Template:
        container = {"Name": "envoy", "Command": ["--config-yaml", "x" * command_bytes]}
        return {
            "Resources": {
                "Task": {
                    "Type": "AWS::ECS::TaskDefinition",
                    "Properties": {"ContainerDefinitions": [container]},
                }
            }
        }

    assert oversized_task_definitions(template(60_000)) == []
    (violation,) = oversized_task_definitions(template(70_000))
    assert violation.startswith("Task is 70") and "over ECS's 65536" in violation


@each_template
def test_alarms_and_scaling_read_emitted_metrics(template: Template) -> None:
    violations = unemitted_metrics(template)
    assert not violations, _report(violations)


# -- negative controls: each rule can fail ---------------------------------------------------------


def _fn(role: str = "Role", **extra: Any) -> dict[str, Any]:
    props = {"Role": {"Fn::GetAtt": [role, "Arn"]}, "Runtime": "python3.14", **extra}
    return {"Type": "AWS::Lambda::Function", "Properties": props}


def _policy(role: str = "Role", *resource_ids: str) -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Action": "ec2:CreateNetworkInterface",
        "Resource": [{"Fn::GetAtt": [r, "Arn"]} for r in resource_ids] or "*",
    }
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyDocument": {"Statement": [statement]}, "Roles": [{"Ref": role}]},
    }


ROLE = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}


def test_control_a_function_created_before_its_role_policy() -> None:
    # GIVEN a function whose managed policy names the function (so it waits for the function),
    # and one whose policy is merely unordered
    stack = Stack(App(), "Control", env=ENV)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(*_): pass"),
        role=role,
    )
    iam.ManagedPolicy(
        stack,
        "SelfInvoke",
        roles=[role],
        statements=[
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[function.function_arn]
            )
        ],
    )
    template = CdkTemplate.from_stack(stack).to_json()
    # THEN the rule reports the function using its role before the policy exists
    violations = policies_created_after_their_users(template)
    assert len(violations) == 1
    assert re.fullmatch(r"Fn\w+ uses Role\w+ before SelfInvoke\w+ exists", violations[0])


def test_control_an_ecs_service_and_a_custom_resource_before_their_policies() -> None:
    template = {
        "Resources": {
            "Role": ROLE,
            "Policy": _policy(),
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {"TaskRoleArn": {"Fn::GetAtt": ["Role", "Arn"]}},
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {"TaskDefinition": {"Ref": "Task"}},
            },
            "Handler": _fn(),
            "Custom": {
                "Type": "Custom::Thing",
                "Properties": {"ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]}},
            },
            "Ordered": {
                "Type": "Custom::Thing",
                "DependsOn": ["Policy"],
                "Properties": {"ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]}},
            },
        }
    }
    assert policies_created_after_their_users(template) == [
        "Custom uses Role before Policy exists",
        "Handler uses Role before Policy exists",
        "Service uses Role before Policy exists",
    ]


def test_control_reserved_concurrency() -> None:
    stack = Stack(App(), "Control", env=ENV)
    lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(*_): pass"),
        reserved_concurrent_executions=1,
    )
    template = CdkTemplate.from_stack(stack).to_json()
    (function_id,) = of_type(template, "AWS::Lambda::Function")
    assert reserved_concurrency(template, set()) == [
        f"{function_id} reserves 1 concurrent executions"
    ]
    assert reserved_concurrency(template, {function_id}) == []


def _alarm_template(topic_policy: list[dict[str, Any]] | None, key: Any) -> dict[str, Any]:
    topic_props = {} if key is None else {"KmsMasterKeyId": key}
    template: dict[str, Any] = {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": topic_props},
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {"Namespace": "AWS/SQS", "AlarmActions": [{"Ref": "Topic"}]},
            },
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": "arn:aws:iam::1:root"},
                                "Action": "kms:*",
                                "Resource": "*",
                            }
                        ]
                    }
                },
            },
        }
    }
    if topic_policy is not None:
        template["Resources"]["TopicPolicy"] = {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "Topic"}],
                "PolicyDocument": {"Statement": topic_policy},
            },
        }
    return template


SSL_ONLY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sns:Publish",
    "Resource": {"Ref": "Topic"},
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
CLOUDWATCH_PUBLISH = {
    "Effect": "Allow",
    "Principal": {"Service": CLOUDWATCH},
    "Action": "sns:Publish",
    "Resource": {"Ref": "Topic"},
}


def test_control_alarm_actions_blocked_by_topic_policy_or_key() -> None:
    # a topic policy without CloudWatch, as enforce_ssl alone writes it
    assert undeliverable_alarm_actions(_alarm_template([SSL_ONLY], None)) == [
        f"Alarm publishes to Topic, whose policy TopicPolicy does not let {CLOUDWATCH} sns:Publish"
    ]
    # with CloudWatch allowed and the TLS-only deny: fine
    assert undeliverable_alarm_actions(_alarm_template([SSL_ONLY, CLOUDWATCH_PUBLISH], None)) == []
    # a deny without the TLS condition blocks it again
    blanket_deny = {k: v for k, v in SSL_ONLY.items() if k != "Condition"}
    assert undeliverable_alarm_actions(_alarm_template([CLOUDWATCH_PUBLISH, blanket_deny], None))
    # the AWS managed key, and a key whose policy leaves CloudWatch out
    assert undeliverable_alarm_actions(_alarm_template(None, "alias/aws/sns")) == [
        "Alarm publishes to Topic, encrypted with 'alias/aws/sns': CloudWatch cannot use an AWS "
        "managed key"
    ]
    assert undeliverable_alarm_actions(_alarm_template(None, {"Fn::GetAtt": ["Key", "Arn"]})) == [
        f"Alarm publishes to Topic, whose key Key does not let {CLOUDWATCH} kms:Decrypt, "
        "kms:GenerateDataKey"
    ]
    template = _alarm_template(None, {"Fn::GetAtt": ["Key", "Arn"]})
    template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"Service": CLOUDWATCH},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        }
    )
    assert undeliverable_alarm_actions(template) == []


def test_control_retained_with_a_fixed_name_and_deletion_protection() -> None:
    stack = Stack(App(), "Control", env=ENV)
    logs.LogGroup(stack, "Named", log_group_name="/fixed/name", removal_policy=RemovalPolicy.RETAIN)
    logs.LogGroup(
        stack,
        "Generated",
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        retention=logs.RetentionDays.ONE_WEEK,
    )
    template = CdkTemplate.from_stack(stack).to_json()
    named = next(k for k in resources(template) if k.startswith("Named"))
    assert retained_with_fixed_names(template) == [
        f"{named} (AWS::Logs::LogGroup) is retained on a failed create with the fixed "
        "LogGroupName '/fixed/name'"
    ]
    assert stateful_retained_on_failed_create(template) == [
        f"{named} (AWS::Logs::LogGroup) has DeletionPolicy Retain, not RetainExceptOnCreate"
    ]
    # a name built from a generated one (a function's) changes on a retry: no collision
    derived = {
        "Resources": {
            "Fn": _fn(),
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Retain",
                "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Fn}"}},
            },
            "Vault": {
                "Type": "AWS::Backup::BackupVault",
                "DeletionPolicy": "Retain",
                "Properties": {"BackupVaultName": {"Fn::Sub": "${AWS::StackName}-vault"}},
            },
        }
    }
    assert [v.split(" ")[0] for v in retained_with_fixed_names(derived)] == ["Vault"]
    protected = {
        "Resources": {
            "Db": {"Type": "AWS::RDS::DBCluster", "Properties": {"DeletionProtection": True}},
            "Alb": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {
                    "LoadBalancerAttributes": [
                        {"Key": "deletion_protection.enabled", "Value": "true"}
                    ]
                },
            },
        }
    }
    assert deletion_protection_on(protected, set()) == [
        "Alb (AWS::ElasticLoadBalancingV2::LoadBalancer) has deletion_protection.enabled",
        "Db (AWS::RDS::DBCluster) has DeletionProtection on",
    ]
    assert deletion_protection_on(protected, {"Alb", "Db"}) == []


def _lb_service(connect_tls: bool, mesh_tls: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"PortName": "web"}
    if connect_tls:
        entry["Tls"] = {"IssuerCertificateAuthority": {"AwsPcaAuthorityArn": "arn"}}
    listener: dict[str, Any] = {"PortMapping": {"Port": 8080, "Protocol": "http"}}
    if mesh_tls:
        listener["TLS"] = {"Mode": "STRICT"}
    return {
        "Resources": {
            "Node": {
                "Type": "AWS::AppMesh::VirtualNode",
                "Properties": {"Spec": {"Listeners": [listener]}},
            },
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": [
                        {"Name": "app", "PortMappings": [{"ContainerPort": 8080, "Name": "web"}]},
                        {
                            "Name": "envoy",
                            "Environment": [
                                {"Name": "APPMESH_RESOURCE_ARN", "Value": {"Ref": "Node"}}
                            ],
                        },
                    ]
                },
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": {"Ref": "Task"},
                    "LoadBalancers": [{"ContainerName": "app", "ContainerPort": 8080}],
                    "ServiceConnectConfiguration": {"Enabled": True, "Services": [entry]},
                },
            },
        }
    }


def test_control_tls_on_a_load_balancer_target() -> None:
    assert tls_on_load_balancer_targets(_lb_service(False, False)) == []
    assert tls_on_load_balancer_targets(_lb_service(True, False)) == [
        "Service: Service Connect TLS on 'web', the load balancer's target app:8080"
    ]
    assert tls_on_load_balancer_targets(_lb_service(False, True)) == [
        "Service: App Mesh TLS on Node's listener 8080, the load balancer's target app:8080"
    ]


def test_control_unsupported_runtimes() -> None:
    template = {
        "Resources": {
            "Old": _fn(Runtime="nodejs20.x"),
            "Soon": _fn(Runtime="dotnet8"),
            "Unknown": _fn(Runtime="cobol1.x"),
            "Fine": _fn(),
            "Image": {"Type": "AWS::Lambda::Function", "Properties": {"PackageType": "Image"}},
            "Rotation": {
                "Type": "AWS::SecretsManager::RotationSchedule",
                "Properties": {"HostedRotationLambda": {"RotationType": "PostgreSQLSingleUser"}},
            },
        }
    }
    violations = unsupported_runtimes(template, date(2026, 11, 30))
    assert [v.split(":")[0] for v in violations] == [
        "Old",
        "Rotation (HostedRotationLambda)",
        "Soon",
        "Unknown",
    ]
    # a year earlier only the runtime missing from the table is reported
    assert [v.split(":")[0] for v in unsupported_runtimes(template, date(2025, 11, 30))] == [
        "Unknown"
    ]


def test_control_dependency_cycles() -> None:
    template = {
        "Resources": {
            "A": {"Type": "AWS::SNS::Topic", "Properties": {"X": {"Fn::Sub": "${B.Arn}"}}},
            "B": {"Type": "AWS::SNS::Topic", "DependsOn": "C"},
            "C": {"Type": "AWS::SNS::Topic", "Properties": {"Y": {"Ref": "A"}}},
            "D": {"Type": "AWS::SNS::Topic", "Properties": {"Z": {"Ref": "A"}}},
        }
    }
    assert dependency_cycles(template) == ["cycle: A -> B -> C"]
    exporting = {"Outputs": {"O": {"Value": "1", "Export": {"Name": "one"}}}, "Resources": {}}
    importing = {
        "Resources": {
            "T": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Fn::ImportValue": "one"}}}
        }
    }
    assert stack_cycles({"One": exporting, "Two": importing}, None) == []
    both = {**importing, "Outputs": {"P": {"Value": "2", "Export": {"Name": "two"}}}}
    back = {
        **exporting,
        "Resources": {
            "U": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Fn::ImportValue": "two"}}}
        },
    }
    assert stack_cycles({"One": back, "Two": both}, None) == ["stack cycle: One -> Two"]
    manifest = {"artifacts": {"One": {"type": "aws:cloudformation:stack", "dependencies": ["Two"]}}}
    assert stack_cycles({"One": exporting, "Two": importing}, manifest) == [
        "stack cycle: One -> Two"
    ]


def _database(ingress: bool, used: bool) -> dict[str, Any]:
    template: dict[str, Any] = {
        "Resources": {
            "DbGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {}},
            "AppGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {}},
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "Db": {
                "Type": "AWS::RDS::DBCluster",
                "Properties": {
                    "Engine": "aurora-postgresql",
                    "VpcSecurityGroupIds": [{"Fn::GetAtt": ["DbGroup", "GroupId"]}],
                },
            },
            "Attachment": {
                "Type": "AWS::SecretsManager::SecretTargetAttachment",
                "Properties": {"SecretId": {"Ref": "Secret"}, "TargetId": {"Ref": "Db"}},
            },
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": [
                        {
                            "Name": "app",
                            "Secrets": [{"Name": "DB", "ValueFrom": {"Ref": "Attachment"}}]
                            if used
                            else [],
                        }
                    ]
                },
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": {"Ref": "Task"},
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "SecurityGroups": [{"Fn::GetAtt": ["AppGroup", "GroupId"]}]
                        }
                    },
                },
            },
        }
    }
    if ingress:
        template["Resources"]["Ingress"] = {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": {"Fn::GetAtt": ["DbGroup", "GroupId"]},
                "SourceSecurityGroupId": {"Fn::GetAtt": ["AppGroup", "GroupId"]},
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
            },
        }
    return template


def test_control_unreachable_and_unused_databases() -> None:
    assert unreachable_databases(_database(ingress=True, used=True)) == []
    # the port as CDK writes it, the database's Endpoint.Port
    token_port = _database(ingress=True, used=True)
    rule = token_port["Resources"]["Ingress"]["Properties"]
    rule["FromPort"] = rule["ToPort"] = {"Fn::GetAtt": ["Db", "Endpoint.Port"]}
    assert unreachable_databases(token_port) == []
    assert unreachable_databases(_database(ingress=False, used=True)) == [
        "Db: Service uses it, but no ingress from its security groups ['AppGroup'] into "
        "['DbGroup'] on port 5432"
    ]
    assert unreachable_databases(_database(ingress=True, used=False)) == [
        "Db: no service uses it (it costs and nothing reaches it)"
    ]


def test_control_metrics_nobody_emits() -> None:
    def alarm(namespace: str, name: str, dimensions: dict[str, str]) -> dict[str, Any]:
        return {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
        }

    service, names = next(iter(sorted(EMF_METRICS.items())))
    template = {
        "Resources": {
            "Filter": {
                "Type": "AWS::Logs::MetricFilter",
                "Properties": {
                    "MetricTransformations": [
                        {"MetricNamespace": "App/x", "MetricName": "Errors", "MetricValue": "1"}
                    ]
                },
            },
            "FromFilter": alarm("App/x", "Errors", {}),
            "NoFilter": alarm("App/x", "Warnings", {}),
            "Aws": alarm("AWS/ECS", "CPUUtilization", {"ServiceName": "s"}),
            "Emf": alarm(EMF_NAMESPACE, sorted(names)[0], {EMF_DIMENSION: service}),
            "EmfWrongDimension": alarm(EMF_NAMESPACE, sorted(names)[0], {"ServiceName": service}),
            "EmfWrongName": alarm(EMF_NAMESPACE, "NotEmitted", {EMF_DIMENSION: service}),
            "Scaling": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {
                    "TargetTrackingScalingPolicyConfiguration": {
                        "CustomizedMetricSpecification": {
                            "Namespace": "Wrong",
                            "MetricName": "Depth",
                            "Dimensions": [],
                            "Statistic": "Average",
                        }
                    }
                },
            },
        }
    }
    readers = [v.split(" ")[0] for v in unemitted_metrics(template)]
    assert readers == ["EmfWrongDimension", "EmfWrongName", "NoFilter", "Scaling"]


def test_control_helpers_read_every_reference_form() -> None:
    value = {
        "a": {"Ref": "One"},
        "b": {"Fn::GetAtt": ["Two", "Arn"]},
        "c": {"Fn::GetAtt": "Three.Arn"},
        "d": {
            "Fn::Sub": [
                "${Four.Arn}/${AWS::Region}/${local}/${!Literal}",
                {"local": {"Ref": "Five"}},
            ]
        },
        "e": {"Ref": "AWS::AccountId"},
    }
    assert references(value) == {"One", "Two", "Three", "Four", "Five"}


def test_control_a_service_that_starts_before_its_database() -> None:
    def template(depends_on: list[str]) -> dict[str, Any]:
        return {
            "Resources": {
                "Db": {
                    "Type": "AWS::RDS::DBCluster",
                    "Properties": {"Engine": "aurora-postgresql"},
                },
                "Writer": {
                    "Type": "AWS::RDS::DBInstance",
                    "Properties": {"DBClusterIdentifier": {"Ref": "Db"}},
                },
                "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
                "Attach": {
                    "Type": "AWS::SecretsManager::SecretTargetAttachment",
                    "Properties": {"SecretId": {"Ref": "Secret"}, "TargetId": {"Ref": "Db"}},
                },
                "Task": {
                    "Type": "AWS::ECS::TaskDefinition",
                    "Properties": {
                        "ContainerDefinitions": [
                            {"Environment": [{"Name": "DB_SECRET_ARN", "Value": {"Ref": "Secret"}}]}
                        ]
                    },
                },
                "Service": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {"TaskDefinition": {"Ref": "Task"}},
                    "DependsOn": depends_on,
                },
            }
        }

    assert services_started_before_their_database(template(["Writer", "Attach"])) == []
    # the cluster alone is not enough: its instance and the endpoint in the secret come later
    assert services_started_before_their_database(template(["Db"])) == [
        "Service may start before ['Attach', 'Writer'] exist"
    ]
    assert services_started_before_their_database(template([])) == [
        "Service may start before ['Attach', 'Db', 'Writer'] exist"
    ]
