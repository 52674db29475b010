"""The static Envoy configuration of one task in the mutual-TLS mesh: plain data, written at synth.

No control plane runs: each task's Envoy gets a v3 ``Bootstrap`` that names everything it
needs.

- Inbound, a listener on ``MESH_PORT`` terminates mutual TLS: it presents the service's
  certificate, requires a client certificate signed by the platform CA and accepts only the SANs
  of the services that declared this one as a backend. It forwards to the app on 127.0.0.1. A
  service nobody calls has no inbound listener at all.
- Outbound, one listener per backend on 127.0.0.1 (``OUTBOUND_PORTS``, in the order backends
  were declared) sends the app's plain HTTP to a cluster that resolves the backend's Cloud Map
  name to every healthy task (STRICT_DNS), originates mutual TLS with the caller's certificate,
  checks the backend's SAN, and applies the backend's ``ResiliencePolicy``: retries with
  jittered exponential backoff on another task, a per-try and a per-request timeout, outlier
  ejection and circuit-breaker limits.
- Access logs are JSON lines on standard output: a line per request (CloudWatch metric filters
  count requests, 5xx, retried requests and outbound TLS failures in them), a line per inbound
  connection (its TLS failure, if any: a handshake that fails never becomes a request, so only
  the listener's own log sees it), and a line per outlier ejection.
- A health listener on 127.0.0.1 answers 200 (and logs nothing): once it accepts a connection,
  Envoy has bound its listeners, and the app starts.
- No admin listener: nothing in the task can reconfigure or stop Envoy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration

from .certificates import CA_FILE, CA_VARIABLE, CERT_FILE, CERT_VARIABLE, KEY_FILE, KEY_VARIABLE
from .resilience import ResiliencePolicy

MESH_PORT = 15000
"""The port every task's Envoy takes mutual TLS on: the only port callers may reach."""
OUTBOUND_PORTS = range(15001, 15100)
"""The ports of the outbound listeners, one per backend, on 127.0.0.1."""
HEALTH_PORT = 15100
"""A listener on 127.0.0.1 that answers 200 once Envoy runs: the container health check's."""
LOCAL_APP_CLUSTER = "local_app"

_TYPE = "type.googleapis.com/envoy."
HCM = "envoy.filters.network.http_connection_manager"
TLS_SOCKET = "envoy.transport_sockets.tls"

# Envoy's retry_on names for our RetryOptions events (App Mesh's event names, kept).
RETRY_ON = {
    "server-error": "5xx",
    "gateway-error": "gateway-error",
    "client-error": "retriable-4xx",
    "stream-error": "refused-stream",
    "connection-error": "connect-failure",
}

ACCESS_LOG_FORMAT = {
    "start_time": "%START_TIME%",
    "listener": "%ROUTE_NAME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    "duration_ms": "%DURATION%",
    "upstream": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_failure": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}
"""One JSON line per request; ``upstream_failure`` holds an outbound TLS failure's reason."""

CONNECTION_LOG_FORMAT = {
    "start_time": "%START_TIME%",
    "listener": "inbound",
    "peer_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "peer_san": "%DOWNSTREAM_PEER_DNS_SAN%",
    "downstream_failure": "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
}
"""One JSON line per inbound connection; ``downstream_failure`` holds a failed handshake's
reason (no certificate, another CA, a caller not admitted, plain text)."""

EVENT_LOG = "/dev/stdout"
"""Where Envoy writes a JSON line per outlier ejection (``"action": "EJECT"``)."""


@dataclass(frozen=True)
class Backend:
    """A service this task calls: its Cloud Map name, the SAN its certificate carries, and the
    policy calls to it follow."""

    name: str
    dns_name: str
    resilience: ResiliencePolicy


@dataclass(frozen=True)
class TaskMesh:
    """What one task's Envoy needs to know: itself, who may call it, what it calls."""

    name: str
    app_port: int | None
    """The app's port; None for a worker, whose Envoy has outbound listeners only."""
    resilience: ResiliencePolicy
    callers: Sequence[str]
    """SANs of the services that declared this one as a backend."""
    backends: Sequence[Backend]
    certificates_in_environment: bool = False
    """Envoy reads its certificate, key and CA bundle from its environment (ECS secrets), not
    from the files an init container writes: the Control Tower profile's way (CT.ECS.PR.3)."""


def seconds(duration: Duration) -> str:
    """A protobuf JSON Duration ('0.025s'); tokens pass through for CloudFormation."""
    if duration.is_unresolved():
        raise ValueError("an Envoy duration must be known at synth")
    millis = duration.to_milliseconds()
    return f"{millis // 1000}.{millis % 1000:03d}s" if millis % 1000 else f"{millis // 1000}s"


def outbound_port(index: int) -> int:
    """The local port of the ``index``-th backend's outbound listener."""
    return OUTBOUND_PORTS[index]


def bootstrap(task: TaskMesh) -> dict[str, Any]:
    """The task's whole Envoy v3 Bootstrap, as the JSON Envoy reads."""
    # A worker is never called (the service refuses it as a backend): no inbound side.
    inbound = task.callers and task.app_port is not None
    listeners = [_inbound_listener(task)] if inbound else []
    listeners += [
        _outbound_listener(backend, outbound_port(index))
        for index, backend in enumerate(task.backends)
    ]
    listeners.append(_health_listener())
    return {
        "node": {"id": task.name, "cluster": task.name},
        "cluster_manager": {"outlier_detection": {"event_log_path": EVENT_LOG}},
        "static_resources": {
            "listeners": listeners,
            "clusters": [
                *([] if task.app_port is None else [_local_app_cluster(task)]),
                *(_backend_cluster(task, backend) for backend in task.backends),
            ],
        },
    }


def _router() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": f"{_TYPE}extensions.filters.http.router.v3.Router"},
    }


