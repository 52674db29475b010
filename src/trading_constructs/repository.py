"""Private, scanned container registries: the platform's own repositories, the pull-through
cache for public images, and the account's registry scanning (image sources: ``images.py``)."""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from enum import Enum

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ._validation import (
    Problems,
    check_key,
    check_removal_policy,
    check_type,
    claim,
    construct_owner,
    environment_of,
    holder_of,
    is_token,
)
from .compliance import acknowledge_control, acknowledge_wildcard_resource

KEEP_LAST_IMAGES = 10
"""How many images a repository keeps by default: enough to roll back, few enough to scan."""

PUBLIC_CACHE_PREFIX = "ecr-public"
"""The namespace a pull-through cache creates its repositories under by default (the default
of ``PullThroughCache(prefix=...)``, which API.md shows as written)."""

# ECR's repository name grammar (CreateRepository API reference).
_REPOSITORY_NAME = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
_PREFIX = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"


# The removal policies under which CloudFormation deletes a repository a failed first create
# made (and, for DESTROY, with the stack).
_DELETED_ON_FAILED_CREATE = (RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, RemovalPolicy.DESTROY)


def _empty_on_failed_create(repository: ecr.Repository, removal_policy: RemovalPolicy) -> None:
    """A failed first create deletes the repository (RetainExceptOnCreate, or DESTROY), and ECR
    refuses to delete one that holds images, which a deployment's image copy may have pushed
    already: the rollback would end in ROLLBACK_FAILED. Retained once created, it is deleted by
    nothing else. (aws-cdk-lib allows emptyOnDelete only with DESTROY: it is set on the
    resource.)"""
    if removal_policy in _DELETED_ON_FAILED_CREATE:
        resource = repository.node.default_child
        assert isinstance(resource, ecr.CfnRepository)
        resource.empty_on_delete = True


def _keep_last(count: int) -> str:
    """The lifecycle policy text both a repository and a creation template carry."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Keep only the last {count} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": count,
                    },
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


class ScannedRepository(Construct):
    """An ECR repository that scans every pushed image, keeps the last few, never lets a tag
    move, encrypts with the platform key and outlives the stack."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        repository_name: str | None = None,
        keep_last_images: int = KEEP_LAST_IMAGES,
        content_addressed_tag_prefix: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    ) -> None:
        """
        :param key: the KMS key images are encrypted with (the platform key).
        :param repository_name: 2 to 256 characters of ECR's name grammar.
            :default: a name CloudFormation generates
        :param keep_last_images: images kept; older ones expire, 1 to 1000. :default: 10
        :param content_addressed_tag_prefix: tags with this prefix name their content (an
            asset hash), so a deployment may push them again, e.g. on a rollback; every other
            tag stays immutable. :default: None (every tag immutable)
        :param removal_policy: what happens to the repository and its images when the stack is
            deleted: kept once created, removed with its images by a failed first create
            (DESTROY also removes them with the stack). :default: RETAIN_ON_UPDATE_OR_DELETE
        """
        unique = _check_repository(
            construct_owner("ScannedRepository", scope.node.path, id),
            scope,
            key=key,
            repository_name=repository_name,
            keep_last_images=keep_last_images,
            content_addressed_tag_prefix=content_addressed_tag_prefix,
            removal_policy=removal_policy,
        )
        super().__init__(scope, id)
        self.content_addressed_tag_prefix = content_addressed_tag_prefix
        """The prefix of tags that name their content and may be pushed again, or None."""
        claim(self, *unique)

        self.repository: ecr.Repository = ecr.Repository(
            self,
            "Repository",
            repository_name=repository_name,
            image_scan_on_push=True,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION
            if content_addressed_tag_prefix
            else ecr.TagMutability.IMMUTABLE,
            image_tag_mutability_exclusion_filters=[
                ecr.ImageTagMutabilityExclusionFilter.wildcard(f"{content_addressed_tag_prefix}*")
            ]
            if content_addressed_tag_prefix
            else None,
            encryption=ecr.RepositoryEncryption.KMS,
            encryption_key=key,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description=f"Keep only the last {keep_last_images} images",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=keep_last_images,
                )
            ],
            removal_policy=removal_policy,
        )
        """The ECR repository."""
        _empty_on_failed_create(self.repository, removal_policy)
        if content_addressed_tag_prefix:
            acknowledge_control(
                self.repository,
                "Tags are immutable but for those starting with "
                f"'{content_addressed_tag_prefix}' (IMMUTABLE_WITH_EXCLUSION): they name their "
                "content (an asset hash), so a deployment's image copy may push one again, "
                "e.g. on a rollback, and the same tag can only ever carry the same image.",
                "CT.ECR.PR.3",
            )

    @property
    def repository_uri(self) -> str:
        """The repository's URI, as CloudFormation returns it (the RepositoryUri attribute).

        CDK's own ``repository_uri`` cuts the account and region out of the ARN with
        Fn::Split; a stack that reads the ARN from another with Fn::GetStackOutput (CDK's
        recommended weak references) cannot split it, so the attribute is used whole."""
        return typing.cast(
            ecr.CfnRepository, self.repository.node.default_child
        ).attr_repository_uri

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        """Pull images from this repository only (plus the account-wide auth token call)."""
        return self.repository.grant_pull(grantee)

    def pull_statements(self) -> list[iam.PolicyStatement]:
        """The statements of ``grant_pull``, for a managed policy rather than an inline one."""
        return [
            _auth_token_statement(),
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[self.repository.repository_arn],
            ),
        ]

    def grant_push(self, grantee: iam.IGrantable) -> iam.Grant:
        """Push and pull images of this repository only."""
        return self.repository.grant_pull_push(grantee)


