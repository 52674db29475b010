"""MeshedFargateService on the example (its image, secrets, health checks, scaling, deployment
release, circuit breaker, logs, Spot capacity and mesh membership), on App Mesh and on Service
Connect."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from conftest import SynthesizedApp
from construct_support import one_starting, resources_of

SERVICES = {"data-ingestion": 8080, "analytics-engine": 8081, "api-gateway": 8082}
PREFIXES = {
    "data-ingestion": "DataIngestion",
    "analytics-engine": "AnalyticsEngine",
    "api-gateway": "ApiGateway",
}
# The internal services run blue and green slots in App Mesh (green idle by default);
# api-gateway one slot, deployed blue/green by ECS behind the load balancer.
SLOTS = {
    "data-ingestion": ("DataIngestionBlue", "DataIngestionGreen"),
    "analytics-engine": ("AnalyticsEngineBlue", "AnalyticsEngineGreen"),
    "api-gateway": ("ApiGateway",),
}
ALL_SLOTS = [(name, slot) for name, slots in SLOTS.items() for slot in slots]
CUSTOM_METRICS = {
    "data-ingestion": ("TicksIngested", "Average", 60_000),
    "analytics-engine": ("AnalysisBacklog", "Average", 500),
    "api-gateway": ("RequestsInFlight", "Average", 25),
}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


@pytest.fixture(scope="session")
def sc_template(service_connect: SynthesizedApp) -> Template:
    return service_connect.template("TradingPlatform")


# -- ECS services -----------------------------------------------------------------------------


def test_three_services_on_spot_with_circuit_breaker_and_no_desired_count(
    example_template: Template,
) -> None:
    services = resources_of(example_template, "AWS::ECS::Service")
    assert len(services) == 5
    for logical_id, service in services.items():
        properties = service["Properties"]
        assert properties["CapacityProviderStrategy"] == [
            {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
            {"CapacityProvider": "FARGATE_SPOT", "Weight": 4},
        ]
        assert properties["DeploymentConfiguration"] == {
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
            "MaximumPercent": 200,
            "MinimumHealthyPercent": 100,
            "Strategy": "BLUE_GREEN" if logical_id.startswith("ApiGateway") else "ROLLING",
            **({"BakeTimeInMinutes": 10} if logical_id.startswith("ApiGateway") else {}),
        }
        # scaling owns the count of an active slot, so a deployment never resets it; the idle
        # green slot runs none
        if "Green" in logical_id:
            assert properties["DesiredCount"] == 0
        else:
            assert "DesiredCount" not in properties
        network = properties["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        assert all("PrivateSubnet" in s["Ref"] for s in network["Subnets"])


def test_services_register_in_cloud_map(example_template: Template) -> None:
    for name, slot in ALL_SLOTS:
        prefix = PREFIXES[name]
        service = one_starting(
            resources_of(example_template, "AWS::ECS::Service"), f"{slot}Service"
        )
        (registry,) = service["Properties"]["ServiceRegistries"]
        # both slots register in the service's one Cloud Map service
        assert registry["RegistryArn"]["Fn::GetAtt"][0].startswith(f"{prefix}Discovery")
        discovery = one_starting(
            resources_of(example_template, "AWS::ServiceDiscovery::Service"), f"{prefix}Discovery"
        )
        assert discovery["Properties"]["Name"] == name
        assert discovery["Properties"]["DnsConfig"]["DnsRecords"] == [{"TTL": 10, "Type": "A"}]


# -- task definitions -------------------------------------------------------------------------


def test_every_container_has_a_health_check_and_logs(example_template: Template) -> None:
    for task in resources_of(example_template, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            # the one-shot init container exits; Envoy waits for its SUCCESS instead
            if container["Name"] != "mesh-tls-init":
                assert "HealthCheck" in container, container["Name"]
            assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_app_container_runs_non_root_read_only_after_envoy_is_healthy(
    example_template: Template,
) -> None:
    for name, prefix in ALL_SLOTS:
        task = one_starting(
            resources_of(example_template, "AWS::ECS::TaskDefinition"), f"{prefix}Task"
        )
        containers = {c["Name"]: c for c in task["Properties"]["ContainerDefinitions"]}
        app, envoy = containers[name], containers["envoy"]
        assert app["User"] == "10001"
        assert app["ReadonlyRootFilesystem"] is True
        assert app["DependsOn"] == [{"Condition": "HEALTHY", "ContainerName": "envoy"}]
        assert app["HealthCheck"]["Command"] == [
            "CMD",
            "python",
            "-m",
            "services.common.healthcheck",
        ]
        assert app["PortMappings"][0]["ContainerPort"] == SERVICES[name]
        assert envoy["User"] == "1337"
        env = {e["Name"]: e["Value"] for e in envoy["Environment"]}
        assert env["APPMESH_RESOURCE_ARN"]["Ref"].startswith(f"{prefix}VirtualNode")
        assert "LIVE" in envoy["HealthCheck"]["Command"][1]


def test_app_mesh_proxy_configuration(example_template: Template) -> None:
    for name, prefix in ALL_SLOTS:
        task = one_starting(
            resources_of(example_template, "AWS::ECS::TaskDefinition"), f"{prefix}Task"
        )
        proxy = task["Properties"]["ProxyConfiguration"]
        assert proxy["Type"] == "APPMESH" and proxy["ContainerName"] == "envoy"
        settings = {p["Name"]: p["Value"] for p in proxy["ProxyConfigurationProperties"]}
        assert settings == {
            "AppPorts": str(SERVICES[name]),
            "ProxyIngressPort": "15000",
            "ProxyEgressPort": "15001",
            "IgnoredUID": "1337",
            "EgressIgnoredIPs": "169.254.170.2,169.254.169.254",
        }


def test_every_image_comes_from_private_ecr(example_template: Template) -> None:
    for task in resources_of(example_template, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            image = json.dumps(container["Image"])
            assert "public.ecr.aws" not in image and "docker.io" not in image
            if container["Name"] in ("envoy", "mesh-tls-init"):
                assert ".dkr.ecr." in image, container["Name"]
                assert "/ecr-public/appmesh/aws-appmesh-envoy:v1.29.12.1-prod" in image
            else:
                # the service's own scanned repository, by the URI ECR returns for it
                (parts,) = container["Image"]["Fn::Join"][1:]
                assert parts[0]["Fn::GetAtt"][1] == "RepositoryUri", container["Name"]
                assert "Repository" in parts[0]["Fn::GetAtt"][0]


def test_secrets_reach_the_container_through_ecs_secrets(example_template: Template) -> None:
    task = one_starting(
        resources_of(example_template, "AWS::ECS::TaskDefinition"), "DataIngestionBlueTask"
    )
    (app,) = (
        c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == "data-ingestion"
    )
    (secret,) = app["Secrets"]
    assert secret["Name"] == "MARKET_DATA_API_KEY"
    assert ":api_key::" in json.dumps(secret["ValueFrom"])
    assert all("KEY" not in e["Name"] for e in app.get("Environment", []))


# -- IAM --------------------------------------------------------------------------------------


def test_no_wildcard_action_and_star_only_where_no_resource_level_exists(
    example_template: Template,
) -> None:
    no_resource_level = {
        "ecr:GetAuthorizationToken",
        "ecs:ListServices",  # limited by an ecs:cluster condition
        "secretsmanager:GetRandomPassword",
        "ec2:AssignPrivateIpAddresses",
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:UnassignPrivateIpAddresses",
    }
    for kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        for logical_id, policy in resources_of(example_template, kind).items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = _actions(statement)
                assert not any("*" in a for a in actions), (logical_id, actions)
                if statement["Resource"] == "*":
                    assert set(actions) <= no_resource_level, (logical_id, actions)


def test_execution_role_pulls_own_image_writes_own_logs_reads_own_secret(
    example_template: Template,
) -> None:
    policy = one_starting(
        resources_of(example_template, "AWS::IAM::ManagedPolicy"), "DataIngestionExecution"
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    resources = json.dumps([s["Resource"] for s in statements])
    for foreign in ("AnalyticsEngine", "ApiGateway", "MarketDataDbSecret"):
        assert foreign not in resources
    pull = next(s for s in statements if "ecr:BatchGetImage" in _actions(s))
    assert pull["Resource"]["Fn::GetAtt"][0].startswith("DataIngestionRepository")
    logs = next(s for s in statements if "logs:PutLogEvents" in _actions(s))
    assert sorted(
        r["Fn::GetAtt"][0][: len("DataIngestionObservability")] for r in logs["Resource"]
    ) == ["DataIngestionObservability", "DataIngestionObservability"]
    secret = next(s for s in statements if "secretsmanager:GetSecretValue" in _actions(s))
    # its API key, and its own mesh certificate: nothing else
    assert sorted(r["Ref"] for r in secret["Resource"]) == sorted(
        [
            next(
                k
                for k in resources_of(example_template, "AWS::SecretsManager::Secret")
                if k.startswith(prefix)
            )
            for prefix in ("MarketDataApiKeySecret", "PlatformMeshCertificatesDataIngestion")
        ]
    )
    decrypt = next(s for s in statements if "kms:Decrypt" in _actions(s))
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == (
        "secretsmanager.us-east-1.amazonaws.com"
    )


def test_task_role_streams_only_its_own_virtual_nodes(example_template: Template) -> None:
    for name, prefix in PREFIXES.items():
        policy = one_starting(
            resources_of(example_template, "AWS::IAM::ManagedPolicy"), f"{prefix}TaskPolicy"
        )
        statements = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if not str(s["Action"]).startswith(("secretsmanager:", "kms:"))
        ]
        nodes = sorted(
            ref["Ref"][: -len("VirtualNodeXXXXXXXX")]
            for statement in statements
            for ref in (
                statement["Resource"]
                if isinstance(statement["Resource"], list)
                else [statement["Resource"]]
            )
        )
        assert all(s["Action"] == "appmesh:StreamAggregatedResources" for s in statements)
        assert nodes == sorted(SLOTS[name])


def test_roles_have_no_inline_policies(example_template: Template) -> None:
    for logical_id, role in resources_of(example_template, "AWS::IAM::Role").items():
        if logical_id.startswith(tuple(PREFIXES.values())):
            assert "Policies" not in role["Properties"]
    assert not any(
        k.startswith(tuple(PREFIXES.values()))
        for k in resources_of(example_template, "AWS::IAM::Policy")
    )


# -- security groups --------------------------------------------------------------------------


def test_security_groups_admit_only_declared_callers(example_template: Template) -> None:
    ingress = resources_of(example_template, "AWS::EC2::SecurityGroupIngress")
    into = {}
    for rule in ingress.values():
        properties = rule["Properties"]
        target = properties["GroupId"]["Fn::GetAtt"][0]
        source = properties.get("SourceSecurityGroupId", {}).get("Fn::GetAtt", [""])[0]
        for prefix in PREFIXES.values():
            if target.startswith(f"{prefix}SecurityGroup"):
                into.setdefault(prefix, set()).add(
                    (source.split("SecurityGroup")[0], properties["FromPort"])
                )
    assert into == {
        # analytics-engine reads ticks from the database, not from data-ingestion
        "DataIngestion": {("ApiGateway", 8080)},
        "AnalyticsEngine": {("ApiGateway", 8081)},
        "ApiGateway": {("Edge", 8082)},  # the load balancer, and nothing else
    }


# -- App Mesh ---------------------------------------------------------------------------------


def test_mesh_drops_traffic_leaving_it(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::AppMesh::Mesh", {"Spec": {"EgressFilter": {"Type": "DROP_ALL"}}}
    )


def test_virtual_nodes_with_outlier_detection_pool_health_check_and_cloud_map(
    example_template: Template,
) -> None:
    nodes = resources_of(example_template, "AWS::AppMesh::VirtualNode")
    assert len(nodes) == 5
    for name, prefix in ALL_SLOTS:
        spec = one_starting(nodes, f"{prefix}VirtualNode")["Properties"]["Spec"]
        (listener,) = spec["Listeners"]
        assert listener["PortMapping"] == {"Port": SERVICES[name], "Protocol": "http"}
        assert listener["OutlierDetection"]["MaxServerErrors"] == 5
        assert listener["ConnectionPool"] == {
            "HTTP": {"MaxConnections": 256, "MaxPendingRequests": 512}
        }
        assert listener["HealthCheck"]["Path"] == "/health"
        assert listener["Timeout"]["HTTP"]["PerRequest"] == {"Unit": "ms", "Value": 15000}
        assert spec["ServiceDiscovery"]["AWSCloudMap"]["NamespaceName"] == "trading.local"


def test_routes_carry_the_retry_policy(example_template: Template) -> None:
    routes = resources_of(example_template, "AWS::AppMesh::Route")
    assert len(routes) == 3
    for route in routes.values():
        http = route["Properties"]["Spec"]["HttpRoute"]
        assert http["RetryPolicy"] == {
            "HttpRetryEvents": ["server-error", "gateway-error"],
            "MaxRetries": 3,
            "PerRetryTimeout": {"Unit": "ms", "Value": 2000},
            "TcpRetryEvents": ["connection-error"],
        }
    weights = {
        k.split("VirtualRouter")[0]: [
            (t["VirtualNode"]["Fn::GetAtt"][0].split("VirtualNode")[0], t["Weight"], t["Port"])
            for t in r["Properties"]["Spec"]["HttpRoute"]["Action"]["WeightedTargets"]
        ]
        for k, r in routes.items()
    }
    assert weights == {
        "DataIngestion": [("DataIngestionBlue", 100, 8080), ("DataIngestionGreen", 0, 8080)],
        "AnalyticsEngine": [
            ("AnalyticsEngineBlue", 100, 8081),
            ("AnalyticsEngineGreen", 0, 8081),
        ],
        "ApiGateway": [("ApiGateway", 100, 8082)],
    }
    example_template.resource_count_is("AWS::AppMesh::VirtualRouter", 3)


def test_virtual_services_and_backends(example_template: Template) -> None:
    services = resources_of(example_template, "AWS::AppMesh::VirtualService")
    names = sorted(s["Properties"]["VirtualServiceName"] for s in services.values())
    assert names == sorted(f"{n}.trading.local" for n in SERVICES)
    nodes = resources_of(example_template, "AWS::AppMesh::VirtualNode")
    backends = {
        prefix: sorted(
            b["VirtualService"]["VirtualServiceName"]
            for b in one_starting(nodes, f"{prefix}VirtualNode")["Properties"]["Spec"].get(
                "Backends", []
            )
        )
        for _, prefix in ALL_SLOTS
    }
    assert backends == {
        "DataIngestionBlue": [],
        "DataIngestionGreen": [],
        "AnalyticsEngineBlue": [],
        "AnalyticsEngineGreen": [],
        "ApiGateway": ["analytics-engine.trading.local", "data-ingestion.trading.local"],
    }


def test_slots_find_their_own_tasks_in_the_shared_cloud_map_service(
    example_template: Template,
) -> None:
    nodes = resources_of(example_template, "AWS::AppMesh::VirtualNode")
    tasks = resources_of(example_template, "AWS::ECS::TaskDefinition")
    for name, prefix in ALL_SLOTS:
        if len(SLOTS[name]) == 1:
            continue
        cloud_map = one_starting(nodes, f"{prefix}VirtualNode")["Properties"]["Spec"][
            "ServiceDiscovery"
        ]
        family = one_starting(tasks, f"{prefix}Task")["Properties"]["Family"]
        assert cloud_map["AWSCloudMap"]["Attributes"] == [
            {"Key": "ECS_TASK_DEFINITION_FAMILY", "Value": family}
        ]


def test_app_mesh_end_of_support_is_announced(example: SynthesizedApp) -> None:
    stack = example.app.node.find_child("TradingPlatform")
    mesh = stack.node.find_child("Platform").node.find_child("Mesh")
    warnings = [m.data for m in mesh.node.metadata if m.type == "aws:cdk:warning"]
    (warning,) = (str(w) for w in warnings if "2026-09-30" in str(w))
    assert "TradingCluster(mesh=Mesh.service_connect())" in warning and "-c " not in warning


# -- scaling and observability ----------------------------------------------------------------


def test_each_service_scales_on_cpu_memory_and_its_own_metric(example_template: Template) -> None:
    policies = resources_of(example_template, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(policies) == 9
    for name, prefix in PREFIXES.items():
        mine = {k: p for k, p in policies.items() if k.startswith(prefix)}
        configs = [
            p["Properties"]["TargetTrackingScalingPolicyConfiguration"] for p in mine.values()
        ]
        predefined = sorted(
            c["PredefinedMetricSpecification"]["PredefinedMetricType"]
            for c in configs
            if "PredefinedMetricSpecification" in c
        )
        assert predefined == [
            "ECSServiceAverageCPUUtilization",
            "ECSServiceAverageMemoryUtilization",
        ]
        (custom,) = (c for c in configs if "CustomizedMetricSpecification" in c)
        metric, statistic, target = CUSTOM_METRICS[name]
        assert custom["CustomizedMetricSpecification"] == {
            "Dimensions": [{"Name": "Service", "Value": name}],
            "MetricName": metric,
            "Namespace": "TradingPlatform",
            "Statistic": statistic,
        }
        assert custom["TargetValue"] == target
    targets = resources_of(example_template, "AWS::ApplicationAutoScaling::ScalableTarget")
    gateway = one_starting(targets, "ApiGateway")["Properties"]
    assert (gateway["MinCapacity"], gateway["MaxCapacity"]) == (3, 20)


def test_log_groups_30_days_encrypted_retained(example_template: Template) -> None:
    groups = {
        k: g
        for k, g in resources_of(example_template, "AWS::Logs::LogGroup").items()
        # the services' own, not their database users' rotation functions'
        if k.startswith(tuple(PREFIXES.values())) and "DbUser" not in k
    }
    assert len(groups) == 6  # app and envoy, per service
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30
        assert group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0].startswith("PlatformKey")
        assert group["DeletionPolicy"] == "RetainExceptOnCreate"


def test_metric_filters_count_app_errors_and_envoy_5xx(example_template: Template) -> None:
    filters = resources_of(example_template, "AWS::Logs::MetricFilter")
    patterns = sorted(
        (
            f["Properties"]["MetricTransformations"][0]["MetricName"],
            f["Properties"]["FilterPattern"],
        )
        for f in filters.values()
    )
    assert patterns == sorted(
        [("ErrorLogs", '{ $.level = "ERROR" }')] * 3 + [("Proxy5xx", "{ $.status >= 500 }")] * 3
    )


def test_alarms_on_errors_5xx_and_missing_tasks_notify_the_topic(
    example_template: Template,
) -> None:
    alarms = resources_of(example_template, "AWS::CloudWatch::Alarm")
    # errors and 5xx per service, missing tasks per slot, 3 on the load balancer, the
    # certificate issuer's errors and the database rotations' errors (the master's and the two
    # database users')
    assert len(alarms) == 3 + 3 + 5 + 3 + 1 + 3
    for alarm in alarms.values():
        (action,) = alarm["Properties"]["AlarmActions"]
        assert action["Ref"].startswith("PlatformAlarms")
        (ok_action,) = alarm["Properties"]["OKActions"]
        assert ok_action == action
    missing = [a for k, a in alarms.items() if "TasksBelowDesired" in k]
    assert len(missing) == 5
    expression = missing[0]["Properties"]["Metrics"][0]
    assert expression["Expression"] == "desired - running"
    example_template.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("PlatformKey"), "Arn"]}},
    )


# -- Service Connect --------------------------------------------------------------------------


def test_service_connect_replaces_app_mesh(sc_template: Template) -> None:
    assert not any(
        r["Type"].startswith("AWS::AppMesh::") for r in sc_template.to_json()["Resources"].values()
    )
    for name, prefix in PREFIXES.items():
        service = one_starting(resources_of(sc_template, "AWS::ECS::Service"), f"{prefix}Service")
        config = service["Properties"]["ServiceConnectConfiguration"]
        assert config["Enabled"] is True
        (entry,) = config["Services"]
        assert entry["DiscoveryName"] == name
        assert entry["PortName"] == name
        # the names the apps call, as on App Mesh
        assert entry["ClientAliases"] == [
            {"DnsName": f"{name}.trading.local", "Port": SERVICES[name]}
        ]
        assert entry["Timeout"] == {"IdleTimeoutSeconds": 300, "PerRequestTimeoutSeconds": 15}
        assert config["AccessLogConfiguration"]["Format"] == "JSON"
        task = one_starting(resources_of(sc_template, "AWS::ECS::TaskDefinition"), f"{prefix}Task")
        assert "ProxyConfiguration" not in task["Properties"]
        assert [c["Name"] for c in task["Properties"]["ContainerDefinitions"]] == [name]


def test_an_unknown_mesh_is_a_clear_error() -> None:
    from examples.trading_platform.app import create_app

    with pytest.raises(
        ValueError, match=r"^Mesh: mesh='istio' is not allowed \(allowed: 'mutual-tls', "
    ):
        create_app(context={"mesh": "istio"})


def test_callers_start_after_their_backends(example_template: Template) -> None:
    services = resources_of(example_template, "AWS::ECS::Service")
    gateway = one_starting(services, "ApiGatewayService")
    assert {
        "DataIngestionBlueService",
        "DataIngestionGreenService",
        "AnalyticsEngineBlueService",
        "AnalyticsEngineGreenService",
    } <= {d[: -len("XXXXXXXX")] for d in gateway["DependsOn"]}


def test_services_start_after_their_images_are_copied(example_template: Template) -> None:
    for logical_id, service in resources_of(example_template, "AWS::ECS::Service").items():
        prefix = next(p for p in PREFIXES.values() if logical_id.startswith(p))
        assert any(d.startswith(f"{prefix}ImageCopy") for d in service["DependsOn"]), logical_id
