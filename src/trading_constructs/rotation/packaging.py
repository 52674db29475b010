"""Lambda assets of the rotation handlers, built at synth time without Docker or network.

An asset is a folder holding a handler module and the installed files of the pure-Python
distributions it imports (found through ``importlib.metadata``), laid out as Lambda's
``/var/task``. The folder is deterministic, so CDK's content hash of it (which names the asset
in S3 and so decides whether a deployment updates the function) is the same on every run and
every machine with the same distribution versions:

- files are collected in sorted order, with their bytes only (no timestamps, modes or owners);
- byte code (``__pycache__``, ``*.pyc``) and the install records that differ per installer or
  machine (``RECORD``, ``INSTALLER``, ``REQUESTED``, ``direct_url.json``) are left out;
  ``METADATA`` and licences stay, as ``importlib.metadata.version()`` at import needs them;
- files installed outside ``site-packages`` (scripts in ``bin/``) are left out;
- the folder's name is the SHA-256 of that content, and it is written once to a temporary name
  and renamed into place, so a half-written folder is never used.

This module runs in the CDK app, never in Lambda; it uses the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path, PurePosixPath

__all__ = ["asset_files", "build_asset"]

HANDLERS = Path(__file__).parent
"""Where the handler modules live (this package)."""

_SKIPPED_DIST_INFO = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


def _wanted(path: PurePosixPath) -> bool:
    if path.parts[0] == ".." or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
        return False
    return not (path.parts[0].endswith(".dist-info") and path.name in _SKIPPED_DIST_INFO)


def _distribution_files(name: str) -> Iterable[tuple[str, Path]]:
    distribution = metadata.distribution(name)
    for file in distribution.files or ():
        relative = PurePosixPath(file.as_posix())
        if _wanted(relative):
            yield relative.as_posix(), Path(str(distribution.locate_file(file)))


def asset_files(handlers: Sequence[str], distributions: Sequence[str]) -> dict[str, Path]:
    """What an asset holds: its relative path (POSIX) to the file it is copied from.

    :param handlers: file names of handler modules in this package, such as ``'postgres.py'``.
    :param distributions: distributions to bundle, with their dependencies named explicitly
        (``'pg8000'``, ``'scramp'``...): only what is listed is copied.
    """
    files: dict[str, Path] = {}
    for name in distributions:
        for relative, source in _distribution_files(name):
            files[relative] = source
    for handler in handlers:
        source = HANDLERS / handler
        if not source.is_file():
            raise FileNotFoundError(f"no handler module {handler!r} in {HANDLERS}")
        files[handler] = source
    return dict(sorted(files.items()))


def _digest(files: dict[str, Path]) -> str:
    digest = hashlib.sha256()
    for relative, source in files.items():
        content = source.read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


def build_asset(
    handlers: Sequence[str], distributions: Sequence[str] = (), *, root: Path | None = None
) -> Path:
    """The folder of a Lambda asset: the handlers and the listed distributions, built once per
    content under ``root`` (default: ``trading-constructs-assets`` in the temporary directory)."""
    files = asset_files(handlers, distributions)
    base = root or Path(tempfile.gettempdir()) / "trading-constructs-assets"
    target = base / _digest(files)
    if target.is_dir():
        return target
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
            if not target.is_dir():  # another process won the race with the same content
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
