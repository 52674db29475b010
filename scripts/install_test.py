"""Consumer install test: install the built wheel into a clean virtualenv and synthesize an app.

Usage: ``python scripts/install_test.py DIST_DIR [--deps locked|lowest] [--python PYTHON]``
(the ``test:install`` task runs it on ``dist/python``; the release task runs that task).

What a user gets from ``pip install trading-constructs``, checked away from this repository:

1. a new virtualenv (not the development one) in a temporary folder;
2. the wheel from DIST_DIR installed into it with its dependencies from PyPI:
   ``--deps locked`` (default) pins them as ``uv.lock`` does; ``--deps lowest`` takes the lowest
   versions the wheel declares for its direct dependencies (``uv --resolution lowest-direct``),
   to try the declared floor of aws-cdk-lib; ``--deps newest`` resolves afresh, as a user's
   ``pip install trading-constructs`` does today;
3. a small CDK app, run from the temporary folder with ``python -I`` (no repository on the path),
   imports ``trading_constructs`` from that virtualenv, builds a cluster, a scanned repository
   and a rotated database secret (whose rotation handler code and bundled driver come from the
   installed package), a service whose image is built from a Dockerfile and copied in (the copy
   is cdk-ecr-deployment's, a runtime dependency), synthesizes, and checks the template.

Needs ``uv`` (the development virtualenv has it), Node on the PATH for jsii, and PyPI.
"""

from __future__ import annotations

import argparse
import os
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
where = Path(trading_constructs.__file__).resolve()
assert venv in where.parents, f"trading_constructs imported from {where}, not from {venv}"
assert (where.parent / "py.typed").is_file(), "py.typed is not installed"

app = cdk.App(outdir="cdk.out")
stack = cdk.Stack(app, "Consumer", env=cdk.Environment(region="us-east-1"))
platform = TradingCluster(stack, "Platform")
images = ScannedRepository(stack, "Images", key=platform.key)
RotatingDbSecret(stack, "Database", key=platform.key, vpc=platform.vpc)
image = ServiceImage.from_repository(images, tag="v1")
# a Dockerfile built at deploy time and copied in (cdk-ecr-deployment, a runtime dependency)
context = Path("quotes")
context.mkdir()
(context / "Dockerfile").write_text("FROM public.ecr.aws/docker/library/python:3.13-slim")
built = ServiceImage.from_asset(
    stack, "QuotesImage", directory=context, vpc=platform.vpc, key=platform.key,
    repository=ScannedRepository(stack, "Built", key=platform.key,
                                 content_addressed_tag_prefix="cdk-"),
)
quotes = MeshedFargateService(stack, "Quotes", cluster=platform, name="quotes", port=8080,
                              image=built)
gateway = MeshedFargateService(stack, "Gateway", cluster=platform, name="gateway", port=8082,
                               image=image, public=True, backends=[quotes],
                               release=Release.blue_green())
edge = TradingEdge(stack, "Edge", cluster=platform, service=gateway, waf=True)
PlatformDashboard(stack, "Dashboard", services=[quotes, gateway], edge=edge)
# App Mesh (the plug-in) with weighted slots and mutual TLS, in a stack of its own
mesh_stack = cdk.Stack(app, "ConsumerMesh", env=cdk.Environment(region="us-east-1"))
mesh_platform = TradingCluster(mesh_stack, "Platform", mesh=Mesh.app_mesh())
mesh_image = ServiceImage.from_repository(
    ScannedRepository(mesh_stack, "Images", key=mesh_platform.key), tag="v1"
)
prices = MeshedFargateService(mesh_stack, "Prices", cluster=mesh_platform, name="prices",
                              port=8080, image=mesh_image,
                              release=Release.weighted(blue=90, green=10))
MeshedFargateService(mesh_stack, "Orders", cluster=mesh_platform, name="orders", port=8081,
                     image=mesh_image, backends=[prices])
app.synth()
mesh_template = json.loads(Path("cdk.out/ConsumerMesh.template.json").read_text())
mesh_types = {resource["Type"] for resource in mesh_template["Resources"].values()}
assert {"AWS::AppMesh::VirtualNode", "AWS::AppMesh::Route"} <= mesh_types, sorted(mesh_types)

template = json.loads(Path("cdk.out/Consumer.template.json").read_text())
types = {resource["Type"] for resource in template["Resources"].values()}
wanted = {
    "AWS::EC2::VPC",
    "AWS::ECS::Cluster",
    "AWS::ECR::Repository",
    "AWS::SecretsManager::Secret",
    "AWS::SecretsManager::RotationSchedule",
    "AWS::Lambda::Function",
    "AWS::ECS::Service",
    "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::WAFv2::WebACL",
    "AWS::CloudWatch::Dashboard",
    "Custom::CDKECRDeployment",
}
assert wanted <= types, f"template lacks {sorted(wanted - types)}"
print(
    f"consumer app synthesized {len(template['Resources'])} resources with "
    f"trading-constructs {metadata.version('trading-constructs')} and "
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


def requirements(wheel: Path) -> list[str]:
    """The wheel's ``Requires-Dist`` (its declared dependency ranges)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = HeaderParser().parsestr(archive.read(name).decode())
    return list(meta.get_all("Requires-Dist") or [])


def install(wheel: Path, venv: Path, deps: str, python: str, work: Path) -> None:
    run(uv(), "venv", "--quiet", "--python", python, venv)
    target = venv / "bin" / "python"
    if deps == "locked":
        constraints = work / "constraints.txt"
        run(
            uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
            "--format", "requirements-txt", "--quiet", "-o", constraints,
        )  # fmt: skip
        run(uv(), "pip", "install", "--quiet", "--python", target, wheel, "-c", constraints)
    elif deps == "lowest":
        # the wheel's own requirements, named on the command line so that they count as direct
        run(
            uv(), "pip", "install", "--quiet", "--python", target,
            "--resolution", "lowest-direct", wheel, *requirements(wheel),
        )  # fmt: skip
    else:
        run(uv(), "pip", "install", "--quiet", "--python", target, "--refresh", wheel)
    run(uv(), "pip", "list", "--python", target, "--quiet")


def synthesize(venv: Path, work: Path) -> None:
    app = work / "app"
    app.mkdir()
    (app / "app.py").write_text(CONSUMER_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    if shutil.which("node", path=env["PATH"]) is None:
        raise SystemExit("install_test: node is not on the PATH (jsii needs it)")
    run(venv / "bin" / "python", "-I", "app.py", venv, cwd=app, env=env)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("dist", type=Path, help="folder holding the built wheel")
    parser.add_argument("--deps", choices=("locked", "lowest", "newest"), default="locked")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the new venv")
    args = parser.parse_args(argv)
    wheels = sorted(args.dist.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"install_test: {args.dist} holds {len(wheels)} wheels, want 1")
    with tempfile.TemporaryDirectory(prefix="install-test-") as tmp:
        work = Path(tmp)
        venv = work / "venv"
        install(wheels[0].resolve(), venv, args.deps, args.python, work)
        synthesize(venv, work)
    print(f"install_test: {wheels[0].name} installs ({args.deps} dependencies) and synthesizes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
