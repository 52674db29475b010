"""Lambda assets of the handlers in ``trading_constructs/handlers``, built at synth time without
Docker or network.

An asset is a folder laid out as Lambda's ``/var/task``: the files of one handler folder, the
shared modules it names (``handlers/_shared/<name>.py``, copied beside it so the deployed asset
is self-contained while the source exists once) and the installed files of the pure-Python
distributions it bundles (found through ``importlib.metadata``). The folder is deterministic, so
CDK's content hash of it (which names the asset in S3 and so decides whether a deployment
updates the function) is the same on every run and every machine with the same distribution
versions:

- files are collected in sorted order, with their bytes only (no timestamps, modes or owners);
- byte code (``__pycache__``, ``*.pyc``), the handler folder's ``__init__.py`` (which only makes
  it importable from the wheel) and the install records that differ per installer or machine
  (``RECORD``, ``INSTALLER``, ``REQUESTED``, ``direct_url.json``) are left out; ``METADATA`` and
  licences stay, as ``importlib.metadata.version()`` at import needs them;
- files installed outside ``site-packages`` (scripts in ``bin/``) are left out;
- the folder's name is the SHA-256 of that content, and it is written once to a temporary name
  and renamed into place, so a half-written folder is never used;
- the folders live in a cache of the user's own (``trading-constructs-assets-<uid>`` in the
  temporary directory, mode 0700, refused if another user owns it or may write it), and a folder
  found there is used only if its content still hashes to its name: code planted in a shared
  or tampered folder never reaches a function (the certificate issuer signs with the CA key).

This module runs in the CDK app, never in Lambda; it uses the standard library only and reads
the handler files without importing them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

__all__ = [
    "API_KEY_ROTATION",
    "HANDLERS",
    "MESH_CERTIFICATE_ISSUER",
    "POSTGRES_ROTATION",
    "HandlerAsset",
]

HANDLERS = Path(__file__).resolve().parent / "handlers"
"""Where the handler folders live."""

_SHARED = HANDLERS / "_shared"
_SKIPPED_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


@dataclass(frozen=True, kw_only=True)
class HandlerAsset:
    """One Lambda function's code: a handler folder, the shared modules and the distributions
    it needs, and the ``handler`` setting that names its entry point."""

    folder: str
    """The handler folder under ``handlers/``."""
    handler: str
    """The function's ``handler`` setting (``module.function``)."""
    shared: tuple[str, ...] = ("jsonlog",)
    """Modules of ``handlers/_shared`` copied into the asset (default: the JSON logger)."""
    distributions: tuple[str, ...] = ()
    """Distributions to bundle, with the dependencies their installed metadata declares
    (whatever versions the user's environment resolved: python-dateutil 2 needs six, 4 needs
    tzdata). :default: none (``boto3`` comes with the Lambda runtime)"""

    def files(self) -> dict[str, Path]:
        """What the asset holds: its relative path (POSIX) to the file it is copied from."""
        files: dict[str, Path] = {}
        for name in _with_dependencies(self.distributions):
            files.update(_distribution_files(name))
        source = HANDLERS / self.folder
        if not source.is_dir():
            raise FileNotFoundError(f"no handler folder {self.folder!r} in {HANDLERS}")
        for path in sorted(source.rglob("*")):
            relative = PurePosixPath(path.relative_to(source).as_posix())
            if path.is_file() and _wanted(relative) and relative.as_posix() != "__init__.py":
                files[relative.as_posix()] = path
        for module in self.shared:
            shared = _SHARED / f"{module}.py"
            if not shared.is_file():
                raise FileNotFoundError(f"no shared module {module!r} in {_SHARED}")
            if f"{module}.py" in files:
                raise ValueError(f"{self.folder}/{module}.py would hide the shared {module!r}")
            files[f"{module}.py"] = shared
        return dict(sorted(files.items()))

    def build(self, root: Path | None = None) -> Path:
        """The asset folder, built once per content under ``root`` (default: this user's
        private ``trading-constructs-assets-<uid>`` in the temporary directory)."""
        return _build(self.files(), root)


API_KEY_ROTATION = HandlerAsset(
    folder="api_key_rotation", handler="api_key.handler", shared=("jsonlog", "secret_rotation")
)
"""Secrets Manager rotation of an API-key secret."""

