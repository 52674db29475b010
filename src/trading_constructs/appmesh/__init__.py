"""The App Mesh plug-in: the backend (mesh, virtual nodes, routers, Envoy sidecars), mutual TLS
certificates and their issuer, and weighted blue/green slots (``WeightedRelease``, what
``Release.weighted(...)`` returns).

AWS ended support for App Mesh on 2026-09-30, so this is for describing and migrating App Mesh
platforms; new platforms use ECS Service Connect, the core mesh. Importing
``trading_constructs`` does not import App Mesh's constructs (``aws_cdk.aws_appmesh``): this
package loads them the first time one of its constructs is asked for, by ``Mesh.app_mesh()``'s
build or by name here.
"""

from __future__ import annotations

import importlib
from typing import Any

from .options import END_OF_SUPPORT, ENVOY_VERSION, MeshTlsOptions

# Names whose modules import aws_cdk.aws_appmesh or the certificate machinery: loaded on use.
_LAZY = {
    "AppMeshBackend": f"{__name__}.backend",
    "AppMeshMembership": f"{__name__}.backend",
    # the certificates and their issuer are the core mesh's, shared with App Mesh
    "MeshCertificates": "trading_constructs.mesh.certificates",
    "WeightedRelease": f"{__name__}.slots",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too, for dir(), IDEs and the API reference."""
    return sorted([*globals(), *_LAZY])


__all__ = [
    "END_OF_SUPPORT",
    "ENVOY_VERSION",
    "AppMeshBackend",
    "AppMeshMembership",
    "MeshCertificates",
    "MeshTlsOptions",
    "WeightedRelease",
]