class ScanType(Enum):
    """Registry scanning: BASIC (free, on push) or ENHANCED (Amazon Inspector, continuous)."""

    BASIC = "BASIC"
    ENHANCED = "ENHANCED"


class RegistryScanning(Construct):
    """The account's registry scanning configuration, for this region: scan every image pushed,
    pull-through caches included.

    There is one per account and region, so this is opt-in: deploying it replaces whatever
    registry scanning configuration the account had.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        scan_type: ScanType = ScanType.BASIC,
        repository_filter: str = "*",
    ) -> None:
        """
        :param scan_type: BASIC scans on push; ENHANCED scans continuously with Amazon Inspector.
            :default: ScanType.BASIC
        :param repository_filter: which repositories, as an ECR wildcard filter.
            :default: '*' (all)
        """
        owner = construct_owner("RegistryScanning", scope.node.path, id)
        check_type(owner, "scan_type", scan_type, ScanType)
        problems = Problems(owner)
        # One configuration per registry: a second would overwrite the first at deploy.
        unique = registry_names(scope, "registry-scanning", "configuration")
        for name_key in unique:
            holder = holder_of(scope, name_key)
            if holder is not None:
                problems.note(
                    f"a registry has one scanning configuration, and {holder.node.path!r} "
                    "already sets it for this account and region (allowed: one "
                    "RegistryScanning per account and region)"
                )
        problems.pattern(
            "repository_filter",
            repository_filter,
            r"(?=.{1,255}\Z)[a-z0-9*]+(?:[._/-][a-z0-9*]+)*",
            "an ECR wildcard filter of lower-case letters, digits, . _ - / and *",
        )
        problems.raise_if_any()
        super().__init__(scope, id)
        claim(self, *unique)
        frequency = "SCAN_ON_PUSH" if scan_type is ScanType.BASIC else "CONTINUOUS_SCAN"
        self.configuration: ecr.CfnRegistryScanningConfiguration = (
            ecr.CfnRegistryScanningConfiguration(
                self,
                "Configuration",
                scan_type=scan_type.value,
                rules=[
                    ecr.CfnRegistryScanningConfiguration.ScanningRuleProperty(
                        scan_frequency=frequency,
                        repository_filters=[
                            ecr.CfnRegistryScanningConfiguration.RepositoryFilterProperty(
                                filter=repository_filter, filter_type="WILDCARD"
                            )
                        ],
                    )
                ],
            )
        )
        """The registry scanning configuration resource."""


@dataclass(frozen=True, kw_only=True)
class _Upstream:
    url: str
    registry: str


_ECR_PUBLIC = _Upstream(url="public.ecr.aws", registry="ecr-public")
_DOCKER_HUB = _Upstream(url="registry-1.docker.io", registry="docker-hub")
DOCKER_HUB_CACHE_PREFIX = "docker-hub"
DOCKER_HUB_SECRET_PREFIX = "ecr-pullthroughcache/"
"""ECR reads upstream credentials only from secrets whose names start with this."""
# ECR CreatePullThroughCacheRule's credentialArn: this pattern, 50 to 612 characters.
DOCKER_HUB_SECRET_ARN = (
    r"(?=.{50,612}$)arn:aws:secretsmanager:[a-zA-Z0-9-:]+:secret:"
    + re.escape(DOCKER_HUB_SECRET_PREFIX)
    + r"[a-zA-Z0-9/_+=.@-]+"
)
DOCKER_HUB_SECRET_ALLOWED = (
    f"the ARN of a Secrets Manager secret named {DOCKER_HUB_SECRET_PREFIX}..."
)


def check_docker_hub_credentials(problems: Problems, credentials: str | None) -> None:
    """ECR: the secret's name must start with 'ecr-pullthroughcache/'."""
    if credentials is not None:
        problems.pattern(
            "docker_hub_credentials", credentials, DOCKER_HUB_SECRET_ARN, DOCKER_HUB_SECRET_ALLOWED
        )


