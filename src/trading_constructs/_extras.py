"""The package's extras: what only some apps need is installed with an extra
(``pip install 'trading-constructs[assets,postgres]'``), and the call that needs a missing one
says which extra to install, instead of an ``ImportError`` from deep inside a synth.

Standard library only: the asset builder (``assets.py``) asks here too.
"""

from __future__ import annotations

from importlib import metadata

EXTRAS: dict[str, str] = {
    "assets": "cdk-ecr-deployment",
    "postgres": "pg8000",
}
"""Each extra and the distribution it installs (pyproject.toml's optional dependencies)."""


def require_extra(extra: str, needed_by: str) -> None:
    """Raise ``ModuleNotFoundError`` naming the extra when its distribution is not installed.

    :param extra: the extra, a key of ``EXTRAS``.
    :param needed_by: what needs it, as the message starts: ``ServiceImage.from_asset
        'Stack/Image'``.
    """
    distribution = EXTRAS[extra]
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"{needed_by} needs {distribution}, which is not installed: it comes with the "
            f"'{extra}' extra, pip install 'trading-constructs[{extra}]'",
            name=distribution.replace("-", "_"),
        ) from None
