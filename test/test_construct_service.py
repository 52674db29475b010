"""MeshedFargateService on stacks of its own (see construct_platforms): what it builds, what
each ``release=`` synthesizes, the surface other constructs use (metric_*, attach_to_target_group,
grant_secret_read, alarms) and where the two meshes differ. The example app stays the
integration gate (test_service.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from construct_platforms import HOOK_ARN, AppMeshPlatform, ServiceConnectPlatform, am, sc
from construct_support import (
    actions,
    matches_snapshot,
    metric_stat,
    of_type,
    one,
    readiness_violations,
    statements,
)

from trading_constructs import BlueGreenRelease, MeshedFargateService, RollingRelease

CIRCUIT_BREAKER = {"Enable": True, "Rollback": True}

__all__ = ["am", "sc"]  # the session fixtures, used below


def _ref(built: Any, construct: Any) -> dict[str, str]:
    return {"Ref": built.id(construct)}


def _arn(built: Any, construct: Any) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [built.id(construct), "Arn"]}


def _service_dimensions(built: Any, service: Any) -> dict[str, Any]:
    return {
        "ClusterName": _ref(built, built.cluster.cluster),
        "ServiceName": {"Fn::GetAtt": [built.id(service), "Name"]},
    }


def _managed_policies_of(template: dict[str, Any], role_ids: set[str]) -> set[str]:
    return {
        policy_id
        for policy_id, policy in of_type(template, "AWS::IAM::ManagedPolicy").items()
        if {r["Ref"] for r in policy["Properties"]["Roles"]} & role_ids
    }


# -- stateful resources: kept, and at the logical ids users already deployed ----------------


def test_log_groups_keep_their_logical_ids(sc: ServiceConnectPlatform) -> None:
    # A refactor that moved a log group in the tree would replace it (and lose its logs)
    assert {name: sc.id(group) for name, group in sc.quotes.log_groups.items()} == {
        "quotes": "QuotesObservabilityQuotesLogsA5420F28",
        "service-connect": "QuotesObservabilityServiceConnectLogs50FE99E0",
    }


def test_log_groups_are_encrypted_kept_once_created_and_keep_their_retention(
    sc: ServiceConnectPlatform,
) -> None:
    for group in sc.quotes.log_groups.values():
        resource = sc.resource(group)
        assert resource["Properties"]["RetentionInDays"] == 14
        assert resource["Properties"]["KmsKeyId"] == _arn(sc, sc.cluster.key)
        assert "LogGroupName" not in resource["Properties"]
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_removal_policy_destroy_reaches_every_log_group(sc: ServiceConnectPlatform) -> None:
    assert set(sc.ledger.log_groups) == {"ledger", "service-connect"}
    for group in sc.ledger.log_groups.values():
        resource = sc.resource(group)
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete")
        assert resource["Properties"]["RetentionInDays"] == 30  # the default


# -- the release model ------------------------------------------------------------------------


def test_a_rolling_release_is_the_default_and_replaces_tasks_in_place(
    sc: ServiceConnectPlatform,
) -> None:
    assert isinstance(sc.quotes.release, RollingRelease)
    assert set(sc.quotes.services) == {"main"}
    properties = sc.properties(sc.quotes.service)
    assert properties["DeploymentConfiguration"] == {
        "DeploymentCircuitBreaker": CIRCUIT_BREAKER,
        "MaximumPercent": 200,
        "MinimumHealthyPercent": 100,
        "Strategy": "ROLLING",
    }
    assert properties["LoadBalancers"] == []


def test_a_blue_green_release_deploys_with_its_bake_time_and_lifecycle_hook(
    sc: ServiceConnectPlatform,
) -> None:
    release = sc.gateway.release
    assert isinstance(release, BlueGreenRelease)
    assert release.bake_time is not None and release.bake_time.to_minutes() == 15
    config = sc.properties(sc.gateway.service)["DeploymentConfiguration"]
    hook_role_id, _ = one(sc.template, "AWS::IAM::Role", "GatewayPostTestTrafficHookRole")
    assert config == {
        "BakeTimeInMinutes": 15,
        "DeploymentCircuitBreaker": CIRCUIT_BREAKER,
        "LifecycleHooks": [
            {
                "HookTargetArn": HOOK_ARN,
                "LifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
                "RoleArn": {"Fn::GetAtt": [hook_role_id, "Arn"]},
            }
        ],
        "MaximumPercent": 200,
        "MinimumHealthyPercent": 100,
        "Strategy": "BLUE_GREEN",
    }


def test_the_lifecycle_hook_role_may_only_invoke_the_hook(sc: ServiceConnectPlatform) -> None:
    _, role = one(sc.template, "AWS::IAM::Role", "GatewayPostTestTrafficHookRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    (policy,) = (
        r
        for k, r in sc.template["Resources"].items()
        if k.startswith("GatewayPostTestTrafficHook")
        and r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    )
    assert statements(policy) == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": [HOOK_ARN, f"{HOOK_ARN}:*"],
        }
    ]


def test_a_blue_green_service_waits_for_its_lifecycle_hook_policy(
    sc: ServiceConnectPlatform,
) -> None:
    policy_ids = [
        k
        for k, r in sc.template["Resources"].items()
        if k.startswith("GatewayPostTestTrafficHook")
        and r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
    ]
    assert policy_ids
    assert set(policy_ids) <= set(sc.resource(sc.gateway.service)["DependsOn"])


def test_a_blue_green_service_is_its_edges_target_with_the_alternate_target_group(
    sc: ServiceConnectPlatform,
) -> None:
    (balancer,) = sc.properties(sc.gateway.service)["LoadBalancers"]
    assert balancer["ContainerName"] == "gateway"
    assert balancer["ContainerPort"] == 8082
    assert balancer["TargetGroupArn"] == _ref(sc, sc.edge.target_groups[0])
    advanced = balancer["AdvancedConfiguration"]
    assert advanced["AlternateTargetGroupArn"] == _ref(sc, sc.edge.target_groups[1])
    assert advanced["ProductionListenerRule"] == _ref(sc, sc.edge.rules[0])
    assert sc.gateway.behind_load_balancer is True
    assert sc.quotes.behind_load_balancer is False


def test_a_service_is_the_target_of_one_load_balancer_only(sc: ServiceConnectPlatform) -> None:
    # GIVEN the gateway, already behind its edge  WHEN asked for a second target  THEN no
    with pytest.raises(
        ValueError,
        match=r"^MeshedFargateService 'ServiceConnect/Gateway': already a load balancer's target",
    ):
        sc.gateway.attach_to_target_group(
            sc.edge.target_group, load_balancer=sc.edge.security_group
        )


# -- the ECS service ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quotes", "gateway", "ledger"])
def test_ecs_services_wait_for_both_roles_and_every_policy_on_them(
    sc: ServiceConnectPlatform, name: str
) -> None:
    service: MeshedFargateService = getattr(sc, name)
    roles = {sc.id(service.execution_role), sc.id(service.task_role)}
    policies = _managed_policies_of(sc.template, roles)
    depends_on = set(sc.resource(service.service)["DependsOn"])
    assert roles | policies <= depends_on
    # the gateway's task policy was made by grant_secret_read after its ECS service existed
    expected = {"ExecutionPolicy", "TaskPolicy"} if name == "gateway" else {"ExecutionPolicy"}
    assert {p.removeprefix(name.capitalize())[:-8] for p in policies} == expected


def test_services_run_in_private_subnets_with_the_circuit_breaker_on_their_capacity(
    sc: ServiceConnectPlatform,
) -> None:
    private = [_ref(sc, s) for s in sc.cluster.vpc.private_subnets]
    for service in (sc.quotes, sc.gateway, sc.ledger):
        properties = sc.properties(service.service)
        network = properties["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network == {
            "AssignPublicIp": "DISABLED",
            "SecurityGroups": [{"Fn::GetAtt": [sc.id(service.security_group), "GroupId"]}],
            "Subnets": private,
        }
        assert properties["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == (
            CIRCUIT_BREAKER
        )
        assert properties["EnableECSManagedTags"] is True
        assert properties["PropagateTags"] == "SERVICE"
    assert sc.properties(sc.quotes.service)["CapacityProviderStrategy"] == [
        {"Base": 1, "CapacityProvider": "FARGATE", "Weight": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 4},
    ]
    assert sc.properties(sc.ledger.service)["CapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE", "Weight": 1},
        {"Base": 2, "CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]


def test_scaling_owns_the_count_on_cpu_memory_and_the_custom_metric(
    sc: ServiceConnectPlatform,
) -> None:
    assert "DesiredCount" not in sc.properties(sc.quotes.service)
    assert sc.quotes.scaling is not None
    target_id, target = one(
        sc.template, "AWS::ApplicationAutoScaling::ScalableTarget", "QuotesService"
    )
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (3, 12)
    configs = {
        k.removeprefix("QuotesServiceTaskCountTarget")[:-8]: p["Properties"][
            "TargetTrackingScalingPolicyConfiguration"
        ]
        for k, p in of_type(sc.template, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if k.startswith("QuotesService")
    }
    assert set(configs) == {"CpuScaling", "MemoryScaling", "CustomMetricScaling"}
    for config in configs.values():
        assert (config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (300, 60)
    assert configs["CpuScaling"]["TargetValue"] == 55
    assert configs["CpuScaling"]["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
    }
    assert configs["MemoryScaling"]["TargetValue"] == 65
    assert configs["CustomMetricScaling"]["TargetValue"] == 40
    assert configs["CustomMetricScaling"]["CustomizedMetricSpecification"] == {
        "Dimensions": [{"Name": "Service", "Value": "quotes"}],
        "MetricName": "QuotesInFlight",
        "Namespace": "TradingPlatform",
        "Statistic": "Average",
    }
    assert target_id.startswith("QuotesServiceTaskCountTarget")


def test_a_fixed_count_turns_scaling_off(sc: ServiceConnectPlatform) -> None:
    assert sc.properties(sc.gateway.service)["DesiredCount"] == 2
    assert sc.gateway.scaling is None and sc.gateway.scalings == {}
    targets = of_type(sc.template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert not any(k.startswith("Gateway") for k in targets)


# -- the task -----------------------------------------------------------------------------------


def test_the_task_definition_snapshot(sc: ServiceConnectPlatform) -> None:
    # One snapshot, of what ECS runs: the task definition, hashes normalized
    matches_snapshot(
        "construct_service_connect_task_definition",
        sc.properties(sc.quotes.task_definition),
    )


def test_the_app_container_runs_non_root_read_only_with_its_health_check_and_secret(
    sc: ServiceConnectPlatform,
) -> None:
    properties = sc.properties(sc.quotes.task_definition)
    assert (properties["Cpu"], properties["Memory"]) == ("512", "1024")
    assert "ProxyConfiguration" not in properties  # Service Connect's proxy is ECS's own
    (app,) = properties["ContainerDefinitions"]
    assert app["Name"] == "quotes"
    assert (app["User"], app["ReadonlyRootFilesystem"], app["StopTimeout"]) == ("10001", True, 30)
    assert app["HealthCheck"] == {
        "Command": ["CMD", "curl", "-fs", "http://localhost:8080/health"],
        "Interval": 15,
        "Retries": 3,
        "StartPeriod": 20,
        "Timeout": 5,
    }
    assert app["PortMappings"] == [
        {"AppProtocol": "http", "ContainerPort": 8080, "Name": "quotes", "Protocol": "tcp"}
    ]
    assert app["Environment"] == [{"Name": "LOG_LEVEL", "Value": "info"}]
    assert app["Secrets"] == [
        {
            "Name": "API_KEY",
            "ValueFrom": {"Fn::Join": ["", [_ref(sc, sc.api_key), ":api_key::"]]},
        }
    ]
    assert app["LogConfiguration"]["Options"]["awslogs-group"] == _ref(
        sc, sc.quotes.log_groups["quotes"]
    )
    ledger = sc.properties(sc.ledger.task_definition)
    assert (ledger["Cpu"], ledger["Memory"]) == ("256", "512")
    assert ledger["ContainerDefinitions"][0]["ReadonlyRootFilesystem"] is False


def _secret_read(sc: ServiceConnectPlatform, secret: Any) -> list[dict[str, Any]]:
    """What reading one secret takes: its value, and the platform key only through Secrets
    Manager."""
    return [
        {
            "Action": "secretsmanager:GetSecretValue",
            "Effect": "Allow",
            "Resource": _ref(sc, secret),
        },
        {
            "Action": "kms:Decrypt",
            "Condition": {
                "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
            },
            "Effect": "Allow",
            "Resource": _arn(sc, sc.cluster.key),
        },
    ]


def test_the_execution_role_pulls_its_image_writes_its_logs_reads_its_secret(
    sc: ServiceConnectPlatform,
) -> None:
    _, policy = one(sc.template, "AWS::IAM::ManagedPolicy", "QuotesExecutionPolicy")
    assert policy["Properties"]["Roles"] == [_ref(sc, sc.quotes.execution_role)]
    assert statements(policy) == [
        *_secret_read(sc, sc.api_key),
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Effect": "Allow",
            "Resource": _arn(sc, sc.repository.repository),
        },
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": [_arn(sc, g) for g in sc.quotes.log_groups.values()],
        },
    ]
    # nothing to call in AWS, so no task policy at all
    assert not any(
        k.startswith("QuotesTaskPolicy") for k in of_type(sc.template, "AWS::IAM::ManagedPolicy")
    )


def test_both_roles_are_for_ecs_tasks_and_hold_no_inline_policy(
    sc: ServiceConnectPlatform,
) -> None:
    for role in (sc.quotes.execution_role, sc.quotes.task_role):
        properties = sc.properties(role)
        (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert "Policies" not in properties and "ManagedPolicyArns" not in properties


def test_grant_secret_read_gives_the_task_role_that_secret_through_secrets_manager_only(
    sc: ServiceConnectPlatform,
) -> None:
    _, policy = one(sc.template, "AWS::IAM::ManagedPolicy", "GatewayTaskPolicy")
    assert policy["Properties"]["Roles"] == [_ref(sc, sc.gateway.task_role)]
    assert statements(policy) == _secret_read(sc, sc.runtime_secret)


def test_grant_secret_read_takes_secrets_only(sc: ServiceConnectPlatform) -> None:
    with pytest.raises(TypeError, match=r"'ServiceConnect/Gateway': secret=.* is not allowed"):
        sc.gateway.grant_secret_read(iam.Role.from_role_name(sc.stack, "NotASecret", "x"))  # type: ignore[arg-type]


def test_security_groups_admit_only_declared_callers_and_reach_only_https_and_backends(
    sc: ServiceConnectPlatform,
) -> None:
    def rules(kind: str, side: str) -> set[tuple[str, str, int]]:
        return {
            (
                r["Properties"]["GroupId"]["Fn::GetAtt"][0],
                r["Properties"][side]["Fn::GetAtt"][0],
                r["Properties"]["FromPort"],
            )
            for r in of_type(sc.template, kind).values()
        }

    group = {name: sc.id(getattr(sc, name).security_group) for name in ("quotes", "gateway")}
    edge = sc.id(sc.edge.security_group)
    assert rules("AWS::EC2::SecurityGroupIngress", "SourceSecurityGroupId") == {
        (group["quotes"], group["gateway"], 8080),
        (group["gateway"], edge, 8082),
    }
    assert (group["gateway"], group["quotes"], 8080) in rules(
        "AWS::EC2::SecurityGroupEgress", "DestinationSecurityGroupId"
    )
    assert sc.properties(sc.quotes.security_group)["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "AWS APIs: ECR, logs, secrets, mesh",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]


def test_service_connect_serves_the_name_callers_use_and_logs_the_proxy(
    sc: ServiceConnectPlatform,
) -> None:
    config = sc.properties(sc.quotes.service)["ServiceConnectConfiguration"]
    assert config["Enabled"] is True
    assert config["Namespace"] == _arn(sc, sc.cluster.namespace)
    assert config["Services"] == [
        {
            "ClientAliases": [{"DnsName": "quotes.trading.local", "Port": 8080}],
            "DiscoveryName": "quotes",
            "PortName": "quotes",
            "Timeout": {"IdleTimeoutSeconds": 300, "PerRequestTimeoutSeconds": 15},
        }
    ]
    assert config["AccessLogConfiguration"] == {
        "Format": "JSON",
        "IncludeQueryParameters": "DISABLED",
    }
    assert config["LogConfiguration"]["Options"]["awslogs-group"] == _ref(
        sc, sc.quotes.log_groups["service-connect"]
    )
    assert "ServiceRegistries" not in sc.properties(sc.quotes.service)


# -- alarms and metrics -------------------------------------------------------------------------


def test_alarms_use_the_thresholds_and_notify_the_platform_topic(
    sc: ServiceConnectPlatform,
) -> None:
    topic = [_ref(sc, sc.cluster.alarm_topic)]
    thresholds = {"ErrorLogs": 5, "Proxy5xx": 20, "TasksBelowDesired": 2}
    assert set(sc.quotes.alarms) == set(thresholds)
    for name, alarm in sc.quotes.alarms.items():
        properties = sc.properties(alarm)
        assert properties["Threshold"] == thresholds[name]
        assert properties["AlarmActions"] == topic
        assert properties["OKActions"] == topic
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    missing = sc.properties(sc.quotes.alarms["TasksBelowDesired"])
    assert (missing["EvaluationPeriods"], missing["TreatMissingData"]) == (3, "missing")
    assert missing["Metrics"][0]["Expression"] == "desired - running"


def test_a_proxy_5xx_alarm_only_where_callers_make_it_able_to_fire(
    sc: ServiceConnectPlatform,
) -> None:
    # GIVEN quotes, called by the gateway, and the gateway and ledger, called by no service
    # (the load balancer reaches the gateway past its proxy)
    # THEN only quotes alarms on proxy 5xx; the others' metric stays for the dashboard
    assert "Proxy5xx" in sc.quotes.alarms
    assert set(sc.gateway.alarms) == {"ErrorLogs", "TasksBelowDesired"}
    assert set(sc.ledger.alarms) == {"ErrorLogs", "TasksBelowDesired"}
    assert metric_stat(sc.stack, sc.gateway.metric_proxy_5xx())["metric_name"] == (
        "HTTPCode_Target_5XX_Count"
    )


def test_metric_cpu_and_memory_utilization(sc: ServiceConnectPlatform) -> None:
    dimensions = _service_dimensions(sc, sc.quotes.service)
    assert metric_stat(sc.stack, sc.quotes.metric_cpu_utilization()) == {
        "namespace": "AWS/ECS",
        "metric_name": "CPUUtilization",
        "dimensions": dimensions,
        "statistic": "Average",
        "period": 60,
    }
    assert metric_stat(sc.stack, sc.quotes.metric_memory_utilization()) == {
        "namespace": "AWS/ECS",
        "metric_name": "MemoryUtilization",
        "dimensions": dimensions,
        "statistic": "Average",
        "period": 60,
    }
    # the caller's props win over the one-minute default
    custom = metric_stat(
        sc.stack,
        sc.quotes.metric_cpu_utilization(period=Duration.minutes(5), statistic="Maximum"),
    )
    assert (custom["statistic"], custom["period"]) == ("Maximum", 300)


def test_metric_running_and_desired_tasks(sc: ServiceConnectPlatform) -> None:
    dimensions = _service_dimensions(sc, sc.quotes.service)
    for method, name in (
        (sc.quotes.metric_running_tasks, "RunningTaskCount"),
        (sc.quotes.metric_desired_tasks, "DesiredTaskCount"),
    ):
        (metric,) = method()
        assert metric_stat(sc.stack, metric) == {
            "namespace": "ECS/ContainerInsights",
            "metric_name": name,
            "dimensions": dimensions,
            "statistic": "Average",
            "period": 60,
        }


def _log_metric(service: str, name: str) -> dict[str, Any]:
    """A metric a service's log filter emits: in the service's own namespace, with no
    dimensions, summed over five minutes."""
    return {
        "namespace": f"TradingPlatform/{service}",
        "metric_name": name,
        "dimensions": {},
        "statistic": "Sum",
        "period": 300,
    }


def test_metric_error_logs_is_what_the_app_log_filter_emits(sc: ServiceConnectPlatform) -> None:
    assert metric_stat(sc.stack, sc.quotes.metric_error_logs()) == _log_metric(
        "quotes", "ErrorLogs"
    )
    _, metric_filter = one(sc.template, "AWS::Logs::MetricFilter", "QuotesObservabilityQuotesLogs")
    assert metric_filter["Properties"]["LogGroupName"] == _ref(sc, sc.quotes.log_groups["quotes"])
    assert metric_filter["Properties"]["FilterPattern"] == '{ $.level = "ERROR" }'
    assert metric_filter["Properties"]["MetricTransformations"] == [
        {
            "DefaultValue": 0,
            "MetricName": "ErrorLogs",
            "MetricNamespace": "TradingPlatform/quotes",
            "MetricValue": "1",
        }
    ]


def test_metric_proxy_5xx_on_service_connect_is_ecs_own_metric(
    sc: ServiceConnectPlatform,
) -> None:
    assert metric_stat(sc.stack, sc.quotes.metric_proxy_5xx()) == {
        "namespace": "AWS/ECS",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "dimensions": {"TargetDiscoveryName": "quotes"},
        "statistic": "Sum",
        "period": 300,
    }
    # no log filter of ours counts it: Service Connect publishes it
    assert not any(
        k.startswith("QuotesObservabilityServiceConnectLogs")
        for k in of_type(sc.template, "AWS::Logs::MetricFilter")
    )


# -- App Mesh: where the backend differs ------------------------------------------------------


def test_app_mesh_slots_run_envoy_with_the_proxy_configuration(am: AppMeshPlatform) -> None:
    images = {}
    for slot, service in am.prices.services.items():
        properties = am.properties(service.task_definition)
        app, envoy = properties["ContainerDefinitions"]
        assert (app["Name"], envoy["Name"]) == ("prices", "envoy")
        assert app["DependsOn"] == [{"Condition": "HEALTHY", "ContainerName": "envoy"}]
        assert envoy["User"] == "1337"
        node = am.prices.membership.virtual_nodes[slot.capitalize()]  # type: ignore[attr-defined]
        assert {"Name": "APPMESH_RESOURCE_ARN", "Value": _ref(am, node)} in envoy["Environment"]
        proxy = properties["ProxyConfiguration"]
        assert (proxy["Type"], proxy["ContainerName"]) == ("APPMESH", "envoy")
        assert {p["Name"]: p["Value"] for p in proxy["ProxyConfigurationProperties"]} == {
            "AppPorts": "8080",
            "ProxyIngressPort": "15000",
            "ProxyEgressPort": "15001",
            "IgnoredUID": "1337",
            "EgressIgnoredIPs": "169.254.170.2,169.254.169.254",
        }
        images[slot] = app["Image"]["Fn::Join"][1][-1]
    assert images == {"blue": ":v1", "green": ":v2"}


def test_a_weighted_release_runs_two_rolling_slots_each_scaled_and_watched(
    am: AppMeshPlatform,
) -> None:
    assert set(am.prices.services) == {"blue", "green"}
    assert am.prices.service is am.prices.services["blue"]
    for service in am.prices.services.values():
        properties = am.properties(service)
        assert properties["DeploymentConfiguration"]["Strategy"] == "ROLLING"
        assert "DesiredCount" not in properties
        (registry,) = properties["ServiceRegistries"]
        assert registry["RegistryArn"] == _arn(am, am.prices.membership.discovery)  # type: ignore[attr-defined]
    assert set(am.prices.scalings) == {"blue", "green"}
    assert set(am.prices.alarms) == {
        "ErrorLogs",
        "Proxy5xx",
        "BlueTasksBelowDesired",
        "GreenTasksBelowDesired",
    }


def test_app_mesh_services_wait_for_their_policies_and_for_their_backends(
    am: AppMeshPlatform,
) -> None:
    for service in (am.prices, am.orders):
        roles = {am.id(service.execution_role), am.id(service.task_role)}
        policies = _managed_policies_of(am.template, roles)
        assert len(policies) == 2  # execution, and the task's configuration stream
        for ecs_service in service.services.values():
            assert roles | policies <= set(am.resource(ecs_service)["DependsOn"])
    backends = {am.id(s) for s in am.prices.services.values()}
    assert backends <= set(am.resource(am.orders.service)["DependsOn"])


def test_app_mesh_roles_stream_their_own_nodes_and_pull_envoy_through_the_cache(
    am: AppMeshPlatform,
) -> None:
    _, task = one(am.template, "AWS::IAM::ManagedPolicy", "PricesTaskPolicy")
    nodes = am.prices.membership.virtual_nodes.values()  # type: ignore[attr-defined]
    assert statements(task) == [
        {
            "Action": "appmesh:StreamAggregatedResources",
            "Effect": "Allow",
            "Resource": [_ref(am, node) for node in nodes],
        }
    ]
    _, execution = one(am.template, "AWS::IAM::ManagedPolicy", "PricesExecutionPolicy")
    envoy = next(s for s in statements(execution) if "ecr:BatchImportUpstreamImage" in actions(s))
    assert (
        envoy["Resource"]["Fn::Join"][1][-1] == ":repository/ecr-public/appmesh/aws-appmesh-envoy"
    )
    logs = next(s for s in statements(execution) if "logs:PutLogEvents" in actions(s))
    assert sorted(r["Fn::GetAtt"][0] for r in logs["Resource"]) == sorted(
        am.id(g) for g in am.prices.log_groups.values()
    )
    assert set(am.prices.log_groups) == {"prices", "envoy"}


def test_app_mesh_alarms_notify_the_topic(am: AppMeshPlatform) -> None:
    topic = [_ref(am, am.cluster.alarm_topic)]
    for service in (am.prices, am.orders):
        for alarm in service.alarms.values():
            assert am.properties(alarm)["AlarmActions"] == topic
            assert am.properties(alarm)["OKActions"] == topic


def test_metric_proxy_5xx_on_app_mesh_counts_envoys_access_log(am: AppMeshPlatform) -> None:
    assert metric_stat(am.stack, am.prices.metric_proxy_5xx()) == _log_metric("prices", "Proxy5xx")
    # one filter on the envoy log group the two slots share
    (metric_filter,) = (
        f
        for k, f in of_type(am.template, "AWS::Logs::MetricFilter").items()
        if k.startswith("PricesObservabilityEnvoyLogs")
    )
    assert metric_filter["Properties"]["LogGroupName"] == _ref(am, am.prices.log_groups["envoy"])
    assert metric_filter["Properties"]["FilterPattern"] == "{ $.status >= 500 }"
    assert metric_filter["Properties"]["MetricTransformations"][0]["MetricName"] == "Proxy5xx"


def test_metric_tasks_give_one_metric_per_slot_and_cpu_the_blue_slot(
    am: AppMeshPlatform,
) -> None:
    services = am.prices.services
    running = [metric_stat(am.stack, m) for m in am.prices.metric_running_tasks()]
    desired = [metric_stat(am.stack, m) for m in am.prices.metric_desired_tasks()]
    assert [m["dimensions"] for m in running] == [
        _service_dimensions(am, services["blue"]),
        _service_dimensions(am, services["green"]),
    ]
    assert [m["dimensions"] for m in desired] == [m["dimensions"] for m in running]
    assert {m["metric_name"] for m in desired} == {"DesiredTaskCount"}
    assert metric_stat(am.stack, am.prices.metric_cpu_utilization())["dimensions"] == (
        _service_dimensions(am, services["blue"])
    )


def test_app_mesh_callers_name_their_backends_in_the_mesh(am: AppMeshPlatform) -> None:
    orders = am.properties(am.orders.membership.virtual_node)  # type: ignore[attr-defined]
    assert orders["Spec"]["Backends"] == [
        {"VirtualService": {"VirtualServiceName": "prices.trading.local"}}
    ]
    for node in am.prices.membership.virtual_nodes.values():  # type: ignore[attr-defined]
        assert "Backends" not in am.properties(node)["Spec"]


# -- the deploy-readiness rules, on these stacks ----------------------------------------------


def test_the_service_connect_stack_passes_the_deploy_readiness_rules(
    sc: ServiceConnectPlatform,
) -> None:
    assert readiness_violations(sc.template) == {}


def test_the_app_mesh_stack_passes_the_deploy_readiness_rules(am: AppMeshPlatform) -> None:
    assert readiness_violations(am.template) == {}


def test_an_app_mesh_worker_is_a_node_with_backends_and_no_listener(am: AppMeshPlatform) -> None:
    # GIVEN the sweeper, a worker (port=None) that calls prices
    sweeper = am.sweeper
    membership = sweeper.membership
    node = am.properties(membership.virtual_node)  # type: ignore[attr-defined]
    # THEN its virtual node listens on nothing and needs no discovery, and reaches prices
    assert "Listeners" not in node["Spec"] or node["Spec"]["Listeners"] == []
    assert "ServiceDiscovery" not in node["Spec"]
    (backend,) = node["Spec"]["Backends"]
    assert backend["VirtualService"]["VirtualServiceName"] == "prices.trading.local"
    # AND nobody can call it: no router, route, virtual service or Cloud Map service
    assert membership.virtual_service is None  # type: ignore[attr-defined]
    assert membership.discovery is None  # type: ignore[attr-defined]
    routers = of_type(am.template, "AWS::AppMesh::VirtualRouter")
    assert not [k for k in routers if k.startswith("Sweeper")]
    # AND its task's proxy redirects no app port, its outbound calls only
    task = am.properties(sweeper.task_definition)
    properties = {
        p["Name"]: p["Value"] for p in task["ProxyConfiguration"]["ProxyConfigurationProperties"]
    }
    assert "AppPorts" not in properties or properties["AppPorts"] == ""
    (app,) = [c for c in task["ContainerDefinitions"] if c["Name"] == "sweeper"]
    assert "PortMappings" not in app or app["PortMappings"] == []
