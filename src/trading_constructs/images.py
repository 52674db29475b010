"""Where a service's image comes from: ``ServiceImage`` and its sources.

A service asks its image for three things only: the container image, the statements its
execution role needs to pull it (one repository, never ``ecr:*`` on everything), and what must
finish before its tasks start (a copy made during the deployment). What differs between
sources stays in this module.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IDependable

from ._extras import require_extra
from ._validation import Problems, check_items, check_type, construct_owner
from .compliance import acknowledge, ignore_redundant_depends_on, vpc_lambda_network_statement
from .repository import PullThroughCache, ScannedRepository, _auth_token_statement

SCAN_UNKNOWN_WARNING = "trading-constructs:imageScanUnknown"
"""The id of the synth warning ``ServiceImage.from_ecr_repository`` leaves on a repository it
cannot see scanning on push (an imported one). Acknowledge it on that repository once scanning
is on: ``Annotations.of(repository).acknowledge_warning(SCAN_UNKNOWN_WARNING, reason)``."""

_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
_PATH_PART = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_UPSTREAM_REPOSITORY = rf"(?=.{{3,200}}\Z){_PATH_PART}(?:/{_PATH_PART})+"

_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
_PUSH_ACTIONS = (
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
_COPY_FUNCTION = "Custom::CDKECRDeployment"  # cdk-ecr-deployment's shared function, per stack


class ServiceImage:
    """The image a service runs and what its tasks need to pull it. Made by a factory:

    - ``ServiceImage.from_repository``: a tag or digest in a ``ScannedRepository`` of yours;
    - ``ServiceImage.from_ecr_repository``: a tag or digest in an existing ECR repository;
    - ``ServiceImage.from_asset``: a Dockerfile directory, built at deploy time and copied into a
      ``ScannedRepository``; services start only once the copy is done;
    - ``ServiceImage.from_pull_through_cache``: a public ECR image, through a
      ``PullThroughCache``.

    Each grants a service's execution role the pull of that one repository, nothing more.
    ``ServiceImage(repository=..., tag=...)`` is ``from_repository`` and stays for existing code.
    """

    def __init__(
        self,
        *,
        repository: ScannedRepository,
        tag: str | None = None,
        digest: str | None = None,
        ready_after: IDependable | None = None,
    ) -> None:
        """The same as ``ServiceImage.from_repository(repository, ...)``.

        :param repository: the scanned repository.
        :param tag: the image tag. Give ``tag`` or ``digest``, not both. :default: None
        :param digest: the image digest, ``sha256:`` and 64 hex digits. :default: None
        :param ready_after: what puts the image in the repository during the deployment.
            :default: None (the image is pushed beforehand)
        """
        self._scanned("ServiceImage", repository, tag, digest, ready_after)

    def _scanned(
        self,
        owner: str,
        repository: ScannedRepository,
        tag: str | None,
        digest: str | None,
        ready_after: IDependable | None,
    ) -> None:
        problems = Problems(owner)
        _check_scanned(problems, repository)
        reference = _check_reference(problems, tag, digest)
        problems.dependable("ready_after", ready_after)
        problems.raise_if_any()
        self._repository: ScannedRepository | None = repository
        self._tag, self._digest, self._ready_after = tag, digest, ready_after
        self._image: ecs.ContainerImage = _scanned_image(repository, reference)
        self._statements: Callable[[], list[iam.PolicyStatement]] = repository.pull_statements

    # -- the sources ------------------------------------------------------------------------

    @classmethod
    def from_repository(
        cls,
        repository: ScannedRepository,
        *,
        tag: str | None = None,
        digest: str | None = None,
        ready_after: IDependable | None = None,
    ) -> ServiceImage:
        """An image in one of your scanned repositories (scan on push, immutable tags), pushed
        there by your CI before the services that run it deploy.

        :param repository: the scanned repository.
        :param tag: the image tag, 1 to 128 of ``A-Z a-z 0-9 _ . -`` (tags are immutable
            there, so a tag names one image). Give ``tag`` or ``digest``, not both.
            :default: None
        :param digest: the image digest, ``sha256:`` and 64 hex digits. :default: None
        :param ready_after: what puts the image in the repository during the deployment (a
            custom resource of yours, for example), so services start only after it.
            :default: None (the image is pushed beforehand)
        """
        image = cls.__new__(cls)
        image._scanned("ServiceImage.from_repository", repository, tag, digest, ready_after)
        return image

    @classmethod
    def from_ecr_repository(
        cls,
        repository: ecr.IRepository,
        *,
        tag: str | None = None,
        digest: str | None = None,
    ) -> ServiceImage:
        """An image in an ECR repository the platform does not create: imported by name
        (``aws_ecr.Repository.from_repository_name``) or ARN (``from_repository_arn``, in
        another account too, whose repository policy must then let this account pull).

        Whether it scans on push cannot be read at synth for an imported repository, so this
        leaves a synth warning on it (``trading-constructs:imageScanUnknown``; ``cdk synth
        --strict`` fails on it) unless it is an ``aws_ecr.Repository`` of this app that scans
        on push. Turn on scan on push for the repository, or for the account with
        ``RegistryScanning``, then acknowledge the warning on the repository:
        ``Annotations.of(repository).acknowledge_warning('trading-constructs:imageScanUnknown',
        reason)``.

        :param repository: the repository, an ``aws_ecr.IRepository``.
        :param tag: the image tag. Give ``tag`` or ``digest``, not both; a digest names one
            image even where tags move. :default: None
        :param digest: the image digest, ``sha256:`` and 64 hex digits. :default: None
        """
        problems = Problems("ServiceImage.from_ecr_repository")
        if isinstance(repository, ScannedRepository):
            problems.add(
                "repository",
                repository.node.path,
                "an aws_ecr.IRepository; a ScannedRepository goes to ServiceImage.from_repository",
            )
        elif isinstance(repository, str) or not hasattr(repository, "repository_arn"):
            problems.add(
                "repository",
                repository,
                "an aws_ecr.IRepository: import a name with aws_ecr.Repository."
                "from_repository_name(scope, id, name), an ARN with aws_ecr.Repository."
                "from_repository_arn(scope, id, arn)",
            )
        reference = _check_reference(problems, tag, digest)
        problems.raise_if_any()
        if not _scans_on_push(repository):
            Annotations.of(repository).add_warning_v2(
                SCAN_UNKNOWN_WARNING,
                "ServiceImage.from_ecr_repository: whether this repository scans images on push "
                "is not known at synth. Turn on scan on push for it (or registry scanning for "
                "the account: RegistryScanning), then acknowledge this warning on it.",
            )

        def statements() -> list[iam.PolicyStatement]:
            return [_auth_token_statement(), _pull_statement(repository.repository_arn)]

        return cls._make(
            image=ecs.ContainerImage.from_ecr_repository(repository, reference),
            statements=statements,
            tag=tag,
            digest=digest,
        )

    @classmethod
    def from_asset(
        cls,
        scope: Construct,
        id: str,
        *,
        directory: str | os.PathLike[str],
        repository: ScannedRepository,
        vpc: ec2.IVpc,
        key: kms.IKey,
        file: str | None = None,
        exclude: Sequence[str] = (),
    ) -> ServiceImage:
        """A Dockerfile directory: ``cdk deploy`` builds it (linux/amd64, the platform's task
        architecture) and pushes it to the CDK asset repository; a copy during the deployment
        then puts it into ``repository`` under the tag ``<content_addressed_tag_prefix><asset
        hash>``, and services using it start only after that copy. Needs Docker where
        ``cdk deploy`` runs; synth needs only the directory.

        The copy runs as cdk-ecr-deployment's function, one per stack, brought to the
        platform's rules: in ``vpc``'s private subnets, as a role that reads the asset
        repository and writes the scanned repositories it copies to (nothing else), created
        after its policy, logging to a group of ours encrypted with ``key`` and kept a year,
        no reserved concurrency. That shared part sits at the stack's root (``ImageCopyRole``,
        ``ImageCopyPolicy``, ``ImageCopyLogs``); every ``from_asset`` of a stack passes the
        same ``vpc`` and ``key``, and the stack uses no ``ECRDeployment`` of its own.

        :param scope: where the image's asset and copy go.
        :param id: the construct id of the image's asset and copy.
        :param directory: the Docker build context: a directory holding the Dockerfile.
        :param repository: the scanned repository the image is copied into, made with a
            ``content_addressed_tag_prefix`` (a rollback copies the same tag again).
        :param vpc: the VPC the copy function runs in (its private subnets with egress).
        :param key: the KMS key of the copy function's log group (the platform key).
        :param file: the Dockerfile, relative to ``directory``. :default: 'Dockerfile'
        :param exclude: glob patterns of the build context left out of the image and its
            hash. :default: none
        """
        check_type("ServiceImage.from_asset", "scope", scope, Construct)
        owner = construct_owner("ServiceImage.from_asset", scope.node.path, id)
        stack = Stack.of(scope)
        problems = Problems(owner)
        problems.free_id(scope, id)
        _check_asset(problems, directory, file, exclude, repository)
        _check_copier(problems, stack, vpc, key)
        problems.raise_if_any()
        require_extra("assets", f"{owner}: copying a built image into a scanned repository")
        copier = _COPIERS.get(stack) or _new_copier(stack, vpc, key)
        copy = _AssetCopy(
            scope,
            id,
            directory=directory,
            file=file,
            exclude=exclude,
            repository=repository,
            copier=copier,
        )
        return cls._make(
            image=_scanned_image(repository, copy.tag),
            statements=repository.pull_statements,
            repository=repository,
            tag=copy.tag,
            ready_after=copy.copy,
        )

    @classmethod
    def from_pull_through_cache(
        cls,
        cache: PullThroughCache,
        *,
        upstream_image: str,
        tag: str | None = None,
        digest: str | None = None,
    ) -> ServiceImage:
        """A public image from ECR Public, pulled through the platform's pull-through cache:
        tasks pull ``<account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<upstream_image>``, whose
        first pull creates the private copy (immutable tags, KMS, keep the last images).

        :param cache: the cache (``TradingCluster.public_images`` on App Mesh, or your own
            ``PullThroughCache``).
        :param upstream_image: the image's repository on ECR Public, ``<alias>/<name>``,
            without registry, tag or digest: ``public.ecr.aws/docker/library/nginx:1.27`` is
            ``upstream_image='docker/library/nginx', tag='1.27'``.
        :param tag: the image tag. Give ``tag`` or ``digest``, not both. :default: None
        :param digest: the image digest, ``sha256:`` and 64 hex digits. :default: None
        """
        problems = Problems("ServiceImage.from_pull_through_cache")
        if not isinstance(cache, PullThroughCache):
            problems.add("cache", cache, "a PullThroughCache")
        problems.pattern(
            "upstream_image",
            upstream_image,
            _UPSTREAM_REPOSITORY,
            "an ECR Public repository '<alias>/<name>' such as 'docker/library/nginx', "
            "without registry, tag or digest",
        )
        reference = _check_reference(problems, tag, digest)
        problems.raise_if_any()
        separator = ":" if digest is None else "@"
        return cls._make(
            image=ecs.ContainerImage.from_registry(
                cache.image_uri(f"{upstream_image}{separator}{reference}")
            ),
            statements=lambda: cache.pull_statements(upstream_image),
            tag=tag,
            digest=digest,
        )

    @classmethod
    def _make(
        cls,
        *,
        image: ecs.ContainerImage,
        statements: Callable[[], list[iam.PolicyStatement]],
        repository: ScannedRepository | None = None,
        tag: str | None = None,
        digest: str | None = None,
        ready_after: IDependable | None = None,
    ) -> ServiceImage:
        made = cls.__new__(cls)
        made._image, made._statements = image, statements
        made._repository, made._tag, made._digest = repository, tag, digest
        made._ready_after = ready_after
        return made

    # -- what a service reads ---------------------------------------------------------------

    @property
    def repository(self) -> ScannedRepository | None:
        """The scanned repository the image is in (``from_repository``, ``from_asset``);
        None for the other sources."""
        return self._repository

    @property
    def tag(self) -> str | None:
        """The image tag; None when a digest names the image."""
        return self._tag

    @property
    def digest(self) -> str | None:
        """The image digest; None when a tag names the image."""
        return self._digest

    @property
    def ready_after(self) -> IDependable | None:
        """What must finish before a task can pull the image (the copy of ``from_asset``)."""
        return self._ready_after

    def container_image(self) -> ecs.ContainerImage:
        """The image of the app container."""
        return self._image

    def pull_statements(self) -> list[iam.PolicyStatement]:
        """What the execution role needs to pull the image: this repository only, plus the
        account-wide ``ecr:GetAuthorizationToken``."""
        return self._statements()


# -- checks ---------------------------------------------------------------------------------


def _check_scanned(problems: Problems, repository: Any) -> None:
    if isinstance(repository, ScannedRepository):
        return
    hint = (
        "; an aws_ecr.IRepository goes to ServiceImage.from_ecr_repository"
        if hasattr(repository, "repository_arn")
        else ""
    )
    problems.add("repository", repository, f"a ScannedRepository{hint}")


def _scanned_image(repository: ScannedRepository, reference: str) -> ecs.ContainerImage:
    """The image by the repository's URI attribute (see ``ScannedRepository.repository_uri``:
    a service in another stack reads it whole); the service's execution policy holds
    ``pull_statements``, so no grant is made here."""
    separator = "@" if reference.startswith("sha256:") else ":"
    return ecs.ContainerImage.from_registry(f"{repository.repository_uri}{separator}{reference}")


def _check_reference(problems: Problems, tag: str | None, digest: str | None) -> str:
    """Exactly one of tag and digest, each well formed; returns the one given."""
    if tag is not None and digest is not None:
        problems.note(f"tag={tag!r} and digest={digest!r} are both given (allowed: one of them)")
    elif tag is None and digest is None:
        problems.note(
            "tag=None and digest=None is not allowed (allowed: a tag, or a digest "
            "'sha256:<64 hex digits>')"
        )
    if tag is not None:
        problems.pattern(
            "tag",
            tag,
            _TAG,
            "an image tag: 1 to 128 of A-Z a-z 0-9 _ . -, not starting with . or -",
        )
    if digest is not None:
        problems.pattern(
            "digest", digest, _DIGEST, "an image digest: 'sha256:' and 64 lower-case hex digits"
        )
    return tag if tag is not None else str(digest)


def _check_asset(
    problems: Problems, directory: Any, file: Any, exclude: Any, repository: Any
) -> None:
    if not isinstance(directory, (str, os.PathLike)) or not Path(directory).is_dir():
        problems.add("directory", directory, "a directory that exists: the Docker build context")
    elif file is not None and (
        not isinstance(file, str)
        or Path(file).is_absolute()
        or not (Path(directory) / file).is_file()
    ):
        problems.add("file", file, f"a Dockerfile in directory {str(directory)!r}, relative to it")
    elif file is None and not (Path(directory) / "Dockerfile").is_file():
        problems.add(
            "directory",
            str(directory),
            "a directory holding a Dockerfile (or file='<path to it inside directory>')",
        )
    check_items(problems, "exclude", exclude, str)
    _check_scanned(problems, repository)
    if isinstance(repository, ScannedRepository) and not repository.content_addressed_tag_prefix:
        problems.add(
            "repository",
            repository.node.path,
            "a ScannedRepository made with content_addressed_tag_prefix (e.g. 'cdk-'): a "
            "rollback copies the same content-addressed tag again, which an immutable tag "
            "refuses",
        )


def _scans_on_push(repository: ecr.IRepository) -> bool:
    """True only for a repository of this app whose template says it scans on push."""
    resource = repository.node.default_child
    if not isinstance(resource, ecr.CfnRepository):
        return False
    configuration = resource.image_scanning_configuration
    return getattr(configuration, "scan_on_push", None) is True


def _pull_statement(repository_arn: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=list(_PULL_ACTIONS), resources=[repository_arn])


# -- the deploy-time copy -------------------------------------------------------------------


class _AssetCopy(Construct):
    """One image: the Docker image asset, and its copy into the scanned repository."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        directory: str | os.PathLike[str],
        file: str | None,
        exclude: Sequence[str],
        repository: ScannedRepository,
        copier: _Copier,
    ) -> None:
        super().__init__(scope, id)
        # loaded on use: most apps never copy an image, and cdk-ecr-deployment is a jsii module
        from aws_cdk import aws_ecr_assets as ecr_assets
        from cdk_ecr_deployment import DockerImageName, ECRDeployment

        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(directory),
            file=file,
            exclude=list(exclude) or None,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.tag = f"{repository.content_addressed_tag_prefix}{self.asset.asset_hash}"
        self.copy = ECRDeployment(
            self,
            "Copy",
            src=DockerImageName(self.asset.image_uri),
            dest=DockerImageName(f"{repository.repository_uri}:{self.tag}"),
            role=copier.role.without_policy_updates(),
            vpc=copier.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        )
        copier.add(self, repository)