POSTGRES_ROTATION = HandlerAsset(
    folder="postgres_rotation",
    handler="postgres.handler",
    shared=("jsonlog", "secret_rotation"),
    distributions=("pg8000",),
)
"""Secrets Manager rotation of PostgreSQL credentials, with pg8000 and its pure-Python
dependencies."""

MESH_CERTIFICATE_ISSUER = HandlerAsset(folder="mesh_certificate_issuer", handler="issuer.handler")
"""The App Mesh mutual-TLS certificate issuer (standard library and boto3 only)."""


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _with_dependencies(names: tuple[str, ...]) -> list[str]:
    """The distributions and, transitively, what their metadata requires, in a stable order.
    Requirements behind an ``extra`` are left out; one with another environment marker is
    taken when it is installed (the Lambda runtime is a current CPython, like the user's)."""
    found: dict[str, None] = {}
    pending = list(names)
    while pending:
        name = pending.pop(0)
        key = name.lower().replace("_", "-")
        if key in found:
            continue
        found[key] = None
        for requirement in metadata.distribution(name).requires or ():
            requirement_name, _, marker = requirement.partition(";")
            match = _REQUIREMENT_NAME.match(requirement_name)
            if match is None or "extra" in marker:
                continue
            if marker.strip() and not _installed(match.group(1)):
                continue
            pending.append(match.group(1))
    return sorted(found)


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _wanted(path: PurePosixPath) -> bool:
    if path.parts[0] == ".." or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
        return False
    return not (path.parts[0].endswith(".dist-info") and path.name in _SKIPPED_DIST_INFO)


def _distribution_files(name: str) -> Iterable[tuple[str, Path]]:
    """The installed files of a distribution, each checked against the hash its install
    record holds: bundled code is byte for byte what the installer (which checked the wheel's
    hash, against the lock file in this project) put there, never a file changed since."""
    distribution = metadata.distribution(name)
    for file in distribution.files or ():
        relative = PurePosixPath(file.as_posix())
        if _wanted(relative):
            path = Path(str(distribution.locate_file(file)))
            _check_recorded_hash(name, file, path)
            yield relative.as_posix(), path


def _check_recorded_hash(name: str, file: metadata.PackagePath, path: Path) -> None:
    if file.hash is None:  # the record itself, and files recorded without a hash
        return
    digest = hashlib.new(file.hash.mode, path.read_bytes()).digest()
    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != file.hash.value:
        raise ValueError(
            f"{path} differs from what {name} installed ({file.hash.mode} in its RECORD): "
            "reinstall the distribution before bundling it into a Lambda asset"
        )


def _digest(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for relative, source in files.items():
        content = source.read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def _cache_root() -> Path:
    """This user's own asset cache: ``trading-constructs-assets-<uid>`` in the temporary
    directory, made 0700 and refused unless this user owns it and no one else may write it, so
    no other local user can plant code in a function's asset."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir()) / f"trading-constructs-assets-{uid}"
    base.mkdir(mode=0o700, exist_ok=True)
    status = base.lstat()
    if base.is_symlink() or status.st_uid != uid or status.st_mode & 0o077:
        raise PermissionError(
            f"{base} is not a private folder of this user (owner {status.st_uid}, mode "
            f"{status.st_mode & 0o777:o}): remove it, or set TMPDIR to a folder of your own"
        )
    return base


def _folder_digest(folder: Path) -> str:
    """The digest of what a built folder holds, computed as ``_digest`` computes it."""
    files = {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() or path.is_symlink()
    }
    return _digest(dict(sorted(files.items())))


def _build(files: dict[str, Path], root: Path | None) -> Path:
    base = root or _cache_root()
    name = _digest(files)
    target = base / name
    if target.is_dir():
        # Reused only if it still holds exactly this content: anything else is rebuilt.
        if _folder_digest(target) == name:
            return target
        shutil.rmtree(target)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=base))
    try:
        for relative, source in files.items():
            destination = staging.joinpath(*PurePosixPath(relative).parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            os.chmod(destination, 0o644)  # Lambda reads the files as another user
        for folder in (staging, *(path for path in staging.rglob("*") if path.is_dir())):
            os.chmod(folder, 0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir() or _folder_digest(target) != name:
                raise  # another process won the race only if it built the same content
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
