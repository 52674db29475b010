"""A small JSON HTTP server: routing, validation and JSON errors on every failure path.

Every response, including the ones ``http.server`` produces itself for malformed requests,
is JSON ``{"error": ..., "status": N}``; bad input never yields a 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

HEALTH_PATH = "/health"
ALLOWED_METHODS = "GET, HEAD"
REQUEST_ID_HEADER = "X-Request-Id"
MAX_QUERY_FIELDS = 16
MAX_DISCARDED_BODY = 64 * 1024

# Upper-cased tickers: a letter, then letters, digits or dots (BRK.B), ten characters at most.
SYMBOL_PATTERN = re.compile(r"[A-Z][A-Z0-9.]{0,9}")
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

logger = logging.getLogger(__name__)


class HttpError(Exception):
    """Raised by route handlers to answer with a JSON error."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Request:
    """What a route handler sees of a request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    request_id: str


@dataclass
class Response:
    """A JSON response."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


RouteHandler = Callable[[Request, dict[str, str]], Response]


def error_body(status: int, message: str) -> dict[str, Any]:
    """The one error shape every service returns."""
    return {"error": message, "status": status}


def normalize_symbol(raw: str) -> str | None:
    """Upper-case a ticker and check it; None when it cannot be a symbol."""
    symbol = raw.strip().upper()
    return symbol if SYMBOL_PATTERN.fullmatch(symbol) else None


def require_symbol(raw: str) -> str:
    """A valid upper-case symbol, or a 400."""
    symbol = normalize_symbol(raw)
    if symbol is None:
        raise HttpError(400, "invalid symbol: expected 1-10 characters A-Z, 0-9 or '.'")
    return symbol


def check_query(query: Mapping[str, list[str]], allowed: frozenset[str] = frozenset()) -> None:
    """Reject unknown or repeated query parameters, so typos fail loudly."""
    for name, values in query.items():
        if name not in allowed:
            raise HttpError(400, f"unexpected query parameter: {name[:40]}")
        if len(values) != 1:
            raise HttpError(400, f"query parameter {name} given more than once")


def int_param(
    query: Mapping[str, list[str]], name: str, default: int, *, minimum: int, maximum: int
) -> int:
    """An integer query parameter within bounds, or a 400 naming the bounds."""
    values = query.get(name)
    if not values:
        return default
    raw = values[0]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise HttpError(400, f"{name} must be an integer between {minimum} and {maximum}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise HttpError(400, f"{name} must be an integer between {minimum} and {maximum}")
    return value


class Router:
    """Map path patterns to GET handlers; path parameters are percent-decoded."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], RouteHandler]] = []

    def get(self, pattern: str, handler: RouteHandler) -> None:
        """Register ``handler`` for paths fully matching ``pattern`` (named groups = params)."""
        self._routes.append((re.compile(pattern), handler))

    def resolve(self, path: str) -> tuple[RouteHandler, dict[str, str]] | None:
        for pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match:
                return handler, {k: unquote(v) for k, v in match.groupdict().items()}
        return None


class InFlightTracker:
    """Count connections being served, remember the peak, and let shutdown wait for zero."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._current = 0
        self._peak = 0

    @property
    def current(self) -> int:
        with self._cond:
            return self._current

    def enter(self) -> None:
        with self._cond:
            self._current += 1
            self._peak = max(self._peak, self._current)

    def leave(self) -> None:
        with self._cond:
            self._current -= 1
            if self._current == 0:
                self._cond.notify_all()

    def take_peak(self) -> int:
        """The peak since the last call; the next interval starts from the current count."""
        with self._cond:
            peak = max(self._peak, self._current)
            self._peak = self._current
            return peak

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight or ``timeout`` passes; True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: self._current == 0, timeout=max(timeout, 0.0))


