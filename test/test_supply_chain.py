"""The supply chain: scanned private repositories, images that reach them, rotated secrets,
the market-data database and the network paths and alarms they need."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template
from conftest import CDK_CONTEXT, ENV, SynthesizedApp, synthesize
from construct_support import platform_key, resources_of

from examples.trading_platform.app import create_app
from trading_constructs import RotatingDbSecret, ScannedRepository

REPOSITORIES = ("DataIngestion", "AnalyticsEngine", "ApiGateway")


@pytest.fixture(scope="session")
def ci_images(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The example as a user whose own CI pushes images, without registry scanning."""
    context = CDK_CONTEXT | {
        "image_tag": "release-2026.11.24",
        "registry_scanning": "false",
        "deletion_protection": "false",
    }
    outdir = tmp_path_factory.mktemp("ci-images")
    return synthesize(create_app(context=context, outdir=str(outdir)))


@pytest.fixture(scope="session")
def grants(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """What grant_read and grant_pull/grant_push hand a role, on their own."""
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("grants")))
    stack = Stack(app, "Grants", env=ENV)
    key = platform_key(stack)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, restrict_default_security_group=False)
    secret = RotatingDbSecret(stack, "Db", key=key, vpc=vpc)
    repository = ScannedRepository(stack, "Repo", key=key)
    reader = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    pusher = iam.Role(stack, "Pusher", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    secret.grant_read(reader)
    repository.grant_pull(reader)
    repository.grant_push(pusher)
    return Template.from_stack(stack)


def test_each_service_has_a_scanned_immutable_encrypted_retained_repository(
    example_template: Template,
) -> None:
    repositories = resources_of(example_template, "AWS::ECR::Repository")
    assert sorted(repositories) == sorted(
        logical_id
        for logical_id in repositories
        if any(logical_id.startswith(name) for name in REPOSITORIES)
    )
    assert len(repositories) == 3
    for repository in repositories.values():
        properties = repository["Properties"]
        assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
        # immutable, except the content-addressed tags a deployment copies (cdk-<hash>)
        assert properties["ImageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
        assert properties["ImageTagMutabilityExclusionFilters"] == [
            {
                "ImageTagMutabilityExclusionFilterType": "WILDCARD",
                "ImageTagMutabilityExclusionFilterValue": "cdk-*",
            }
        ]
        assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS"
        assert properties["EncryptionConfiguration"]["KmsKey"]["Fn::GetAtt"][0].startswith(
            "PlatformKey"
        )
        # kept once created; a failed first create removes it, so a retry can make it again
        assert repository["DeletionPolicy"] == "RetainExceptOnCreate"
        assert repository["UpdateReplacePolicy"] == "Retain"
        # with the images the deployment copied in already, so a stack deletion completes
        assert properties["EmptyOnDelete"] is True


def test_lifecycle_keeps_only_the_last_10_images(example_template: Template) -> None:
    for repository in resources_of(example_template, "AWS::ECR::Repository").values():
        policy = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
        (rule,) = policy["rules"]
        assert rule["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": 10,
        }
        assert rule["action"] == {"type": "expire"}


def test_public_images_come_through_a_pull_through_cache(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::ECR::PullThroughCacheRule",
        {
            "EcrRepositoryPrefix": "ecr-public",
            "UpstreamRegistry": "ecr-public",
            "UpstreamRegistryUrl": "public.ecr.aws",
        },
    )
    templates = resources_of(example_template, "AWS::ECR::RepositoryCreationTemplate")
    (template,) = templates.values()
    properties = template["Properties"]
    assert properties["Prefix"] == "ecr-public"
    assert properties["AppliedFor"] == ["PULL_THROUGH_CACHE"]
    assert properties["ImageTagMutability"] == "IMMUTABLE"
    assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS"
    assert "CustomRoleArn" in properties  # ECR needs our role to use a customer key
    rules = json.loads(properties["LifecyclePolicy"])["rules"]
    assert rules[0]["selection"]["countNumber"] == 10


def test_the_creation_role_may_only_create_cached_repositories(
    example_template: Template,
) -> None:
    policies = resources_of(example_template, "AWS::IAM::ManagedPolicy")
    prefix = "PlatformPublicImagesCreationPolicy"
    (creation,) = (p for k, p in policies.items() if k.startswith(prefix))
    statements = creation["Properties"]["PolicyDocument"]["Statement"]
    ecr_statement = next(s for s in statements if "ecr:CreateRepository" in s["Action"])
    resource = json.dumps(ecr_statement["Resource"])
    assert "repository/ecr-public/*" in resource


def test_registry_scanning_scans_every_push(example_template: Template) -> None:
    example_template.has_resource_properties(
        "AWS::ECR::RegistryScanningConfiguration",
        {
            "ScanType": "BASIC",
            "Rules": [
                {
                    "ScanFrequency": "SCAN_ON_PUSH",
                    "RepositoryFilters": [{"Filter": "*", "FilterType": "WILDCARD"}],
                }
            ],
        },
    )


def test_images_are_built_from_this_repo_and_copied_into_the_scanned_repositories(
    example: SynthesizedApp, example_template: Template
) -> None:
    copies = resources_of(example_template, "Custom::CDKECRDeployment")
    assert len(copies) == 3
    for name in REPOSITORIES:
        (copy,) = (c for k, c in copies.items() if k.startswith(name))
        destination = json.dumps(copy["Properties"]["DestImage"])
        assert f"{name}Repository" in destination
    # GIVEN the three Docker image assets  THEN each hashes only its own service folder
    assets = json.loads((example.outdir / "TradingPlatform.assets.json").read_text())
    images = assets["dockerImages"]
    assert len(images) == 3
    dockerfiles = sorted(image["source"]["dockerFile"] for image in images.values())
    assert dockerfiles == [
        "analytics_engine/Dockerfile",
        "api_gateway/Dockerfile",
        "data_ingestion/Dockerfile",
    ]


def test_the_copy_function_is_held_to_the_platform_rules(example_template: Template) -> None:
    functions = resources_of(example_template, "AWS::Lambda::Function")
    (copier,) = (f for k, f in functions.items() if k.startswith("CustomCDKECRDeployment"))
    assert "ReservedConcurrentExecutions" not in copier["Properties"]
    assert "VpcConfig" in copier["Properties"]
    # it logs to a group of ours (generated name, encrypted, a year), named in its policy,
    # and is created only after that policy exists
    log_groups = resources_of(example_template, "AWS::Logs::LogGroup")
    assert not any(k.startswith("CustomCDKECRDeployment") for k in log_groups)
    copier_logs_id = copier["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert copier_logs_id.startswith("ImageCopyLogs")
    copier_logs = log_groups[copier_logs_id]
    assert copier_logs["Properties"]["RetentionInDays"] == 365
    assert "KmsKeyId" in copier_logs["Properties"]
    assert "LogGroupName" not in copier_logs["Properties"]
    assert any(d.startswith("ImageCopyPolicy") for d in copier["DependsOn"])
    # the library's ecr:* and s3:GetObject on "*" are replaced by named repositories
    policies = resources_of(example_template, "AWS::IAM::ManagedPolicy")
    (copy_policy,) = (p for k, p in policies.items() if k.startswith("ImageCopyPolicy"))
    for statement in copy_policy["Properties"]["PolicyDocument"]["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert not any(action.endswith("*") for action in actions)
        if statement["Resource"] == "*":
            assert all(a == "ecr:GetAuthorizationToken" or a.startswith("ec2:") for a in actions), (
                actions
            )


def test_a_users_ci_images_skip_the_build_and_copy(ci_images: SynthesizedApp) -> None:
    template = ci_images.template("TradingPlatform")
    template.resource_count_is("Custom::CDKECRDeployment", 0)
    template.resource_count_is("AWS::ECR::Repository", 3)
    template.resource_count_is("AWS::ECR::RegistryScanningConfiguration", 0)
    template.has_resource_properties("AWS::RDS::DBCluster", {"DeletionProtection": False})
    assets = json.loads((ci_images.outdir / "TradingPlatform.assets.json").read_text())
    assert assets.get("dockerImages", {}) == {}
    stack = ci_images.app.node.find_child("TradingPlatform")
    assert {image.tag for image in stack.images.values()} == {"release-2026.11.24"}  # type: ignore[attr-defined]


def test_database_secret_holds_endpoint_and_credentials_under_the_platform_key(
    example_template: Template,
) -> None:
    secrets = resources_of(example_template, "AWS::SecretsManager::Secret")
    (db_secret,) = (s for k, s in secrets.items() if k.startswith("MarketDataDbSecret"))
    generator = db_secret["Properties"]["GenerateSecretString"]
    assert json.loads(generator["SecretStringTemplate"]) == {
        "dbname": "marketdata",
        "engine": "postgres",
        "port": 5433,
        "username": "trading_admin",
    }
    assert generator["GenerateStringKey"] == "password"
    assert db_secret["Properties"]["KmsKeyId"]["Fn::GetAtt"][0].startswith("PlatformKey")
    # host and port come from the cluster the secret is attached to
    example_template.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {
            "TargetType": "AWS::RDS::DBCluster",
            "TargetId": {"Ref": Match.string_like_regexp("MarketDataDb")},
        },
    )


def test_every_secret_rotates_every_90_days(example_template: Template) -> None:
    # the database's master secret, each database user's, and the feed's API key
    schedules = resources_of(example_template, "AWS::SecretsManager::RotationSchedule")
    assert len(schedules) == 4
    for schedule in schedules.values():
        assert schedule["Properties"]["RotationRules"] == {"ScheduleExpression": "rate(90 days)"}


def _function(template: Template, prefix: str) -> dict[str, Any]:
    functions = resources_of(template, "AWS::Lambda::Function")
    (found,) = ((k, f) for k, f in functions.items() if k.startswith(f"{prefix}RotationFunction"))
    return {"LogicalId": found[0], **found[1]}


def _asset_files(app: SynthesizedApp, function: dict[str, Any]) -> list[str]:
    asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    folder = app.outdir / f"asset.{asset_hash}"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_database_rotation_runs_the_packaged_function_in_the_private_subnets(
    example_template: Template,
) -> None:
    # GIVEN the market-data database secret
    schedules = resources_of(example_template, "AWS::SecretsManager::RotationSchedule")
    (db,) = (s for k, s in schedules.items() if k.startswith("MarketDataDbSecret"))
    function = _function(example_template, "MarketDataDbSecret")
    # THEN it is rotated by the function shipped in this package, not AWS's hosted python3.10
    assert "HostedRotationLambda" not in db["Properties"]
    assert db["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": [function["LogicalId"], "Arn"]}
    assert "Transform" not in example_template.to_json()
    properties = function["Properties"]
    assert properties["Handler"] == "postgres.handler"
    assert properties["Runtime"] == "python3.14"
    assert properties["Environment"]["Variables"]["ROTATION_STRATEGY"] == "single-user"
    # AND it runs in the private subnets, with a dead-letter queue and no reserved concurrency
    subnets = json.dumps(properties["VpcConfig"]["SubnetIds"])
    assert subnets.count("PrivateSubnet") == 3 and "Isolated" not in subnets
    assert "TargetArn" in properties["DeadLetterConfig"]
    assert "ReservedConcurrentExecutions" not in properties
    # AND it is created after its managed policy (a VPC function's CreateFunction checks
    # ec2:CreateNetworkInterface on the role at once)
    assert any(d.startswith("MarketDataDbSecretRotationPolicy") for d in function["DependsOn"])
    # AND it logs to its own encrypted group, without a fixed name
    log_group = properties["LoggingConfig"]["LogGroup"]["Ref"]
    group = example_template.to_json()["Resources"][log_group]
    assert "LogGroupName" not in group["Properties"]
    assert group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0].startswith("PlatformKey")
    assert group["DeletionPolicy"] == "RetainExceptOnCreate"
    # AND rotation starts only after the endpoint is in the secret and the database is up
    assert any(d.startswith("MarketDataDbSecretAttachment") for d in db["DependsOn"])
    assert any(d.startswith("MarketDataDbWriter") for d in db["DependsOn"])
    assert any(d.startswith("MarketDataDbSecretRotationFunctionInvoke") for d in db["DependsOn"])


def test_database_rotation_asset_bundles_the_driver_without_byte_code(
    example: SynthesizedApp, example_template: Template
) -> None:
    files = _asset_files(example, _function(example_template, "MarketDataDbSecret"))
    assert {"postgres.py", "jsonlog.py", "secret_rotation.py"} <= set(files)
    for module in ("pg8000/native.py", "scramp/core.py", "asn1crypto/core.py", "six.py"):
        assert module in files
    assert "dateutil/parser/_parser.py" in files
    # the Amazon RDS root CAs the handler verifies TLS against, at the root of /var/task
    assert "rds-ca-bundle.pem" in files
    function = _function(example_template, "MarketDataDbSecret")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DB_CA_FILE"] == "/var/task/rds-ca-bundle.pem"
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".pyo"))]
    assert not [f for f in files if f.startswith(("trading_constructs/", "api_key"))]


