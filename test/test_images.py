"""ServiceImage's sources (a scanned repository, an existing repository, a Dockerfile directory,
a pull-through cache): one small stack runs a service per source, synthesized once per session
(test_deploy_readiness.py checks the same template), and each bad input fails at synth naming
the factory, the prop and what is allowed."""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from conftest import CDK_CONTEXT, ENV, SynthesizedApp, synthesize

from trading_constructs import (
    MeshedFargateService,
    PullThroughCache,
    ScannedRepository,
    ServiceImage,
    TradingCluster,
    VpcOptions,
)
from trading_constructs.images import SCAN_UNKNOWN_WARNING

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMPORTED_ARN = "arn:aws:ecr:us-east-1:111122223333:repository/team/orders"
PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
PUSH = [
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]


@dataclass(frozen=True)
class Images:
    """The stack of the four sources, its template and the things the bad inputs reuse."""

    app: SynthesizedApp
    stack: Stack
    cluster: TradingCluster
    repository: ScannedRepository
    imported: ecr.IRepository
    cache: PullThroughCache
    context: Path
    images: dict[str, ServiceImage]

    @property
    def resources(self) -> dict[str, Any]:
        resources: dict[str, Any] = self.app.templates["Images"]["Resources"]
        return resources

    def one(self, prefix: str, kind: str) -> tuple[str, dict[str, Any]]:
        (found,) = (
            (k, r) for k, r in self.resources.items() if k.startswith(prefix) and r["Type"] == kind
        )
        return found


def _docker_context() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="images-context-"))
    (directory / "Dockerfile").write_text("FROM public.ecr.aws/docker/library/python:3.13-slim\n")
    (directory / "app.py").write_text("print('orders')\n")
    return directory


@functools.cache
def images_app() -> Images:
    """GIVEN a cluster and a service per source: a scanned repository's tag, an imported
    repository's digest, a Dockerfile directory copied into the scanned repository, and a
    public image through the pull-through cache."""
    # no staging: the copy function's 50 MB asset stays where it is (the example stages it)
    context = CDK_CONTEXT | {"aws:cdk:disable-asset-staging": True}
    app = App(context=context, outdir=tempfile.mkdtemp(prefix="images-app-"))
    stack = Stack(app, "Images", env=ENV)
    cluster = TradingCluster(stack, "Platform", vpc_options=VpcOptions(nat_gateways=1))
    repository = ScannedRepository(
        stack, "Repository", key=cluster.key, content_addressed_tag_prefix="cdk-"
    )
    imported = ecr.Repository.from_repository_arn(stack, "TeamRepository", IMPORTED_ARN)
    cache = PullThroughCache(stack, "Cache", key=cluster.key)
    build_context = _docker_context()
    images = {
        "Scanned": ServiceImage.from_repository(repository, tag="v1.4.2"),
        "Imported": ServiceImage.from_ecr_repository(imported, digest=DIGEST),
        "Built": ServiceImage.from_asset(
            stack,
            "OrdersImage",
            directory=build_context,
            repository=repository,
            vpc=cluster.vpc,
            key=cluster.key,
        ),
        "Cached": ServiceImage.from_pull_through_cache(
            cache, upstream_image="docker/library/nginx", tag="1.27"
        ),
    }
    for port, (name, image) in enumerate(images.items(), start=8080):
        MeshedFargateService(
            stack,
            name,
            cluster=cluster,
            name=name.lower(),
            port=port,
            image=image,
            desired_count=1,
        )
    synthesized = synthesize(app)
    assert synthesized.synth_error is None, synthesized.synth_error
    return Images(synthesized, stack, cluster, repository, imported, cache, build_context, images)


@pytest.fixture(scope="module")
def images() -> Images:
    return images_app()


def _image(images: Images, service: str) -> Any:
    _, task = images.one(f"{service}TaskDefinition", "AWS::ECS::TaskDefinition")
    (app,) = (c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == service.lower())
    return images.stack.resolve(app["Image"])


