"""The template graph helpers the deploy-readiness rules use, now shipped in the package
(``trading_constructs.readiness.graph``), and the tests' own assembly reading."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trading_constructs.readiness.graph import *  # noqa: F403
from trading_constructs.readiness.graph import Template


def read_manifest(outdir: Path | None) -> dict[str, Any] | None:
    if outdir is None or not (outdir / "manifest.json").exists():
        return None
    manifest: dict[str, Any] = json.loads((outdir / "manifest.json").read_text())
    return manifest


def iter_templates(
    sources: Mapping[str, Mapping[str, Template]],
) -> Iterable[tuple[str, Template]]:
    for source, templates in sources.items():
        for stack, template in templates.items():
            yield f"{source}/{stack}", template