def _stdout_access_log(log_format: dict[str, str] = ACCESS_LOG_FORMAT) -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": f"{_TYPE}extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"json_format": log_format},
        },
    }


def _health_listener() -> dict[str, Any]:
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200}}
    manager = _connection_manager("health", route, Duration.seconds(60))
    del manager["typed_config"]["access_log"]
    return {
        "name": "health",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": HEALTH_PORT}},
        "filter_chains": [{"filters": [manager]}],
    }


def _connection_manager(
    stat_prefix: str, route: dict[str, Any], idle_timeout: Duration, **extra: Any
) -> dict[str, Any]:
    return {
        "name": HCM,
        "typed_config": {
            "@type": f"{_TYPE}extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            "route_config": {
                "name": stat_prefix,
                "virtual_hosts": [{"name": stat_prefix, "domains": ["*"], "routes": [route]}],
            },
            "http_filters": [_router()],
            "access_log": [_stdout_access_log()],
            "common_http_protocol_options": {"idle_timeout": seconds(idle_timeout)},
            **extra,
        },
    }


def _san_matchers(sans: Sequence[str]) -> list[dict[str, Any]]:
    return [{"san_type": "DNS", "matcher": {"exact": san}} for san in sorted(sans)]


def _common_tls(task: TaskMesh, peer_sans: Sequence[str]) -> dict[str, Any]:
    """Our certificate and key, and peers checked against the platform CA and their SANs."""
    cert, key, ca = (
        ({"environment_variable": v} for v in (CERT_VARIABLE, KEY_VARIABLE, CA_VARIABLE))
        if task.certificates_in_environment
        else ({"filename": f} for f in (CERT_FILE, KEY_FILE, CA_FILE))
    )
    return {
        # TLS 1.3 where both ends speak it (an upstream's default maximum is 1.2), 1.2 at least.
        "tls_params": {
            "tls_minimum_protocol_version": "TLSv1_2",
            "tls_maximum_protocol_version": "TLSv1_3",
        },
        "tls_certificates": [{"certificate_chain": cert, "private_key": key}],
        "validation_context": {
            "trusted_ca": ca,
            "match_typed_subject_alt_names": _san_matchers(peer_sans),
        },
    }


