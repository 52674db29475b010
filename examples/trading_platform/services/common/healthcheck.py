"""Container health probe: ``python -m services.common.healthcheck [port]``.

The slim image has no curl; this is the command for both the Dockerfile HEALTHCHECK and the
ECS container health check. Exit 0 when ``/health`` answers 200, else 1.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_SECONDS = 3.0


def probe(port: int, host: str = "127.0.0.1") -> bool:
    """True when the local service answers ``GET /health`` with 200."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{host}:{port}/health", timeout=TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except OSError:  # URLError, HTTPError and timeouts are all OSErrors
        return False


def main(argv: list[str]) -> int:
    raw = argv[1] if len(argv) > 1 else os.environ.get("PORT", "8080")
    try:
        port = int(raw)
    except ValueError:
        return 1
    return 0 if probe(port) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
