"""Consumer install test: install the built wheel into a clean virtualenv and synthesize an app.

Usage: ``python scripts/install_test.py DIST_DIR [--deps locked|lowest|newest]
[--extras assets,postgres] [--python PYTHON]`` (the ``test:install`` task runs it on
``dist/python``: locked with every extra, lowest bare and with each extra; the release task runs
that task).

What a user gets from ``pip install trading-constructs``, checked away from this repository:

1. a new virtualenv (not the development one) in a temporary folder;
2. the wheel from DIST_DIR (with the ``--extras`` asked for) installed into it with its
   dependencies from PyPI:
   ``--deps locked`` (default) pins them as ``uv.lock`` does; ``--deps lowest`` takes the lowest
   versions the wheel declares for its direct dependencies (``uv --resolution lowest-direct``),
   to try the declared floor of aws-cdk-lib; ``--deps newest`` resolves afresh, as a user's
   ``pip install trading-constructs`` does today;
3. a small CDK app, run by the CDK CLI (``cdk synth``) from the temporary folder with
   ``python -I`` (no repository on the path) and with no AWS credentials anywhere, its stacks
   naming their account, with the ``cdk.json`` context the README gives for that: it imports
   ``trading_constructs`` from that virtualenv, builds a cluster, a scanned repository, a
   rotated database secret (its rotation handler code and bundled driver, pg8000, come from the
   installed package and the ``postgres`` extra), a service whose image is built from a
   Dockerfile and copied in (the copy is cdk-ecr-deployment's, the ``assets`` extra),
   synthesizes, and checks the templates. Without an extra, the call that needs it must fail
   naming the extra. The CLI would fail calling AWS if the assembly left a lookup to it.

Needs ``uv`` (the development virtualenv has it), Node and the CDK CLI (``npm ci``) and PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONSUMER_APP = """
import json
import sys
from importlib import metadata
from pathlib import Path

import aws_cdk as cdk
import trading_constructs
from trading_constructs import (
    Mesh, MeshedFargateService, PlatformDashboard, Release, RotatingDbSecret, ScannedRepository,
    ServiceImage, TradingCluster, TradingEdge,
)

venv = Path(sys.argv[1]).resolve()
extras = set(sys.argv[2].split(",")) - {"none"}
where = Path(trading_constructs.__file__).resolve()
assert venv in where.parents, f"trading_constructs imported from {where}, not from {venv}"
assert (where.parent / "py.typed").is_file(), "py.typed is not installed"


def needs_extra(extra, build):
    \"\"\"Build with the extra installed; without it, the call must fail naming the extra.\"\"\"
    if extra in extras:
        return build()
    try:
        build()
    except ModuleNotFoundError as error:
        assert f"pip install 'trading-constructs[{extra}]'" in str(error), error
        print(f"without the {extra!r} extra: {error}")
        return None
    raise AssertionError(f"built without the {extra!r} extra")


app = cdk.App()
# the stacks name their account: cdk.json holds the region's AZs, so nothing is looked up
env = cdk.Environment(account="123456789012", region="us-east-1")
stack = cdk.Stack(app, "Consumer", env=env)
platform = TradingCluster(stack, "Platform")
images = ScannedRepository(stack, "Images", key=platform.key)
database = needs_extra(
    "postgres", lambda: RotatingDbSecret(stack, "Database", key=platform.key, vpc=platform.vpc)
)
image = ServiceImage.from_repository(images, tag="v1")
# a Dockerfile built at deploy time and copied in (cdk-ecr-deployment, the assets extra)
context = Path("quotes")
context.mkdir()
(context / "Dockerfile").write_text("FROM public.ecr.aws/docker/library/python:3.13-slim")
built = needs_extra("assets", lambda: ServiceImage.from_asset(
    stack, "QuotesImage", directory=context, vpc=platform.vpc, key=platform.key,
    repository=ScannedRepository(stack, "Built", key=platform.key,
                                 content_addressed_tag_prefix="cdk-"),
))
quotes = MeshedFargateService(stack, "Quotes", cluster=platform, name="quotes", port=8080,
                              image=built or image)
gateway = MeshedFargateService(stack, "Gateway", cluster=platform, name="gateway", port=8082,
                               image=image, public=True, backends=[quotes],
                               release=Release.blue_green())
edge = TradingEdge(stack, "Edge", cluster=platform, service=gateway, waf=True)
PlatformDashboard(stack, "Dashboard", services=[quotes, gateway], edge=edge)
# App Mesh (the plug-in) with weighted slots and mutual TLS, in a stack of its own
mesh_stack = cdk.Stack(app, "ConsumerMesh", env=env)
mesh_platform = TradingCluster(mesh_stack, "Platform", mesh=Mesh.app_mesh())
mesh_image = ServiceImage.from_repository(
    ScannedRepository(mesh_stack, "Images", key=mesh_platform.key), tag="v1"
)
prices = MeshedFargateService(mesh_stack, "Prices", cluster=mesh_platform, name="prices",
                              port=8080, image=mesh_image,
                              release=Release.weighted(blue=90, green=10))
MeshedFargateService(mesh_stack, "Orders", cluster=mesh_platform, name="orders", port=8081,
                     image=mesh_image, backends=[prices])
out = Path(app.synth().directory)
mesh_template = json.loads((out / "ConsumerMesh.template.json").read_text())
mesh_types = {resource["Type"] for resource in mesh_template["Resources"].values()}
assert {"AWS::AppMesh::VirtualNode", "AWS::AppMesh::Route"} <= mesh_types, sorted(mesh_types)