def _rotation_statements(template: Template, policy: str) -> dict[str, dict[str, Any]]:
    """The statements of a rotation function's managed policy, by Sid: each names what it
    allows the function to do."""
    (found,) = (
        p
        for k, p in resources_of(template, "AWS::IAM::ManagedPolicy").items()
        if k.startswith(policy)
    )
    return {s["Sid"]: s for s in found["Properties"]["PolicyDocument"]["Statement"]}


def test_database_rotation_policy_is_its_secret_key_logs_and_network(
    example_template: Template,
) -> None:
    statements = _rotation_statements(example_template, "MarketDataDbSecretRotationPolicy")
    assert sorted(statements) == [
        "AttachToTheVpc",
        "DeadLetters",
        "GenerateKeys",
        "RotateThisSecret",
        "UseThePlatformKey",
        "WriteOwnLogs",
    ]
    assert statements["RotateThisSecret"]["Resource"]["Ref"].startswith("MarketDataDbSecret")
    assert statements["UseThePlatformKey"]["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                "secretsmanager.us-east-1.amazonaws.com",
                "sqs.us-east-1.amazonaws.com",
            ]
        }
    }
    assert statements["WriteOwnLogs"]["Resource"]["Fn::GetAtt"][0].startswith(
        "MarketDataDbSecretRotationLogs"
    )
    wildcard = [sid for sid, s in statements.items() if s["Resource"] == "*"]
    assert sorted(wildcard) == ["AttachToTheVpc", "GenerateKeys"]


