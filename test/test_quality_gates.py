"""The gates every change keeps green: cfn-lint, cdk-nag, stable logical IDs (API.md: see
test_api_reference.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from cfnlint.api import lint
from conftest import ClusterStacks, SynthesizedApp, synthesize

from examples.trading_platform.app import add_compliance_checks

# Every cdk-nag acknowledgement in the example, by construct path and rule. A new one is a visible
# change to this list; its reason lives beside the construct it concerns.
NAG_PACKS = ("AwsSolutions::", "NIST.800.53.R5::", "PCI.DSS.321::")
EXPECTED_ACKNOWLEDGEMENTS = {
    **{
        f"TradingPlatform/Platform/Vpc/PublicSubnet{az}/DefaultRoute": [
            "NIST.800.53.R5::NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
            "PCI.DSS.321::PCI.DSS.321-VPCNoUnrestrictedRouteToIGW",
        ]
        for az in (1, 2, 3)
    },
    "TradingPlatform/Platform/PublicImages/CreationPolicy": [
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:ecr:us-east-1:<AWS::AccountId>:"
        "repository/ecr-public/*]"
    ],
    "TradingPlatform/ImageCopyPolicy": ["AwsSolutions::AwsSolutions-IAM5[Resource::*]"],
    "TradingPlatform/Custom::CDKECRDeploymentbd07c930edb94112a20f03f096f53666512MiB": [
        "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
    ],
    # deletion protection is off until a first create succeeded (-c deletion_protection=true)
    "TradingPlatform/Edge/LoadBalancer": [
        "NIST.800.53.R5::NIST.800.53.R5-ELBDeletionProtectionEnabled"
    ],
    "TradingPlatform/MarketDataDb": [
        "AwsSolutions::AwsSolutions-RDS10",
        "NIST.800.53.R5::NIST.800.53.R5-RDSInstanceDeletionProtectionEnabled",
    ],
    "TradingPlatform/MarketDataDbMonitoringPolicy": [
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:logs:us-east-1:<AWS::AccountId>:"
        "log-group:RDSOSMetrics:log-stream:*]"
    ],
    "TradingPlatform/MarketDataDb/Writer": ["NIST.800.53.R5::NIST.800.53.R5-RDSInBackupPlan"],
    "TradingPlatform/MarketDataDb/Reader": ["NIST.800.53.R5::NIST.800.53.R5-RDSInBackupPlan"],
    "TradingPlatform/BackupPlan/MarketDataDb": [
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "service-role/AWSBackupServiceRolePolicyForBackup]"
    ],
    "TradingPlatform/MarketDataApiKey/RotationDeadLetters": ["AwsSolutions::AwsSolutions-SQS3"],
    "TradingPlatform/MarketDataApiKey/RotationPolicy": [
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    ],
    "TradingPlatform/MarketDataApiKey/RotationFunction": [
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency"
    ],
    "TradingPlatform/MarketDataDbSecret/RotationDeadLetters": ["AwsSolutions::AwsSolutions-SQS3"],
    "TradingPlatform/MarketDataDbSecret/RotationPolicy": [
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    ],
    "TradingPlatform/MarketDataDbSecret/RotationFunction": [
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency"
    ],
    # the function that creates the schema and the users, and each user's own rotation
    **{
        f"TradingPlatform/{owner}/{prefix}{part}": rules
        for owner, prefix in (
            ("MarketDataDbSecret/Users", "Provisioning"),
            ("DataIngestionDbUser/Credentials", "Rotation"),
            ("AnalyticsEngineDbUser/Credentials", "Rotation"),
        )
        for part, rules in (
            ("DeadLetters", ["AwsSolutions::AwsSolutions-SQS3"]),
            ("Policy", ["AwsSolutions::AwsSolutions-IAM5[Resource::*]"]),
            ("Function", ["NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency"]),
        )
    },
    "TradingPlatform/Platform/Mesh/Certificates/CaKey": [
        "AwsSolutions::AwsSolutions-KMS5",
        "NIST.800.53.R5::NIST.800.53.R5-KMSBackingKeyRotationEnabled",
        "PCI.DSS.321::PCI.DSS.321-KMSBackingKeyRotationEnabled",
    ],
    **{
        f"TradingPlatform/Platform/Mesh/Certificates/{secret}": [
            "AwsSolutions::AwsSolutions-SMG4",
            "NIST.800.53.R5::NIST.800.53.R5-SecretsManagerRotationEnabled",
            "PCI.DSS.321::PCI.DSS.321-SecretsManagerRotationEnabled",
        ]
        for secret in (
            "CaCertificate",
            "DataIngestionCertificate",
            "AnalyticsEngineCertificate",
            "ApiGatewayCertificate",
        )
    },
    "TradingPlatform/Platform/Mesh/Certificates/Issuer": [
        "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
    ],
    "TradingPlatform/Platform/Mesh/Certificates/IssuerPolicy": [
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:ecs:us-east-1:<AWS::AccountId>:"
        "service/<PlatformCluster6842C9C4>/*]",
    ],
    "TradingPlatform/Edge/BlueGreenRole": [
        "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
        "AmazonECSInfrastructureRolePolicyForLoadBalancers]"
    ],
    # the example has no certificate (no domain): HTTP only, with a synth warning
    "TradingPlatform/Edge": [
        "NIST.800.53.R5::NIST.800.53.R5-ALBHttpToHttpsRedirection",
        "NIST.800.53.R5::NIST.800.53.R5-ELBTlsHttpsListenersOnly",
        "NIST.800.53.R5::NIST.800.53.R5-ELBv2ACMCertificateRequired",
        "PCI.DSS.321::PCI.DSS.321-ALBHttpToHttpsRedirection",
        "PCI.DSS.321::PCI.DSS.321-ELBTlsHttpsListenersOnly",
        "PCI.DSS.321::PCI.DSS.321-ELBv2ACMCertificateRequired",
        "AwsSolutions::AwsSolutions-ELB1",
    ],
    "TradingPlatform/Edge/SecurityGroup": ["AwsSolutions::AwsSolutions-EC23"],
    "TradingPlatform/Edge/AccessLogs": [
        "AwsSolutions::AwsSolutions-S1",
        "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
        "PCI.DSS.321::PCI.DSS.321-S3BucketLoggingEnabled",
        "NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS",
        "PCI.DSS.321::PCI.DSS.321-S3DefaultEncryptionKMS",
        "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
        "PCI.DSS.321::PCI.DSS.321-S3BucketReplicationEnabled",
    ],
    **{
        f"TradingPlatform/{service}/ExecutionPolicy": [
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
        ]
        for service in ("DataIngestion", "AnalyticsEngine", "ApiGateway")
    },
    **{
        f"TradingPlatform/{task}": ["AwsSolutions::AwsSolutions-ECS2"]
        for task in (
            "DataIngestion/BlueTaskDefinition",
            "DataIngestion/GreenTaskDefinition",
            "AnalyticsEngine/BlueTaskDefinition",
            "AnalyticsEngine/GreenTaskDefinition",
            "ApiGateway/TaskDefinition",
        )
    },
}

# Test stacks that name AZs on purpose, to prove the explicit-AZ props work (W3010 warns on names).
DELIBERATE = {"Custom": {"W3010"}, "Existing": {"W3010"}}

# Resources whose replacement would lose data: their logical IDs are part of the public contract.
STATEFUL_LOGICAL_IDS = {
    "AWS::KMS::Key": {"PlatformKeyE2280810", "PlatformMeshCertificatesCaKey6F039DD3"},
    "AWS::Logs::LogGroup": {
        "PlatformFlowLogsD65C18D7",
        # the copy function's own group (the library's, named after the function, is removed)
        "ImageCopyLogs7AFBBE46",
        "MarketDataDbLogs72698F27",
        "MarketDataApiKeyRotationLogs35FE4FEC",
        "MarketDataDbSecretRotationLogsF99FFE85",
        "MarketDataDbSecretUsersProvisioningLogs2DF38A7B",
        "DataIngestionDbUserCredentialsRotationLogsCC2FE32C",
        "AnalyticsEngineDbUserCredentialsRotationLogs58E6A122",
        "DataIngestionObservabilityDataIngestionLogs2FF79870",
        "DataIngestionObservabilityEnvoyLogs4F5823BD",
        "AnalyticsEngineObservabilityAnalyticsEngineLogsC1CC6C67",
        "AnalyticsEngineObservabilityEnvoyLogs4F001FA2",
        "ApiGatewayObservabilityApiGatewayLogs423C6A53",
        "ApiGatewayObservabilityEnvoyLogs6B9CFD48",
        "EdgeWebAclLogs9AEEB6B6",
        "PlatformMeshCertificatesIssuerLogs7AAC547A",
    },
    "AWS::S3::Bucket": {"EdgeAccessLogsC159D9EF"},
    "AWS::ECR::Repository": {
        "DataIngestionRepository4E81E91C",
        "AnalyticsEngineRepositoryC9C3E067",
        "ApiGatewayRepositoryF005946B",
    },
    "AWS::SecretsManager::Secret": {
        "MarketDataDbSecret99996237",
        "DataIngestionDbUserCredentialsSecret278FBD63",
        "AnalyticsEngineDbUserCredentialsSecret1D24CC55",
        "MarketDataApiKeySecret6E5373BA",
        "PlatformMeshCertificatesCaCertificateE0B67466",
        "PlatformMeshCertificatesDataIngestionCertificate4B06426A",
        "PlatformMeshCertificatesAnalyticsEngineCertificate46149DE8",
        "PlatformMeshCertificatesApiGatewayCertificate10BF0A77",
    },
    "AWS::Backup::BackupVault": {"BackupVault3A9C5852"},
}
# The database is kept as a final snapshot rather than retained running.
SNAPSHOT_LOGICAL_IDS = {"AWS::RDS::DBCluster": {"MarketDataDbADD63A1D"}}


def _all_templates(*apps: SynthesizedApp) -> list[tuple[str, dict[str, Any]]]:
    return [(name, body) for app in apps for name, body in sorted(app.templates.items())]


@pytest.fixture(scope="session")
def every_template(
    example: SynthesizedApp,
    service_connect: SynthesizedApp,
    mutual_tls: SynthesizedApp,
    cluster_stacks: ClusterStacks,
) -> list[tuple[str, dict[str, Any]]]:
    return (
        _all_templates(example, cluster_stacks.app)
        + [(f"service-connect/{name}", body) for name, body in service_connect.templates.items()]
        + [(f"mutual-tls/{name}", body) for name, body in mutual_tls.templates.items()]
    )


def test_cfn_lint_finds_nothing_in_any_template(
    every_template: list[tuple[str, dict[str, Any]]],
) -> None:
    # GIVEN every template the tests synthesized  WHEN cfn-lint reads it (errors and warnings)
    findings = {
        name: [
            str(match)
            for match in lint(json.dumps(body), regions=["us-east-1"])
            if match.rule.id not in DELIBERATE.get(name, set())
        ]
        for name, body in every_template
    }
    # THEN there is not one finding
    assert findings == {name: [] for name, _ in every_template}


def test_cdk_nag_packs_report_no_unacknowledged_finding(example: SynthesizedApp) -> None:
    # GIVEN the example synthesized with AwsSolutions, NIST 800-53 R5 and PCI DSS 3.2.1
    assert example.validation_report is not None, "the nag packs did not run"
    # THEN no pack reports a violation of any severity, and synthesis went through; the one
    # finding left is the App Mesh end-of-support warning, which is there on purpose
    violations = [
        f"{v['ruleName']} at {c['constructPath']}"
        for report in example.validation_report["pluginReports"]
        for v in report.get("violations", [])
        for c in v["violatingConstructs"]
    ]
    assert violations == [
        "Annotation::trading-constructs:app-mesh-end-of-support at TradingPlatform/Platform/Mesh",
        "Annotation::trading-constructs:edge-without-https at TradingPlatform/Edge",
    ]
    assert example.synth_error is None


def test_the_service_connect_platform_has_no_finding_at_all(
    service_connect: SynthesizedApp,
) -> None:
    # GIVEN the example on Service Connect with a certificate  THEN not even a warning is left
    assert service_connect.validation_report is None or not any(
        report.get("violations") for report in service_connect.validation_report["pluginReports"]
    )
    assert service_connect.synth_error is None


def test_the_mutual_tls_example_leaves_only_the_http_warning(mutual_tls: SynthesizedApp) -> None:
    # GIVEN `cdk synth` with no context: the Envoy mutual-TLS mesh, no certificate
    assert mutual_tls.validation_report is not None, "the nag packs did not run"
    violations = [
        f"{v['ruleName']} at {c['constructPath']}"
        for report in mutual_tls.validation_report["pluginReports"]
        for v in report.get("violations", [])
        for c in v["violatingConstructs"]
    ]
    # THEN every pack passes; the one finding is the edge's plain-HTTP warning
    assert violations == [
        "Annotation::trading-constructs:edge-without-https at TradingPlatform/Edge"
    ]
    assert mutual_tls.synth_error is None


def test_the_packs_do_catch_a_finding(tmp_path: Path) -> None:
    # GIVEN the example's compliance checks on an app with a bare S3 bucket (a negative control)
    app = App(outdir=str(tmp_path))
    s3.Bucket(Stack(app, "Bare"), "Bucket")
    add_compliance_checks(app)
    # WHEN synthesized  THEN every pack reports it and synthesis stops; the deploy-readiness
    # rules ran too, and find nothing wrong with a bucket that deploys
    result = synthesize(app)
    assert result.synth_error is not None
    assert result.validation_report is not None
    conclusions = {
        r["pluginName"]: r["conclusion"] for r in result.validation_report["pluginReports"]
    }
    assert conclusions == {
        "AwsSolutions": "failure",
        "NIST.800.53.R5": "failure",
        "PCI.DSS.321": "failure",
        "DeployReadiness": "success",
    }


def test_every_acknowledgement_is_listed_with_a_reason(example: SynthesizedApp) -> None:
    found: dict[str, list[str]] = {}
    for construct in example.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            # aws-cdk-lib acknowledges some CloudFormation-Validate rules itself; ours are nag's
            rules = {k: v for k, v in entry.data.items() if k.startswith(NAG_PACKS)}
            if not rules:
                continue
            for rule_id, reason in rules.items():
                assert len(reason) > 40, f"{rule_id} at {construct.node.path} needs a real reason"
            found.setdefault(construct.node.path, []).extend(rules)
    assert {k: sorted(v) for k, v in found.items()} == {
        k: sorted(v) for k, v in EXPECTED_ACKNOWLEDGEMENTS.items()
    }


def test_stateful_logical_ids_do_not_change(example: SynthesizedApp) -> None:
    resources = example.templates["TradingPlatform"]["Resources"]
    for kind, expected in (STATEFUL_LOGICAL_IDS | SNAPSHOT_LOGICAL_IDS).items():
        actual = {logical_id for logical_id, r in resources.items() if r["Type"] == kind}
        assert actual == expected, f"{kind}: a changed logical ID would replace stored data"


# Kept even by a failed first create: the load balancer fills it at once, and CloudFormation
# cannot delete a bucket holding objects; its name is generated, so a retry never meets it.
KEPT_ALWAYS = {"EdgeAccessLogsC159D9EF"}


def test_stateful_resources_are_retained(example: SynthesizedApp) -> None:
    # kept once created, but removed by a failed first create, so a retry starts clean
    resources = example.templates["TradingPlatform"]["Resources"]
    for kind in STATEFUL_LOGICAL_IDS:
        for logical_id, resource in resources.items():
            if resource["Type"] == kind:
                expected = "Retain" if logical_id in KEPT_ALWAYS else "RetainExceptOnCreate"
                assert resource.get("DeletionPolicy") == expected, logical_id
                assert logical_id not in KEPT_ALWAYS or "BucketName" not in resource.get(
                    "Properties", {}
                )
                assert resource.get("UpdateReplacePolicy") == "Retain", logical_id
    for kind, ids in SNAPSHOT_LOGICAL_IDS.items():
        for logical_id in ids:
            assert resources[logical_id]["Type"] == kind
            assert resources[logical_id]["DeletionPolicy"] == "Snapshot", logical_id
