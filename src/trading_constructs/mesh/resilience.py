"""Resilience between services: retries, outlier ejection and connection limits (the circuit
breaker), and timeouts.

Envoy backs off between retries with fully jittered exponential backoff: the n-th retry waits
a random time up to ``base * (2^n - 1)``, never more than the maximum interval (25 ms and
250 ms unless set). Retries alone amplify an outage, so they come paired with outlier
detection, which ejects a task after consecutive 5xx responses (gateway errors and connection
failures count as 5xx), and with circuit-breaker limits that cap what one caller can send.

Not every mesh honours every field: the Envoy mutual-TLS mesh honours all of them; App Mesh has
no backoff field nor request and retry limits (its Envoy keeps Envoy's defaults); Service
Connect's proxy retries and ejects on its own, so it honours the timeouts alone. A field a mesh
cannot honour is refused when it is set to anything but its default (``unhonoured``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from aws_cdk import Duration

from .._validation import Problems, is_token

HTTP_RETRY_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error")
TCP_RETRY_EVENTS = ("connection-error",)

SERVICE_CONNECT_HONOURS: frozenset[str] = frozenset()
"""Service Connect honours none of the option groups: only the policy's two timeouts."""
SERVICE_CONNECT_NOTE = (
    "Service Connect's proxy retries twice on connection failures and 503s, with no backoff "
    "or per-try timeout, and ejects hosts by its own rules; it reads only per_request_timeout "
    "and idle_timeout"
)
APP_MESH_HONOURS: frozenset[str] = frozenset(
    {
        "retry.max_retries",
        "retry.per_retry_timeout",
        "retry.http_retry_events",
        "retry.tcp_retry_events",
        "outlier.max_server_errors",
        "outlier.interval",
        "outlier.base_ejection_duration",
        "outlier.max_ejection_percent",
        "connection_pool.max_connections",
        "connection_pool.max_pending_requests",
    }
)
"""App Mesh has no backoff fields and no request or retry limits for HTTP listeners."""
APP_MESH_NOTE = (
    "App Mesh has no backoff fields (its Envoy backs off 25 ms to 250 ms) and no request or "
    "concurrent-retry limits on an HTTP listener"
)


def _duration(problems: Problems, prop: str, value: Duration, low_ms: int, high_ms: int) -> None:
    """Envoy and App Mesh take whole milliseconds: a fraction is named here, not left to
    fail in CDK's conversion."""
    problems.millis(prop, value, low_ms, high_ms)


@dataclass(frozen=True, kw_only=True)
class RetryOptions:
    """Retries of a failed request (backoff is Envoy's own: jittered, exponential).

    Attributes:
        max_retries: Retries after the first try, 0 to 10. Default: 3.
        per_retry_timeout: Timeout of each try, 1 ms to 5 minutes. Default: 2 seconds.
        http_retry_events: HTTP outcomes that are retried. Default: server-error, gateway-error.
        tcp_retry_events: TCP outcomes that are retried. Default: connection-error.
        backoff_base_interval: The backoff's base interval, 1 ms to 10 seconds: the n-th retry
            waits a random time up to base * (2^n - 1). Default: 25 ms (Envoy's own).
        backoff_max_interval: The longest wait between tries, from backoff_base_interval to
            5 minutes. Default: 250 ms (Envoy's own: ten times the default base).
    """

    max_retries: int = 3
    per_retry_timeout: Duration = field(default_factory=lambda: Duration.seconds(2))
    http_retry_events: Sequence[str] = ("server-error", "gateway-error")
    tcp_retry_events: Sequence[str] = ("connection-error",)
    backoff_base_interval: Duration = field(default_factory=lambda: Duration.millis(25))
    backoff_max_interval: Duration = field(default_factory=lambda: Duration.millis(250))

    def __post_init__(self) -> None:
        problems = Problems("RetryOptions")
        problems.int_range("max_retries", self.max_retries, 0, 10)
        _duration(problems, "per_retry_timeout", self.per_retry_timeout, 1, 300_000)
        _duration(problems, "backoff_base_interval", self.backoff_base_interval, 1, 10_000)
        _duration(problems, "backoff_max_interval", self.backoff_max_interval, 1, 300_000)
        base, most = self.backoff_base_interval, self.backoff_max_interval
        if (
            not problems.problems
            and not base.is_unresolved()
            and not most.is_unresolved()
            and most.to_milliseconds() < base.to_milliseconds()
        ):
            problems.add(
                "backoff_max_interval",
                most.to_human_string(),
                f"at least backoff_base_interval={base.to_human_string()}",
            )
        for prop, events, allowed in (
            ("http_retry_events", self.http_retry_events, HTTP_RETRY_EVENTS),
            ("tcp_retry_events", self.tcp_retry_events, TCP_RETRY_EVENTS),
        ):
            if not isinstance(events, (list, tuple)) or any(e not in allowed for e in events):
                problems.add(prop, events, "a list of " + ", ".join(allowed))
            elif len(set(events)) != len(events):
                problems.add(prop, list(events), "each event at most once")
        if not problems.problems and not self.http_retry_events and not self.tcp_retry_events:
            problems.note(
                "http_retry_events and tcp_retry_events are both empty (allowed: at least one "
                "event; use max_retries=0 to turn retries off)"
            )
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class OutlierOptions:
    """Outlier detection: a host with consecutive server errors is ejected for a while.

    Attributes:
        max_server_errors: Consecutive 5xx that eject a host, 1 to 1000. Default: 5.
        interval: How often hosts are checked, 1 s to 5 minutes. Default: 10 seconds.
        base_ejection_duration: First ejection's length (it grows with each), 1 s to 1 hour.
            Default: 30 seconds.
        max_ejection_percent: Most hosts ejected at once, 1 to 100 %. Default: 50.
    """

    max_server_errors: int = 5
    interval: Duration = field(default_factory=lambda: Duration.seconds(10))
    base_ejection_duration: Duration = field(default_factory=lambda: Duration.seconds(30))
    max_ejection_percent: int = 50

    def __post_init__(self) -> None:
        problems = Problems("OutlierOptions")
        problems.int_range("max_server_errors", self.max_server_errors, 1, 1000)
        _duration(problems, "interval", self.interval, 1_000, 300_000)
        _duration(problems, "base_ejection_duration", self.base_ejection_duration, 1_000, 3_600_000)
        problems.int_range("max_ejection_percent", self.max_ejection_percent, 1, 100)
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class ConnectionPoolOptions:
    """Caps on what one caller's proxy sends to a service: the circuit breaker's limits.

    Attributes:
        max_connections: Concurrent connections, 1 to 10000. Default: 256.
        max_pending_requests: Requests queued while all connections are busy, 1 to 10000.
            Default: 512.
        max_requests: Requests in flight at once, 1 to 100000. Default: 1024 (Envoy's own).
        max_retries: Retries in flight at once across all tasks of the service, 0 to 10000:
            the cap that keeps retries from multiplying an outage. Default: 3 (Envoy's own).
    """

    max_connections: int = 256
    max_pending_requests: int = 512
    max_requests: int = 1024
    max_retries: int = 3

    def __post_init__(self) -> None:
        problems = Problems("ConnectionPoolOptions")
        problems.int_range("max_connections", self.max_connections, 1, 10_000)
        problems.int_range("max_pending_requests", self.max_pending_requests, 1, 10_000)
        problems.int_range("max_requests", self.max_requests, 1, 100_000)
        problems.int_range("max_retries", self.max_retries, 0, 10_000)
        problems.raise_if_any()


