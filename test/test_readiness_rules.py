"""Each deploy-readiness rule (trading_constructs.readiness) can fail: a negative control per
rule, on a hand-written template or a small synthesized stack, proves the rule finds what it
says and leaves alone what it should. test_deploy_readiness.py runs the same rules over every
template the suite synthesizes.

A rule added to ``RULES`` needs its control here (checked).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template as CdkTemplate
from conftest import ENV
from validation_support import bad

from trading_constructs.readiness import (
    RULES,
    EmittedMetrics,
    ReadinessOptions,
    ReadinessRule,
    check_template,
)
from trading_constructs.readiness.assembly import StackInput
from trading_constructs.readiness.check import run_rules
from trading_constructs.readiness.graph import Template, of_type, references, resources
from trading_constructs.readiness.rules import ACKNOWLEDGEMENT_REASON

CLOUDWATCH = "cloudwatch.amazonaws.com"
BY_ID = {rule.id: rule for rule in RULES}
CONTROLLED: set[str] = set()


def controls(*rule_ids: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Marks a test as the negative control of the rules it names."""
    assert set(rule_ids) <= set(BY_ID), f"unknown rules {set(rule_ids) - set(BY_ID)}"
    CONTROLLED.update(rule_ids)
    return lambda test: test


def fired(rule_id: str, template: Template, **options: Any) -> list[str]:
    """What one rule finds in one template, as ``<logical ID>: <message>``."""
    found = check_template(template, rules=[BY_ID[rule_id]], options=ReadinessOptions(**options))
    return [f"{f.logical_id}: {f.message}" for f in found]


def fired_on(rule_id: str, template: Template, **options: Any) -> list[str]:
    return [v.split(":")[0] for v in fired(rule_id, template, **options)]


def _fn(role: str = "Role", **extra: Any) -> dict[str, Any]:
    props = {"Role": {"Fn::GetAtt": [role, "Arn"]}, "Runtime": "python3.14", **extra}
    return {"Type": "AWS::Lambda::Function", "Properties": props}


def _policy(role: str = "Role") -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"}
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyDocument": {"Statement": [statement]}, "Roles": [{"Ref": role}]},
    }


ROLE = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}


def _beside_role_and_policy(**resources: Any) -> dict[str, Any]:
    """A template of ``resources`` beside ``Role`` and its ``Policy``, which nothing waits for
    unless it says so."""
    return {"Resources": {"Role": ROLE, "Policy": _policy(), **resources}}