def _inbound_listener(task: TaskMesh) -> dict[str, Any]:
    """Mutual TLS on the mesh port, for the declared callers only, to the app on localhost."""
    route = {
        "match": {"prefix": "/"},
        "route": {
            "cluster": LOCAL_APP_CLUSTER,
            "timeout": seconds(task.resilience.per_request_timeout),
        },
    }
    return {
        "name": "inbound",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": MESH_PORT}},
        "access_log": [_stdout_access_log(CONNECTION_LOG_FORMAT)],
        "filter_chains": [
            {
                "filters": [
                    _connection_manager(
                        "inbound",
                        route,
                        task.resilience.idle_timeout,
                        # The app may read who called it from x-forwarded-client-cert.
                        forward_client_cert_details="SANITIZE_SET",
                        set_current_client_cert_details={"dns": True},
                    )
                ],
                "transport_socket": {
                    "name": TLS_SOCKET,
                    "typed_config": {
                        "@type": f"{_TYPE}extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "require_client_certificate": True,
                        "common_tls_context": _common_tls(task, task.callers),
                    },
                },
            }
        ],
    }


def _retry_policy(policy: ResiliencePolicy) -> dict[str, Any] | None:
    retry = policy.retry
    if retry.max_retries == 0:
        return None
    events = [*retry.http_retry_events, *retry.tcp_retry_events]
    return {
        "retry_on": ",".join(RETRY_ON[event] for event in events),
        "num_retries": retry.max_retries,
        "per_try_timeout": seconds(retry.per_retry_timeout),
        "retry_back_off": {
            "base_interval": seconds(retry.backoff_base_interval),
            "max_interval": seconds(retry.backoff_max_interval),
        },
        # Retry on another task than the ones that failed.
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": f"{_TYPE}extensions.retry.host.previous_hosts.v3."
                    "PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": 3,
    }


def _outbound_listener(backend: Backend, port: int) -> dict[str, Any]:
    """The app's plain HTTP to one backend, on 127.0.0.1 only."""
    action: dict[str, Any] = {
        "cluster": backend.name,
        "timeout": seconds(backend.resilience.per_request_timeout),
    }
    retry = _retry_policy(backend.resilience)
    if retry is not None:
        action["retry_policy"] = retry
    route = {"match": {"prefix": "/"}, "route": action}
    return {
        "name": f"outbound-{backend.name}",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    _connection_manager(
                        f"outbound-{backend.name}", route, backend.resilience.idle_timeout
                    )
                ]
            }
        ],
    }


def _endpoint(address: str, port: int) -> dict[str, Any]:
    return {"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}


def _local_app_cluster(task: TaskMesh) -> dict[str, Any]:
    assert task.app_port is not None, "a worker has no local app to send calls to"
    return {
        "name": LOCAL_APP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": LOCAL_APP_CLUSTER,
            "endpoints": [{"lb_endpoints": [_endpoint("127.0.0.1", task.app_port)]}],
        },
    }


def _backend_cluster(task: TaskMesh, backend: Backend) -> dict[str, Any]:
    """Every healthy task of the backend (Cloud Map answers with each, up to 8), reached with
    mutual TLS, ejected on consecutive errors, within the circuit breaker's limits."""
    policy = backend.resilience
    outlier, pool = policy.outlier, policy.connection_pool
    return {
        "name": backend.name,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_ONLY",
        "dns_refresh_rate": "5s",
        "respect_dns_ttl": True,
        "connect_timeout": "2s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": {
            "cluster_name": backend.name,
            "endpoints": [{"lb_endpoints": [_endpoint(backend.dns_name, MESH_PORT)]}],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": f"{_TYPE}extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": seconds(policy.idle_timeout)},
                "explicit_http_config": {"http_protocol_options": {}},
            }
        },
        "outlier_detection": {
            "consecutive_5xx": outlier.max_server_errors,
            "enforcing_consecutive_5xx": 100,
            "interval": seconds(outlier.interval),
            "base_ejection_time": seconds(outlier.base_ejection_duration),
            "max_ejection_percent": outlier.max_ejection_percent,
            # Only what the policy says ejects: not Envoy's success-rate statistics.
            "enforcing_success_rate": 0,
            "enforcing_consecutive_gateway_failure": 0,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": pool.max_connections,
                    "max_pending_requests": pool.max_pending_requests,
                    "max_requests": pool.max_requests,
                    "max_retries": pool.max_retries,
                }
            ]
        },
        "transport_socket": {
            "name": TLS_SOCKET,
            "typed_config": {
                "@type": f"{_TYPE}extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": backend.dns_name,
                "common_tls_context": _common_tls(task, [backend.dns_name]),
            },
        },
    }