@pytest.fixture(scope="session")
def rotation_twice(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Two synthesized apps with the database secret, each building its assets in its own
    temporary directory, as two machines would."""
    import tempfile

    templates = []
    for run in ("first", "second"):
        app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp(f"synth-{run}")))
        stack = Stack(app, "Rotation", env=ENV)
        key = kms.Key(stack, "Key", enable_key_rotation=True)
        vpc = ec2.Vpc(stack, "Vpc", max_azs=2, restrict_default_security_group=False)
        saved = tempfile.tempdir
        tempfile.tempdir = str(tmp_path_factory.mktemp(f"machine-{run}"))
        try:
            RotatingDbSecret(stack, "Db", key=key, vpc=vpc, host="db.example.com")
        finally:
            tempfile.tempdir = saved
        templates.append(Template.from_stack(stack).to_json())
    return templates


def test_database_rotation_asset_hash_is_stable_across_synths(
    rotation_twice: list[dict[str, Any]], example_template: Template
) -> None:
    keys = [
        _function(Template.from_json(t), "Db")["Properties"]["Code"]["S3Key"]
        for t in rotation_twice
    ]
    example_key = _function(example_template, "MarketDataDbSecret")["Properties"]["Code"]["S3Key"]
    assert keys[0] == keys[1] == example_key


def test_the_database_admits_the_rotation_function_on_its_port(
    example_template: Template,
) -> None:
    example_template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 5433,
            "ToPort": 5433,
            "SourceSecurityGroupId": {
                "Fn::GetAtt": [
                    Match.string_like_regexp("MarketDataDbSecretRotationSecurityGroup"),
                    "GroupId",
                ]
            },
        },
    )
    example_template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("Rotation function of marketdata"),
            "SecurityGroupEgress": Match.array_with(
                [Match.object_like({"FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"})]
            ),
        },
    )


def test_secrets_manager_is_reached_through_nat_not_paid_endpoints(
    example_template: Template,
) -> None:
    # GIVEN the example, whose private subnets each have a NAT gateway (an endpoint would be a
    # cost that buys little)  THEN it pays for no interface endpoint ($21.90 a month for Secrets
    # Manager alone)
    example_template.resource_count_is("AWS::EC2::VPCEndpoint", 0)
    # and the rotation functions reach the API over HTTPS through their subnet's NAT route
    example_template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": Match.string_like_regexp("Rotation function of marketdata"),
            "SecurityGroupEgress": Match.array_with(
                [Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443})]
            ),
        },
    )
    routes = resources_of(example_template, "AWS::EC2::Route")
    assert sum("NatGatewayId" in r["Properties"] for r in routes.values()) == 3


def test_api_key_rotates_with_the_packaged_function(
    example: SynthesizedApp, example_template: Template
) -> None:
    functions = resources_of(example_template, "AWS::Lambda::Function")
    (rotation,) = (f for k, f in functions.items() if k.startswith("MarketDataApiKeyRotation"))
    properties = rotation["Properties"]
    assert properties["Handler"] == "api_key.handler"
    assert properties["Runtime"] == "python3.14"
    assert "ReservedConcurrentExecutions" not in properties  # opt-in: reserved_concurrency
    assert "TargetArn" in properties["DeadLetterConfig"]
    assert "VpcConfig" in properties
    # the asset is the handler and its copies of the shared logger and rotation protocol:
    # standard library and boto3, no CDK
    asset_hash = properties["Code"]["S3Key"].removesuffix(".zip")
    files = sorted(p.name for p in (example.outdir / f"asset.{asset_hash}").iterdir())
    assert files == ["api_key.py", "jsonlog.py", "secret_rotation.py"]


def test_api_key_rotation_policy_names_its_secret_key_and_log_group(
    example_template: Template,
) -> None:
    statements = _rotation_statements(example_template, "MarketDataApiKeyRotationPolicy")
    assert statements["RotateThisSecret"]["Resource"]["Ref"].startswith("MarketDataApiKeySecret")
    assert sorted(statements["RotateThisSecret"]["Action"]) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    ]
    assert statements["GenerateKeys"]["Action"] == "secretsmanager:GetRandomPassword"
    assert statements["UseThePlatformKey"]["Resource"]["Fn::GetAtt"][0].startswith("PlatformKey")
    wildcard = [sid for sid, s in statements.items() if s["Resource"] == "*"]
    assert sorted(wildcard) == ["AttachToTheVpc", "GenerateKeys"]


def test_market_data_database(example_template: Template) -> None:
    example_template.has_resource(
        "AWS::RDS::DBCluster",
        {
            "Properties": Match.object_like(
                {
                    "Engine": "aurora-postgresql",
                    "StorageEncrypted": True,
                    # off until a first create succeeded (-c deletion_protection=true after)
                    "DeletionProtection": False,
                    "Port": 5433,
                    "EnableIAMDatabaseAuthentication": True,
                    "EnableCloudwatchLogsExports": ["postgresql"],
                    "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 8},
                }
            ),
            "DeletionPolicy": "Snapshot",
        },
    )
    example_template.resource_count_is("AWS::RDS::DBInstance", 2)
    example_template.has_resource_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless", "MonitoringInterval": 60}
    )
    subnet_groups = resources_of(example_template, "AWS::RDS::DBSubnetGroup")
    (group,) = subnet_groups.values()
    assert all("Isolated" in ref["Ref"] for ref in group["Properties"]["SubnetIds"])
    example_template.has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup",
        {"Parameters": Match.object_like({"rds.force_ssl": "1"})},
    )
    example_template.has_resource_properties(
        "AWS::Backup::BackupPlan",
        {
            "BackupPlan": Match.object_like(
                {
                    "BackupPlanRule": Match.array_with(
                        [Match.object_like({"Lifecycle": {"DeleteAfterDays": 35}})]
                    )
                }
            )
        },
    )


def test_grant_read_is_exactly_the_secret_and_its_key(grants: Template) -> None:
    policies = grants.find_resources("AWS::IAM::Policy")
    (reader,) = (p for k, p in policies.items() if k.startswith("Reader"))
    statements = reader["Properties"]["PolicyDocument"]["Statement"]
    secret_statement = next(s for s in statements if "secretsmanager:GetSecretValue" in s["Action"])
    assert sorted(secret_statement["Action"]) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]
    assert secret_statement["Resource"]["Ref"].startswith("DbSecret")
    # the key's policy lets this role decrypt, and only through Secrets Manager
    (key,) = grants.find_resources("AWS::KMS::Key").values()
    decrypt = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"].get("AWS", {}).get("Fn::GetAtt", [""])[0].startswith("Reader")
    ]
    assert decrypt == [
        {
            "Action": "kms:Decrypt",
            "Condition": {
                "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
            },
            "Effect": "Allow",
            "Principal": {
                "AWS": {"Fn::GetAtt": [decrypt[0]["Principal"]["AWS"]["Fn::GetAtt"][0], "Arn"]}
            },
            "Resource": "*",
        }
    ]
    pull = next(s for s in statements if "ecr:BatchGetImage" in s["Action"])
    assert pull["Resource"]["Fn::GetAtt"][0].startswith("Repo")
    assert not any(
        (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        != ["ecr:GetAuthorizationToken"]
        and s["Resource"] == "*"
        for s in statements
    )


def test_grant_push_is_this_repository_only(grants: Template) -> None:
    policies = grants.find_resources("AWS::IAM::Policy")
    (pusher,) = (p for k, p in policies.items() if k.startswith("Pusher"))
    statements = pusher["Properties"]["PolicyDocument"]["Statement"]
    push = next(s for s in statements if "ecr:PutImage" in s["Action"])
    assert push["Resource"]["Fn::GetAtt"][0].startswith("Repo")


def test_cached_public_image_uri(example: SynthesizedApp) -> None:
    stack = example.app.node.find_child("TradingPlatform")
    cache = stack.platform.public_images  # type: ignore[attr-defined]
    uri = Stack.of(cache).resolve(cache.image_uri("appmesh/aws-appmesh-envoy:v1.29.12.0-prod"))
    rendered = json.dumps(uri)
    assert "ecr-public/appmesh/aws-appmesh-envoy:v1.29.12.0-prod" in rendered


def test_service_connect_creates_no_pull_through_cache(service_connect: SynthesizedApp) -> None:
    # one rule per prefix per account: only a mesh with sidecar images of ours creates it
    template = service_connect.template("TradingPlatform")
    template.resource_count_is("AWS::ECR::PullThroughCacheRule", 0)
    template.resource_count_is("AWS::ECR::RepositoryCreationTemplate", 0)


def test_the_services_that_store_ticks_reach_the_database(
    service_connect: SynthesizedApp,
) -> None:
    # GIVEN the example as it deploys by default
    template = service_connect.template("TradingPlatform")
    resources = service_connect.templates["TradingPlatform"]["Resources"]
    (db_id,) = resources_of(template, "AWS::RDS::DBCluster")
    secrets = resources_of(template, "AWS::SecretsManager::Secret")
    ingress = resources_of(template, "AWS::EC2::SecurityGroupIngress")
    for prefix in ("DataIngestion", "AnalyticsEngine"):
        # THEN its security group may reach the database port, and nothing else may but rotation
        assert any(
            rule["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0].startswith(
                f"{prefix}SecurityGroup"
            )
            and rule["Properties"]["FromPort"] == 5433
            and rule["Properties"]["GroupId"]["Fn::GetAtt"][0].startswith("MarketDataDbSecurity")
            for rule in ingress.values()
        ), prefix
        # AND its containers read its own database user's rotating secret at run time, through
        # its task policy
        (secret_id,) = (k for k in secrets if k.startswith(f"{prefix}DbUserCredentialsSecret"))
        (definition,) = (r for k, r in resources.items() if k.startswith(f"{prefix}TaskDefinition"))
        app = definition["Properties"]["ContainerDefinitions"][0]
        environment = {e["Name"]: e["Value"] for e in app["Environment"]}
        assert environment["DB_SECRET_ARN"] == {"Ref": secret_id}
        assert environment["DB_CA_FILE"] == "/app/certs/rds-global-bundle.pem"
        policy = next(r for k, r in resources.items() if k.startswith(f"{prefix}TaskPolicy"))
        reads = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Action"] == "secretsmanager:GetSecretValue"
        ]
        assert reads == [
            {
                "Action": "secretsmanager:GetSecretValue",
                "Effect": "Allow",
                "Resource": {"Ref": secret_id},
            }
        ]
        # AND its ECS service starts only once the database is up and the policy exists
        (service,) = (
            r
            for k, r in resources.items()
            if k.startswith(prefix) and r["Type"] == "AWS::ECS::Service"
        )
        assert db_id in service["DependsOn"]
        assert any(d.startswith("MarketDataDbSecretAttachment") for d in service["DependsOn"])
        assert any(d.startswith(f"{prefix}TaskPolicy") for d in service["DependsOn"])
    # AND the engine reads ticks from the reader endpoint
    (engine,) = (r for k, r in resources.items() if k.startswith("AnalyticsEngineTaskDefinition"))
    names = {e["Name"] for e in engine["Properties"]["ContainerDefinitions"][0]["Environment"]}
    assert "DB_READ_HOST" in names


def test_a_failing_database_rotation_notifies_the_platform_topic(
    example_template: Template,
) -> None:
    # GIVEN the example's database secret, given the platform's alarms
    topic = next(iter(resources_of(example_template, "AWS::SNS::Topic")))
    alarms = resources_of(example_template, "AWS::CloudWatch::Alarm")
    (errors,) = (a for k, a in alarms.items() if k.startswith("MarketDataDbSecretRotationErrors"))
    assert errors["Properties"]["MetricName"] == "Errors"
    assert errors["Properties"]["AlarmActions"] == [{"Ref": topic}]
    rules = resources_of(example_template, "AWS::Events::Rule")
    (rule,) = (r for k, r in rules.items() if k.startswith("MarketDataDbSecretRotationFailed"))
    assert rule["Properties"]["EventPattern"]["detail"]["eventName"] == ["RotationFailed"]
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": topic}