def _custom(**extra: Any) -> dict[str, Any]:
    """A custom resource whose provider is the function ``Handler``."""
    return {
        "Type": "Custom::Thing",
        **extra,
        "Properties": {"ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]}},
    }


def _runs_as_role(kind: str, prop: str, **extra: Any) -> dict[str, Any]:
    """A resource of ``kind`` handed ``Role``'s ARN in ``prop``."""
    return {"Type": kind, **extra, "Properties": {prop: {"Fn::GetAtt": ["Role", "Arn"]}}}


def test_every_rule_has_a_negative_control_and_says_why() -> None:
    # GIVEN every rule of the package  THEN each has a control in this module
    assert sorted(set(BY_ID) - CONTROLLED) == []
    # AND an id, a severity, one line on the AWS behaviour and the AWS documentation
    assert len(BY_ID) == len(RULES)
    for rule in RULES:
        assert rule.severity in ("error", "warning")
        assert "\n" not in rule.summary and len(rule.summary) > 40, rule.id
        assert rule.url.startswith("https://docs.aws.amazon.com/"), rule.id
        assert (rule.check is None) != (rule.check_stacks is None), rule.id


@pytest.mark.parametrize(
    ("props", "message"),
    [
        pytest.param({"id": "Bad Id"}, bad("id", "Bad Id", "lower-case words"), id="id"),
        pytest.param({"severity": "fatal"}, bad("severity", "fatal", "'error'"), id="severity"),
        pytest.param({"url": "http://x"}, bad("url", "http://x", "an https://"), id="url"),
    ],
)
def test_a_rule_checks_itself(props: dict[str, Any], message: str) -> None:
    given = {"id": "my-rule", "severity": "error", "summary": "s", "url": "https://x"} | props
    with pytest.raises(ValueError, match=message):
        ReadinessRule(**given)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        pytest.param(
            {"runtime_notice_days": -1}, bad("runtime_notice_days", -1, "0 to 3650"), id="notice"
        ),
        pytest.param(
            {"build_date": "2026-01-01"},
            bad("build_date", "2026-01-01", "datetime.date"),
            id="date",
        ),
        pytest.param(
            {"emitted_metrics": EmittedMetrics()},
            r"emitted_metrics=EmittedMetrics\(.*\) is not allowed \(allowed: a list of",
            id="emitted-not-a-tuple",
        ),
    ],
)
def test_options_check_themselves(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReadinessOptions(**props)


def test_emitted_metrics_check_themselves() -> None:
    with pytest.raises(ValueError, match=bad("namespace", "AWS/ECS", "a custom CloudWatch")):
        EmittedMetrics(namespace="AWS/ECS")
    with pytest.raises(ValueError, match=bad("dimensions", (), "one or more dimension names")):
        EmittedMetrics(dimensions=())


# -- creation order ----------------------------------------------------------------------------


@controls("policy-before-use")
def test_control_a_function_created_before_its_role_policy() -> None:
    # GIVEN a function whose managed policy names the function (so it waits for the function)
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
    # THEN the rule reports the function running as its role before the policy exists
    (violation,) = fired("policy-before-use", template)
    assert re.fullmatch(r"Fn\w+: runs as Role\w+ before SelfInvoke\w+ exists", violation)


@controls("policy-before-use")
def test_control_an_ecs_service_and_a_custom_resource_before_their_policies() -> None:
    template = _beside_role_and_policy(
        Task=_runs_as_role("AWS::ECS::TaskDefinition", "TaskRoleArn"),
        Service={
            "Type": "AWS::ECS::Service",
            "Properties": {"TaskDefinition": {"Ref": "Task"}},
        },
        Handler=_fn(),
        Custom=_custom(),
        Ordered=_custom(DependsOn=["Policy"]),
    )
    assert fired("policy-before-use", template) == [
        "Custom: runs as Role before Policy exists",
        "Handler: runs as Role before Policy exists",
        "Service: runs as Role before Policy exists",
    ]


@controls("service-after-database")
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

    assert fired("service-after-database", template(["Writer", "Attach"])) == []
    # the cluster alone is not enough: its instance and the endpoint in the secret come later
    assert fired("service-after-database", template(["Db"])) == [
        "Service: may start before ['Attach', 'Writer'] exist"
    ]
    assert fired("service-after-database", template([])) == [
        "Service: may start before ['Attach', 'Db', 'Writer'] exist"
    ]


@controls("no-dependency-cycle", "no-stack-cycle")
def test_control_dependency_cycles() -> None:
    template = {
        "Resources": {
            "A": {"Type": "AWS::SNS::Topic", "Properties": {"X": {"Fn::Sub": "${B.Arn}"}}},
            "B": {"Type": "AWS::SNS::Topic", "DependsOn": "C"},
            "C": {"Type": "AWS::SNS::Topic", "Properties": {"Y": {"Ref": "A"}}},
            "D": {"Type": "AWS::SNS::Topic", "Properties": {"Z": {"Ref": "A"}}},
        }
    }
    assert fired("no-dependency-cycle", template) == ["A: cycle: A -> B -> C"]

    def stack_cycles(
        templates: dict[str, Template], depends: dict[str, tuple[str, ...]]
    ) -> list[str]:
        stacks = [
            StackInput(name=n, path=n, template=t, dependencies=depends.get(n, ()))
            for n, t in templates.items()
        ]
        found = run_rules(stacks, rules=[BY_ID["no-stack-cycle"]])
        return [f"{f.stack}: {f.message}" for f in found]

    exporting = {"Outputs": {"O": {"Value": "1", "Export": {"Name": "one"}}}, "Resources": {}}
    importing = {
        "Resources": {
            "T": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Fn::ImportValue": "one"}}}
        }
    }
    assert stack_cycles({"One": exporting, "Two": importing}, {}) == []
    both = {**importing, "Outputs": {"P": {"Value": "2", "Export": {"Name": "two"}}}}
    back = {
        **exporting,
        "Resources": {
            "U": {"Type": "AWS::SNS::Topic", "Properties": {"N": {"Fn::ImportValue": "two"}}}
        },
    }
    assert stack_cycles({"One": back, "Two": both}, {}) == ["One: stack cycle: One -> Two"]
    # a declared dependency (the manifest's) closes a loop too
    assert stack_cycles({"One": exporting, "Two": importing}, {"One": ("Two",)}) == [
        "One: stack cycle: One -> Two"
    ]


# -- quotas and lifetimes ----------------------------------------------------------------------


@controls("no-reserved-concurrency")
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
    assert fired("no-reserved-concurrency", template) == [
        f"{function_id}: reserves 1 concurrent executions"
    ]


@controls("lambda-runtime-supported", "lambda-runtime-dated")
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
    on = date(2026, 11, 30)
    assert fired_on("lambda-runtime-supported", template, build_date=on) == [
        "Old",
        "Rotation",
        "Soon",
    ]
    assert fired("lambda-runtime-supported", template, build_date=on)[1] == (
        "Rotation: 'python3.10' (its HostedRotationLambda) is deprecated on 2026-06-30 "
        "(build date 2026-11-30, notice 90 days)"
    )
    assert fired("lambda-runtime-dated", template, build_date=on) == [
        "Unknown: runtime 'cobol1.x' is not in the dated table"
    ]
    # a year earlier none is deprecated yet; a shorter notice leaves dotnet8 (2026-11-10) out
    assert fired("lambda-runtime-supported", template, build_date=date(2025, 11, 30)) == []
    assert fired_on(
        "lambda-runtime-supported", template, build_date=date(2026, 4, 1), runtime_notice_days=30
    ) == ["Old"]


@controls("task-definition-size")
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

    assert fired("task-definition-size", template(60_000)) == []
    (violation,) = fired("task-definition-size", template(70_000))
    assert violation.startswith("Task: is 70") and "over ECS's 65536" in violation


# -- rollback and retry ------------------------------------------------------------------------


@controls("fixed-name-retained-on-failed-create", "retain-except-on-create")
def test_control_retained_with_a_fixed_name() -> None:
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
    assert fired("fixed-name-retained-on-failed-create", template) == [
        f"{named}: AWS::Logs::LogGroup is retained on a failed create with the fixed "
        "LogGroupName '/fixed/name'"
    ]
    assert fired("retain-except-on-create", template) == [
        f"{named}: AWS::Logs::LogGroup has DeletionPolicy Retain, not RetainExceptOnCreate"
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
    assert fired_on("fixed-name-retained-on-failed-create", derived) == ["Vault"]


@controls("no-deletion-protection-on-create")
def test_control_deletion_protection() -> None:
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
            "Off": {"Type": "AWS::RDS::DBCluster", "Properties": {"DeletionProtection": False}},
        }
    }
    assert fired("no-deletion-protection-on-create", protected) == [
        "Alb: AWS::ElasticLoadBalancingV2::LoadBalancer has deletion_protection.enabled",
        "Db: AWS::RDS::DBCluster has DeletionProtection on",
    ]


