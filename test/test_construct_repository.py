"""ScannedRepository, PullThroughCache and RegistryScanning on stacks of their own: one app,
synthesized once for the module (the example's repositories are tested in
test_supply_chain.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, CfnElement, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from conftest import CDK_CONTEXT, ENV, synthesize
from construct_support import (
    of_type,
    platform_key,
    readiness_violations,
    resolved_statement,
    statements,
)

from trading_constructs import (
    PullThroughCache,
    RegistryScanning,
    ScannedRepository,
    ScanType,
    ServiceImage,
)

ENVOY = "appmesh/aws-appmesh-envoy"
PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


@dataclass(frozen=True)
class Registry:
    stack: Stack
    key: kms.Key
    repo: ScannedRepository
    """every default"""
    named: ScannedRepository
    """a name, 5 images, content-addressed 'cdk-' tags, RemovalPolicy.DESTROY"""
    kept: ScannedRepository
    """RemovalPolicy.RETAIN: never deleted by CloudFormation"""
    cache: PullThroughCache
    """every default; ``puller`` may pull Envoy through it"""
    mirror: PullThroughCache
    """prefix 'mirror/public', 3 images"""
    puller: iam.Role
    templates: dict[str, dict[str, Any]]

    @property
    def template(self) -> dict[str, Any]:
        return self.templates["Registry"]

    def id(self, construct: Any) -> str:
        element = construct if isinstance(construct, CfnElement) else construct.node.default_child
        return self.stack.get_logical_id(element)

    def resource(self, construct: Any) -> dict[str, Any]:
        resource: dict[str, Any] = self.template["Resources"][self.id(construct)]
        return resource


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    app = App(context=CDK_CONTEXT, outdir=str(tmp_path_factory.mktemp("construct-registry")))
    stack = Stack(app, "Registry", env=ENV)
    key = platform_key(stack)
    repo = ScannedRepository(stack, "Repo", key=key)
    named = ScannedRepository(
        stack,
        "Named",
        key=key,
        repository_name="trading/quotes",
        keep_last_images=5,
        content_addressed_tag_prefix="cdk-",
        removal_policy=RemovalPolicy.DESTROY,
    )
    # plain RETAIN, in a stack of its own: the readiness rules refuse it for a reason of theirs
    kept = ScannedRepository(
        Stack(app, "Kept", env=ENV), "Kept", key=key, removal_policy=RemovalPolicy.RETAIN
    )
    cache = PullThroughCache(stack, "Cache", key=key)
    mirror = PullThroughCache(stack, "Mirror", key=key, prefix="mirror/public", keep_last_images=3)
    puller = iam.Role(stack, "Puller", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    cache.grant_pull(puller, ENVOY)
    # One scanning configuration per account and region: each in a stack of its own
    RegistryScanning(Stack(app, "BasicScanning", env=ENV), "Scanning")
    RegistryScanning(
        Stack(app, "EnhancedScanning", env=ENV),
        "Scanning",
        scan_type=ScanType.ENHANCED,
        repository_filter="trading/*",
    )
    synthesized = synthesize(app)
    assert synthesized.synth_error is None, synthesized.synth_error
    return Registry(stack, key, repo, named, kept, cache, mirror, puller, synthesized.templates)


def _key_arn(registry: Registry) -> dict[str, Any]:
    return {"Fn::GetAtt": [registry.id(registry.key), "Arn"]}


def _in_account(resource: str) -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:aws:ecr:us-east-1:", {"Ref": "AWS::AccountId"}, resource]]}


def _keep_last(count: int) -> dict[str, Any]:
    return {
        "rules": [
            {
                "action": {"type": "expire"},
                "description": f"Keep only the last {count} images",
                "rulePriority": 1,
                "selection": {
                    "countNumber": count,
                    "countType": "imageCountMoreThan",
                    "tagStatus": "any",
                },
            }
        ]
    }


# -- ScannedRepository --------------------------------------------------------------------------


def test_a_repository_scans_on_push_keeps_the_last_10_images_and_never_moves_a_tag(
    registry: Registry,
) -> None:
    properties = dict(registry.resource(registry.repo.repository)["Properties"])
    lifecycle = json.loads(properties.pop("LifecyclePolicy")["LifecyclePolicyText"])
    assert lifecycle == _keep_last(10)
    assert properties == {
        "EncryptionConfiguration": {"EncryptionType": "KMS", "KmsKey": _key_arn(registry)},
        "ImageScanningConfiguration": {"ScanOnPush": True},
        "ImageTagMutability": "IMMUTABLE",
        # a failed first create deletes it, maybe after images were copied in
        "EmptyOnDelete": True,
    }


def test_a_failed_first_create_can_delete_a_repository_images_were_copied_into(
    registry: Registry,
) -> None:
    # GIVEN repositories that CloudFormation deletes on a failed first create (the default,
    # RETAIN_ON_UPDATE_OR_DELETE, and DESTROY)  THEN ECR deletes them with their images, so the
    # rollback does not end in ROLLBACK_FAILED on "repository not empty"
    for repository in (registry.repo, registry.named):
        assert registry.resource(repository.repository)["Properties"]["EmptyOnDelete"] is True
    # and one that is never deleted (RETAIN) keeps ECR's default
    kept = next(
        r
        for r in registry.templates["Kept"]["Resources"].values()
        if r["Type"] == "AWS::ECR::Repository"
    )
    assert kept["DeletionPolicy"] == "Retain"
    assert "EmptyOnDelete" not in kept["Properties"]


def test_a_repository_keeps_its_logical_id_and_outlives_the_stack(registry: Registry) -> None:
    # a refactor that moved it in the tree would replace it, and lose every image
    assert registry.id(registry.repo.repository) == "RepoRepository3264A783"
    resource = registry.resource(registry.repo.repository)
    assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_a_named_repository_lets_only_content_addressed_tags_move(registry: Registry) -> None:
    resource = registry.resource(registry.named.repository)
    properties = resource["Properties"]
    assert properties["RepositoryName"] == "trading/quotes"
    assert properties["ImageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert properties["ImageTagMutabilityExclusionFilters"] == [
        {
            "ImageTagMutabilityExclusionFilterType": "WILDCARD",
            "ImageTagMutabilityExclusionFilterValue": "cdk-*",
        }
    ]
    lifecycle = json.loads(properties["LifecyclePolicy"]["LifecyclePolicyText"])
    assert lifecycle == _keep_last(5)
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_pull_statements_name_this_repository_and_nothing_else(registry: Registry) -> None:
    expected = [
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {
            "Action": PULL,
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [registry.id(registry.repo.repository), "Arn"]},
        },
    ]
    assert [resolved_statement(registry.stack, s) for s in registry.repo.pull_statements()] == (
        expected
    )
    image = ServiceImage(repository=registry.repo, tag="v1")
    assert [resolved_statement(registry.stack, s) for s in image.pull_statements()] == expected


# -- PullThroughCache ---------------------------------------------------------------------------


def test_a_cache_rule_maps_its_prefix_to_ecr_public(registry: Registry) -> None:
    rules = {
        registry.resource(cache.rule)["Properties"]["EcrRepositoryPrefix"]: registry.resource(
            cache.rule
        )["Properties"]
        for cache in (registry.cache, registry.mirror)
    }
    assert rules == {
        prefix: {
            "EcrRepositoryPrefix": prefix,
            "UpstreamRegistry": "ecr-public",
            "UpstreamRegistryUrl": "public.ecr.aws",
        }
        for prefix in ("ecr-public", "mirror/public")
    }


@pytest.mark.parametrize(
    ("which", "prefix", "kept"), [("cache", "ecr-public", 10), ("mirror", "mirror/public", 3)]
)
def test_cached_repositories_are_created_immutable_encrypted_and_trimmed(
    registry: Registry, which: str, prefix: str, kept: int
) -> None:
    cache: PullThroughCache = getattr(registry, which)
    resource = registry.resource(cache.template)
    properties = dict(resource["Properties"])
    assert json.loads(properties.pop("LifecyclePolicy")) == _keep_last(kept)
    role_id = properties["CustomRoleArn"]["Fn::GetAtt"][0]
    assert role_id.startswith(f"{which.capitalize()}CreationRole")
    assert properties == {
        "AppliedFor": ["PULL_THROUGH_CACHE"],
        "CustomRoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "Description": "Cached public images: immutable, encrypted, last images only",
        "EncryptionConfiguration": {"EncryptionType": "KMS", "KmsKey": _key_arn(registry)},
        "ImageTagMutability": "IMMUTABLE",
        "Prefix": prefix,
    }
    # ECR assumes the role as soon as the template exists: its policy comes first
    (policy_id,) = resource["DependsOn"]
    assert policy_id.startswith(f"{which.capitalize()}CreationPolicy")


@pytest.mark.parametrize(
    ("which", "prefix"), [("cache", "ecr-public"), ("mirror", "mirror/public")]
)
def test_the_creation_role_is_ecrs_in_this_account_and_creates_only_under_its_prefix(
    registry: Registry, which: str, prefix: str
) -> None:
    name = which.capitalize()
    roles = of_type(registry.template, "AWS::IAM::Role")
    (role_id, role) = next((k, r) for k, r in roles.items() if k.startswith(f"{name}CreationRole"))
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecr.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    policies = of_type(registry.template, "AWS::IAM::ManagedPolicy")
    (policy,) = (p for k, p in policies.items() if k.startswith(f"{name}CreationPolicy"))
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    assert statements(policy) == [
        {
            "Action": ["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:TagResource"],
            "Effect": "Allow",
            "Resource": _in_account(f":repository/{prefix}/*"),
        },
        {
            "Action": ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"],
            "Effect": "Allow",
            "Resource": _key_arn(registry),
        },
    ]


def test_grant_pull_is_one_public_repository_through_the_cache(registry: Registry) -> None:
    (policy,) = (
        p
        for k, p in of_type(registry.template, "AWS::IAM::Policy").items()
        if k.startswith("PullerDefaultPolicy")
    )
    assert statements(policy) == [
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:BatchImportUpstreamImage",
                "ecr:CreateRepository",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Effect": "Allow",
            "Resource": _in_account(f":repository/ecr-public/{ENVOY}"),
        },
    ]


def test_image_uri_is_the_private_copy_under_the_prefix(registry: Registry) -> None:
    uri = registry.stack.resolve(registry.mirror.image_uri(f"{ENVOY}:v1.29.12.1-prod"))
    assert uri == {
        "Fn::Join": [
            "",
            [
                {"Ref": "AWS::AccountId"},
                ".dkr.ecr.us-east-1.",
                {"Ref": "AWS::URLSuffix"},
                f"/mirror/public/{ENVOY}:v1.29.12.1-prod",
            ],
        ]
    }


# -- RegistryScanning ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "repository_filter", "frequency", "scan_type"),
    [
        pytest.param("BasicScanning", "*", "SCAN_ON_PUSH", "BASIC", id="basic-default"),
        pytest.param("EnhancedScanning", "trading/*", "CONTINUOUS_SCAN", "ENHANCED", id="enhanced"),
    ],
)
def test_registry_scanning_is_the_one_configuration_of_its_stack(
    registry: Registry, stack: str, repository_filter: str, frequency: str, scan_type: str
) -> None:
    (resource,) = registry.templates[stack]["Resources"].values()
    assert resource["Type"] == "AWS::ECR::RegistryScanningConfiguration"
    assert resource["Properties"] == {
        "Rules": [
            {
                "RepositoryFilters": [{"Filter": repository_filter, "FilterType": "WILDCARD"}],
                "ScanFrequency": frequency,
            }
        ],
        "ScanType": scan_type,
    }


# -- the deploy-readiness rules, on these stacks ----------------------------------------------


@pytest.mark.parametrize("stack", ["Registry", "BasicScanning", "EnhancedScanning"])
def test_the_registry_stacks_pass_the_deploy_readiness_rules(
    registry: Registry, stack: str
) -> None:
    assert readiness_violations(registry.templates[stack]) == {}
