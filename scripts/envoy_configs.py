"""Write the Envoy configuration of every meshed service, one JSON file each, for Envoy's own
``--mode validate``.

Usage: ``python scripts/envoy_configs.py OUT [--assembly CDK_OUT]``

- Without ``--assembly`` it synthesizes the example as ``cdk synth`` does with no context (the
  mutual-TLS mesh), with Node on the PATH for jsii; with it, it reads an existing cloud
  assembly (``cdk.out``, nested stage assemblies included).
- Each task definition's ``envoy`` container is started with ``--config-yaml <JSON>``: that
  JSON is written to ``OUT/configs/<stack>.<service>.json``.
- The certificate files Envoy reads are read from the same task definition: the directory the
  ``envoy`` container mounts read-only, and the files the ``mesh-tls-init`` container writes
  into that volume from the service's certificate secret (keys ``cert``, ``key``, ``ca``).
  ``OUT/mesh-tls.env`` says where (``MESH_TLS_DIR``, ``MESH_TLS_CERT``, ``MESH_TLS_KEY``,
  ``MESH_TLS_CA``, file names inside the directory), so the build workflow's ``envoy`` job puts
  throwaway certificates exactly there before it runs the official image on each file.

Fails (exit 1, saying why) when no configuration is found, when a configuration holds a
CloudFormation reference (Envoy would read the placeholder), when it names a file the init
container does not write, or when tasks disagree about where the files are.

Standard library only when reading an assembly; ``test/test_envoy_config.py`` runs it on the
example's assembly.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENVOY_CONTAINER = "envoy"
INIT_CONTAINER = "mesh-tls-init"
# the certificate secret's keys, and the variable mesh-tls.env names each file with
CERTIFICATE_KEYS = {"cert": "MESH_TLS_CERT", "key": "MESH_TLS_KEY", "ca": "MESH_TLS_CA"}


class ConfigError(Exception):
    """What keeps a configuration from being validated as it is."""


def synthesize_example(outdir: Path) -> Path:
    """The example as ``cdk synth`` builds it with no context, into ``outdir``."""
    sys.path.insert(0, str(ROOT))
    from examples.trading_platform.app import create_app

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    create_app(context=context, outdir=str(outdir)).synth()
    return outdir


def envoy_config(container: dict[str, Any]) -> dict[str, Any]:
    """The Bootstrap an ``envoy`` container is started with (``--config-yaml <JSON>``)."""
    command = container.get("Command") or []
    if len(command) < 2 or command[0] != "--config-yaml":
        raise ConfigError(f"the envoy container's command is not --config-yaml <JSON>: {command}")
    if not isinstance(command[1], str):
        raise ConfigError(
            "the configuration holds a CloudFormation reference, which only a deployment "
            f"resolves: {json.dumps(command[1])[:200]}"
        )
    config: dict[str, Any] = json.loads(command[1])
    return config


def filenames(value: Any) -> set[str]:
    """Every ``filename`` anywhere in a configuration."""
    if isinstance(value, dict):
        found = {value["filename"]} if isinstance(value.get("filename"), str) else set()
        return found.union(*(filenames(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(filenames(v) for v in value))
    return set()


def certificate_files(task_definition: dict[str, Any]) -> dict[str, str]:
    """The files the init container writes, as paths in the envoy container, by the
    certificate secret's key they hold (``cert``, ``key``, ``ca``)."""
    containers = {c["Name"]: c for c in task_definition["ContainerDefinitions"]}
    envoy, init = containers[ENVOY_CONTAINER], containers.get(INIT_CONTAINER)
    if init is None:
        raise ConfigError(f"no {INIT_CONTAINER} container writes Envoy's certificate files")
    mounts = [m for m in envoy.get("MountPoints", []) if m.get("ReadOnly")]
    if len(mounts) != 1:
        raise ConfigError(f"the envoy container mounts {len(mounts)} read-only volumes, not 1")
    (mount,) = mounts
    written = [m for m in init.get("MountPoints", []) if m["SourceVolume"] == mount["SourceVolume"]]
    if len(written) != 1:
        raise ConfigError(f"{INIT_CONTAINER} does not mount volume {mount['SourceVolume']!r}")
    keys = {}
    for secret in init.get("Secrets", []):
        suffix = secret["ValueFrom"]
        if isinstance(suffix, dict):  # Fn::Join of the secret's ARN and ':<key>::'
            suffix = "".join(p for p in suffix["Fn::Join"][1] if isinstance(p, str))
        key = re.search(r":(\w+)::$", suffix)
        if key is not None:
            keys[secret["Name"]] = key.group(1)
    files = {}
    script = " ".join(init.get("Command") or [])
    for variable, path in re.findall(r'"\$(\w+)" > (\S+)', script):
        relative = PurePosixPath(path).relative_to(written[0]["ContainerPath"])
        if variable in keys:
            files[keys[variable]] = str(PurePosixPath(mount["ContainerPath"]) / relative)
    if set(files) != set(CERTIFICATE_KEYS):
        raise ConfigError(
            f"{INIT_CONTAINER} writes {sorted(files)}, not {sorted(CERTIFICATE_KEYS)}"
        )
    return files