# -- traffic -----------------------------------------------------------------------------------


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


@controls("no-tls-on-load-balancer-target")
def test_control_tls_on_a_load_balancer_target() -> None:
    rule = "no-tls-on-load-balancer-target"
    assert fired(rule, _lb_service(False, False)) == []
    assert fired(rule, _lb_service(True, False)) == [
        "Service: Service Connect TLS on 'web', the load balancer's target app:8080"
    ]
    assert fired(rule, _lb_service(False, True)) == [
        "Service: App Mesh TLS on Node's listener 8080, the load balancer's target app:8080"
    ]


def _database(ingress: bool, used: bool) -> dict[str, Any]:
    secrets = [{"Name": "DB", "ValueFrom": {"Ref": "Attachment"}}] if used else []
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
                "Properties": {"ContainerDefinitions": [{"Name": "app", "Secrets": secrets}]},
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


@controls("database-reachable", "database-used")
def test_control_unreachable_and_unused_databases() -> None:
    assert fired("database-reachable", _database(ingress=True, used=True)) == []
    # the port as CDK writes it, the database's Endpoint.Port
    token_port = _database(ingress=True, used=True)
    rule = token_port["Resources"]["Ingress"]["Properties"]
    rule["FromPort"] = rule["ToPort"] = {"Fn::GetAtt": ["Db", "Endpoint.Port"]}
    assert fired("database-reachable", token_port) == []
    assert fired("database-reachable", _database(ingress=False, used=True)) == [
        "Db: Service uses it, but no ingress from its security groups ['AppGroup'] into "
        "['DbGroup'] on port 5432"
    ]
    # egress that does not reach the database's port
    closed = _database(ingress=True, used=True)
    closed["Resources"]["AppGroup"]["Properties"]["SecurityGroupEgress"] = [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
    ]
    assert fired("database-reachable", closed) == ["Db: Service's egress does not reach port 5432"]
    assert fired("database-used", _database(ingress=True, used=True)) == []
    assert fired("database-used", _database(ingress=True, used=False)) == [
        "Db: no ECS service of the stack uses it"
    ]


