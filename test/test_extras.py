"""The package's extras: ``assets`` (cdk-ecr-deployment, for ``ServiceImage.from_asset``) and
``postgres`` (pg8000, for ``RotatingDbSecret``). The bare package leaves them out; the call that
needs a missing one names the extra to install. The consumer install test
(scripts/install_test.py) proves the same in a clean virtualenv, bare and with each extra;
here the distribution is hidden from the package, in-process."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms

from trading_constructs import RotatingDbSecret, ScannedRepository, ServiceImage, _extras

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli where tomllib is missing
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_extras_are_the_packages_optional_dependencies() -> None:
    # GIVEN pyproject.toml THEN each extra installs the distribution the code asks for, and
    # the bare package depends on neither
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert {extra: [r.split(">")[0] for r in reqs] for extra, reqs in optional.items()} == {
        extra: [name] for extra, name in _extras.EXTRAS.items()
    }
    bare = " ".join(PYPROJECT["project"]["dependencies"])
    assert all(name not in bare for name in _extras.EXTRAS.values())


def hide(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    found = metadata.distribution

    def distribution(name: str) -> metadata.Distribution:
        if name == hidden:
            raise metadata.PackageNotFoundError(name)
        return found(name)

    monkeypatch.setattr(_extras.metadata, "distribution", distribution)


@pytest.fixture(scope="module")
def stack() -> tuple[Stack, ec2.Vpc, kms.Key]:
    stack = Stack(App(), "Extras", env=Environment(region="us-east-1"))
    return stack, ec2.Vpc(stack, "Vpc", max_azs=2), kms.Key(stack, "Key")


def test_from_asset_without_the_assets_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, stack: tuple[Stack, ec2.Vpc, kms.Key], tmp_path: Path
) -> None:
    scope, vpc, key = stack
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    repository = ScannedRepository(scope, "Built", key=key, content_addressed_tag_prefix="cdk-")
    # GIVEN cdk-ecr-deployment is not installed
    hide(monkeypatch, "cdk-ecr-deployment")
    # WHEN an image is built from a Dockerfile THEN the error names the call and the extra
    with pytest.raises(ModuleNotFoundError) as raised:
        ServiceImage.from_asset(
            scope, "Quotes", directory=tmp_path, repository=repository, vpc=vpc, key=key
        )
    assert str(raised.value) == (
        "ServiceImage.from_asset 'Extras/Quotes': copying a built image into a scanned "
        "repository needs cdk-ecr-deployment, which is not installed: it comes with the "
        "'assets' extra, pip install 'trading-constructs[assets]'"
    )
    assert raised.value.name == "cdk_ecr_deployment"
    assert scope.node.try_find_child("Quotes") is None  # nothing half-built is left


def test_a_database_secret_without_the_postgres_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, stack: tuple[Stack, ec2.Vpc, kms.Key]
) -> None:
    scope, vpc, key = stack
    hide(monkeypatch, "pg8000")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'trading-constructs\[postgres\]'"):
        RotatingDbSecret(scope, "Database", key=key, vpc=vpc)
    assert scope.node.try_find_child("Database") is None


def test_with_the_extras_installed_nothing_is_asked() -> None:
    # the development environment (and the example) has every extra
    for extra in _extras.EXTRAS:
        _extras.require_extra(extra, "test")