def collect(assembly: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every Envoy configuration in an assembly, by ``<stack>.<service>``, and the certificate
    files they read (which every task must agree on)."""
    configs: dict[str, dict[str, Any]] = {}
    files: dict[str, str] | None = None
    for path in sorted(assembly.glob("**/*.template.json")):
        stack = path.name.removesuffix(".template.json")
        resources = json.loads(path.read_text()).get("Resources", {})
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::ECS::TaskDefinition":
                continue
            definition = resource["Properties"]
            names = [c["Name"] for c in definition["ContainerDefinitions"]]
            if ENVOY_CONTAINER not in names:
                continue
            where = f"{stack}/{logical_id}"
            apps = [n for n in names if n not in (ENVOY_CONTAINER, INIT_CONTAINER)]
            name = f"{stack}.{apps[0] if len(apps) == 1 else logical_id}"
            try:
                (envoy,) = [
                    c for c in definition["ContainerDefinitions"] if c["Name"] == ENVOY_CONTAINER
                ]
                config = envoy_config(envoy)
                task_files = certificate_files(definition)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
            unknown = filenames(config) - set(task_files.values())
            if unknown:
                raise ConfigError(f"{where}: Envoy reads {sorted(unknown)}, which nothing writes")
            if files is not None and task_files != files:
                raise ConfigError(f"{where}: certificate files {task_files}, elsewhere {files}")
            files = task_files
            configs[name] = config
    if not configs or files is None:
        raise ConfigError(f"no task definition in {assembly} has an {ENVOY_CONTAINER!r} container")
    return configs, files


def write(assembly: Path, out: Path) -> list[Path]:
    """Write each configuration and ``mesh-tls.env``; returns the configurations' paths."""
    configs, files = collect(assembly)
    directories = {str(PurePosixPath(path).parent) for path in files.values()}
    if len(directories) != 1:
        raise ConfigError(f"the certificate files are in several directories: {files}")
    (configs_dir := out / "configs").mkdir(parents=True, exist_ok=True)
    written = []
    for name, config in configs.items():
        path = configs_dir / f"{name}.json"
        path.write_text(json.dumps(config, indent=2) + "\n")
        written.append(path)
    lines = [f"MESH_TLS_DIR={directories.pop()}"] + [
        f"{CERTIFICATE_KEYS[key]}={PurePosixPath(path).name}" for key, path in sorted(files.items())
    ]
    (out / "mesh-tls.env").write_text("\n".join(lines) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write configs/ and mesh-tls.env into")
    parser.add_argument("--assembly", type=Path, help="a cloud assembly (default: synthesize)")
    args = parser.parse_args(argv)
    synthesized = None
    try:
        if args.assembly is None:
            synthesized = Path(tempfile.mkdtemp(prefix="envoy-configs-"))
            assembly = synthesize_example(synthesized)
        else:
            assembly = args.assembly
        for path in write(assembly, args.out):
            print(path)
    except ConfigError as error:
        print(f"envoy_configs: {error}", file=sys.stderr)
        return 1
    finally:
        if synthesized is not None:
            shutil.rmtree(synthesized, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