# -- alarms and metrics ------------------------------------------------------------------------


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


@controls("alarm-can-notify")
def test_control_alarm_actions_blocked_by_topic_policy_or_key() -> None:
    rule = "alarm-can-notify"
    # a topic policy without CloudWatch, as enforce_ssl alone writes it
    assert fired(rule, _alarm_template([SSL_ONLY], None)) == [
        f"Alarm: publishes to Topic, whose policy TopicPolicy does not let {CLOUDWATCH} sns:Publish"
    ]
    # with CloudWatch allowed and the TLS-only deny: fine
    assert fired(rule, _alarm_template([SSL_ONLY, CLOUDWATCH_PUBLISH], None)) == []
    # a deny without the TLS condition blocks it again
    blanket_deny = {k: v for k, v in SSL_ONLY.items() if k != "Condition"}
    assert fired(rule, _alarm_template([CLOUDWATCH_PUBLISH, blanket_deny], None))
    # the AWS managed key, and a key whose policy leaves CloudWatch out
    assert fired(rule, _alarm_template(None, "alias/aws/sns")) == [
        "Alarm: publishes to Topic, encrypted with 'alias/aws/sns': CloudWatch cannot use an "
        "AWS managed key"
    ]
    key_arn = {"Fn::GetAtt": ["Key", "Arn"]}
    assert fired(rule, _alarm_template(None, key_arn)) == [
        f"Alarm: publishes to Topic, whose key Key does not let {CLOUDWATCH} kms:Decrypt, "
        "kms:GenerateDataKey"
    ]
    template = _alarm_template(None, key_arn)
    template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"Service": CLOUDWATCH},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        }
    )
    assert fired(rule, template) == []


def _metric_alarm(namespace: str, name: str, dimensions: dict[str, str]) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "Namespace": namespace,
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        },
    }


@controls("metric-emitted", "metric-emitter-known")
def test_control_metrics_nobody_emits() -> None:
    # GIVEN a metric filter, a declared emitter (EMF: namespace 'App', dimension 'Service',
    # the orders service emitting 'Depth') and readers of each
    emf = EmittedMetrics(namespace="App", names={"orders": {"Depth"}})
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
            "FromFilter": _metric_alarm("App/x", "Errors", {}),
            "NoFilter": _metric_alarm("App/x", "Warnings", {}),
            "Aws": _metric_alarm("AWS/ECS", "CPUUtilization", {"ServiceName": "s"}),
            "Emf": _metric_alarm("App", "Depth", {"Service": "orders"}),
            "EmfUnlisted": _metric_alarm("App", "Anything", {"Service": "billing"}),
            "EmfWrongDimension": _metric_alarm("App", "Depth", {"ServiceName": "orders"}),
            "EmfWrongName": _metric_alarm("App", "NotEmitted", {"Service": "orders"}),
            "Scaling": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {
                    "TargetTrackingScalingPolicyConfiguration": {
                        "CustomizedMetricSpecification": {
                            "Namespace": "Elsewhere",
                            "MetricName": "Depth",
                            "Dimensions": [],
                            "Statistic": "Average",
                        }
                    }
                },
            },
        }
    }
    # THEN readers of what the filter or the emitter does not write are errors; a namespace
    # nobody is known to write is a warning
    options = {"emitted_metrics": (emf,)}
    assert fired_on("metric-emitted", template, **options) == [
        "EmfWrongDimension",
        "EmfWrongName",
        "NoFilter",
    ]
    assert fired("metric-emitted", template, **options)[1] == (
        "EmfWrongName: reads App/NotEmitted ['Service'], which nothing emits "
        "(orders emits ['Depth'])"
    )
    assert fired_on("metric-emitter-known", template, **options) == ["Scaling"]
    # AND by default the library's own namespace is the declared one: 'App' is unknown
    assert "Emf" in fired_on("metric-emitter-known", template)


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