@dataclass
class _Copier:
    """The part of the copy a stack shares: the role of cdk-ecr-deployment's function (one per
    stack), its one managed policy, its log group."""

    role: iam.Role
    policy: iam.ManagedPolicy
    vpc: ec2.IVpc
    key: kms.IKey
    hardened: bool = False

    def add(self, copy: _AssetCopy, repository: ScannedRepository) -> None:
        """Let the function read this asset and write this repository, and copy only once
        that is allowed."""
        self.policy.add_statements(
            _pull_statement(copy.asset.repository.repository_arn),
            iam.PolicyStatement(
                actions=[*_PULL_ACTIONS, *_PUSH_ACTIONS],
                resources=[repository.repository.repository_arn],
            ),
        )
        copy.copy.node.add_dependency(self.policy)
        if not self.hardened:
            self._harden(Stack.of(copy))
            self.hardened = True

    def _harden(self, stack: Stack) -> None:
        """cdk-ecr-deployment's shared function, brought to the platform's rules: logs to an
        encrypted group kept a year and writable by its role alone, created only after its
        role's policy, and no reserved concurrency (a new account may have only 10 in all).

        The library names its log group after the function, so a policy granting that group
        would have to wait for the function, while a VPC function must wait for the policy
        that lets it create network interfaces: a cycle. So the function logs to a group of
        ours instead, with a generated name, and the one policy names it."""
        function = next(
            child for child in stack.node.children if child.node.id.startswith(_COPY_FUNCTION)
        )
        function.node.try_remove_child("LogGroup")
        log_group = logs.LogGroup(
            stack,
            "ImageCopyLogs",
            retention=logs.RetentionDays.ONE_YEAR,
            encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        handler = function.node.default_child
        assert isinstance(handler, lambda_.CfnFunction)
        handler.logging_config = lambda_.CfnFunction.LoggingConfigProperty(
            log_group=log_group.log_group_name, log_format="Text"
        )
        self.policy.add_statements(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        # CreateFunction checks a VPC function's network permissions: the policy goes first.
        handler.node.add_dependency(self.policy)
        ignore_redundant_depends_on(function)
        acknowledge(
            function,
            "The image copy runs as a CloudFormation custom resource during a deployment; a "
            "failure fails and rolls back that deployment, so there is no event left to replay "
            "from a dead-letter queue.",
            "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
        )
        acknowledge(
            function,
            "It runs once per image per deployment; reserving concurrency would need an account "
            "quota above the 10 a new account may have.",
            "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
        )


_COPIERS: weakref.WeakKeyDictionary[Stack, _Copier] = weakref.WeakKeyDictionary()


def _check_copier(problems: Problems, stack: Stack, vpc: Any, key: Any) -> None:
    """The stack's one copy function runs where its first ``from_asset`` said."""
    if vpc is None or not hasattr(vpc, "select_subnets"):
        problems.add("vpc", vpc, "an aws_ec2.IVpc")
    if key is None or not hasattr(key, "key_arn"):
        problems.add("key", key, "an aws_kms.IKey")
    existing = _COPIERS.get(stack)
    if existing is None:
        if any(child.node.id.startswith(_COPY_FUNCTION) for child in stack.node.children):
            problems.note(
                "the stack already has cdk-ecr-deployment's shared function (an ECRDeployment "
                "of its own), which would copy as that role (allowed: from_asset in a stack "
                "without an ECRDeployment)"
            )
        return
    for prop, given, first in (("vpc", vpc, existing.vpc), ("key", key, existing.key)):
        if given is not None and hasattr(given, "node") and given is not first:
            problems.add(
                prop,
                given.node.path,
                f"{first.node.path!r}, as in the stack's first from_asset: the stack's one "
                "copy function runs there",
            )


def _new_copier(stack: Stack, vpc: ec2.IVpc, key: kms.IKey) -> _Copier:
    role = iam.Role(
        stack,
        "ImageCopyRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Copies the services' images from the CDK asset repository",
    )
    policy = iam.ManagedPolicy(
        stack,
        "ImageCopyPolicy",
        roles=[role],
        statements=[_auth_token_statement(), vpc_lambda_network_statement()],
    )
    acknowledge(
        policy,
        "ecr:GetAuthorizationToken and the network-interface actions of a VPC Lambda have no "
        "resource-level permissions; the image reads and writes name their repositories.",
        "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
    )
    copier = _COPIERS[stack] = _Copier(role, policy, vpc, key)
    return copier


__all__ = ["SCAN_UNKNOWN_WARNING", "ServiceImage"]
