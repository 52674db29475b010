"""The App Mesh plug-in's options: plain values, importable without App Mesh's constructs."""

from __future__ import annotations

from ..mesh.options import MeshTlsOptions

END_OF_SUPPORT = "2026-09-30"
"""The day AWS ended support for App Mesh: its resources can no longer be created after it."""

ENVOY_VERSION = "v1.29.12.1-prod"
"""The App Mesh Envoy image a service runs by default."""

__all__ = ["END_OF_SUPPORT", "ENVOY_VERSION", "MeshTlsOptions"]