def test_a_finding_names_the_construct_path_from_the_template_metadata() -> None:
    # GIVEN a resource with its aws:cdk:path metadata, as `cdk synth` writes it
    template = {
        "Resources": {
            "FnA1": {
                **_fn(ReservedConcurrentExecutions=2),
                "Metadata": {"aws:cdk:path": "App/Service/Fn/Resource"},
            }
        }
    }
    # THEN the finding names the rule, its severity, the logical ID and the path
    (finding,) = check_template(template, rules=[BY_ID["no-reserved-concurrency"]], stack="App")
    assert (finding.rule.id, finding.severity, finding.logical_id, finding.path) == (
        "no-reserved-concurrency",
        "warning",
        "FnA1",
        "App/Service/Fn/Resource",
    )
    assert str(finding) == (
        "warning no-reserved-concurrency App/Service/Fn/Resource (FnA1): reserves 2 concurrent "
        "executions"
    )


def test_the_readme_lists_every_rule_with_its_severity() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Deploy readiness\n", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (error|warning) \|", section, re.MULTILINE))
    expected = {rule.id: rule.severity for rule in (*RULES, ACKNOWLEDGEMENT_REASON)}
    assert listed == expected


# -- permissions, costs and clean-up a deployment trips on --------------------------------------


@controls("policy-before-use")
def test_control_a_flow_log_and_a_database_before_their_roles_policies() -> None:
    # GIVEN a flow log and an Aurora instance handed a role whose policy is not ordered first
    template = _beside_role_and_policy(
        FlowLog=_runs_as_role("AWS::EC2::FlowLog", "DeliverLogsPermissionArn"),
        Writer=_runs_as_role("AWS::RDS::DBInstance", "MonitoringRoleArn"),
        Reader=_runs_as_role("AWS::RDS::DBInstance", "MonitoringRoleArn", DependsOn="Policy"),
    )
    # THEN both are reported; the instance that waits for the policy is not
    assert fired("policy-before-use", template) == [
        "FlowLog: runs as Role before Policy exists",
        "Writer: runs as Role before Policy exists",
    ]


