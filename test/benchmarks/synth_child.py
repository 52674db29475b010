"""One synthesis in a fresh process, for ``bench_scale.py`` to time from outside.

Run from the repository root::

    python test/benchmarks/synth_child.py CASE --outdir DIR [--services N] [--mesh NAME]
        [--modules a,b,...] [--count-roundtrips] [--profile FILE] [--result FILE]

CASE is one of:

- ``modules``: import trading_constructs and write the aws_cdk modules it loaded (nothing
  is synthesized); ``bench_scale.py`` passes that list to ``empty-with-imports``;
- ``empty``: an empty stack, importing nothing but ``aws_cdk`` itself;
- ``empty-with-imports``: the same after importing ``--modules`` (the floor any CDK Python app
  with the library's services pays);
- ``example``: the example platform with its cdk-nag packs, as ``cdk synth`` builds it;
- ``example-without-packs``: the example platform's stack alone, without cdk-nag;
- ``platform``: the multi-stack layout of ``--services`` services (see ``build_platform``).

Nothing here is imported before the clock the parent reads starts, except the standard
library: each case pays for exactly the imports it needs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
)
SERVICES_PER_STACK = 10
# What `cdk synth` adds to the app's context: path metadata on every resource and the
# CDKMetadata resource in each stack. The templates measured here are the ones it writes.
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:version-reporting": True}


def _context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return context | CLI_CONTEXT


def _empty(outdir: str, modules: list[str]) -> tuple[float, float]:
    for module in modules:
        importlib.import_module(module)
    from aws_cdk import App, Stack

    started = time.perf_counter()
    app = App(context=_context(), outdir=outdir)
    Stack(app, "Empty")
    built = time.perf_counter()
    app.synth()
    return built - started, time.perf_counter() - built


def _example(outdir: str, *, packs: bool) -> tuple[float, float]:
    sys.path.insert(0, str(ROOT))
    from aws_cdk import App, Environment

    from examples.trading_platform.app import add_compliance_checks
    from examples.trading_platform.platform_stack import TradingPlatformStack

    started = time.perf_counter()
    app = App(context=_context(), outdir=outdir)
    TradingPlatformStack(
        app,
        "TradingPlatform",
        env=Environment(region="us-east-1"),
        description="Trading analytics platform on ECS Fargate (trading-constructs example)",
    )
    if packs:
        add_compliance_checks(app)
    built = time.perf_counter()
    app.synth()
    return built - started, time.perf_counter() - built


def build_platform(app: Any, services: int, mesh_name: str) -> list[float]:
    """The multi-stack layout a large platform uses:

    - ``Platform``: TradingCluster (the chosen mesh), one ScannedRepository, one ApiKeySecret;
    - ``Services<k>``: services ``10k`` to ``10k+9``; each reads the API key secret and calls
      the service before it; in every group, the first two call each other (a mutual pair)
      and the third to fifth form a ring; a service whose number ends in 9 and the next one
      (across two stacks) call each other too, and the last three services of one group and
      the first of the next close a ring across stacks;
    - ``Edge``: a TradingEdge in front of the last service (public), which stays in its
      services stack;
    - ``Dashboard``: a PlatformDashboard over every service and the edge.

    Returns the seconds each service took to construct, in order: whether the 60th costs
    what the 10th did.
    """
    from aws_cdk import Environment, Stack
    from aws_cdk import aws_certificatemanager as acm

    from trading_constructs import (
        ApiKeySecret,
        Mesh,
        MeshedFargateService,
        PlatformDashboard,
        ScannedRepository,
        ServiceImage,
        ServiceSecret,
        TradingCluster,
        TradingEdge,
    )

    env = Environment(region="us-east-1")
    platform = Stack(app, "Platform", env=env)
    cluster = TradingCluster(platform, "Platform", mesh=Mesh.from_name(mesh_name))
    repository = ScannedRepository(platform, "Repository", key=cluster.key)
    api_key = ApiKeySecret(platform, "ApiKey", key=cluster.key, vpc=cluster.vpc)
    image = ServiceImage(repository=repository, tag="v1")
    built: list[Any] = []
    seconds: list[float] = []
    stack = platform
    for i in range(services):
        started = time.perf_counter()
        if i % SERVICES_PER_STACK == 0:
            stack = Stack(app, f"Services{i // SERVICES_PER_STACK}", env=env)
        built.append(
            MeshedFargateService(
                stack,
                f"Svc{i}",
                cluster=cluster,
                image=image,
                port=8080 + i,
                name=f"svc-{i}",
                secrets={"KEY": ServiceSecret(secret=api_key.secret, field="api_key")},
                backends=built[-1:],
                public=i == services - 1,
            )
        )
        _close_loops(built, i)
        seconds.append(time.perf_counter() - started)
    edge_stack = Stack(app, "Edge", env=env)
    edge = TradingEdge(
        edge_stack,
        "Edge",
        cluster=cluster,
        service=built[-1],
        certificate=acm.Certificate.from_certificate_arn(
            edge_stack, "Certificate", CERTIFICATE_ARN
        ),
    )
    PlatformDashboard(Stack(app, "Dashboard", env=env), "Dashboard", services=built, edge=edge)
    return seconds


def _close_loops(built: list[Any], i: int) -> None:
    """Calls against the chain's direction (each service already calls the one before): in
    each group a mutual pair (0 <-> 1) and a ring of three (2 -> 4 -> 3 -> 2); across groups
    a mutual pair (9 <-> the next 0) and a ring of four (8 -> the next 1 -> the next 0 -> 9
    -> 8)."""
    position = i % SERVICES_PER_STACK
    if position == 1:
        built[i - 1].add_backend(built[i])
        if i > SERVICES_PER_STACK:
            built[i - 3].add_backend(built[i])
    elif position == 4:
        built[i - 2].add_backend(built[i])
    elif position == 0 and i > 0:
        built[i - 1].add_backend(built[i])


def _platform(
    outdir: str, services: int, mesh_name: str, seconds: list[float]
) -> tuple[float, float]:
    from aws_cdk import App

    started = time.perf_counter()
    app = App(context=_context(), outdir=outdir)
    seconds += build_platform(app, services, mesh_name)
    built = time.perf_counter()
    app.synth()
    return built - started, time.perf_counter() - built


def _count_roundtrips() -> list[int]:
    """Count requests from Python to the jsii kernel (node), for the untimed warm-up round."""
    from jsii._kernel.providers import process

    count = [0]
    send = process._NodeProcess.send

    def counted(self: Any, request: Any, response_type: Any) -> Any:
        count[0] += 1
        return send(self, request, response_type)

    process._NodeProcess.send = counted  # type: ignore[method-assign]
    return count


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--outdir", default="cdk.out.bench")
    parser.add_argument("--services", type=int, default=1)
    parser.add_argument("--mesh", default="service-connect")
    parser.add_argument("--modules", default="")
    parser.add_argument("--count-roundtrips", action="store_true")
    parser.add_argument("--profile")
    parser.add_argument("--result")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    service_seconds: list[float] = []
    roundtrips = _count_roundtrips() if args.count_roundtrips else None
    if args.case == "modules":
        import trading_constructs  # noqa: F401

        result["modules"] = sorted(
            name
            for name in sys.modules
            if name.startswith("aws_cdk.") and name.count(".") == 1 and "._" not in name
        )
    else:
        cases = {
            "empty": lambda: _empty(args.outdir, []),
            "empty-with-imports": lambda: _empty(
                args.outdir, [m for m in args.modules.split(",") if m]
            ),
            "example": lambda: _example(args.outdir, packs=True),
            "example-without-packs": lambda: _example(args.outdir, packs=False),
            "platform": lambda: _platform(args.outdir, args.services, args.mesh, service_seconds),
        }
        run = cases[args.case]
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            construct_s, synth_s = profiler.runcall(run)
            profiler.dump_stats(args.profile)
        else:
            construct_s, synth_s = run()
        finished = time.perf_counter()
        result |= {
            "import_s": finished - started - construct_s - synth_s,
            "construct_s": construct_s,
            "synth_s": synth_s,
            "service_s": service_seconds,
        }
    if roundtrips is not None:
        result["roundtrips"] = roundtrips[0]
    if args.result:
        Path(args.result).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