def _execution_statements(images: Images, service: str) -> list[dict[str, Any]]:
    _, policy = images.one(f"{service}ExecutionPolicy", "AWS::IAM::ManagedPolicy")
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return [s for s in statements if any(a.startswith("ecr:") for a in _actions(s))]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return sorted(action if isinstance(action, list) else [action])


def _joined(value: Any) -> str:
    """A Fn::Join rendered as text, references as <Ref> / <LogicalId.Attr>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(_joined(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return json.dumps(value)


# -- each source ----------------------------------------------------------------------------


def test_a_scanned_repository_tag(images: Images) -> None:
    # THEN the app container runs the tag of the scanned repository
    repository = images.stack.get_logical_id(images.repository.repository.node.default_child)  # type: ignore[arg-type]
    image = _joined(_image(images, "Scanned"))
    assert image == f"<{repository}.RepositoryUri>:v1.4.2", image  # the attribute, whole
    # AND the execution role may pull from that repository only
    assert _execution_statements(images, "Scanned") == [
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {"Action": PULL, "Effect": "Allow", "Resource": {"Fn::GetAtt": [repository, "Arn"]}},
    ]
    assert images.images["Scanned"].tag == "v1.4.2"
    assert images.images["Scanned"].repository is images.repository


def test_an_existing_repository_by_digest(images: Images) -> None:
    # THEN the app container runs the digest of the imported repository (another account's)
    image = _joined(_image(images, "Imported"))
    assert image == f"111122223333.dkr.ecr.us-east-1.<AWS::URLSuffix>/team/orders@{DIGEST}"
    # AND the execution role may pull that repository, named by its ARN, and nothing else
    assert _execution_statements(images, "Imported") == [
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
        {"Action": PULL, "Effect": "Allow", "Resource": IMPORTED_ARN},
    ]
    assert images.images["Imported"].repository is None
    # AND a synth warning says scan on push cannot be checked, on the repository itself
    warnings = [
        entry.data
        for entry in images.imported.node.metadata
        if entry.type == "aws:cdk:warning" and SCAN_UNKNOWN_WARNING in str(entry.data)
    ]
    assert len(warnings) == 1
    assert "RegistryScanning" in str(warnings[0])


def test_a_repository_of_the_app_that_scans_on_push_has_no_warning() -> None:
    stack = Stack(App(), "Scanning")
    repository = ecr.Repository(stack, "Repo", image_scan_on_push=True)
    ServiceImage.from_ecr_repository(repository, tag="v1")
    assert not [e for e in repository.node.metadata if e.type == "aws:cdk:warning"]


def test_a_dockerfile_directory_is_built_and_copied_before_the_service_starts(
    images: Images,
) -> None:
    built = images.images["Built"]
    assert built.tag is not None and built.tag.startswith("cdk-")
    repository = images.stack.get_logical_id(images.repository.repository.node.default_child)  # type: ignore[arg-type]
    # THEN the app container runs the content-addressed tag in the scanned repository
    assert _joined(_image(images, "Built")) == f"<{repository}.RepositoryUri>:{built.tag}"
    # AND the copy writes exactly that image, from the CDK asset repository
    copy_id, copy = images.one("OrdersImageCopy", "Custom::CDKECRDeployment")
    assert _joined(copy["Properties"]["DestImage"]).endswith(
        f"<{repository}.RepositoryUri>:{built.tag}"
    )
    assert "cdk-hnb659fds-container-assets" in _joined(copy["Properties"]["SrcImage"])
    # AND the service starts only after the copy; the copy only after its role's policy
    _, service = images.one("BuiltService", "AWS::ECS::Service")
    assert copy_id in service["DependsOn"]
    policy_id, policy = images.one("ImageCopyPolicy", "AWS::IAM::ManagedPolicy")
    assert policy_id in copy["DependsOn"]
    # AND the copy function runs in the private subnets as that role, after its policy, and
    # logs to an encrypted group of ours
    _, function = images.one("CustomCDKECRDeployment", "AWS::Lambda::Function")
    assert policy_id in function["DependsOn"]
    assert "VpcConfig" in function["Properties"]
    assert "ReservedConcurrentExecutions" not in function["Properties"]
    logs_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert logs_id.startswith("ImageCopyLogs")
    assert "KmsKeyId" in images.resources[logs_id]["Properties"]
    # AND its policy reads the asset repository and writes the scanned one, nothing else
    by_resource = {
        _joined(s["Resource"]): _actions(s)
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    assert by_resource[f"<{repository}.Arn>"] == sorted([*PULL, *PUSH])
    (asset_repository,) = (r for r in by_resource if "container-assets" in r)
    assert by_resource[asset_repository] == PULL
    assert by_resource[f"<{logs_id}.Arn>"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert all(not a.endswith("*") for actions in by_resource.values() for a in actions)
    # AND the service pulls from the scanned repository only
    assert [_joined(s["Resource"]) for s in _execution_statements(images, "Built")] == [
        "*",
        f"<{repository}.Arn>",
    ]
    # AND the image asset is the directory's Dockerfile, built for the tasks' architecture
    assets = json.loads((images.app.outdir / "Images.assets.json").read_text())
    (docker,) = assets["dockerImages"].values()
    assert docker["source"]["platform"] == "linux/amd64"
    assert (
        built.tag == f"cdk-{docker['destinations'][next(iter(docker['destinations']))]['imageTag']}"
    )


def test_a_public_image_through_the_pull_through_cache(images: Images) -> None:
    # THEN the app container runs the private URI of the public image
    assert _joined(_image(images, "Cached")) == (
        "<AWS::AccountId>.dkr.ecr.us-east-1.<AWS::URLSuffix>/ecr-public/docker/library/nginx:1.27"
    )
    # AND the execution role may pull, and on the first pull create and import, that one
    # cached repository
    token, pull = _execution_statements(images, "Cached")
    assert token["Resource"] == "*" and token["Action"] == "ecr:GetAuthorizationToken"
    assert _actions(pull) == sorted([*PULL, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"])
    assert _joined(pull["Resource"]) == (
        "arn:aws:ecr:us-east-1:<AWS::AccountId>:repository/ecr-public/docker/library/nginx"
    )


def test_only_the_copied_image_waits_for_a_copy(images: Images) -> None:
    for name in ("Scanned", "Imported", "Cached"):
        _, service = images.one(f"{name}Service", "AWS::ECS::Service")
        assert not [d for d in service.get("DependsOn", []) if "Copy" in d], name
    assert [images.images[n].ready_after for n in ("Scanned", "Imported", "Cached")] == [None] * 3


def test_the_constructor_is_from_repository(images: Images) -> None:
    old = ServiceImage(repository=images.repository, tag="v1")
    new = ServiceImage.from_repository(images.repository, tag="v1")
    assert [images.stack.resolve(s.to_statement_json()) for s in old.pull_statements()] == [
        images.stack.resolve(s.to_statement_json()) for s in new.pull_statements()
    ]
    assert (old.tag, old.digest, old.repository) == (new.tag, new.digest, new.repository)


# -- bad input ------------------------------------------------------------------------------


def bad(owner: str, prop: str, value: str, allowed: str) -> str:
    return rf"{owner}.*{prop}={value} is not allowed \(allowed: .*{allowed}"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"tag": "v1:latest"},
            bad("from_repository", "tag", "'v1:latest'", "an image tag"),
            id="tag",
        ),
        pytest.param(
            {"digest": "sha256:abc"},
            bad("from_repository", "digest", "'sha256:abc'", "'sha256:' and 64"),
            id="digest",
        ),
        pytest.param(
            {"tag": "v1", "digest": DIGEST}, r"tag='v1' and digest=.* both given", id="both"
        ),
        pytest.param({}, r"tag=None and digest=None is not allowed", id="neither"),
    ],
)
def test_a_reference_is_one_well_formed_tag_or_digest(
    images: Images, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceImage.from_repository(images.repository, **kwargs)


def test_from_repository_takes_a_scanned_repository(images: Images) -> None:
    with pytest.raises(ValueError, match=r"from_ecr_repository"):
        ServiceImage.from_repository(images.imported, tag="v1")  # type: ignore[arg-type]


def test_an_arn_string_is_not_a_repository() -> None:
    with pytest.raises(
        ValueError,
        match=r"^ServiceImage.from_ecr_repository: repository='arn:aws:ecr:.*' is not allowed "
        r"\(allowed: an aws_ecr.IRepository: .*from_repository_arn\(scope, id, arn\)",
    ):
        ServiceImage.from_ecr_repository(IMPORTED_ARN, tag="v1")  # type: ignore[arg-type]


def test_a_scanned_repository_goes_to_from_repository(images: Images) -> None:
    with pytest.raises(ValueError, match=r"repository=.* goes to ServiceImage.from_repository"):
        ServiceImage.from_ecr_repository(images.repository, tag="v1")  # type: ignore[arg-type]


def test_a_public_image_is_a_repository_path_and_a_tag(images: Images) -> None:
    with pytest.raises(ValueError) as raised:
        ServiceImage.from_pull_through_cache(
            images.cache, upstream_image="public.ecr.aws/docker/library/nginx:1.27", tag="1.27"
        )
    assert "upstream_image='public.ecr.aws/docker/library/nginx:1.27' is not allowed" in str(
        raised.value
    )
    with pytest.raises(ValueError, match=bad("from_pull_through_cache", "cache", ".*", "a Pull")):
        ServiceImage.from_pull_through_cache(
            images.repository,  # type: ignore[arg-type]
            upstream_image="docker/library/nginx",
            tag="1.27",
        )


def test_a_missing_directory_or_dockerfile(images: Images, tmp_path: Path) -> None:
    owner = r"ServiceImage.from_asset 'Images/Bad'"
    kwargs: dict[str, Any] = {
        "repository": images.repository,
        "vpc": images.cluster.vpc,
        "key": images.cluster.key,
    }
    missing = tmp_path / "missing"
    with pytest.raises(ValueError, match=rf"^{owner}: directory=.*missing.* is not allowed"):
        ServiceImage.from_asset(images.stack, "Bad", directory=missing, **kwargs)
    with pytest.raises(ValueError, match=rf"^{owner}: directory=.* \(allowed: a directory holding"):
        ServiceImage.from_asset(images.stack, "Bad", directory=tmp_path, **kwargs)
    with pytest.raises(ValueError, match=rf"^{owner}: file='Dockerfile.prod' is not allowed"):
        ServiceImage.from_asset(
            images.stack, "Bad", directory=images.context, file="Dockerfile.prod", **kwargs
        )


def test_an_asset_needs_content_addressed_tags_and_the_stacks_one_vpc(images: Images) -> None:
    immutable = ScannedRepository(images.stack, "Immutable", key=images.cluster.key)
    other = ec2.Vpc.from_vpc_attributes(
        images.stack, "OtherVpc", vpc_id="vpc-1234", availability_zones=["us-east-1a"]
    )
    with pytest.raises(ValueError) as raised:
        ServiceImage.from_asset(
            images.stack,
            "Bad",
            directory=images.context,
            repository=immutable,
            vpc=other,
            key=images.cluster.key,
            exclude="*.md",  # type: ignore[arg-type]
        )
    message = str(raised.value)
    assert message.startswith("ServiceImage.from_asset 'Images/Bad': 3 invalid props:")
    assert "exclude='*.md' is not allowed (allowed: a list of str" in message
    assert (
        "repository='Images/Immutable' is not allowed (allowed: a ScannedRepository made with "
        "content_addressed_tag_prefix"
    ) in message
    assert "vpc='Images/OtherVpc' is not allowed (allowed: 'Images/Platform/Vpc'" in message
    assert images.stack.node.try_find_child("Bad") is None