@controls("service-after-capacity-providers")
def test_control_a_service_before_its_clusters_capacity_providers() -> None:
    def template(**service: Any) -> dict[str, Any]:
        return {
            "Resources": {
                "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {}},
                "Providers": {
                    "Type": "AWS::ECS::ClusterCapacityProviderAssociations",
                    "Properties": {
                        "Cluster": {"Ref": "Cluster"},
                        "CapacityProviders": ["FARGATE", "FARGATE_SPOT"],
                        "DefaultCapacityProviderStrategy": [{"CapacityProvider": "FARGATE"}],
                    },
                },
                "Service": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {"Cluster": {"Ref": "Cluster"}, **service.get("props", {})},
                    **({"DependsOn": service["depends_on"]} if "depends_on" in service else {}),
                },
            }
        }

    strategy = {"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]}
    rule = "service-after-capacity-providers"
    message = "Service: may be created before ['Providers'] gives its cluster capacity providers"
    # its own strategy, or the cluster's default (no launch type): it must wait
    assert fired(rule, template(props=strategy)) == [message]
    assert fired(rule, template()) == [message]
    # ordered, or on a launch type: fine
    assert fired(rule, template(props=strategy, depends_on=["Providers"])) == []
    assert fired(rule, template(props={"LaunchType": "FARGATE"})) == []


@controls("fixed-name-outlives-stack")
def test_control_a_fixed_name_on_a_resource_that_outlives_its_stack() -> None:
    def log_group(name: Any, **policies: str) -> dict[str, Any]:
        return {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name}, **policies}

    template = {
        "Resources": {
            "Kept": log_group("aws-waf-logs-edge", DeletionPolicy="RetainExceptOnCreate"),
            "Replaced": log_group("/fixed", UpdateReplacePolicy="Retain", DeletionPolicy="Delete"),
            "StackNamed": log_group(
                {"Fn::Sub": "/app/${AWS::StackName}"}, DeletionPolicy="RetainExceptOnCreate"
            ),
            # the stack's ID is new for every stack created: no collision
            "StackId": log_group(
                {
                    "Fn::Join": [
                        "-",
                        [
                            "aws-waf-logs",
                            {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                        ],
                    ]
                },
                DeletionPolicy="RetainExceptOnCreate",
            ),
            "Deleted": log_group("/deleted", DeletionPolicy="Delete"),
            # fixed-name-retained-on-failed-create's
            "Retained": log_group("/retained", DeletionPolicy="Retain"),
            "Cluster": {
                "Type": "AWS::RDS::DBCluster",
                "DeletionPolicy": "Snapshot",
                "UpdateReplacePolicy": "Snapshot",
                "Properties": {"DBClusterIdentifier": "market-data"},
            },
        }
    }
    assert fired("fixed-name-outlives-stack", template) == [
        "Kept: AWS::Logs::LogGroup outlives its stack (DeletionPolicy RetainExceptOnCreate) with "
        "the fixed LogGroupName 'aws-waf-logs-edge': the stack deployed again collides with it",
        "Replaced: AWS::Logs::LogGroup outlives a replacement (UpdateReplacePolicy Retain) with "
        "the fixed LogGroupName '/fixed': the replacement collides with it",
        "StackNamed: AWS::Logs::LogGroup outlives its stack (DeletionPolicy RetainExceptOnCreate) "
        "with the fixed LogGroupName {'Fn::Sub': '/app/${AWS::StackName}'}: the stack deployed "
        "again collides with it",
    ]


def _log_bucket(deletion_policy: str | None, *, emptier: str | None = None) -> dict[str, Any]:
    bucket: dict[str, Any] = {"Type": "AWS::S3::Bucket", "Properties": {}}
    if deletion_policy is not None:
        bucket["DeletionPolicy"] = deletion_policy
    balancer: dict[str, Any] = {
        "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Properties": {
            "LoadBalancerAttributes": [
                {"Key": "access_logs.s3.enabled", "Value": "true"},
                {"Key": "access_logs.s3.bucket", "Value": {"Ref": "Logs"}},
            ]
        },
    }
    template: dict[str, Any] = {"Resources": {"Logs": bucket, "Alb": balancer}}
    if emptier is not None:
        template["Resources"]["AutoDelete"] = {
            "Type": "Custom::S3AutoDeleteObjects",
            "Properties": {"ServiceToken": "arn", "BucketName": {"Ref": "Logs"}},
        }
        if emptier == "ordered":
            balancer["DependsOn"] = ["AutoDelete"]
    return template


def _copied_repository(**repository: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "Repo": {"Type": "AWS::ECR::Repository", **repository},
            "Copy": {
                "Type": "Custom::CDKECRDeployment",
                "Properties": {
                    "ServiceToken": "arn",
                    "DestImageName": {
                        "Fn::Join": ["", [{"Fn::GetAtt": ["Repo", "RepositoryUri"]}, ":v1"]]
                    },
                },
            },
        }
    }