def _check_repository(
    owner: str,
    scope: Construct,
    *,
    key: kms.IKey,
    repository_name: str | None,
    keep_last_images: int,
    content_addressed_tag_prefix: str | None,
    removal_policy: RemovalPolicy,
) -> list[tuple[object, ...]]:
    """Every prop of a ScannedRepository, checked together; the registry keys of its name."""
    check_removal_policy(owner, removal_policy)
    problems = Problems(owner)
    check_key(problems, scope, key)
    unique = registry_names(scope, "ecr-repository", repository_name)
    for name_key in unique:
        problems.unique("repository_name", repository_name, scope, name_key, _IN_REGISTRY)
    if repository_name is not None:
        problems.pattern(
            "repository_name",
            repository_name,
            _REPOSITORY_NAME,
            "lower-case letters, digits and . _ - / separators, 2 to 256 characters",
        )
        if (
            isinstance(repository_name, str)
            and not is_token(repository_name)
            and not 2 <= len(repository_name) <= 256
        ):
            problems.add("repository_name", repository_name, "2 to 256 characters")
    if is_token(keep_last_images):
        problems.add(
            "keep_last_images",
            keep_last_images,
            "a concrete integer; CDK writes the lifecycle policy text at synth",
        )
    else:
        problems.int_range("keep_last_images", keep_last_images, 1, 1000)
    if content_addressed_tag_prefix is not None:
        problems.pattern(
            "content_addressed_tag_prefix",
            content_addressed_tag_prefix,
            r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}",
            "1 to 64 of A-Z a-z 0-9 _ . -",
        )
    problems.raise_if_any()
    return unique


