"""The Envoy mutual-TLS mesh as the example builds it with no context: an Envoy per
task from the pinned official image, certificates from the platform CA renewed by replacing
tasks, callers authorized by identity and security group, discovery through Cloud Map, metrics
and alarms from Envoy's logs; and the resilience fields each mesh cannot honour, refused."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk.assertions import Match, Template
from conftest import CDK_CONTEXT, ENV, SynthesizedApp
from validation_support import bad

from scripts import envoy_configs
from trading_constructs import (
    ConnectionPoolOptions,
    Mesh,
    MeshedFargateService,
    MeshTlsOptions,
    OutlierOptions,
    PullThroughCache,
    ResiliencePolicy,
    RetryOptions,
    ServiceImage,
    TradingCluster,
)
from trading_constructs.mesh import certificates
from trading_constructs.mesh.envoy import EVENT_LOG, MESH_PORT
from trading_constructs.mesh.mutual_tls import (
    ENVOY_CONTAINER,
    ENVOY_CPU,
    ENVOY_DIGEST,
    ENVOY_MEMORY_MIB,
    ENVOY_UID,
)

SERVICES = {"DataIngestion": 8080, "AnalyticsEngine": 8081, "ApiGateway": 8082}
NAMES = {"DataIngestion": "data-ingestion", "AnalyticsEngine": "analytics-engine"}


@pytest.fixture(scope="module")
def resources(mutual_tls: SynthesizedApp) -> dict[str, Any]:
    found: dict[str, Any] = mutual_tls.templates["TradingPlatform"]["Resources"]
    return found


@pytest.fixture(scope="module")
def template(mutual_tls: SynthesizedApp) -> Template:
    return mutual_tls.template("TradingPlatform")


def containers(resources: dict[str, Any], service: str) -> dict[str, Any]:
    (task,) = (
        r
        for lid, r in resources.items()
        if r["Type"] == "AWS::ECS::TaskDefinition" and lid.startswith(f"{service}TaskDefinition")
    )
    return {c["Name"]: c for c in task["Properties"]["ContainerDefinitions"]} | {
        "__task__": task["Properties"]
    }


def envoy_config(resources: dict[str, Any], service: str) -> dict[str, Any]:
    return envoy_configs.envoy_config(containers(resources, service)[ENVOY_CONTAINER])


def test_every_task_runs_envoy_from_the_pinned_image_through_the_docker_hub_cache(
    resources: dict[str, Any],
) -> None:
    # GIVEN `cdk synth` with no context  THEN each service's task runs the app, Envoy and the
    # init container that writes its certificate, Envoy pinned by digest in the private cache
    for service in SERVICES:
        found = containers(resources, service)
        envoy = found[ENVOY_CONTAINER]
        image = json.dumps(envoy["Image"])
        assert f"docker-hub/envoyproxy/envoy@{ENVOY_DIGEST}" in image
        assert (envoy["Cpu"], envoy["MemoryReservation"], envoy["Essential"]) == (
            ENVOY_CPU,
            ENVOY_MEMORY_MIB,
            True,
        )
        assert envoy["ReadonlyRootFilesystem"] is True
        assert "PortMappings" not in envoy
        assert certificates.CERT_INIT_CONTAINER in found
    (rule,) = (r for r in resources.values() if r["Type"] == "AWS::ECR::PullThroughCacheRule")
    assert rule["Properties"]["UpstreamRegistryUrl"] == "registry-1.docker.io"
    assert rule["Properties"]["EcrRepositoryPrefix"] == "docker-hub"
    assert ":secret:ecr-pullthroughcache/docker-hub" in json.dumps(
        rule["Properties"]["CredentialArn"]
    )


def test_the_app_calls_backends_on_local_envoy_listeners_only(resources: dict[str, Any]) -> None:
    # GIVEN the gateway, which calls both other services
    app = containers(resources, "ApiGateway")["api-gateway"]
    environment = {e["Name"]: e["Value"] for e in app["Environment"]}
    # THEN it finds them at its own Envoy's local listeners, and Envoy listens there
    assert environment["DATA_INGESTION_URL"] == "http://127.0.0.1:15001"
    assert environment["ANALYTICS_ENGINE_URL"] == "http://127.0.0.1:15002"
    listeners = envoy_config(resources, "ApiGateway")["static_resources"]["listeners"]
    assert [
        (listener["name"], listener["address"]["socket_address"]) for listener in listeners
    ] == [
        ("outbound-data-ingestion", {"address": "127.0.0.1", "port_value": 15001}),
        ("outbound-analytics-engine", {"address": "127.0.0.1", "port_value": 15002}),
        ("health", {"address": "127.0.0.1", "port_value": 15100}),
    ]
    # AND the app starts once Envoy's listeners are up (its health check connects to one)
    assert {"ContainerName": ENVOY_CONTAINER, "Condition": "HEALTHY"} in app["DependsOn"]


def test_only_declared_callers_reach_the_mesh_port_and_nothing_else_the_app(
    resources: dict[str, Any],
) -> None:
    rules = [
        (r["Type"].rsplit("::", 1)[1], r["Properties"]["FromPort"], r["Properties"]["Description"])
        for r in resources.values()
        if r["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
        and r["Properties"].get("FromPort") in (MESH_PORT, *SERVICES.values())
    ]
    # THEN the gateway's calls reach the mesh port, and only the load balancer its app's port
    assert sorted(rules) == sorted(
        [
            ("SecurityGroupEgress", MESH_PORT, "api-gateway calls data-ingestion"),
            ("SecurityGroupIngress", MESH_PORT, "api-gateway calls data-ingestion"),
            ("SecurityGroupEgress", MESH_PORT, "api-gateway calls analytics-engine"),
            ("SecurityGroupIngress", MESH_PORT, "api-gateway calls analytics-engine"),
            ("SecurityGroupEgress", 8082, "the public service's port only"),
            ("SecurityGroupIngress", 8082, "the public service's port only"),
        ]
    )


def test_callers_are_authorized_by_the_san_of_their_certificate(resources: dict[str, Any]) -> None:
    # GIVEN the backends the gateway declared
    for service in NAMES:
        inbound, health = envoy_config(resources, service)["static_resources"]["listeners"]
        assert health["name"] == "health"
        tls = inbound["filter_chains"][0]["transport_socket"]["typed_config"]
        # THEN each takes mutual TLS on the mesh port, from the gateway's certificate only
        assert inbound["address"]["socket_address"]["port_value"] == MESH_PORT
        assert tls["require_client_certificate"] is True
        assert tls["common_tls_context"]["validation_context"] == {
            "trusted_ca": {"filename": certificates.CA_FILE},
            "match_typed_subject_alt_names": [
                {"san_type": "DNS", "matcher": {"exact": "api-gateway.trading.local"}}
            ],
        }
    # AND the gateway, which nobody calls over the mesh, has no inbound listener at all
    gateway = envoy_config(resources, "ApiGateway")["static_resources"]["listeners"]
    assert all(listener["name"] != "inbound" for listener in gateway)


def test_called_services_are_found_per_task_in_cloud_map(
    template: Template, resources: dict[str, Any]
) -> None:
    # THEN each called service registers its tasks as A records (every healthy task answered)
    for service, name in NAMES.items():
        template.has_resource_properties(
            "AWS::ServiceDiscovery::Service",
            {
                "Name": name,
                "DnsConfig": Match.object_like(
                    {"DnsRecords": [{"TTL": 10, "Type": "A"}], "RoutingPolicy": "MULTIVALUE"}
                ),
                "HealthCheckCustomConfig": {"FailureThreshold": 1},
            },
        )
        (ecs_service,) = (
            r
            for lid, r in resources.items()
            if r["Type"] == "AWS::ECS::Service" and lid.startswith(f"{service}Service")
        )
        assert len(ecs_service["Properties"]["ServiceRegistries"]) == 1
    # AND the gateway (called by nobody) registers nowhere
    assert len(template.find_resources("AWS::ServiceDiscovery::Service")) == 2


def test_certificates_reach_envoy_as_files_no_key_in_the_template_or_environment(
    resources: dict[str, Any],
) -> None:
    for service in SERVICES:
        found = containers(resources, service)
        init, envoy = found[certificates.CERT_INIT_CONTAINER], found[ENVOY_CONTAINER]
        # THEN the init container writes cert, key and CA for Envoy's user, readable by it alone
        script = init["Command"][0]
        for path in (certificates.CERT_FILE, certificates.KEY_FILE, certificates.CA_FILE):
            assert f"> {path}" in script
        assert f"chown {ENVOY_UID}:{ENVOY_UID}" in script and "chmod 0400" in script
        assert [s["Name"] for s in init["Secrets"]] == [
            "MESH_TLS_CERT",
            "MESH_TLS_KEY",
            "MESH_TLS_CA",
        ]
        assert envoy["MountPoints"] == [
            {"ContainerPath": certificates.CERT_DIR, "ReadOnly": True, "SourceVolume": "mesh-tls"}
        ]
        assert {"ContainerName": certificates.CERT_INIT_CONTAINER, "Condition": "SUCCESS"} in (
            envoy["DependsOn"]
        )
    # AND no certificate or key material appears anywhere in the template
    text = json.dumps(resources)
    assert "BEGIN" not in text and "PRIVATE KEY" not in text


def test_renewal_replaces_tasks_one_deployment_at_a_time(
    template: Template, resources: dict[str, Any]
) -> None:
    # GIVEN the issuer: it runs daily and at deployment, renewing 10 days before a 30-day expiry
    template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(1 day)", "State": "ENABLED"}
    )
    (issuer,) = (
        r
        for lid, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and "CertificatesIssuer" in lid
    )
    variables = issuer["Properties"]["Environment"]["Variables"]
    assert (variables["CERT_DAYS"], variables["RENEW_BEFORE_DAYS"]) == ("30", "10")
    # THEN a renewal redeploys the services it tagged, and ECS starts new tasks before it stops
    # old ones, which the deployment circuit breaker rolls back if they do not come up
    for service in SERVICES:
        (ecs_service,) = (
            r
            for lid, r in resources.items()
            if r["Type"] == "AWS::ECS::Service" and lid.startswith(f"{service}Service")
        )
        properties = ecs_service["Properties"]
        deployment = properties["DeploymentConfiguration"]
        assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (100, 200)
        assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
        tags = {t["Key"]: t["Value"] for t in properties["Tags"]}
        assert tags[certificates.SERVICE_TAG] in (
            "data-ingestion",
            "analytics-engine",
            "api-gateway",
        )
        assert any("FirstIssue" in d for d in ecs_service["DependsOn"])


def test_envoy_logs_become_metrics_and_alarms(resources: dict[str, Any]) -> None:
    filters = {
        r["Properties"]["MetricTransformations"][0]["MetricName"]: r["Properties"]["FilterPattern"]
        for lid, r in resources.items()
        if r["Type"] == "AWS::Logs::MetricFilter" and lid.startswith("DataIngestion")
    }
    # THEN requests, 5xx, retried requests, TLS failures and ejections are counted
    assert filters == {
        "ErrorLogs": '{ $.level = "ERROR" }',
        "Proxy5xx": "{ $.status >= 500 }",
        "MeshRequests": "{ $.status >= 0 }",
        "MeshRetriedRequests": "{ $.attempts > 1 }",
        "MeshTlsFailures": '{ ($.upstream_failure = "*TLS*") || ($.downstream_failure = "*_*") }',
        "MeshEjections": '{ $.action = "EJECT" }',
    }
    alarms = [
        r["Properties"].get("MetricName")
        for lid, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and lid.startswith("DataIngestion")
    ]
    assert {"Proxy5xx", "MeshTlsFailures", "MeshEjections"} <= set(alarms)
    # AND Envoy writes its ejections where the filters read
    assert envoy_config(resources, "DataIngestion")["cluster_manager"] == {
        "outlier_detection": {"event_log_path": EVENT_LOG}
    }


def test_the_dashboard_has_a_mesh_row_per_service(resources: dict[str, Any]) -> None:
    (dashboard,) = (r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in ("data-ingestion", "analytics-engine", "api-gateway"):
        assert f"{name}: mTLS failures and ejections" in body


# -- what each mesh cannot honour is refused --------------------------------------------------

EVERY_FIELD = ResiliencePolicy(
    retry=RetryOptions(
        max_retries=2,
        per_retry_timeout=Duration.seconds(1),
        http_retry_events=["gateway-error"],
        tcp_retry_events=["connection-error"],
        backoff_base_interval=Duration.millis(50),
        backoff_max_interval=Duration.millis(800),
    ),
    outlier=OutlierOptions(
        max_server_errors=3,
        interval=Duration.seconds(5),
        base_ejection_duration=Duration.seconds(60),
        max_ejection_percent=30,
    ),
    connection_pool=ConnectionPoolOptions(
        max_connections=64, max_pending_requests=128, max_requests=256, max_retries=10
    ),
)


def test_the_mutual_tls_mesh_honours_every_field() -> None:
    assert Mesh.mutual_tls(resilience=EVERY_FIELD).resilience is EVERY_FIELD


@pytest.mark.parametrize(
    ("factory", "refused"),
    [
        pytest.param(
            Mesh.service_connect,
            "retry.max_retries, retry.per_retry_timeout, retry.http_retry_events, "
            "retry.backoff_base_interval, retry.backoff_max_interval, outlier.max_server_errors, "
            "outlier.interval, outlier.base_ejection_duration, outlier.max_ejection_percent, "
            "connection_pool.max_connections, connection_pool.max_pending_requests, "
            "connection_pool.max_requests, connection_pool.max_retries",
            id="service-connect",
        ),
        pytest.param(
            Mesh.app_mesh,
            "retry.backoff_base_interval, retry.backoff_max_interval, "
            "connection_pool.max_requests, connection_pool.max_retries",
            id="appmesh",
        ),
    ],
)
def test_a_mesh_refuses_the_fields_it_would_ignore(factory: Any, refused: str) -> None:
    # WHEN a mesh is given a policy with fields it cannot honour
    with pytest.raises(ValueError) as raised:
        factory(resilience=EVERY_FIELD)
    # THEN the error names each field and why, instead of dropping them
    message = str(raised.value)
    assert message.startswith("Mesh: resilience=")
    assert f"ResiliencePolicy({refused} set)" in message
    assert "choose Mesh.mutual_tls(), which honours every field" in message


def test_defaults_and_timeouts_stay_allowed_on_every_mesh() -> None:
    timeouts = ResiliencePolicy(
        per_request_timeout=Duration.seconds(30), idle_timeout=Duration.minutes(10)
    )
    for factory in (Mesh.service_connect, Mesh.app_mesh, Mesh.mutual_tls):
        factory(resilience=timeouts)
        factory()


def nginx(cluster: TradingCluster) -> ServiceImage:
    cache = cluster.public_images or PullThroughCache(cluster, "Images", key=cluster.key)
    return ServiceImage.from_pull_through_cache(cache, upstream_image="library/nginx", tag="1.27")


@pytest.fixture(scope="module")
def service_connect_cluster() -> TradingCluster:
    stack = Stack(App(context=CDK_CONTEXT), "Refusals", env=ENV)
    return TradingCluster(stack, "Platform", mesh=Mesh.service_connect())


def test_a_service_on_service_connect_refuses_retries_it_would_ignore(
    service_connect_cluster: TradingCluster,
) -> None:
    policy = ResiliencePolicy(retry=RetryOptions(max_retries=5))
    with pytest.raises(ValueError, match=r"resilience=.*retry\.max_retries set.*Service Connect"):
        MeshedFargateService(
            Stack.of(service_connect_cluster),
            "Quotes",
            cluster=service_connect_cluster,
            name="quotes",
            image=nginx(service_connect_cluster),
            port=8080,
            resilience=policy,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"backoff_base_interval": Duration.millis(0)},
            bad("backoff_base_interval", "0 millis", "1 ms to 10000 ms"),
        ),
        (
            {
                "backoff_base_interval": Duration.seconds(1),
                "backoff_max_interval": Duration.millis(500),
            },
            bad("backoff_max_interval", "500 millis", "at least backoff_base_interval=1 second"),
        ),
    ],
)
def test_bad_backoff_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^RetryOptions: {message}"):
        RetryOptions(**options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_requests": 0}, bad("max_requests", 0, "from 1 to 100000")),
        ({"max_retries": -1}, bad("max_retries", -1, "from 0 to 10000")),
    ],
)
def test_bad_circuit_breaker_limits_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^ConnectionPoolOptions: {message}"):
        ConnectionPoolOptions(**options)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Mesh(kind="mutual-tls", mtls=None),
            bad("mtls", None, "MeshTlsOptions: the mutual-TLS mesh always has it"),
        ),
        (
            lambda: Mesh.mutual_tls(
                docker_hub_credentials="arn:aws:secretsmanager:us-east-1:123456789012:secret:hub-AbCdEf"
            ),
            bad(
                "docker_hub_credentials",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:hub-AbCdEf",
                "the ARN of a Secrets Manager secret named ecr-pullthroughcache/...",
            ),
        ),
        (
            lambda: Mesh(kind="service-connect", docker_hub_credentials="x"),
            re.escape("docker_hub_credentials applies to the mutual-TLS mesh (allowed: None)"),
        ),
    ],
)
def test_bad_mutual_tls_mesh_props_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.fixture(scope="module")
def mtls_cluster() -> TradingCluster:
    stack = Stack(App(context=CDK_CONTEXT), "MutualTls", env=ENV)
    return TradingCluster(
        stack,
        "Platform",
        mesh=Mesh.mutual_tls(mtls=MeshTlsOptions(cert_days=14, renew_before_days=4)),
    )


@pytest.mark.parametrize("port", [15000, 15001, 15050, 15099, 15100])
def test_an_app_port_envoy_listens_on_is_refused(mtls_cluster: TradingCluster, port: int) -> None:
    with pytest.raises(
        ValueError, match=bad("port", port, "a port outside the mesh's own 15000 to 15100")
    ):
        MeshedFargateService(
            Stack.of(mtls_cluster),
            f"Port{port}",
            cluster=mtls_cluster,
            name=f"port-{port}",
            image=nginx(mtls_cluster),
            port=port,
        )


# -- the example's other guarantees hold on this mesh as on the others -----------------------


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {lid: r for lid, r in resources.items() if r["Type"] == kind}


def test_three_services_on_spot_with_health_checks_logs_and_private_images(
    resources: dict[str, Any],
) -> None:
    services = of_type(resources, "AWS::ECS::Service")
    assert len(services) == 3
    for service in services.values():
        strategy = service["Properties"]["CapacityProviderStrategy"]
        assert {s["CapacityProvider"] for s in strategy} == {"FARGATE", "FARGATE_SPOT"}
    for task in of_type(resources, "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] != certificates.CERT_INIT_CONTAINER:
                assert "HealthCheck" in container, container["Name"]
            assert container["LogConfiguration"]["LogDriver"] == "awslogs"
            image = json.dumps(container["Image"])
            # the service's scanned repository, or Envoy's private copy in the cache
            assert "RepositoryUri" in image or ".dkr.ecr." in image, container["Name"]


def test_scaling_logs_and_alarms_as_on_the_other_meshes(resources: dict[str, Any]) -> None:
    assert len(of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy")) == 9
    groups = {
        lid: g
        for lid, g in of_type(resources, "AWS::Logs::LogGroup").items()
        if lid.startswith(tuple(SERVICES)) and "DbUser" not in lid
    }
    assert len(groups) == 6  # app and envoy, per service
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == 30
        assert group["DeletionPolicy"] == "RetainExceptOnCreate"
    for alarm in of_type(resources, "AWS::CloudWatch::Alarm").values():
        (action,) = alarm["Properties"]["AlarmActions"]
        assert action["Ref"].startswith("PlatformAlarms")


def test_execution_roles_read_their_own_certificate_only(resources: dict[str, Any]) -> None:
    secrets = of_type(resources, "AWS::SecretsManager::Secret")
    for service in SERVICES:
        (policy,) = (
            p
            for lid, p in of_type(resources, "AWS::IAM::ManagedPolicy").items()
            if lid.startswith(f"{service}ExecutionPolicy")
        )
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        read = [
            r["Ref"]
            for s in statements
            if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        ]
        certificates_read = [
            ref for ref in read if ref.startswith("PlatformMeshCertificates") and ref in secrets
        ]
        assert certificates_read == [
            next(k for k in secrets if k.startswith(f"PlatformMeshCertificates{service}"))
        ]
        # AND Envoy's image: through the cache, that one repository
        assert "docker-hub/envoyproxy/envoy" in json.dumps(statements)


def test_callers_start_after_their_backends_and_certificates(resources: dict[str, Any]) -> None:
    (gateway,) = (
        r
        for lid, r in of_type(resources, "AWS::ECS::Service").items()
        if lid.startswith("ApiGateway")
    )
    waits = {d[: -len("XXXXXXXX")] for d in gateway["DependsOn"]}
    assert {"DataIngestionService", "AnalyticsEngineService"} <= waits


def test_only_the_issuer_role_may_sign_with_the_ca_key(resources: dict[str, Any]) -> None:
    # GIVEN the CA key's own policy (no other principal may sign)
    (key,) = (
        r
        for lid, r in of_type(resources, "AWS::KMS::Key").items()
        if lid.startswith("PlatformMeshCertificatesCaKey")
    )
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (deny,) = (s for s in statements if s.get("Effect") == "Deny" and s["Action"] == "kms:Sign")
    # THEN every principal but the issuer's role is refused kms:Sign, whatever IAM allows
    assert (deny["Action"], deny["Principal"], deny["Resource"]) == ("kms:Sign", {"AWS": "*"}, "*")
    (role,) = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"][:1]
    assert role.startswith("PlatformMeshCertificatesIssuerRole")