class JsonHttpServer(ThreadingHTTPServer):
    """A threading server that counts in-flight work and sheds load beyond a limit."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        router: Router,
        *,
        in_flight: InFlightTracker,
        max_concurrent_requests: int,
        success_log_level: int = logging.INFO,
    ) -> None:
        self.router = router
        self.success_log_level = success_log_level
        self.in_flight = in_flight
        self.admission = threading.BoundedSemaphore(max_concurrent_requests)
        super().__init__(address, JsonRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Count from accept, before the thread starts, so shutdown cannot miss a connection.
        self.in_flight.enter()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.in_flight.leave()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.in_flight.leave()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("connection handler failed")


class JsonRequestHandler(BaseHTTPRequestHandler):
    """Serve GET/HEAD through the router; everything else is a JSON 405."""

    server: JsonHttpServer
    # HTTP/1.0 closes after each response: no keep-alive races with the ALB or Envoy.
    protocol_version = "HTTP/1.0"
    server_version = "trading-platform"  # no Python version in the Server header
    timeout = 10  # seconds to send a request; stops slow clients pinning threads

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def __getattr__(self, name: str) -> Any:
        # http.server answers unknown methods with 501; a scanner's BREW should not look like a
        # server fault on 5xx alarms, so every method without a do_X method gets a 405.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        self._discard_body()
        self._dispatch(head=False, allowed=False)

    def _discard_body(self) -> None:
        """Read a small request body so closing the socket does not reset the response."""
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and 0 < int(length) <= MAX_DISCARDED_BODY:
            with contextlib.suppress(OSError):
                self.rfile.read(int(length))

    def _request_id(self) -> str:
        supplied = self.headers.get(REQUEST_ID_HEADER, "")
        return supplied if _REQUEST_ID_PATTERN.fullmatch(supplied) else uuid.uuid4().hex

    def _dispatch(self, *, head: bool, allowed: bool = True) -> None:
        started = time.monotonic()
        request_id = self._request_id()
        path = self.path.partition("?")[0]
        response = self._handle(request_id, allowed=allowed)
        self._write(response, request_id, head=head)
        if response.status >= 500:
            level = logging.WARNING
        elif response.status >= 400:
            level = logging.INFO
        else:
            level = logging.DEBUG if path == HEALTH_PATH else self.server.success_log_level
        logger.log(
            level,
            "request",
            extra={
                "method": self.command[:20],
                "path": path[:200],
                "status": response.status,
                "duration_ms": round((time.monotonic() - started) * 1000, 2),
                "request_id": request_id,
            },
        )

    def _handle(self, request_id: str, *, allowed: bool) -> Response:
        try:
            if not allowed:
                raise HttpError(
                    405,
                    f"method {self.command[:20]} not allowed",
                    headers={"Allow": ALLOWED_METHODS},
                )
            path, query = _split_target(self.path)
            if path == HEALTH_PATH:
                return Response(200, {"status": "ok"})
            resolved = self.server.router.resolve(path)
            if resolved is None:
                raise HttpError(404, "not found")
            handler, params = resolved
            if not self.server.admission.acquire(blocking=False):
                raise HttpError(503, "server busy", headers={"Retry-After": "1"})
            try:
                request = Request(self.command, path, query, self.headers, request_id)
                return handler(request, params)
            finally:
                self.server.admission.release()
        except HttpError as exc:
            return Response(exc.status, error_body(exc.status, exc.message), exc.headers)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            return Response(500, error_body(500, "internal error"))

    def _write(self, response: Response, request_id: str, *, head: bool) -> None:
        try:
            payload = json.dumps(response.body, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError):
            logger.exception("response not serializable", extra={"request_id": request_id})
            response = Response(500, error_body(500, "internal error"))
            payload = json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Connection", "close")
            self.send_header(REQUEST_ID_HEADER, request_id)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            logger.debug("client went away", extra={"request_id": request_id})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """JSON instead of the stock HTML page for requests http.server rejects itself."""
        try:
            reason = message or HTTPStatus(code).phrase
        except ValueError:
            reason = "error"
        self.close_connection = True
        payload = json.dumps(error_body(code, reason)).encode()
        logger.info("rejected request", extra={"status": code, "reason": reason})
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(payload)
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Access logs are written by ``_dispatch`` as JSON, with the duration."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format % args)

    def log_error(self, format: str, *args: Any) -> None:
        logger.warning(format % args)


def _split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """Split an origin-form request target into path and parsed query, or a 400."""
    path, _, query = target.partition("?")
    path = path.partition("#")[0]
    if not path.startswith("/"):
        raise HttpError(400, "request target must be an absolute path")
    query = query.partition("#")[0]
    if not query:  # Python 3.10's strict parse_qs rejects an empty string
        return path, {}
    try:
        parsed = parse_qs(
            query,
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except ValueError:
        raise HttpError(400, "malformed query string") from None
    return path, parsed