class PullThroughCache(Construct):
    """The private route to public images: an ECR pull-through cache rule for ECR Public (or,
    given credentials, Docker Hub) and a creation template that gives each repository it
    creates the same guarantees as a ScannedRepository (immutable tags, keep the last images,
    KMS with the platform key).

    Scan on push for these repositories comes from the registry scanning configuration
    (``RegistryScanning``), which a creation template cannot set.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        prefix: str | None = None,
        keep_last_images: int = KEEP_LAST_IMAGES,
        docker_hub_credentials: str | None = None,
    ) -> None:
        """
        :param key: the KMS key cached images are encrypted with (the platform key).
        :param prefix: the private namespace cached repositories are created under, 2 to 30
            characters. :default: 'ecr-public', or 'docker-hub' for Docker Hub
        :param keep_last_images: images kept per cached repository, 1 to 1000. :default: 10
        :param docker_hub_credentials: cache Docker Hub instead of ECR Public, signing in with
            the Secrets Manager secret of this ARN (its name starts with
            'ecr-pullthroughcache/'; its value is ``{"username": ..., "accessToken": ...}``),
            which ECR requires for Docker Hub. :default: None (ECR Public, no credentials)
        """
        prefix = prefix or (
            PUBLIC_CACHE_PREFIX if docker_hub_credentials is None else DOCKER_HUB_CACHE_PREFIX
        )
        _check_cache(
            construct_owner("PullThroughCache", scope.node.path, id),
            scope,
            key=key,
            prefix=prefix,
            keep_last_images=keep_last_images,
            docker_hub_credentials=docker_hub_credentials,
        )
        super().__init__(scope, id)
        claim(self, *registry_names(scope, "pull-through-prefix", prefix))
        self.prefix = prefix
        stack = Stack.of(self)

        self.rule: ecr.CfnPullThroughCacheRule = _rule(self, prefix, docker_hub_credentials)
        """The pull-through cache rule."""

        # ECR needs a role of ours to create repositories encrypted with a customer key.
        role = iam.Role(
            self,
            "CreationRole",
            assumed_by=iam.ServicePrincipal(
                "ecr.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description=f"Lets ECR create the {prefix}/ pull-through repositories with KMS",
        )
        creation_policy = iam.ManagedPolicy(
            self,
            "CreationPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:TagResource"],
                    resources=[self._repositories_arn()],
                ),
                iam.PolicyStatement(
                    actions=["kms:CreateGrant", "kms:RetireGrant", "kms:DescribeKey"],
                    resources=[key.key_arn],
                ),
            ],
        )
        acknowledge_wildcard_resource(
            creation_policy,
            self._repositories_arn(),
            reason="The cache creates a repository per public image on its first pull, so "
            f"names are known only by their prefix; the policy is limited to {prefix}/.",
        )
        self.template: ecr.CfnRepositoryCreationTemplate = ecr.CfnRepositoryCreationTemplate(
            self,
            "CreationTemplate",
            prefix=prefix,
            applied_for=["PULL_THROUGH_CACHE"],
            description="Cached public images: immutable, encrypted, last images only",
            image_tag_mutability="IMMUTABLE",
            encryption_configuration=ecr.CfnRepositoryCreationTemplate.EncryptionConfigurationProperty(
                encryption_type="KMS", kms_key=key.key_arn
            ),
            lifecycle_policy=_keep_last(keep_last_images),
            custom_role_arn=role.role_arn,
        )
        """The creation template applied to every repository the cache creates."""
        self.template.node.add_dependency(creation_policy)

    def _repositories_arn(self, upstream_path: str = "*") -> str:
        return Stack.of(self).format_arn(
            service="ecr",
            resource="repository",
            resource_name=f"{self.prefix}/{upstream_path}",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def image_uri(self, upstream_image: str) -> str:
        """The private URI of a public image, e.g. ``appmesh/aws-appmesh-envoy:v1.29.12.0-prod``
        becomes ``<account>.dkr.ecr.<region>.amazonaws.com/ecr-public/appmesh/...``."""
        stack = Stack.of(self)
        return (
            f"{stack.account}.dkr.ecr.{stack.region}.{stack.url_suffix}/"
            f"{self.prefix}/{upstream_image}"
        )

    def pull_statements(self, upstream_repository: str) -> list[iam.PolicyStatement]:
        """What pulling one public repository through the cache takes: the first pull creates
        its private copy, so creating and importing into that one repository are included."""
        return [
            _auth_token_statement(),
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:BatchImportUpstreamImage",
                    "ecr:CreateRepository",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[self._repositories_arn(upstream_repository)],
            ),
        ]

    def grant_pull(self, grantee: iam.IGrantable, upstream_repository: str) -> iam.Grant:
        """Pull one public repository through the cache (see ``pull_statements``)."""
        token, pull = self.pull_statements(upstream_repository)
        iam.Grant.add_to_principal(
            grantee=grantee, actions=token.actions, resource_arns=token.resources
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=pull.actions, resource_arns=pull.resources
        )


_IN_REGISTRY = "in the account's registry of this region"


def _rule(
    scope: Construct, prefix: str, docker_hub_credentials: str | None
) -> ecr.CfnPullThroughCacheRule:
    """The rule: ECR Public without credentials, Docker Hub with them."""
    upstream = _ECR_PUBLIC if docker_hub_credentials is None else _DOCKER_HUB
    return ecr.CfnPullThroughCacheRule(
        scope,
        "Rule",
        ecr_repository_prefix=prefix,
        upstream_registry=upstream.registry,
        upstream_registry_url=upstream.url,
        credential_arn=docker_hub_credentials,
    )


def _check_cache(
    owner: str,
    scope: Construct,
    *,
    key: kms.IKey,
    prefix: str,
    keep_last_images: int,
    docker_hub_credentials: str | None,
) -> None:
    problems = Problems(owner)
    check_docker_hub_credentials(problems, docker_hub_credentials)
    check_key(problems, scope, key)
    check_cache_prefix(problems, "prefix", prefix)
    for name_key in registry_names(scope, "pull-through-prefix", prefix):
        problems.unique("prefix", prefix, scope, name_key, _IN_REGISTRY)
    problems.int_range("keep_last_images", keep_last_images, 1, 1000)
    problems.raise_if_any()


def check_cache_prefix(problems: Problems, prop: str, prefix: str) -> None:
    """ECR's rule for a pull-through cache prefix (CreatePullThroughCacheRule's
    ecrRepositoryPrefix: 2 to 30 characters of this pattern), which names one rule and one
    creation template of the registry; ROOT is the creation templates' catch-all, no prefix."""
    problems.pattern(prop, prefix, _PREFIX, "lower-case letters, digits, . _ - /")
    if isinstance(prefix, str) and not is_token(prefix) and not 2 <= len(prefix) <= 30:
        problems.add(prop, prefix, "2 to 30 characters")
    if prefix == "ROOT":
        problems.add(prop, prefix, "a namespace, not ROOT")


def registry_names(scope: Construct, kind: str, name: object) -> list[tuple[object, ...]]:
    """The registry key of a name unique in an account's private registry, one per region
    (<account>.dkr.ecr.<region>.amazonaws.com): repository names, pull-through prefixes (each
    names one rule and one creation template), the one scanning configuration."""
    env = environment_of(scope)
    if env is None or name is None or is_token(name) or not isinstance(name, str):
        return []
    return [(kind, *env, name)]


def _auth_token_statement() -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=["ecr:GetAuthorizationToken"],
        resources=["*"],  # GetAuthorizationToken has no resource-level permissions
    )
