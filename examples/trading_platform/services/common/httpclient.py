"""Bounded JSON GETs to peers: a slow or dead upstream costs a few seconds, never a hang."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit

from .http import HttpError

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024

# Service-to-service calls go through the mesh, never an HTTP(S)_PROXY from the environment.
DIRECT_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class UpstreamError(Exception):
    """The upstream could not be reached, was too slow, or answered badly.

    ``status`` is the upstream's HTTP status, or None when no HTTP answer arrived.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def get_json(
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    opener: urllib.request.OpenerDirector = DIRECT_OPENER,
    max_bytes: int = MAX_RESPONSE_BYTES,
) -> Any:
    """GET ``url`` and decode JSON.

    ``timeout`` bounds the connect and each read; the body must also arrive before the same
    deadline, so a trickling upstream costs at most about twice ``timeout``.
    """
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", **(headers or {})}, method="GET"
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            body = _read_bounded(response, deadline, max_bytes)
    except HTTPError as exc:
        exc.close()
        raise UpstreamError(f"upstream answered HTTP {exc.code}", status=exc.code) from None
    except UpstreamError:
        raise
    except (URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, URLError) else exc
        raise UpstreamError(f"upstream unreachable: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        raise UpstreamError("upstream answered invalid JSON", status=200) from None


def _read_bounded(response: Any, deadline: float, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise UpstreamError("upstream response too large", status=200)
        if time.monotonic() > deadline:
            raise UpstreamError("upstream timed out")
        chunks.append(chunk)


def to_http_error(exc: UpstreamError, *, upstream: str, symbol: str) -> HttpError:
    """Translate an upstream failure for our own client.

    404 stays 404 (unknown symbol); no answer or a 5xx "unavailable" becomes 503 with
    Retry-After, so the mesh and clients retry; anything else is a 502.
    """
    if exc.status == 404:
        return HttpError(404, f"unknown symbol: {symbol}")
    if exc.status is None or exc.status in (502, 503, 504):
        return HttpError(503, f"{upstream} unavailable", headers={"Retry-After": "1"})
    return HttpError(502, f"bad response from {upstream}")


def redact_url(url: str) -> str:
    """Scheme, host and path only: user info and query strings may hold credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
