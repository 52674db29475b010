"""App Mesh is a plug-in: the core never imports it, and asking for it loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
import trading_constructs
from trading_constructs import Mesh, MeshTlsOptions
features = ("aws_cdk.aws_wafv2", "aws_cdk.aws_route53", "aws_cdk.aws_route53_targets",
            "aws_cdk.aws_certificatemanager")
print("edge features loaded:", ",".join(m for m in features if m in sys.modules) or "-")
Mesh.app_mesh(mtls=MeshTlsOptions())  # a spec only: still nothing of App Mesh loaded
loaded = sorted(
    m for m in sys.modules
    if m == "aws_cdk.aws_appmesh" or m.startswith(("trading_constructs.appmesh.backend",
                                                     "trading_constructs.mesh.certificates"))
)
print("loaded before a cluster:", ",".join(loaded) or "-")
from aws_cdk import App, Stack
trading_constructs.TradingCluster(Stack(App(), "S"), "P", mesh=Mesh.app_mesh())
print("loaded by a cluster:", "aws_cdk.aws_appmesh" in sys.modules)
"""


def test_importing_the_library_loads_neither_app_mesh_nor_edge_features() -> None:
    # GIVEN a fresh interpreter  WHEN it imports the library and describes an App Mesh
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(("loaded", "edge"))]
    # THEN WAF, Route 53 and ACM wait until an edge uses them, and nothing of App Mesh was
    # imported until a cluster built one, and then it was
    assert lines == [
        "edge features loaded: -",
        "loaded before a cluster: -",
        "loaded by a cluster: True",
    ], result.stdout


def test_core_modules_have_no_app_mesh_code() -> None:
    core = ROOT / "src" / "trading_constructs"
    offenders = [
        str(path.relative_to(core))
        for path in core.rglob("*.py")
        if "appmesh" not in path.relative_to(core).parts
        and "handlers" not in path.relative_to(core).parts
        and "aws_appmesh" in path.read_text()
    ]
    assert offenders == []
