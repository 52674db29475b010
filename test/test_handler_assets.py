"""The Lambda handler tree: handler code apart from construct code, one shared JSON logger.

GIVEN the handler folders under ``trading_constructs/handlers`` and the assets built from them
THEN each asset is self-contained (its shared modules are copies of the one source), runs as
top-level modules without the library, and the two sides never import each other.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from trading_constructs import assets

SRC = Path(assets.__file__).resolve().parent
ALL = (assets.API_KEY_ROTATION, assets.POSTGRES_ROTATION, assets.MESH_CERTIFICATE_ISSUER)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(module, relative level) of every import in a file."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("asset", ALL, ids=lambda asset: asset.folder)
def test_each_asset_carries_the_one_shared_logger(asset: assets.HandlerAsset) -> None:
    folder = asset.build()
    shared = assets.HANDLERS / "_shared"
    assert "jsonlog" in asset.shared
    for module in asset.shared:
        assert (folder / f"{module}.py").read_bytes() == (shared / f"{module}.py").read_bytes()
    assert not (folder / "__init__.py").exists()
    assert (folder / asset.handler.split(".")[0]).with_suffix(".py").is_file()


@pytest.mark.parametrize("asset", ALL, ids=lambda asset: asset.folder)
def test_each_asset_runs_its_handler_without_the_library(asset: assets.HandlerAsset) -> None:
    # GIVEN the asset folder as /var/task, trading_constructs unavailable
    module, function = asset.handler.split(".")
    program = (
        "import json, sys; sys.modules['trading_constructs'] = None;"
        "sys.path.insert(0, sys.argv[1]);"
        f"import {module}, jsonlog; jsonlog.JsonLogger('probe')(20, 'ready', n=1);"
        f"assert callable({module}.{function})"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, str(asset.build())],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # THEN the handler imports and the logger writes one JSON line
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert (line["level"], line["logger"], line["message"], line["n"]) == (
        "INFO",
        "probe",
        "ready",
        1,
    )


def test_only_the_shared_module_formats_log_lines() -> None:
    handlers = sorted((SRC / "handlers").rglob("*.py"))
    formatters = [
        path.relative_to(SRC).as_posix()
        for path in handlers
        if "logging.Formatter" in path.read_text() or "logging.Handler)" in path.read_text()
    ]
    assert formatters == ["handlers/_shared/jsonlog.py"]


def test_handlers_never_import_construct_code_or_the_cdk() -> None:
    for path in (SRC / "handlers").rglob("*.py"):
        for module, level in _imports(path):
            top = module.split(".")[0]
            assert top not in {"aws_cdk", "constructs", "jsii", "trading_constructs"}, path
            # relative imports stay inside the handler tree: a folder or ``_shared``
            depth = len(path.relative_to(SRC / "handlers").parts) - 1  # folders below handlers/
            assert level <= depth + 1, (path, module, level)


def test_construct_code_never_imports_handler_code() -> None:
    for path in SRC.rglob("*.py"):
        if (SRC / "handlers") in path.parents:
            continue
        for module, _level in _imports(path):
            assert "handlers" not in module.split("."), (path, module)


def test_an_asset_names_only_existing_folders_and_shared_modules() -> None:
    with pytest.raises(FileNotFoundError, match="no shared module"):
        assets.HandlerAsset(folder="api_key_rotation", handler="x.y", shared=("nope",)).files()
    with pytest.raises(FileNotFoundError, match="no handler folder"):
        assets.HandlerAsset(folder="nope", handler="x.y").files()


# -- the asset cache: no code of another user reaches a function ------------------------------


def test_a_planted_folder_under_the_assets_name_is_rebuilt_not_used(tmp_path: Path) -> None:
    # GIVEN a folder named as the issuer's asset would be, holding someone else's code
    files = assets.MESH_CERTIFICATE_ISSUER.files()
    planted = tmp_path / assets._digest(files)
    planted.mkdir()
    (planted / "issuer.py").write_text("def handler(event, context):\n    return 'planted'\n")
    # WHEN the asset is built there
    built = assets.MESH_CERTIFICATE_ISSUER.build(tmp_path)
    # THEN the folder holds the library's files, byte for byte, and nothing planted
    assert built == planted
    assert sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()) == (
        sorted(files)
    )
    for relative, source in files.items():
        assert (built / relative).read_bytes() == source.read_bytes()


def test_a_tampered_file_in_a_built_asset_is_rebuilt(tmp_path: Path) -> None:
    built = assets.MESH_CERTIFICATE_ISSUER.build(tmp_path)
    (built / "issuer.py").write_text("# changed\n")
    again = assets.MESH_CERTIFICATE_ISSUER.build(tmp_path)
    assert (again / "issuer.py").read_bytes() == (
        assets.HANDLERS / "mesh_certificate_issuer" / "issuer.py"
    ).read_bytes()


def test_the_default_cache_is_private_to_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a temporary directory shared by every user
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # WHEN an asset is built without a root
    built = assets.API_KEY_ROTATION.build()
    # THEN it lives in this user's own folder, which no one else may enter
    cache = tmp_path / f"trading-constructs-assets-{os.getuid()}"
    assert built.parent == cache
    assert cache.stat().st_mode & 0o777 == 0o700


def test_a_cache_folder_others_may_write_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cache = tmp_path / f"trading-constructs-assets-{os.getuid()}"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(PermissionError, match="is not a private folder of this user"):
        assets.API_KEY_ROTATION.build()


def test_bundled_distributions_are_the_locked_versions_as_installed() -> None:
    # GIVEN the distributions the PostgreSQL rotation bundles, and this project's uv.lock
    import tomllib

    lock = tomllib.loads((SRC.parents[1] / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}
    for package in lock["package"]:
        locked.setdefault(package["name"], set()).add(package.get("version", ""))
    # THEN each is installed at a version the lock file holds (uv checked its wheel's hash
    # against the lock when it installed it) and its files are those its RECORD hashes
    for name in assets._with_dependencies(assets.POSTGRES_ROTATION.distributions):
        from importlib import metadata

        assert metadata.version(name) in locked[name], name
        assert dict(assets._distribution_files(name))


def test_a_bundled_file_changed_after_install_is_refused(tmp_path: Path) -> None:
    # GIVEN one of pg8000's installed files, and a copy of it changed after install
    from importlib import metadata

    distribution = metadata.distribution("pg8000")
    (file,) = (f for f in distribution.files or () if f.name == "core.py")
    installed = Path(str(distribution.locate_file(file)))
    changed = tmp_path / "core.py"
    changed.write_bytes(installed.read_bytes() + b"\n# planted\n")
    # THEN the installed file passes its RECORD hash, and the changed one is refused
    assets._check_recorded_hash("pg8000", file, installed)
    with pytest.raises(ValueError, match="differs from what pg8000 installed"):
        assets._check_recorded_hash("pg8000", file, changed)