template = json.loads((out / "Consumer.template.json").read_text())
types = {resource["Type"] for resource in template["Resources"].values()}
wanted = {
    "AWS::EC2::VPC",
    "AWS::ECS::Cluster",
    "AWS::ECR::Repository",
    "AWS::Lambda::Function",
    "AWS::ECS::Service",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::WAFv2::WebACL",
    "AWS::CloudWatch::Dashboard",
}
if "postgres" in extras:
    wanted |= {"AWS::SecretsManager::Secret", "AWS::SecretsManager::RotationSchedule"}
if "assets" in extras:
    wanted.add("Custom::CDKECRDeployment")
assert wanted <= types, f"template lacks {sorted(wanted - types)}"
print(
    f"consumer app synthesized {len(template['Resources'])} resources with "
    f"trading-constructs {metadata.version('trading-constructs')} "
    f"(extras: {', '.join(sorted(extras)) or 'none'}) and "
    f"aws-cdk-lib {metadata.version('aws-cdk-lib')} from {venv}"
)
"""


def run(*command: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=cwd, env=env)


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise SystemExit("install_test: uv not found (run npm ci)")
    return found


def requirements(wheel: Path, extras: list[str]) -> list[str]:
    """The wheel's ``Requires-Dist`` (its declared dependency ranges): those of the package,
    and those of the extras asked for, without their ``extra == ...`` marker."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = HeaderParser().parsestr(archive.read(name).decode())
    found = []
    for requirement in meta.get_all("Requires-Dist") or []:
        spec, _, marker = requirement.partition(";")
        extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker)
        if extra is None:
            found.append(requirement)
        elif extra.group(1) in extras:
            found.append(spec.strip())
    return found


def install(wheel: Path, venv: Path, deps: str, python: str, work: Path, extras: list[str]) -> None:
    run(uv(), "venv", "--quiet", "--python", python, venv)
    target = venv / "bin" / "python"
    project = f"trading-constructs[{','.join(extras)}] @ {wheel.as_uri()}" if extras else wheel
    if deps == "locked":
        constraints = work / "constraints.txt"
        run(
            uv(), "export", "--frozen", "--no-dev", "--all-extras", "--no-emit-project",
            "--no-hashes", "--format", "requirements-txt", "--quiet", "-o", constraints,
        )  # fmt: skip
        run(uv(), "pip", "install", "--quiet", "--python", target, project, "-c", constraints)
    elif deps == "lowest":
        # the wheel's own requirements, named on the command line so that they count as direct
        run(
            uv(), "pip", "install", "--quiet", "--python", target,
            "--resolution", "lowest-direct", project, *requirements(wheel, extras),
        )  # fmt: skip
    else:
        run(uv(), "pip", "install", "--quiet", "--python", target, "--refresh", project)
    run(uv(), "pip", "list", "--python", target, "--quiet")


def readme_cdk_context() -> dict[str, object]:
    """The context of the README's ``cdk.json`` for stacks that name their account."""
    (block,) = re.findall(r"```json\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    context: dict[str, object] = json.loads(block)["context"]
    return context


def no_credentials(env: dict[str, str], home: Path) -> dict[str, str]:
    """``env`` less every way the AWS SDK finds credentials or a region: no keys, profile or
    config files, no instance or container metadata."""
    kept = {k: v for k, v in env.items() if not k.startswith(("AWS_", "CDK_DEFAULT_"))}
    return kept | {
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }


def synthesize(venv: Path, work: Path, extras: list[str]) -> None:
    app = work / "app"
    app.mkdir()
    (app / "app.py").write_text(CONSUMER_APP)
    command = f"python -I app.py {venv} {','.join(extras) or 'none'}"
    cdk_json = {"app": command, "context": readme_cdk_context()}
    (app / "cdk.json").write_text(json.dumps(cdk_json))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join(
        [str(venv / "bin"), str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")]
    )
    for tool, why in (("node", "jsii needs it"), ("cdk", "the CDK CLI synthesizes; npm ci")):
        if shutil.which(tool, path=env["PATH"]) is None:
            raise SystemExit(f"install_test: {tool} is not on the PATH ({why})")
    home = work / "home"
    home.mkdir()
    run("cdk", "synth", "--quiet", "--no-notices", "-o", "cdk.out", cwd=app,
        env=no_credentials(env, home))  # fmt: skip
    manifest = json.loads((app / "cdk.out" / "manifest.json").read_text())
    if manifest.get("missing"):
        raise SystemExit(f"install_test: the assembly leaves lookups: {manifest['missing']}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("dist", type=Path, help="folder holding the built wheel")
    parser.add_argument("--deps", choices=("locked", "lowest", "newest"), default="locked")
    parser.add_argument(
        "--extras", default="", help="extras to install, comma-separated (default: none)"
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter of the new venv")
    args = parser.parse_args(argv)
    extras = [extra for extra in args.extras.split(",") if extra]
    wheels = sorted(args.dist.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"install_test: {args.dist} holds {len(wheels)} wheels, want 1")
    with tempfile.TemporaryDirectory(prefix="install-test-") as tmp:
        work = Path(tmp)
        venv = work / "venv"
        install(wheels[0].resolve(), venv, args.deps, args.python, work, extras)
        synthesize(venv, work, extras)
    print(
        f"install_test: {wheels[0].name} installs ({args.deps} dependencies, extras: "
        f"{args.extras or 'none'}) and synthesizes with no AWS credentials"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
