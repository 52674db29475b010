"""TradingCluster: what the synthesized template must hold (a VPC over three Availability Zones,
flow logs, the cluster's capacity, namespace and key)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from conftest import ClusterStacks

from trading_constructs import TradingCluster, TradingClusterProps
from trading_constructs._props import field_docs


def resources(template: Template, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = template.find_resources(kind)
    return found


def test_vpc_spans_three_distinct_azs_chosen_at_deploy_time(example_template: Template) -> None:
    # GIVEN the example platform  WHEN synthesized without credentials
    subnets = resources(example_template, "AWS::EC2::Subnet")
    # THEN nine subnets (3 tiers x 3 AZs) pick AZs 0, 1 and 2 of Fn::GetAZs, naming no AZ
    assert len(subnets) == 9
    azs = [s["Properties"]["AvailabilityZone"] for s in subnets.values()]
    indexes = {az["Fn::Select"][0] for az in azs}
    assert indexes == {0, 1, 2}
    assert all(az["Fn::Select"][1] == {"Fn::GetAZs": ""} for az in azs)


def test_subnet_tiers_public_private_isolated(example_template: Template) -> None:
    subnets = resources(example_template, "AWS::EC2::Subnet")
    tiers: dict[str, int] = {}
    for subnet in subnets.values():
        tags = {t["Key"]: t["Value"] for t in subnet["Properties"]["Tags"]}
        tiers[tags["aws-cdk:subnet-name"]] = tiers.get(tags["aws-cdk:subnet-name"], 0) + 1
        # no subnet hands out public IPs: the ALB and NAT gateways do not need them
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    assert tiers == {"Public": 3, "Private": 3, "Isolated": 3}


def test_one_nat_gateway_per_az_and_isolated_subnets_have_no_route_out(
    example_template: Template,
) -> None:
    example_template.resource_count_is("AWS::EC2::NatGateway", 3)
    routes = resources(example_template, "AWS::EC2::Route")
    # 3 public default routes to the IGW and 3 private ones to NAT; none from isolated subnets
    assert sum("GatewayId" in r["Properties"] for r in routes.values()) == 3
    assert sum("NatGatewayId" in r["Properties"] for r in routes.values()) == 3
    assert not any("Isolated" in logical_id for logical_id in routes)


def test_flow_logs_go_to_an_encrypted_retained_log_group(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    example_template.has_resource(
        "AWS::Logs::LogGroup",
        {
            "Properties": {
                "RetentionInDays": 365,
                "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("PlatformKey"), "Arn"]},
            },
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_flow_log_role_has_a_managed_policy_on_its_log_group_only(
    example_template: Template,
) -> None:
    example_template.resource_count_is("AWS::IAM::Policy", 0)
    example_template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Action": [
                            "logs:CreateLogStream",
                            "logs:DescribeLogStreams",
                            "logs:PutLogEvents",
                        ],
                        "Effect": "Allow",
                        "Resource": {"Fn::GetAtt": [Match.string_like_regexp("FlowLogs"), "Arn"]},
                    }
                ]
            }
        },
    )
    example_template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
                            },
                        }
                    )
                ]
            }
        },
    )


def test_default_security_group_is_closed(example_template: Template) -> None:
    example_template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_cluster_has_enhanced_container_insights(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": [{"Name": "containerInsights", "Value": "enhanced"}]},
    )


def test_fargate_and_spot_with_default_strategy(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {
            "CapacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "DefaultCapacityProviderStrategy": [
                {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
                {"CapacityProvider": "FARGATE_SPOT", "Weight": 4},
            ],
        },
    )


def test_private_dns_namespace_in_the_vpc(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        {"Name": "trading.local", "Vpc": {"Ref": Match.string_like_regexp("PlatformVpc")}},
    )


def test_platform_key_rotates_is_retained_and_lets_logs_use_it_by_context(
    example_template: Template,
) -> None:
    example_template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Sid": "AllowCloudWatchLogsOfThisAccount",
                                    "Principal": {
                                        "Service": "logs.us-east-1.amazonaws.com",
                                    },
                                    "Action": Match.array_with(
                                        ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
                                    ),
                                    "Condition": {
                                        "ArnLike": {
                                            "kms:EncryptionContext:aws:logs:arn": Match.any_value()
                                        }
                                    },
                                }
                            )
                        ]
                    )
                },
            },
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_custom_options_reach_the_template(cluster_stacks: ClusterStacks) -> None:
    custom = cluster_stacks.custom
    custom.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.20.0.0/18"})
    custom.resource_count_is("AWS::EC2::NatGateway", 1)
    custom.has_resource_properties(
        "AWS::EC2::Subnet", {"AvailabilityZone": "us-east-1c", "CidrBlock": Match.any_value()}
    )
    custom.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 731})
    custom.has_resource_properties(
        "AWS::ECS::Cluster",
        {
            "ClusterName": "trading-dev",
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    )
    custom.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {
            "DefaultCapacityProviderStrategy": [
                {"CapacityProvider": "FARGATE_SPOT", "Base": 2, "Weight": 1}
            ]
        },
    )
    custom.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace", {"Name": "dev.trading.internal"}
    )
    custom.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Delete"})


def test_existing_vpc_is_used_not_replaced(cluster_stacks: ClusterStacks) -> None:
    existing = cluster_stacks.existing_vpc
    existing.resource_count_is("AWS::EC2::VPC", 1)
    existing.resource_count_is("AWS::EC2::FlowLog", 0)
    existing.has_resource_properties(
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        {"Vpc": {"Ref": Match.string_like_regexp("Network")}},
    )


# -- created after the permissions they need -----------------------------------------------


def _logical_ids(template: Template, kind: str) -> list[str]:
    return sorted(resources(template, kind))


def test_flow_log_is_created_after_its_roles_policy(cluster_stacks: ClusterStacks) -> None:
    # GIVEN a cluster's new VPC  WHEN synthesized
    for template in (cluster_stacks.default, cluster_stacks.custom):
        (flow_log,) = resources(template, "AWS::EC2::FlowLog").values()
        (policy,) = (
            logical_id
            for logical_id in _logical_ids(template, "AWS::IAM::ManagedPolicy")
            if logical_id.startswith("PlatformFlowLogPolicy")
        )
        # THEN CreateFlowLogs runs only once the role may write to the group
        assert policy in flow_log["DependsOn"]


@pytest.mark.parametrize("app", ["mutual_tls", "service_connect", "example"])
def test_services_are_created_after_the_clusters_capacity_providers(
    app: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN the example on each mesh: services on a FARGATE/FARGATE_SPOT strategy
    template = request.getfixturevalue(app).template("TradingPlatform")
    (association,) = _logical_ids(template, "AWS::ECS::ClusterCapacityProviderAssociations")
    services = resources(template, "AWS::ECS::Service")
    assert services
    for service in services.values():
        # THEN none is created before the providers are associated with the cluster
        assert association in service["DependsOn"]


def test_every_prop_is_declared_once_in_tradingclusterprops() -> None:
    # GIVEN the props' fields, each with its type, default and documentation
    fields = {f.name: f for f in dataclasses.fields(TradingClusterProps)}
    # THEN the construct takes exactly those, keyword-only, with the same defaults
    parameters = list(inspect.signature(TradingCluster.__init__).parameters.values())
    assert [p.name for p in parameters[:3]] == ["self", "scope", "id"]
    # (a default that prints as an object repr is shown as the code that builds it)
    shown = {p.name: getattr(p.default, "value", p.default) for p in parameters[3:]}
    assert shown == {name: field.default for name, field in fields.items()}
    assert {p.kind for p in parameters[3:]} == {inspect.Parameter.KEYWORD_ONLY}
    # AND every field is documented, and its documentation is the construct's
    docs = field_docs(TradingClusterProps)
    assert sorted(docs) == sorted(fields)
    for name in fields:
        assert f":param {name}: " in (TradingCluster.__init__.__doc__ or "")