@dataclass(frozen=True, kw_only=True)
class ResiliencePolicy:
    """How calls to one service behave: retries, circuit breaking and timeouts.

    Attributes:
        retry: Retries. Default: ``RetryOptions()``.
        outlier: Outlier ejection. Default: ``OutlierOptions()``.
        connection_pool: Connection limits. Default: ``ConnectionPoolOptions()``.
        per_request_timeout: A request's whole budget, retries included, 1 ms to 1 hour.
            Default: 15 seconds.
        idle_timeout: An idle connection's lifetime, 1 s to 1 hour. Default: 5 minutes.
    """

    retry: RetryOptions = field(default_factory=RetryOptions)
    outlier: OutlierOptions = field(default_factory=OutlierOptions)
    connection_pool: ConnectionPoolOptions = field(default_factory=ConnectionPoolOptions)
    per_request_timeout: Duration = field(default_factory=lambda: Duration.seconds(15))
    idle_timeout: Duration = field(default_factory=lambda: Duration.minutes(5))

    def __post_init__(self) -> None:
        problems = Problems("ResiliencePolicy")
        for prop, kind in (
            ("retry", RetryOptions),
            ("outlier", OutlierOptions),
            ("connection_pool", ConnectionPoolOptions),
        ):
            if not isinstance(getattr(self, prop), kind):
                problems.add(prop, getattr(self, prop), kind.__name__)
        _duration(problems, "per_request_timeout", self.per_request_timeout, 1, 3_600_000)
        _duration(problems, "idle_timeout", self.idle_timeout, 1_000, 3_600_000)
        if not problems.problems and isinstance(self.retry, RetryOptions):
            tries = self.retry.max_retries + 1
            if not (
                self.per_request_timeout.is_unresolved()
                or self.retry.per_retry_timeout.is_unresolved()
                or is_token(self.retry.max_retries)
            ):
                budget = self.per_request_timeout.to_milliseconds()
                needed = self.retry.per_retry_timeout.to_milliseconds() * tries
                if needed > budget:
                    problems.note(
                        f"retry: {tries} tries of per_retry_timeout="
                        f"{self.retry.per_retry_timeout.to_human_string()} need {needed} ms, more "
                        f"than per_request_timeout={self.per_request_timeout.to_human_string()} "
                        "(allowed: retries that fit inside the request's timeout)"
                    )
        problems.raise_if_any()


def _plain(value: object) -> object:
    """A value comparable with a default: durations by milliseconds, sequences as tuples."""
    if isinstance(value, Duration):
        return None if value.is_unresolved() else value.to_milliseconds()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def set_fields(policy: ResiliencePolicy) -> list[str]:
    """The fields of ``policy``'s option groups that differ from their defaults, as
    'group.field' (a token counts as set: its value is not known)."""
    changed = []
    for group in ("retry", "outlier", "connection_pool"):
        options = getattr(policy, group)
        default = type(options)()
        for option in fields(options):
            value = _plain(getattr(options, option.name))
            if value is None or is_token(value) or value != _plain(getattr(default, option.name)):
                changed.append(f"{group}.{option.name}")
    return changed


def unhonoured(
    problems: Problems,
    prop: str,
    policy: ResiliencePolicy,
    honoured: frozenset[str] | None,
    mesh: str,
    why: str,
) -> None:
    """Refuse the fields of ``policy`` a mesh cannot honour (those set, not in ``honoured``;
    None honours every field), naming each and the reason, instead of ignoring them."""
    if honoured is None or not isinstance(policy, ResiliencePolicy):
        return
    refused = [name for name in set_fields(policy) if name not in honoured]
    if refused:
        problems.add(
            prop,
            f"ResiliencePolicy({', '.join(refused)} set)",
            f"a policy {mesh} honours whole: {why}; leave those fields at their defaults, or "
            "choose Mesh.mutual_tls(), which honours every field",
        )
