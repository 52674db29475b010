"""The edge and safe traffic: the ALB with path routing, mesh mTLS, blue/green, the dashboard."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template
from conftest import CERTIFICATE_ARN, SynthesizedApp
from construct_support import one_starting, resources_of

MTLS_LISTENERS = (
    "DataIngestionBlue",
    "DataIngestionGreen",
    "AnalyticsEngineBlue",
    "AnalyticsEngineGreen",
)


@pytest.fixture(scope="session")
def https_template(service_connect: SynthesizedApp) -> Template:
    return service_connect.template("TradingPlatform")


# -- ALB ---------------------------------------------------------------------------------------


def test_internet_facing_alb_in_public_subnets_with_hardening(example_template: Template) -> None:
    alb = one_starting(
        resources_of(example_template, "AWS::ElasticLoadBalancingV2::LoadBalancer"), "Edge"
    )
    properties = alb["Properties"]
    assert properties["Scheme"] == "internet-facing"
    assert all("PublicSubnet" in s["Ref"] for s in properties["Subnets"])
    attributes = {a["Key"]: a["Value"] for a in properties["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    # off by default: a failed first create must be able to delete it (opt-in for production)
    assert attributes["deletion_protection.enabled"] == "false"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["access_logs.s3.bucket"]["Ref"].startswith("EdgeAccessLogs")


def test_blue_green_listener_forwards_every_path_to_api_gateway(
    example_template: Template,
) -> None:
    # GIVEN api-gateway released blue/green: ECS native blue/green does not support a listener
    # whose rules mix forward and fixed-response actions
    (rule,) = (
        r
        for k, r in resources_of(
            example_template, "AWS::ElasticLoadBalancingV2::ListenerRule"
        ).items()
        if k.startswith("EdgePathRule")
    )
    assert rule["Properties"]["Priority"] == 10
    assert rule["Properties"]["Conditions"] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}
    ]
    # both groups, blue live: ECS moves the weights, a stack update cannot undo its move
    groups = rule["Properties"]["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert [(g["TargetGroupArn"]["Ref"][:9], g["Weight"]) for g in groups] == [
        ("EdgeBlueT", 100),
        ("EdgeGreen", 0),
    ]
    # THEN no action of any listener ECS uses is anything but a forward
    listeners = resources_of(example_template, "AWS::ElasticLoadBalancingV2::Listener")
    for name in ("EdgeLoadBalancerHttp", "EdgeLoadBalancerTest"):
        (default,) = one_starting(listeners, name)["Properties"]["DefaultActions"]
        assert default["Type"] == "forward"
    rules = resources_of(example_template, "AWS::ElasticLoadBalancingV2::ListenerRule").values()
    assert all(a["Type"] == "forward" for r in rules for a in r["Properties"]["Actions"])


def test_target_group_health_check_and_fast_deregistration(example_template: Template) -> None:
    for group in resources_of(
        example_template, "AWS::ElasticLoadBalancingV2::TargetGroup"
    ).values():
        properties = group["Properties"]
        assert properties["HealthCheckPath"] == "/health"
        assert properties["HealthCheckIntervalSeconds"] == 15
        assert properties["HealthCheckTimeoutSeconds"] == 5
        assert (properties["HealthyThresholdCount"], properties["UnhealthyThresholdCount"]) == (
            2,
            3,
        )
        assert properties["Matcher"] == {"HttpCode": "200"}
        assert properties["TargetType"] == "ip" and properties["Port"] == 8082
        attributes = {a["Key"]: a["Value"] for a in properties["TargetGroupAttributes"]}
        assert attributes["deregistration_delay.timeout_seconds"] == "30"


def test_without_a_certificate_http_and_a_warning(example: SynthesizedApp) -> None:
    edge = example.app.node.find_child("TradingPlatform").node.find_child("Edge")
    warnings = [str(m.data) for m in edge.node.metadata if m.type == "aws:cdk:warning"]
    # the warning names the props that add HTTPS, not a context value of some app
    (warning,) = (w for w in warnings if "plain HTTP" in w)
    assert "certificate=" in warning and "domain=DomainOptions(" in warning
    assert "-c " not in warning and "certificate_arn" not in warning


def test_with_a_certificate_https_tls12_plus_and_redirect(https_template: Template) -> None:
    listeners = resources_of(https_template, "AWS::ElasticLoadBalancingV2::Listener")
    https = one_starting(listeners, "EdgeLoadBalancerHttps")["Properties"]
    assert https["Port"] == 443 and https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["Certificates"] == [{"CertificateArn": CERTIFICATE_ARN}]
    redirect = one_starting(listeners, "EdgeLoadBalancerRedirect80To443")["Properties"]
    assert redirect["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    test = one_starting(listeners, "EdgeLoadBalancerTest")["Properties"]
    assert test["Protocol"] == "HTTPS"


def test_alb_reaches_only_api_gateway_and_admits_only_80_443(
    example_template: Template, https_template: Template
) -> None:
    group = one_starting(
        resources_of(example_template, "AWS::EC2::SecurityGroup"), "EdgeSecurityGroup"
    )
    assert group["Properties"]["SecurityGroupIngress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "clients on 80",
            "FromPort": 80,
            "IpProtocol": "tcp",
            "ToPort": 80,
        }
    ]
    # Without inline egress rules EC2 would add its allow-all rule: the group carries the
    # no-traffic placeholder, and its one real egress rule (to the service, below) stands apart.
    assert group["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "255.255.255.255/32",
            "Description": "Disallow all traffic",
            "FromPort": 252,
            "IpProtocol": "icmp",
            "ToPort": 86,
        }
    ]
    egress = [
        e["Properties"]
        for k, e in resources_of(example_template, "AWS::EC2::SecurityGroupEgress").items()
        if k.startswith("EdgeSecurityGroup")
    ]
    assert [
        (e["DestinationSecurityGroupId"]["Fn::GetAtt"][0][:10], e["FromPort"]) for e in egress
    ] == [("ApiGateway", 8082)]
    https_group = one_starting(
        resources_of(https_template, "AWS::EC2::SecurityGroup"), "EdgeSecurityGroup"
    )
    ports = sorted(r["FromPort"] for r in https_group["Properties"]["SecurityGroupIngress"])
    assert ports == [80, 443]
    assert [e["CidrIp"] for e in https_group["Properties"]["SecurityGroupEgress"]] == [
        "255.255.255.255/32"
    ]


def test_access_log_bucket_encrypted_retained_expiring(example_template: Template) -> None:
    bucket = one_starting(resources_of(example_template, "AWS::S3::Bucket"), "EdgeAccessLogs")
    properties = bucket["Properties"]
    # kept even by a failed first create (the load balancer has written to it), under a
    # generated name
    assert bucket["DeletionPolicy"] == "Retain"
    assert "BucketName" not in properties
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert properties["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True
    assert properties["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 90


def test_waf_with_managed_rules_and_logging(example_template: Template) -> None:
    acl = one_starting(resources_of(example_template, "AWS::WAFv2::WebACL"), "EdgeWebAcl")[
        "Properties"
    ]
    assert acl["Scope"] == "REGIONAL"
    names = [r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"]]
    assert names == [
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    ]
    example_template.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    logging = one_starting(
        resources_of(example_template, "AWS::WAFv2::LoggingConfiguration"), "Edge"
    )
    assert "EdgeWebAclLogs" in json.dumps(logging["Properties"]["LogDestinationConfigs"])
    group = one_starting(resources_of(example_template, "AWS::Logs::LogGroup"), "EdgeWebAclLogs")
    # WAF forces the prefix; the group is retained, so the name ends in the last part of the
    # stack's ID (a GUID per stack): a stack deployed again never meets the kept group
    prefix, suffix = group["Properties"]["LogGroupName"]["Fn::Join"][1]
    assert prefix == "aws-waf-logs-TradingPlatformEdgeE75E80A1"
    assert suffix == {
        "Fn::Select": [
            4,
            {
                "Fn::Split": [
                    "-",
                    {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                ]
            },
        ]
    }
    assert group["DeletionPolicy"] == "RetainExceptOnCreate"
    assert "KmsKeyId" in group["Properties"]
    # the logging configuration names the same group, by reference
    destination = json.dumps(logging["Properties"]["LogDestinationConfigs"])
    assert '{"Ref": "EdgeWebAclLogs9AEEB6B6"}' in destination


# -- blue/green --------------------------------------------------------------------------------


def test_api_gateway_deploys_blue_green_with_alternate_target_group(
    example_template: Template,
) -> None:
    service = one_starting(resources_of(example_template, "AWS::ECS::Service"), "ApiGatewayService")
    properties = service["Properties"]
    assert properties["DeploymentConfiguration"]["Strategy"] == "BLUE_GREEN"
    assert properties["DeploymentConfiguration"]["BakeTimeInMinutes"] == 10
    assert properties["HealthCheckGracePeriodSeconds"] == 60
    (balancer,) = properties["LoadBalancers"]
    advanced = balancer["AdvancedConfiguration"]
    assert balancer["TargetGroupArn"]["Ref"].startswith("EdgeBlueTargetGroup")
    assert advanced["AlternateTargetGroupArn"]["Ref"].startswith("EdgeGreenTargetGroup")
    assert advanced["ProductionListenerRule"]["Ref"].startswith("EdgePathRule1")
    assert advanced["TestListenerRule"]["Ref"].startswith("EdgeTestRule")
    test_listener = one_starting(
        resources_of(example_template, "AWS::ElasticLoadBalancingV2::Listener"),
        "EdgeLoadBalancerTest",
    )
    assert test_listener["Properties"]["Port"] == 9443


# -- mutual TLS --------------------------------------------------------------------------------


def test_called_services_require_strict_mutual_tls_from_their_callers(
    example_template: Template,
) -> None:
    nodes = resources_of(example_template, "AWS::AppMesh::VirtualNode")
    callers = {
        "DataIngestion": ["api-gateway.trading.local"],
        "AnalyticsEngine": ["api-gateway.trading.local"],
    }
    for prefix in MTLS_LISTENERS:
        (listener,) = one_starting(nodes, f"{prefix}VirtualNode")["Properties"]["Spec"]["Listeners"]
        tls = listener["TLS"]
        assert tls["Mode"] == "STRICT"
        assert tls["Certificate"] == {
            "File": {
                "CertificateChain": "/etc/mesh-tls/cert.pem",
                "PrivateKey": "/etc/mesh-tls/key.pem",
            }
        }
        assert tls["Validation"]["Trust"] == {"File": {"CertificateChain": "/etc/mesh-tls/ca.pem"}}
        expected = callers[prefix.replace("Blue", "").replace("Green", "")]
        assert tls["Validation"]["SubjectAlternativeNames"] == {"Match": {"Exact": expected}}


def test_api_gateway_listener_is_plain_behind_its_security_group(
    example_template: Template,
) -> None:
    node = one_starting(
        resources_of(example_template, "AWS::AppMesh::VirtualNode"), "ApiGatewayVirtualNode"
    )
    (listener,) = node["Properties"]["Spec"]["Listeners"]
    assert "TLS" not in listener


def test_every_client_presents_its_certificate_and_checks_the_backend(
    example_template: Template,
) -> None:
    for prefix, node in resources_of(example_template, "AWS::AppMesh::VirtualNode").items():
        for backend in node["Properties"]["Spec"].get("Backends", []):
            service = backend["VirtualService"]
            tls = service["ClientPolicy"]["TLS"]
            assert tls["Certificate"]["File"]["PrivateKey"] == "/etc/mesh-tls/key.pem"
            assert tls["Validation"]["SubjectAlternativeNames"] == {
                "Match": {"Exact": [service["VirtualServiceName"]]}
            }, prefix


def test_certificates_reach_envoy_as_read_only_files_from_an_init_container(
    example_template: Template,
) -> None:
    for task in resources_of(example_template, "AWS::ECS::TaskDefinition").values():
        properties = task["Properties"]
        containers = {c["Name"]: c for c in properties["ContainerDefinitions"]}
        init, envoy = containers["mesh-tls-init"], containers["envoy"]
        assert properties["Volumes"] == [{"Name": "mesh-tls"}]
        # root to write the root-owned bind mount; the files go to Envoy (1337), mode 0400
        assert init["Essential"] is False and init["User"] == "0"
        assert "chown 1337:1337" in init["Command"][0] and "chmod 0400" in init["Command"][0]
        assert sorted(s["Name"] for s in init["Secrets"]) == [
            "MESH_TLS_CA",
            "MESH_TLS_CERT",
            "MESH_TLS_KEY",
        ]
        assert "Environment" not in init  # nothing secret in the template
        assert envoy["MountPoints"] == [
            {"ContainerPath": "/etc/mesh-tls", "ReadOnly": True, "SourceVolume": "mesh-tls"}
        ]
        assert {"Condition": "SUCCESS", "ContainerName": "mesh-tls-init"} in envoy["DependsOn"]


def test_no_key_or_certificate_appears_in_the_template(example: SynthesizedApp) -> None:
    text = json.dumps(example.templates)
    assert "BEGIN PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text


def test_a_kms_ca_and_an_issuer_that_runs_at_deploy_and_daily(example_template: Template) -> None:
    key = one_starting(
        resources_of(example_template, "AWS::KMS::Key"), "PlatformMeshCertificatesCaKey"
    )
    assert key["Properties"]["KeySpec"] == "ECC_NIST_P256"
    assert key["Properties"]["KeyUsage"] == "SIGN_VERIFY"
    issuer = one_starting(
        resources_of(example_template, "AWS::Lambda::Function"), "PlatformMeshCertificatesIssuer"
    )["Properties"]
    assert issuer["Handler"] == "issuer.handler"
    # no reserved concurrency unless MeshTlsOptions(issuer_reserved_concurrency=...) asks
    assert "ReservedConcurrentExecutions" not in issuer
    services = json.dumps(issuer["Environment"]["Variables"]["SERVICES"])
    for name in ("data-ingestion", "analytics-engine", "api-gateway"):
        assert f"{name}.trading.local" in services
    rule = one_starting(
        resources_of(example_template, "AWS::Events::Rule"), "PlatformMeshCertificatesDaily"
    )
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    example_template.resource_count_is("Custom::Trigger", 1)


def test_services_start_after_the_first_issue_and_are_tagged_for_renewal(
    example_template: Template,
) -> None:
    for logical_id, service in resources_of(example_template, "AWS::ECS::Service").items():
        assert any(d.startswith("PlatformMeshCertificatesFirstIssue") for d in service["DependsOn"])
        tags = {t["Key"]: t["Value"] for t in service["Properties"]["Tags"]}
        assert tags["trading-constructs:mesh-service"] in (
            "data-ingestion",
            "analytics-engine",
            "api-gateway",
        ), logical_id


def test_issuer_policy_signs_with_the_ca_and_writes_only_certificate_secrets(
    example_template: Template,
) -> None:
    policy = one_starting(
        resources_of(example_template, "AWS::IAM::ManagedPolicy"),
        "PlatformMeshCertificatesIssuerPolicy",
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    sign = next(s for s in statements if "kms:Sign" in s["Action"])
    assert sign["Resource"]["Fn::GetAtt"][0].startswith("PlatformMeshCertificatesCaKey")
    writes = [s for s in statements if "secretsmanager:PutSecretValue" in s["Action"]]
    refs = [
        r["Ref"]
        for s in writes
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert len(refs) == 4 and all(r.startswith("PlatformMeshCertificates") for r in refs)


# -- dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_services_and_the_load_balancer(example_template: Template) -> None:
    (dashboard,) = resources_of(example_template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for expected in (
        "CPUUtilization",
        "MemoryUtilization",
        "RunningTaskCount",
        "DesiredTaskCount",
        "ErrorLogs",
        "Proxy5xx",
        "RequestCount",
        "TargetResponseTime",
        "p99",
        "p50",
        "HTTPCode_Target_4XX_Count",
        "HTTPCode_Target_5XX_Count",
        "HealthyHostCount",
        "data-ingestion",
        "analytics-engine",
        "api-gateway",
    ):
        assert expected in body, expected


def test_alarms_go_to_an_encrypted_topic(example_template: Template) -> None:
    (topic,) = resources_of(example_template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("PlatformKey")
    for alarm in resources_of(example_template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"][0]["Ref"].startswith("PlatformAlarms")


def test_service_connect_tls_from_a_private_ca(tmp_path_factory: pytest.TempPathFactory) -> None:
    from aws_cdk import App, Stack
    from conftest import CDK_CONTEXT, ENV

    from trading_constructs import (
        Mesh,
        MeshedFargateService,
        ScannedRepository,
        ServiceImage,
        TradingCluster,
    )

    # GIVEN a Service Connect platform with a Private CA
    authority = (
        "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
        "12345678-1234-1234-1234-123456789012"
    )
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("sc-tls")))
    stack = Stack(app, "ScTls", env=ENV)
    platform = TradingCluster(
        stack, "Platform", mesh=Mesh.service_connect(tls_authority_arn=authority)
    )
    repository = ScannedRepository(stack, "Repo", key=platform.key)
    image = ServiceImage(repository=repository, tag="v1")
    gateway = MeshedFargateService(
        stack, "Gw", cluster=platform, name="gw", port=8082, image=image, public=True
    )
    # AND an internal service that calls the public one
    MeshedFargateService(
        stack, "Svc", cluster=platform, name="svc", port=8080, image=image, backends=[gateway]
    )
    # WHEN synthesized  THEN the internal service's Service Connect entry has TLS from that CA
    template = Template.from_stack(stack)
    services = resources_of(template, "AWS::ECS::Service")
    entries = {
        logical_id[:3]: entry
        for logical_id, service in services.items()
        for entry in service["Properties"]["ServiceConnectConfiguration"]["Services"]
    }
    # AND the public service's port, which the load balancer health-checks in plain HTTP,
    # has none (its callers' proxies follow: calls to it stay plain HTTP)
    assert "Tls" not in entries["GwS"]
    tls = entries["Svc"]["Tls"]
    assert tls["IssuerCertificateAuthority"] == {"AwsPcaAuthorityArn": authority}
    assert tls["RoleArn"]["Fn::GetAtt"][0].startswith("PlatformMeshTlsRole")