@controls("empty-on-failed-create")
def test_control_a_bucket_or_repository_filled_during_the_create_and_deleted_by_its_rollback() -> (
    None
):
    rule = "empty-on-failed-create"
    # a load balancer's log bucket that a failed create deletes (by default, or except on create)
    assert fired(rule, _log_bucket(None)) == [
        "Logs: deleted by a failed create (DeletionPolicy Delete) after Alb filled it, and no "
        "auto-delete custom resource empties it before Alb writes"
    ]
    assert fired_on(rule, _log_bucket("RetainExceptOnCreate")) == ["Logs"]
    # an auto-delete that exists only after the load balancer may have written is too late
    assert fired_on(rule, _log_bucket("RetainExceptOnCreate", emptier="unordered")) == ["Logs"]
    # emptied first, or kept (with a generated name): fine
    assert fired(rule, _log_bucket("RetainExceptOnCreate", emptier="ordered")) == []
    assert fired(rule, _log_bucket("Retain")) == []
    # a custom resource that names the bucket without writing into it does not fill it
    notified = _log_bucket("Retain")
    notified["Resources"]["Logs"]["DeletionPolicy"] = "Delete"
    notified["Resources"].pop("Alb")
    notified["Resources"]["Notify"] = {
        "Type": "Custom::S3BucketNotifications",
        "Properties": {"ServiceToken": "arn", "BucketName": {"Ref": "Logs"}},
    }
    assert fired(rule, notified) == []
    # a repository an image copy fills: EmptyOnDelete lets CloudFormation delete it
    assert fired(rule, _copied_repository(DeletionPolicy="RetainExceptOnCreate")) == [
        "Repo: deleted by a failed create (DeletionPolicy RetainExceptOnCreate) after Copy filled "
        "it, and it has no EmptyOnDelete (nor an auto-delete custom resource created before Copy)"
    ]
    emptied = _copied_repository(
        DeletionPolicy="RetainExceptOnCreate", Properties={"EmptyOnDelete": True}
    )
    assert fired(rule, emptied) == []


def _balancer(group: dict[str, Any], *extra: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "Resources": {
            "Group": group,
            "Alb": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"SecurityGroups": [{"Fn::GetAtt": ["Group", "GroupId"]}]},
            },
            **dict(extra),
        }
    }


@controls("load-balancer-egress-limited")
def test_control_a_load_balancer_that_may_reach_anything() -> None:
    rule = "load-balancer-egress-limited"
    # no egress rule of its own: EC2 keeps its default allow-all egress
    assert fired(rule, _balancer({"Type": "AWS::EC2::SecurityGroup", "Properties": {}})) == [
        "Group: Alb's security group has no egress rule of its own, so EC2's default allow-all "
        "egress stays"
    ]
    # CDK's allow_all_outbound
    everything = {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}
    open_group = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"SecurityGroupEgress": [everything]},
    }
    assert fired_on(rule, _balancer(open_group)) == ["Group"]
    # CDK's no-traffic placeholder, and an egress rule to the targets' port only: fine
    placeholder = {
        "IpProtocol": "icmp",
        "CidrIp": "255.255.255.255/32",
        "FromPort": 252,
        "ToPort": 86,
    }
    limited = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"SecurityGroupEgress": [placeholder]},
    }
    to_targets = {
        "Type": "AWS::EC2::SecurityGroupEgress",
        "Properties": {
            "GroupId": {"Fn::GetAtt": ["Group", "GroupId"]},
            "IpProtocol": "tcp",
            "FromPort": 8080,
            "ToPort": 8080,
            "DestinationSecurityGroupId": "sg-0123",
        },
    }
    assert fired(rule, _balancer(limited, ("ToTargets", to_targets))) == []


@controls("custom-resource-managed-policies")
def test_control_an_inline_policy_on_a_custom_resources_role() -> None:
    template = _beside_role_and_policy(
        Handler=_fn(),
        Custom=_custom(DependsOn=["Policy"]),
        # a role no custom resource runs as may keep its inline policy (other rules apply)
        OtherRole={**ROLE, "Properties": {"Policies": [{"PolicyName": "p"}]}},
        OtherPolicy=_policy("OtherRole"),
    )
    rule = "custom-resource-managed-policies"
    assert fired(rule, template) == [
        "Policy: an inline policy of Role, which a custom resource runs as"
    ]
    template["Resources"]["Role"] = {**ROLE, "Properties": {"Policies": [{"PolicyName": "p"}]}}
    template["Resources"]["Policy"]["Type"] = "AWS::IAM::ManagedPolicy"
    assert fired(rule, template) == [
        "Role: a custom resource runs as it, and it has inline Policies"
    ]
