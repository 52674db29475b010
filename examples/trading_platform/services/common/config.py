"""Typed settings from environment variables; a bad value stops the service at startup."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# ECS waits stopTimeout (at most 120 s) after SIGTERM before SIGKILL; the grace must fit inside.
MAX_SHUTDOWN_GRACE_SECONDS = 119.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """An environment variable is missing or malformed; the message names it."""


class Env:
    """Read and validate environment variables, naming the variable in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get_str(self, name: str, default: str) -> str:
        """A string, falling back to ``default`` when unset or blank."""
        value = self._environ.get(name, "").strip()
        return value or default

    def get_optional(self, name: str) -> str | None:
        """A string, or None when unset or blank."""
        value = self._environ.get(name, "").strip()
        return value or None

    def get_int(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """An integer within ``[minimum, maximum]``."""
        raw = self.get_optional(name)
        if raw is None:
            return default
        try:
            value = int(raw, 10)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def get_optional_int(self, name: str) -> int | None:
        """An integer, or None when unset (used for optional seeds)."""
        if self.get_optional(name) is None:
            return None
        return self.get_int(name, 0, minimum=-(2**63), maximum=2**63 - 1)

    def get_float(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        """A finite float within ``[minimum, maximum]``."""
        raw = self.get_optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw}")
        return value

    def get_url(self, name: str, default: str) -> str:
        """An http(s) URL without a trailing slash, so paths can be appended."""
        value = self.get_str(name, default)
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises ValueError for a malformed port
        except ValueError:
            valid = False
        if not valid:  # the value is not echoed: a feed URL may carry a credential
            raise ConfigError(f"{name} must be an http(s) URL with a host")
        return value.rstrip("/")

    def get_list(self, name: str, default: str) -> list[str]:
        """A comma-separated list with blanks dropped."""
        return [item.strip() for item in self.get_str(name, default).split(",") if item.strip()]


@dataclass(frozen=True)
class CommonSettings:
    """Settings every service shares: where to listen, how to log, flush and stop."""

    service: str
    host: str
    port: int
    log_level: str
    metrics_interval: float
    shutdown_grace: float
    max_concurrent_requests: int

    @classmethod
    def from_env(cls, env: Env, *, service: str, default_port: int) -> CommonSettings:
        """Read ``BIND_HOST``, ``PORT``, ``LOG_LEVEL``, ``METRICS_INTERVAL_SECONDS`` and friends."""
        log_level = env.get_str("LOG_LEVEL", "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level}")
        return cls(
            service=service,
            # awsvpc tasks own their ENI, so listening on all addresses exposes nothing extra.
            host=env.get_str("BIND_HOST", "0.0.0.0"),
            port=env.get_int("PORT", default_port, minimum=0, maximum=65535),
            log_level=log_level,
            metrics_interval=env.get_float(
                "METRICS_INTERVAL_SECONDS", 60.0, minimum=0.05, maximum=3600.0
            ),
            shutdown_grace=env.get_float(
                "SHUTDOWN_GRACE_SECONDS", 20.0, minimum=0.0, maximum=MAX_SHUTDOWN_GRACE_SECONDS
            ),
            max_concurrent_requests=env.get_int(
                "MAX_CONCURRENT_REQUESTS", 64, minimum=1, maximum=10_000
            ),
        )
