"""Reading a cloud assembly (``cdk.out``) back from disk: its stacks, their templates, the
construct path of each resource and the acknowledgements recorded on constructs.

What CDK writes for every stack: the template, and the stack's construct metadata (in
``manifest.json`` or the stack's ``.metadata.json``), which holds each resource's logical ID
(``aws:cdk:logicalId``) and each acknowledgement (``aws:cdk:acknowledged-rules``) by construct
path. A stage's stacks are in a nested assembly (``assembly-<stage>/``), read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .graph import Template, resources

ACKNOWLEDGED_RULES = "aws:cdk:acknowledged-rules"
"""The metadata ``Validations.of(scope).acknowledge(...)`` records (aws-cdk-lib's
``Validations.ACKNOWLEDGED_RULES_METADATA_KEY``)."""

Acknowledgements = dict[str, dict[str, str]]
"""Reasons by construct path, then by rule id as acknowledged (``DeployReadiness::<rule>``)."""


@dataclass(frozen=True)
class StackInput:
    """One stack as the rules read it."""

    name: str
    """The stack's artifact id (its template's file name), unique in its assembly."""
    path: str
    """The stack's construct path."""
    template: Template
    template_path: str | None = None
    dependencies: tuple[str, ...] = ()
    resource_paths: Mapping[str, str] = field(default_factory=dict)
    acknowledgements: Acknowledgements = field(default_factory=dict)


class AssemblyError(ValueError):
    """A directory that is not a readable cloud assembly."""


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AssemblyError(f"{path}: cannot be read as JSON ({error})") from error


def resource_paths_of(template: Template, metadata: Mapping[str, Any]) -> dict[str, str]:
    """Each resource's construct path: its ``aws:cdk:path`` metadata in the template, else the
    construct whose ``aws:cdk:logicalId`` metadata names it."""
    found: dict[str, str] = {}
    for path, entries in metadata.items():
        for entry in entries if isinstance(entries, list) else []:
            if entry.get("type") == "aws:cdk:logicalId" and isinstance(entry.get("data"), str):
                found[entry["data"]] = path.lstrip("/")
    for logical_id, resource in resources(template).items():
        cdk_path = (resource.get("Metadata") or {}).get("aws:cdk:path")
        if isinstance(cdk_path, str):
            found[logical_id] = cdk_path
    return found


def acknowledgements_of(metadata: Mapping[str, Any]) -> Acknowledgements:
    """The acknowledgements recorded on constructs, by construct path."""
    found: Acknowledgements = {}
    for path, entries in metadata.items():
        for entry in entries if isinstance(entries, list) else []:
            data = entry.get("data")
            if entry.get("type") == ACKNOWLEDGED_RULES and isinstance(data, dict):
                found.setdefault(path.lstrip("/"), {}).update(
                    {str(rule): str(reason) for rule, reason in data.items()}
                )
    return found


def _stack(directory: Path, name: str, artifact: Mapping[str, Any]) -> StackInput:
    properties = artifact.get("properties") or {}
    template_path = directory / str(properties.get("templateFile", f"{name}.template.json"))
    template = _load(template_path)
    metadata = dict(artifact.get("metadata") or {})
    if artifact.get("additionalMetadataFile"):
        metadata.update(_load(directory / artifact["additionalMetadataFile"]))
    return StackInput(
        name=name,
        path=str(artifact.get("displayName") or name),
        template=template,
        template_path=str(template_path),
        dependencies=tuple(str(d) for d in artifact.get("dependencies") or ()),
        resource_paths=resource_paths_of(template, metadata),
        acknowledgements=acknowledgements_of(metadata),
    )


def read_assembly(directory: Path | str) -> Iterator[list[StackInput]]:
    """The stacks of an assembly, one list per assembly: the top one, then each stage's."""
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise AssemblyError(f"{directory}: no manifest.json (not a cloud assembly: run cdk synth)")
    artifacts = (_load(manifest_path).get("artifacts") or {}).items()
    yield [
        _stack(directory, name, artifact)
        for name, artifact in artifacts
        if artifact.get("type") == "aws:cloudformation:stack"
    ]
    for _, artifact in artifacts:
        if artifact.get("type") == "cdk:cloud-assembly":
            nested = (artifact.get("properties") or {}).get("directoryName")
            if nested:
                yield from read_assembly(directory / str(nested))


def stack_of_template(template_path: Path | str) -> StackInput:
    """The stack whose template this is, read with its metadata from the assembly around it
    (what a validation plugin is given is the templates' paths)."""
    template_path = Path(template_path).resolve()
    directory = template_path.parent
    manifest_path = directory / "manifest.json"
    artifacts = (_load(manifest_path).get("artifacts") or {}) if manifest_path.is_file() else {}
    for name, artifact in artifacts.items():
        template_file = (artifact.get("properties") or {}).get("templateFile")
        is_stack = artifact.get("type") == "aws:cloudformation:stack"
        if is_stack and (directory / str(template_file)).resolve() == template_path:
            return _stack(directory, name, artifact)
    name = template_path.name.removesuffix(".json").removesuffix(".template")
    template = _load(template_path)
    return StackInput(
        name=name,
        path=name,
        template=template,
        template_path=str(template_path),
        resource_paths=resource_paths_of(template, {}),
    )
