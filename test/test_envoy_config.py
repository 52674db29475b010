"""Envoy's own API checks every Envoy configuration the tests synthesize.

Envoy cannot run here, so each configuration is read the way Envoy reads it: parsed strictly
into Envoy's v3 ``Bootstrap`` (``xds-protos``, generated from envoyproxy/data-plane-api) with
unknown fields refused, ``typed_config`` types resolved, then checked against the
protoc-gen-validate rules Envoy enforces on load (and Envoy's own duration bounds). The
build workflow also runs the official image's ``--mode validate`` over the example's
configurations (scripts/envoy_configs.py).

Then what the configuration means: routes reach defined clusters, certificates are the files
the init container writes where Envoy reads them, each service admits exactly its declared
callers and reaches exactly its backends' identities, the backend's ResiliencePolicy is what
the routes and clusters apply, the app's ``<BACKEND>_URL`` leads to the right listener, and
upstream names are the Cloud Map names the backends register under.

Configurations come from the example (``mutual_tls``: read from the template's ``envoy``
container) and from the construct stack of construct_platforms (``mutual_tls_platform``: from
``membership.bootstrap()`` and from the template, which must agree).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from aws_cdk import Stack
from conftest import SynthesizedApp
from construct_platforms import (
    MUTUAL_TLS_NAMESPACE,
    QUOTES_POLICY,
    MutualTlsPlatform,
    mutual_tls_platform,
)
from construct_support import of_type, readiness_violations
from envoy.config.bootstrap.v3.bootstrap_pb2 import Bootstrap
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.listener.v3.listener_pb2 import Listener

# The extensions the configurations name in typed_config: imported so their Any types resolve.
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format, symbol_database
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from validate import validate_pb2

from scripts import envoy_configs
from trading_constructs import MeshedFargateService, ResiliencePolicy
from trading_constructs.mesh.mutual_tls import ENVOY_DIGEST

__all__ = ["mutual_tls_platform"]  # the session fixture, used below

ROOT = Path(__file__).resolve().parents[1]
MESH_PORT = 15000
CERT_DIR_FILES = {"cert", "key", "ca"}
EXAMPLE_SERVICES = ("data-ingestion", "analytics-engine", "api-gateway")

# The construct stack's calls, as construct_platforms declares them (callee lists in the
# order they were declared, which is the order of the outbound ports).
CONSTRUCT_CALLS: dict[str, list[str]] = {
    "prices": [],
    "orders": ["prices"],
    "quotes": [],
    "gateway": ["quotes", "prices"],
    "beta": ["alpha"],
    "alpha": ["beta"],
    "ring-z": ["ring-x"],
    "ring-y": ["ring-z"],
    "ring-x": ["ring-y"],
    "audit": [],
    "sweeper": ["quotes"],
}
# Workers (port=None): they call, and nobody can call them.
CONSTRUCT_WORKERS = {"sweeper"}

# Our retry events and the Envoy retry_on condition each means (App Mesh's event names).
RETRY_ON = {
    "server-error": "5xx",
    "gateway-error": "gateway-error",
    "client-error": "retriable-4xx",
    "stream-error": "refused-stream",
    "connection-error": "connect-failure",
}
# Envoy's x-envoy-retry-on conditions for HTTP routes (router docs): anything else is refused.
ENVOY_RETRY_ON = {
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
}

_TYPE = "type.googleapis.com/"
# Which message each extension name takes in its place: Envoy picks the factory by the type,
# and a type no factory of that place takes is refused at load, though it parses.
EXTENSIONS = {
    (
        "listener filter",
        "envoy.filters.network.http_connection_manager",
    ): hcm_pb2.DESCRIPTOR.message_types_by_name["HttpConnectionManager"].full_name,
    ("http filter", "envoy.filters.http.router"): router_pb2.Router.DESCRIPTOR.full_name,
    ("access log", "envoy.access_loggers.stdout"): stream_pb2.StdoutAccessLog.DESCRIPTOR.full_name,
    ("listener transport socket", "envoy.transport_sockets.tls"): (
        tls_pb2.DownstreamTlsContext.DESCRIPTOR.full_name
    ),
    ("cluster transport socket", "envoy.transport_sockets.tls"): (
        tls_pb2.UpstreamTlsContext.DESCRIPTOR.full_name
    ),
    ("retry host predicate", "envoy.retry_host_predicates.previous_hosts"): (
        previous_hosts_pb2.PreviousHostsPredicate.DESCRIPTOR.full_name
    ),
    ("protocol options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"): (
        http_protocol_options_pb2.HttpProtocolOptions.DESCRIPTOR.full_name
    ),
}


# -- where the configurations come from -----------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One service's task: its Envoy configuration as the template holds it, the task
    definition around it, and what the service declared."""

    source: str
    name: str
    config: dict[str, Any]
    task_definition: dict[str, Any]
    template: dict[str, Any]
    namespace: str
    backends: list[str]
    """Declared callees, in declaration order."""
    callers: list[str]
    policies: dict[str, ResiliencePolicy]
    """Each service's ResiliencePolicy (what calls to it follow), by name."""
    certificate_id: str
    """The logical id of the secret holding the service's certificate."""

    def san(self, name: str) -> str:
        return f"{name}.{self.namespace}"

    @property
    def containers(self) -> dict[str, dict[str, Any]]:
        return {c["Name"]: c for c in self.task_definition["ContainerDefinitions"]}

    @cached_property
    def parsed(self) -> Bootstrap:
        return parse(self.config)

    def listeners(self) -> dict[str, Listener]:
        return {listener.name: listener for listener in self.parsed.static_resources.listeners}

    def clusters(self) -> dict[str, Cluster]:
        return {cluster.name: cluster for cluster in self.parsed.static_resources.clusters}


def parse(config: dict[str, Any]) -> Bootstrap:
    """Strictly, as Envoy does: an unknown field, a wrong type or an unknown Any type fails."""
    bootstrap = Bootstrap()
    json_format.ParseDict(config, bootstrap, ignore_unknown_fields=False)
    return bootstrap


def _placeholder(token: Any) -> str:
    """A reference inside a Fn::Join, as text that keeps the JSON around it valid."""
    return "${" + json.dumps(token, sort_keys=True, separators=(",", ":")).replace('"', "'") + "}"


def envoy_config(container: dict[str, Any]) -> dict[str, Any]:
    """The Bootstrap an ``envoy`` container is started with (``--config-yaml <JSON>``); a
    CloudFormation reference inside it becomes a ``${...}`` placeholder."""
    command = container["Command"]
    assert command[0] == "--config-yaml", command
    body = command[1]
    if isinstance(body, dict):
        separator, parts = body["Fn::Join"]
        assert separator == "", body
        body = "".join(p if isinstance(p, str) else _placeholder(p) for p in parts)
    config: dict[str, Any] = json.loads(body)
    return config


def _task_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task definitions with an Envoy, by the app container's name (the service's name)."""
    found = {}
    for resource in of_type(template, "AWS::ECS::TaskDefinition").values():
        names = [c["Name"] for c in resource["Properties"]["ContainerDefinitions"]]
        if "envoy" in names:
            (app,) = [n for n in names if n not in ("envoy", "mesh-tls-init")]
            found[app] = resource["Properties"]
    return found


def _namespace(template: dict[str, Any]) -> str:
    (namespace,) = of_type(template, "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    name: str = namespace["Properties"]["Name"]
    return name


def _callers(calls: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [c for c, callees in calls.items() if name in callees] for name in calls}


def _example_tasks(example: SynthesizedApp) -> dict[str, Task]:
    template = example.templates["TradingPlatform"]
    services = [c for c in example.app.node.find_all() if isinstance(c, MeshedFargateService)]
    calls = {s.name: [b.member.name for b in s.membership.backends] for s in services}  # type: ignore[attr-defined]
    callers = _callers(calls)
    policies = {s.name: s.membership.member.resilience for s in services}
    by_name = {s.name: s for s in services}
    definitions = _task_definitions(template)
    return {
        name: Task(
            source="example",
            name=name,
            config=envoy_config(_container(definition, "envoy")),
            task_definition=definition,
            template=template,
            namespace=_namespace(template),
            backends=calls[name],
            callers=callers[name],
            policies=policies,
            certificate_id=_certificate_id(by_name[name]),
        )
        for name, definition in definitions.items()
    }


def _construct_tasks(platform: MutualTlsPlatform) -> dict[str, Task]:
    callers = _callers(CONSTRUCT_CALLS)
    policies = {name: ResiliencePolicy() for name in CONSTRUCT_CALLS} | {"quotes": QUOTES_POLICY}
    tasks = {}
    for name, service in platform.services.items():
        definition = platform.resource(service.task_definition)["Properties"]
        tasks[name] = Task(
            source="construct",
            name=name,
            config=envoy_config(_container(definition, "envoy")),
            task_definition=definition,
            template=platform.template,
            namespace=MUTUAL_TLS_NAMESPACE,
            backends=CONSTRUCT_CALLS[name],
            callers=callers[name],
            policies=policies,
            certificate_id=_certificate_id(service),
        )
    return tasks


def _certificate_id(service: MeshedFargateService) -> str:
    certificate = service.membership.certificate  # type: ignore[attr-defined]
    return Stack.of(certificate).get_logical_id(certificate.node.default_child)


def _container(task_definition: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in task_definition["ContainerDefinitions"] if c["Name"] == name]
    return container


@pytest.fixture(scope="module")
def example_tasks(mutual_tls: SynthesizedApp) -> dict[str, Task]:
    assert mutual_tls.synth_error is None, mutual_tls.synth_error
    return _example_tasks(mutual_tls)


@pytest.fixture(scope="module")
def construct_tasks(mutual_tls_platform: MutualTlsPlatform) -> dict[str, Task]:
    return _construct_tasks(mutual_tls_platform)


TASKS = [("example", name) for name in EXAMPLE_SERVICES] + [
    ("construct", name) for name in CONSTRUCT_CALLS
]


@pytest.fixture(params=TASKS, ids=[f"{source}:{name}" for source, name in TASKS])
def task(request: pytest.FixtureRequest) -> Task:
    source, name = request.param
    tasks: dict[str, Task] = request.getfixturevalue(f"{source}_tasks")
    return tasks[name]


# -- every configuration is collected -------------------------------------------------------


def test_every_example_service_has_an_envoy_configuration(
    example_tasks: dict[str, Task],
) -> None:
    # GIVEN the example on the mutual-TLS mesh, THEN each of its services runs an Envoy
    # (a service added later would be checked too: it would fail here until listed)
    assert sorted(example_tasks) == sorted(EXAMPLE_SERVICES)
    for name, task in example_tasks.items():
        assert task.config["node"] == {"id": name, "cluster": name}


def test_construct_stack_declares_the_calls_the_tests_expect(
    mutual_tls_platform: MutualTlsPlatform,
) -> None:
    services = mutual_tls_platform.services
    assert sorted(services) == sorted(CONSTRUCT_CALLS)
    for name, service in services.items():
        membership = service.membership
        assert [b.member.name for b in membership.backends] == CONSTRUCT_CALLS[name]  # type: ignore[attr-defined]
        assert sorted(c.member.name for c in membership.callers) == sorted(  # type: ignore[attr-defined]
            _callers(CONSTRUCT_CALLS)[name]
        )
        assert membership.san == f"{name}.{MUTUAL_TLS_NAMESPACE}"  # type: ignore[attr-defined]
    assert services["quotes"].membership.member.resilience is QUOTES_POLICY


@pytest.mark.parametrize("name", list(CONSTRUCT_CALLS))
def test_bootstrap_is_what_the_template_starts_envoy_with(
    construct_tasks: dict[str, Task], mutual_tls_platform: MutualTlsPlatform, name: str
) -> None:
    # GIVEN a service's Bootstrap as the library builds it, THEN the template's envoy
    # container runs exactly that
    bootstrap = mutual_tls_platform.services[name].membership.bootstrap()  # type: ignore[attr-defined]
    assert construct_tasks[name].config == bootstrap
    # and it starts Envoy with nothing else that could change it
    container = _container(construct_tasks[name].task_definition, "envoy")
    assert container["Command"][2:] == ["--disable-hot-restart", "--log-level", "warn"]
    assert "EntryPoint" not in container


# -- Envoy's API: the configuration parses and validates as Envoy's would --------------------


WRAPPERS = {
    f"google.protobuf.{kind}Value"
    for kind in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
}
_NUMBERS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "float", "double"}
_NUMBERS |= {"fixed32", "fixed64", "sfixed32", "sfixed64"}
_NUMERIC = {"const", "lt", "lte", "gt", "gte", "in", "not_in", "ignore_empty"}
# protoc-gen-validate's patterns for its well-known regexes (validate.proto, KnownRegex)
_HEADER_REGEXES = {
    (validate_pb2.HTTP_HEADER_NAME, True): r"^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$",
    (validate_pb2.HTTP_HEADER_VALUE, True): r"^[^\x00-\x08\x0A-\x1F\x7F]*$",
    (validate_pb2.HTTP_HEADER_NAME, False): r"^[^\x00\n\r]*$",
    (validate_pb2.HTTP_HEADER_VALUE, False): r"^[^\x00\n\r]*$",
}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")
MAX_DURATION_SECONDS = 315_576_000_000  # Envoy's own bound on any Duration (and protobuf's)


def _nanos(duration: Any) -> int:
    return int(duration.seconds) * 1_000_000_000 + int(duration.nanos)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Rules:
    """protoc-gen-validate, as Envoy runs it on a configuration it loads: every rule on every
    field, into every Any. A rule this checker does not know is listed in ``unchecked`` (a
    test fails on it) rather than passed over in silence. Also Envoy's own check that every
    Duration is within 0 to 10,000 years, and the deprecated fields in use."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.unchecked: set[str] = set()
        self.deprecated: set[str] = set()
        """Deprecated fields and enum values in use, as 'Message.field': Envoy takes them with a
        warning (and a count in runtime.deprecated_feature_use) until it drops them."""

    def fail(self, path: str, what: str) -> None:
        self.violations.append(f"{path}: {what}")

    def message(self, message: Message, path: str) -> None:
        descriptor: Descriptor = message.DESCRIPTOR
        if descriptor.full_name == "google.protobuf.Any":
            inner = _unpack(message)
            self.message(inner, f"{path}<{inner.DESCRIPTOR.name}>")
            return
        if descriptor.full_name == "google.protobuf.Duration":
            seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
            if not (0 <= seconds <= MAX_DURATION_SECONDS and 0 <= nanos < 1_000_000_000):
                self.fail(path, f"duration {seconds}s {nanos}ns is out of range")
            return
        options = descriptor.GetOptions()
        if options.Extensions[validate_pb2.disabled] or options.Extensions[validate_pb2.ignored]:
            return
        for oneof in descriptor.oneofs:
            required = oneof.GetOptions().Extensions[validate_pb2.required]
            if required and message.WhichOneof(oneof.name) is None:
                self.fail(path, f"one of {oneof.name!r} is required")
        for field in descriptor.fields:
            self.field(message, field, f"{path}.{field.name}")

    def field(self, message: Message, field: FieldDescriptor, path: str) -> None:
        value = getattr(message, field.name)
        options = field.GetOptions()
        rules = (
            options.Extensions[validate_pb2.rules]
            if options.HasExtension(validate_pb2.rules)
            else None
        )
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if field.is_repeated:
            present = len(value) > 0
        elif field.has_presence:
            present = message.HasField(field.name)
        else:
            present = True
        self._deprecation(message, field, value, present)
        if field.containing_oneof is not None and not present:
            return  # the rules of a oneof's member apply when it is the one set
        if is_map:
            if rules is not None:
                self.map(rules, value, path)
            if field.message_type.fields_by_name["value"].message_type is not None:
                for key in value:
                    self.message(value[key], f"{path}[{key}]")
        elif field.is_repeated:
            if rules is not None:
                self.repeated(rules, field, value, path)
            if field.message_type is not None:
                for index, item in enumerate(value):
                    self.message(item, f"{path}[{index}]")
        else:
            if rules is not None:
                self.rules(rules, field, value, present, path)
            skip = rules is not None and rules.message.skip
            if field.message_type is not None and present and not skip:
                self.message(value, path)

    def _deprecation(
        self, message: Message, field: FieldDescriptor, value: Any, present: bool
    ) -> None:
        used = (
            present if (field.has_presence or field.is_repeated) else value != field.default_value
        )
        if used and field.GetOptions().deprecated:
            self.deprecated.add(f"{message.DESCRIPTOR.name}.{field.name}")
        if used and field.enum_type is not None and not field.is_repeated:
            number = value
            enum_value = field.enum_type.values_by_number.get(number)
            if enum_value is not None and enum_value.GetOptions().deprecated:
                self.deprecated.add(f"{field.enum_type.name}.{enum_value.name}")

    def rules(
        self, rules: Any, field: FieldDescriptor, value: Any, present: bool, path: str
    ) -> None:
        if rules.HasField("message") and rules.message.required and not present:
            self.fail(path, "is required")
        kind = rules.WhichOneof("type")
        if kind is None:
            return
        sub = getattr(rules, kind)
        if kind in ("duration", "any", "timestamp") and sub.required and not present:
            self.fail(path, "is required")
        if not present:
            return  # the rules of a message field apply to a value that is set
        if field.message_type is not None and field.message_type.full_name in WRAPPERS:
            value = value.value
        check: Callable[[Any, Any, str], None] | None = {
            "string": self.string,
            "enum": self.enum,
            "duration": self.duration,
            "any": self.any,
            "bool": self.boolean,
        }.get(kind, self.number if kind in _NUMBERS else None)
        if check is None:
            self.unchecked.update(f"{kind}.{f.name}" for f, _ in sub.ListFields())
            return
        if field.enum_type is not None:
            value = (value, field.enum_type)
        check(sub, value, path)

    def _set(self, sub: Any, known: set[str], kind: str) -> dict[str, Any]:
        found = {f.name: v for f, v in sub.ListFields()}
        self.unchecked.update(f"{kind}.{name}" for name in found if name not in known)
        return found

    def _bounds(self, rules: dict[str, Any], value: Any, path: str, show: str) -> None:
        lower = [(k, rules[k]) for k in ("gt", "gte") if k in rules]
        upper = [(k, rules[k]) for k in ("lt", "lte") if k in rules]

        def above(kind: str, bound: Any) -> bool:
            return bool(value > bound if kind == "gt" else value >= bound)

        def below(kind: str, bound: Any) -> bool:
            return bool(value < bound if kind == "lt" else value <= bound)

        ok = True
        if lower and upper:
            (low_kind, low), (high_kind, high) = lower[0], upper[0]
            inside = above(low_kind, low) and below(high_kind, high)
            # lt below gt: PGV's exclusive range, a value outside it
            ok = inside if high > low else above(low_kind, low) or below(high_kind, high)
        elif lower:
            ok = above(*lower[0])
        elif upper:
            ok = below(*upper[0])
        if not ok:
            self.fail(path, f"{show} is outside {dict(lower + upper)}")
        if "const" in rules and value != rules["const"]:
            self.fail(path, f"{show} is not {rules['const']}")
        if "in" in rules and value not in list(rules["in"]):
            self.fail(path, f"{show} is not one of {list(rules['in'])}")
        if "not_in" in rules and value in list(rules["not_in"]):
            self.fail(path, f"{show} is one of {list(rules['not_in'])}")

    def number(self, sub: Any, value: Any, path: str) -> None:
        rules = self._set(sub, _NUMERIC, "number")
        if rules.get("ignore_empty") and value == 0:
            return
        self._bounds(rules, value, path, str(value))

    def boolean(self, sub: Any, value: Any, path: str) -> None:
        rules = self._set(sub, {"const"}, "bool")
        if "const" in rules and value != rules["const"]:
            self.fail(path, f"{value} is not {rules['const']}")

    def duration(self, sub: Any, value: Any, path: str) -> None:
        rules = self._set(sub, _NUMERIC | {"required"}, "duration")
        nanos = {
            k: (_nanos(v) if k not in ("in", "not_in") else [_nanos(d) for d in v])
            for k, v in rules.items()
            if k != "required"
        }
        self._bounds(nanos, _nanos(value), path, f"{_nanos(value)} ns")

    def enum(self, sub: Any, value: Any, path: str) -> None:
        number, enum_type = value
        rules = self._set(sub, {"const", "defined_only", "in", "not_in"}, "enum")
        if rules.get("defined_only") and number not in enum_type.values_by_number:
            self.fail(path, f"{number} is not a value of {enum_type.full_name}")
        self._bounds({k: v for k, v in rules.items() if k != "defined_only"}, number, path, "")

    def any(self, sub: Any, value: Any, path: str) -> None:
        rules = self._set(sub, {"required", "in", "not_in"}, "any")
        if "in" in rules and value.type_url not in rules["in"]:
            self.fail(path, f"{value.type_url} is not one of {list(rules['in'])}")
        if "not_in" in rules and value.type_url in rules["not_in"]:
            self.fail(path, f"{value.type_url} is one of {list(rules['not_in'])}")

    def string(self, sub: Any, value: str, path: str) -> None:
        known = {
            "const",
            "len",
            "min_len",
            "max_len",
            "len_bytes",
            "min_bytes",
            "max_bytes",
            "pattern",
            "prefix",
            "suffix",
            "contains",
            "not_contains",
            "in",
            "not_in",
            "well_known_regex",
            "strict",
            "hostname",
            "ip",
            "ipv4",
            "ipv6",
            "address",
            "ignore_empty",
        }
        rules = self._set(sub, known, "string")
        if rules.get("ignore_empty") and value == "":
            return
        size, octets = len(value), len(value.encode())
        checks = {
            "const": lambda r: value == r,
            "len": lambda r: size == r,
            "min_len": lambda r: size >= r,
            "max_len": lambda r: size <= r,
            "len_bytes": lambda r: octets == r,
            "min_bytes": lambda r: octets >= r,
            "max_bytes": lambda r: octets <= r,
            "pattern": lambda r: re.search(r, value) is not None,
            "prefix": lambda r: value.startswith(r),
            "suffix": lambda r: value.endswith(r),
            "contains": lambda r: r in value,
            "not_contains": lambda r: r not in value,
            "in": lambda r: value in list(r),
            "not_in": lambda r: value not in list(r),
            "hostname": lambda r: not r or _HOSTNAME.match(value) is not None,
            "ip": lambda r: not r or _is_ip(value),
            "ipv4": lambda r: not r or (_is_ip(value) and "." in value),
            "ipv6": lambda r: not r or (_is_ip(value) and ":" in value),
            "address": lambda r: not r or _is_ip(value) or _HOSTNAME.match(value) is not None,
            "well_known_regex": lambda r: (
                re.match(_HEADER_REGEXES[(r, sub.strict)], value) is not None
            ),
        }
        for name, rule in rules.items():
            if name in checks and not checks[name](rule):
                self.fail(path, f"{value!r} breaks string rule {name}={rule!r}")

    def repeated(self, rules: Any, field: FieldDescriptor, value: Any, path: str) -> None:
        kind = rules.WhichOneof("type")
        if kind != "repeated":
            self.unchecked.add(f"{kind} on a repeated field")
            return
        found = self._set(
            rules.repeated,
            {"min_items", "max_items", "unique", "items", "ignore_empty"},
            "repeated",
        )
        if found.get("ignore_empty") and not value:
            return
        if "min_items" in found and len(value) < found["min_items"]:
            self.fail(path, f"{len(value)} items, fewer than {found['min_items']}")
        if "max_items" in found and len(value) > found["max_items"]:
            self.fail(path, f"{len(value)} items, more than {found['max_items']}")
        if found.get("unique") and len({str(v) for v in value}) != len(value):
            self.fail(path, "items are not unique")
        if "items" in found:
            for index, item in enumerate(value):
                self.rules(found["items"], field, item, True, f"{path}[{index}]")

    def map(self, rules: Any, value: Any, path: str) -> None:
        kind = rules.WhichOneof("type")
        if kind != "map":
            self.unchecked.add(f"{kind} on a map field")
            return
        found = self._set(rules.map, {"min_pairs", "max_pairs", "ignore_empty"}, "map")
        if "min_pairs" in found and len(value) < found["min_pairs"]:
            self.fail(path, f"{len(value)} pairs, fewer than {found['min_pairs']}")
        if "max_pairs" in found and len(value) > found["max_pairs"]:
            self.fail(path, f"{len(value)} pairs, more than {found['max_pairs']}")


def _unpack(any_message: Any) -> Message:
    """An Any's message, of a type one of the imported modules defines."""
    name = any_message.TypeName()
    cls = symbol_database.Default().GetSymbol(name)
    inner: Message = cls()
    assert any_message.Unpack(inner), name
    return inner


def validate(config: dict[str, Any]) -> Rules:
    """The configuration parsed strictly, then every protoc-gen-validate rule checked."""
    rules = Rules()
    rules.message(parse(config), "")
    return rules


def test_configuration_parses_and_validates_as_envoy_would(task: Task) -> None:
    # GIVEN a task's Envoy configuration, WHEN Envoy's own API reads it strictly
    # THEN it parses (no unknown field, no wrong type, every Any resolved) and breaks no
    # validation rule Envoy enforces on load
    rules = validate(task.config)
    assert rules.violations == []
    assert rules.unchecked == set(), "rules this checker cannot check yet"


# Deprecated in Envoy's API (for the DNS cluster extension, envoy.extensions.clusters.dns.v3.
# DnsCluster, selected with cluster_type): Envoy still takes them, with a warning per use.
DEPRECATED_IN_USE = {"Cluster.dns_refresh_rate", "Cluster.respect_dns_ttl"}


def test_configuration_uses_no_deprecated_field_but_the_known_ones(task: Task) -> None:
    # a new deprecated field fails here; when the clusters move to the DNS cluster
    # extension, so does the known list (empty it then)
    expected = DEPRECATED_IN_USE if task.backends else set()
    assert validate(task.config).deprecated == expected


def test_configuration_uses_only_extensions_envoy_takes_there(task: Task) -> None:
    # typed_config is an Any: it parses with any type, but Envoy's factory for each
    # extension takes one type, in its place
    used = set()
    for listener in task.config["static_resources"]["listeners"]:
        place = "listener"
        used |= {
            ("access log", log["name"], log["typed_config"]["@type"])
            for log in listener.get("access_log", [])
        }
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                config = network_filter["typed_config"]
                used.add(("listener filter", network_filter["name"], config["@type"]))
                used |= {
                    ("http filter", f["name"], f["typed_config"]["@type"])
                    for f in config["http_filters"]
                }
                used |= {
                    ("access log", log["name"], log["typed_config"]["@type"])
                    for log in config.get("access_log", [])
                }
                for host in config["route_config"]["virtual_hosts"]:
                    for route in host["routes"]:
                        retry = route.get("route", {}).get("retry_policy", {})
                        used |= {
                            ("retry host predicate", p["name"], p["typed_config"]["@type"])
                            for p in retry.get("retry_host_predicate", [])
                        }
            if "transport_socket" in chain:
                socket = chain["transport_socket"]
                used.add(
                    (f"{place} transport socket", socket["name"], socket["typed_config"]["@type"])
                )
    for cluster in task.config["static_resources"]["clusters"]:
        if "transport_socket" in cluster:
            socket = cluster["transport_socket"]
            used.add(("cluster transport socket", socket["name"], socket["typed_config"]["@type"]))
        for key, options in cluster.get("typed_extension_protocol_options", {}).items():
            used.add(("protocol options", key, options["@type"]))
    assert bool(used) == bool(task.config["static_resources"]["listeners"])
    for place, name, type_url in sorted(used):
        assert (place, name) in EXTENSIONS, f"{name} is not an extension of a {place}"
        assert type_url == _TYPE + EXTENSIONS[(place, name)], (place, name, type_url)


# -- negative controls: the checks refuse what Envoy would ----------------------------------


def _hcm(config: dict[str, Any], listener: int = 0) -> dict[str, Any]:
    typed: dict[str, Any] = config["static_resources"]["listeners"][listener]["filter_chains"][0][
        "filters"
    ][0]["typed_config"]
    return typed


def _route(config: dict[str, Any], listener: int = 0) -> dict[str, Any]:
    route: dict[str, Any] = _hcm(config, listener)["route_config"]["virtual_hosts"][0]["routes"][0][
        "route"
    ]
    return route


def _backend_cluster(config: dict[str, Any]) -> dict[str, Any]:
    cluster: dict[str, Any] = next(
        c for c in config["static_resources"]["clusters"] if c["type"] == "STRICT_DNS"
    )
    return cluster


def _tls(config: dict[str, Any]) -> dict[str, Any]:
    typed: dict[str, Any] = _backend_cluster(config)["transport_socket"]["typed_config"]
    return typed


def _rename(mapping: dict[str, Any], old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


# (what, how the configuration is broken, words the parser's refusal holds)
UNPARSABLE: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "misspelt field in HttpConnectionManager",
        lambda c: _rename(_hcm(c), "stat_prefix", "stat_prefx"),
        'has no field named "stat_prefx"',
    ),
    (
        "misspelt field in UpstreamTlsContext",
        lambda c: _rename(_tls(c), "sni", "server_name"),
        'has no field named "server_name"',
    ),
    (
        "misspelt field in a route's retry policy",
        lambda c: _rename(_route(c)["retry_policy"], "num_retries", "max_retries"),
        'has no field named "max_retries"',
    ),
    (
        "misspelt field in HttpProtocolOptions",
        lambda c: _rename(
            _backend_cluster(c)["typed_extension_protocol_options"][
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
            ],
            "explicit_http_config",
            "explicit_http",
        ),
        'has no field named "explicit_http"',
    ),
    (
        "misspelt field at the top",
        lambda c: _rename(c, "static_resources", "static_resource"),
        'has no field named "static_resource"',
    ),
    (
        "wrong type: a string for a bool",
        lambda c: _backend_cluster(c).update(respect_dns_ttl="true"),
        "Expected true or false without quotes",
    ),
    (
        "wrong type: words for a port",
        lambda c: c["static_resources"]["listeners"][0]["address"]["socket_address"].update(
            port_value="outbound"
        ),
        "port_value",
    ),
    (
        "wrong type: a fraction for a retry count",
        lambda c: _route(c)["retry_policy"].update(num_retries=2.5),
        "num_retries",
    ),
    (
        "wrong type: a string for a message",
        lambda c: _tls(c)["common_tls_context"].update(tls_params="TLSv1_2"),
        "tls_params",
    ),
    (
        "unknown enum value",
        lambda c: _backend_cluster(c).update(lb_policy="LEAST_REQUESTS"),
        "Invalid enum value LEAST_REQUESTS",
    ),
    (
        "malformed duration: milliseconds",
        lambda c: _route(c).update(timeout="250ms"),
        "timeout",
    ),
    (
        "malformed duration: words",
        lambda c: _route(c)["retry_policy"].update(per_try_timeout="2 seconds"),
        "per_try_timeout",
    ),
    (
        "malformed duration: a number",
        lambda c: _backend_cluster(c).update(connect_timeout=2),
        "connect_timeout",
    ),
    (
        "unknown typed_config type",
        lambda c: _hcm(c)["http_filters"][0]["typed_config"].update(
            {"@type": _TYPE + "envoy.extensions.filters.http.router.v3.Routr"}
        ),
        "Can not find message descriptor",
    ),
]

# (what, how the configuration is broken, words the violation holds): it parses; Envoy's
# validation refuses it on load.
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("empty stat prefix", lambda c: _hcm(c).update(stat_prefix=""), "stat_prefix"),
    (
        "zero connect timeout",
        lambda c: _backend_cluster(c).update(connect_timeout="0s"),
        "connect_timeout",
    ),
    (
        "port above 65535",
        lambda c: c["static_resources"]["listeners"][0]["address"]["socket_address"].update(
            port_value=70000
        ),
        "port_value",
    ),
    (
        "zero backoff base interval",
        lambda c: _route(c)["retry_policy"]["retry_back_off"].update(base_interval="0s"),
        "base_interval",
    ),
    ("negative route timeout", lambda c: _route(c).update(timeout="-1s"), "timeout"),
    (
        "a route without its cluster",
        lambda c: _route(c).pop("cluster"),
        "cluster_specifier",
    ),
    (
        "an endpoint without an address",
        lambda c: _backend_cluster(c)["load_assignment"]["endpoints"][0]["lb_endpoints"][0][
            "endpoint"
        ]["address"]["socket_address"].update(address=""),
        "address",
    ),
    (
        "a SAN matcher without a type",
        lambda c: _tls(c)["common_tls_context"]["validation_context"][
            "match_typed_subject_alt_names"
        ][0].pop("san_type"),
        "san_type",
    ),
]


@pytest.fixture(scope="module")
def control(construct_tasks: dict[str, Task]) -> dict[str, Any]:
    """A configuration with every kind of part: gateway calls quotes (a retry policy with
    backoff) and prices."""
    config = construct_tasks["gateway"].config
    assert validate(config).violations == []
    return config


def _cases(table: list[tuple[str, Callable[[dict[str, Any]], None], str]]) -> list[Any]:
    """A table's rows as (mutate, words) cases, each named by what it breaks."""
    return [pytest.param(mutate, words, id=what) for what, mutate, words in table]


def _broken(control: dict[str, Any], mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A copy of the control configuration with one part broken; the control stays whole."""
    broken = copy.deepcopy(control)
    mutate(broken)
    return broken


@pytest.mark.parametrize(("mutate", "words"), _cases(UNPARSABLE))
def test_parser_refuses_a_broken_configuration(
    control: dict[str, Any], mutate: Callable[[dict[str, Any]], None], words: str
) -> None:
    with pytest.raises(json_format.ParseError, match=re.escape(words)):
        parse(_broken(control, mutate))


@pytest.mark.parametrize(("mutate", "words"), _cases(INVALID))
def test_validation_refuses_what_envoy_refuses_on_load(
    control: dict[str, Any], mutate: Callable[[dict[str, Any]], None], words: str
) -> None:
    broken = _broken(control, mutate)
    parse(broken)  # it parses...
    violations = validate(broken).violations
    assert any(words in v for v in violations), violations  # ...and Envoy would refuse it


def test_extension_check_refuses_a_type_its_place_does_not_take(
    construct_tasks: dict[str, Task],
) -> None:
    # An UpstreamTlsContext where the router filter belongs parses (its fields are empty)
    task = construct_tasks["gateway"]
    broken = copy.deepcopy(task.config)
    _hcm(broken)["http_filters"][0]["typed_config"]["@type"] = (
        _TYPE + tls_pb2.UpstreamTlsContext.DESCRIPTOR.full_name
    )
    parse(broken)
    swapped = replace(task, config=broken)
    with pytest.raises(AssertionError, match=re.escape("envoy.filters.http.router")):
        test_configuration_uses_only_extensions_envoy_takes_there(swapped)


# -- what the configuration means -----------------------------------------------------------


def _connection_manager(listener: Listener) -> Any:
    (chain,) = listener.filter_chains
    (network_filter,) = chain.filters
    manager = hcm_pb2.HttpConnectionManager()
    assert network_filter.typed_config.Unpack(manager)
    return manager


def _routes(listener: Listener) -> list[Any]:
    manager = _connection_manager(listener)
    return [route for host in manager.route_config.virtual_hosts for route in host.routes]


def _route_actions(listener: Listener) -> list[Any]:
    """The listener's routes that forward (not those Envoy answers itself)."""
    return [route.route for route in _routes(listener) if route.WhichOneof("action") == "route"]


def _outbound(task: Task) -> dict[str, tuple[Listener, Any]]:
    """Each local listener that forwards, by the cluster its one route sends to, with that
    route (a listener Envoy answers on itself, such as a health listener, is none)."""
    found = {}
    for listener in task.listeners().values():
        actions = _route_actions(listener)
        if listener.address.socket_address.address == "127.0.0.1" and actions:
            (action,) = actions
            found[action.cluster] = (listener, action)
    return found


def _unpack_socket(socket: Any, kind: type[Message]) -> Any:
    assert socket.name == "envoy.transport_sockets.tls"
    context = kind()
    assert socket.typed_config.Unpack(context)
    return context


def certificate_files(task: Task) -> dict[str, tuple[str, str]]:
    """The files the init container writes into the volume Envoy mounts, by their path as Envoy
    sees it: (the secret they come from, the secret's JSON key). Read from the task
    definition: volumes, mount points, the init command and its secrets."""
    envoy, init = task.containers["envoy"], task.containers["mesh-tls-init"]
    volumes = {volume["Name"] for volume in task.task_definition["Volumes"]}
    (mount,) = envoy["MountPoints"]
    assert mount["ReadOnly"] is True and mount["SourceVolume"] in volumes
    (written,) = [m for m in init["MountPoints"] if m["SourceVolume"] == mount["SourceVolume"]]
    assert written["ReadOnly"] is False
    # Envoy starts once the files are written
    assert {"ContainerName": "mesh-tls-init", "Condition": "SUCCESS"} in envoy["DependsOn"]
    assert init["Essential"] is False
    keys = {}
    for secret in init["Secrets"]:
        separator, (reference, suffix) = secret["ValueFrom"]["Fn::Join"]
        assert separator == ""
        key = re.fullmatch(r":(\w+)::", suffix)
        assert key is not None, suffix
        keys[secret["Name"]] = (json.dumps(reference, sort_keys=True), key.group(1))
    assert init["EntryPoint"] == ["sh", "-c"]
    (script,) = init["Command"]
    files = {}
    for variable, path in re.findall(r'printf "%s" "\$(\w+)" > (\S+)', script):
        relative = PurePosixPath(path).relative_to(written["ContainerPath"])
        files[str(PurePosixPath(mount["ContainerPath"]) / relative)] = keys[variable]
    return files


def _files_by_key(task: Task) -> dict[str, str]:
    files = certificate_files(task)
    by_key = {key: path for path, (_, key) in files.items()}
    assert set(by_key) == CERT_DIR_FILES and len(by_key) == len(files)
    return by_key


def test_every_route_names_a_defined_cluster(task: Task) -> None:
    resources = task.parsed.static_resources
    clusters = task.clusters()
    listeners = task.listeners()
    assert len(clusters) == len(resources.clusters), "cluster names are unique"
    assert len(listeners) == len(resources.listeners), "listener names are unique"
    ports = [listener.address.socket_address.port_value for listener in resources.listeners]
    assert len(set(ports)) == len(ports), "each listener has a port of its own"
    routed = set()
    for listener in resources.listeners:
        for route in _routes(listener):
            # a route forwards to a cluster, or Envoy answers it itself
            assert route.WhichOneof("action") in ("route", "direct_response"), route
        for action in _route_actions(listener):
            assert action.WhichOneof("cluster_specifier") == "cluster"
            assert action.cluster in clusters, (listener.name, action.cluster)
            routed.add(action.cluster)
    # no cluster is left unused but the app's, in a task nobody calls (a worker has none)
    worker = task.source == "construct" and task.name in CONSTRUCT_WORKERS
    assert set(clusters) - routed == (set() if task.callers or worker else {"local_app"})


def test_certificates_are_the_files_the_init_container_writes_where_envoy_mounts_them(
    task: Task,
) -> None:
    # GIVEN the files the init container writes into the volume Envoy mounts read-only
    files = certificate_files(task)
    by_key = _files_by_key(task)
    # THEN every file the configuration names is one of them
    assert envoy_configs.filenames(task.config) <= set(files)
    # AND each TLS context presents this service's certificate and key and trusts the CA
    contexts = []
    for listener in task.listeners().values():
        contexts += [
            _unpack_socket(chain.transport_socket, tls_pb2.DownstreamTlsContext).common_tls_context
            for chain in listener.filter_chains
            if chain.HasField("transport_socket")
        ]
    contexts += [
        _unpack_socket(cluster.transport_socket, tls_pb2.UpstreamTlsContext).common_tls_context
        for cluster in task.clusters().values()
        if cluster.HasField("transport_socket")
    ]
    assert len(contexts) == len(task.backends) + bool(task.callers)
    for context in contexts:
        (certificate,) = context.tls_certificates
        assert certificate.certificate_chain.filename == by_key["cert"]
        assert certificate.private_key.filename == by_key["key"]
        assert context.validation_context.trusted_ca.filename == by_key["ca"]


def test_each_task_writes_its_own_services_certificate(task: Task) -> None:
    # all three files come from one secret, and it is this service's certificate
    (source,) = {reference for reference, _ in certificate_files(task).values()}
    assert json.loads(source) == {"Ref": task.certificate_id}


def test_inbound_admits_exactly_the_services_that_declared_it_a_backend(task: Task) -> None:
    listeners = task.listeners()
    if not task.callers:
        # nobody calls it: nothing listens beyond the task's loopback
        assert "inbound" not in listeners
        assert {listener.address.socket_address.address for listener in listeners.values()} <= {
            "127.0.0.1"
        }
        return
    inbound = listeners["inbound"]
    assert inbound.address.socket_address.address == "0.0.0.0"
    assert inbound.address.socket_address.port_value == MESH_PORT
    (chain,) = inbound.filter_chains
    context = _unpack_socket(chain.transport_socket, tls_pb2.DownstreamTlsContext)
    matchers = context.common_tls_context.validation_context.match_typed_subject_alt_names
    assert all(m.matcher.WhichOneof("match_pattern") == "exact" for m in matchers)
    assert sorted((m.san_type, m.matcher.exact) for m in matchers) == sorted(
        (common_pb2.SubjectAltNameMatcher.DNS, task.san(caller)) for caller in task.callers
    )
    # and it forwards to the app on the task's loopback, within the service's own timeout
    (action,) = _route_actions(inbound)
    local = task.clusters()[action.cluster]
    assert local.type == Cluster.STATIC
    (locality,) = local.load_assignment.endpoints
    (endpoint,) = locality.lb_endpoints
    (mapping,) = task.containers[task.name]["PortMappings"]
    address = endpoint.endpoint.address.socket_address
    assert (address.address, address.port_value) == ("127.0.0.1", mapping["ContainerPort"])
    own = task.policies[task.name]
    assert action.timeout.ToMilliseconds() == own.per_request_timeout.to_milliseconds()
    manager = _connection_manager(inbound)
    idle = manager.common_http_protocol_options.idle_timeout
    assert idle.ToMilliseconds() == own.idle_timeout.to_milliseconds()


def test_every_listener_beyond_loopback_requires_a_client_certificate(task: Task) -> None:
    by_key = _files_by_key(task)
    exposed = [
        listener
        for listener in task.listeners().values()
        if listener.address.socket_address.address != "127.0.0.1"
    ]
    assert len(exposed) == bool(task.callers)
    for listener in exposed:
        assert not listener.HasField("default_filter_chain")
        assert listener.filter_chains, "no chain"
        for chain in listener.filter_chains:  # every chain: none takes plain text
            assert not chain.HasField("filter_chain_match")
            context = _unpack_socket(chain.transport_socket, tls_pb2.DownstreamTlsContext)
            assert context.HasField("require_client_certificate")
            assert context.require_client_certificate.value is True
            common = context.common_tls_context
            assert (
                common.tls_params.tls_minimum_protocol_version >= common_pb2.TlsParameters.TLSv1_2
            )
            assert common.validation_context.trusted_ca.filename == by_key["ca"]
            assert len(common.validation_context.match_typed_subject_alt_names) >= 1


def test_outbound_clusters_verify_the_backend_and_present_the_callers_certificate(
    task: Task,
) -> None:
    by_key = _files_by_key(task)
    clusters = task.clusters()
    assert sorted(name for name in clusters if name != "local_app") == sorted(task.backends)
    for backend in task.backends:
        context = _unpack_socket(clusters[backend].transport_socket, tls_pb2.UpstreamTlsContext)
        assert context.sni == task.san(backend)
        common = context.common_tls_context
        validation = common.validation_context
        assert [
            (m.san_type, m.matcher.exact) for m in validation.match_typed_subject_alt_names
        ] == [(common_pb2.SubjectAltNameMatcher.DNS, task.san(backend))]
        assert validation.trusted_ca.filename == by_key["ca"]
        (certificate,) = common.tls_certificates
        assert certificate.certificate_chain.filename == by_key["cert"]
        assert certificate.private_key.filename == by_key["key"]
        assert common.tls_params.tls_minimum_protocol_version >= common_pb2.TlsParameters.TLSv1_2


def _ms(duration: Any) -> int:
    milliseconds: int = duration.ToMilliseconds()
    return milliseconds


def test_calls_follow_the_backends_resilience_policy(task: Task) -> None:
    outbound = _outbound(task)
    clusters = task.clusters()
    assert sorted(outbound) == sorted(task.backends)
    for backend in task.backends:
        policy = task.policies[backend]
        listener, action = outbound[backend]
        # retries: what is retried, how often, each try's timeout, the backoff, another task
        retry = policy.retry
        if retry.max_retries == 0:
            assert not action.HasField("retry_policy")
        else:
            retry_policy = action.retry_policy
            conditions = retry_policy.retry_on.split(",")
            assert len(set(conditions)) == len(conditions)
            assert set(conditions) <= ENVOY_RETRY_ON
            assert set(conditions) == {
                RETRY_ON[event] for event in (*retry.http_retry_events, *retry.tcp_retry_events)
            }
            assert retry_policy.num_retries.value == retry.max_retries
            assert _ms(retry_policy.per_try_timeout) == retry.per_retry_timeout.to_milliseconds()
            back_off = retry_policy.retry_back_off
            assert _ms(back_off.base_interval) == retry.backoff_base_interval.to_milliseconds()
            assert _ms(back_off.max_interval) == retry.backoff_max_interval.to_milliseconds()
            assert [p.name for p in retry_policy.retry_host_predicate] == [
                "envoy.retry_host_predicates.previous_hosts"
            ]
        assert _ms(action.timeout) == policy.per_request_timeout.to_milliseconds()
        # outlier ejection: consecutive 5xx (connection failures count), nothing else ejects
        cluster = clusters[backend]
        outlier = cluster.outlier_detection
        assert outlier.consecutive_5xx.value == policy.outlier.max_server_errors
        assert outlier.enforcing_consecutive_5xx.value == 100
        assert _ms(outlier.interval) == policy.outlier.interval.to_milliseconds()
        assert _ms(outlier.base_ejection_time) == (
            policy.outlier.base_ejection_duration.to_milliseconds()
        )
        assert outlier.max_ejection_percent.value == policy.outlier.max_ejection_percent
        assert outlier.HasField("enforcing_success_rate")
        assert outlier.enforcing_success_rate.value == 0
        assert outlier.enforcing_consecutive_gateway_failure.value == 0
        assert outlier.enforcing_failure_percentage.value == 0
        assert not outlier.split_external_local_origin_errors
        # the circuit breaker's limits
        (thresholds,) = cluster.circuit_breakers.thresholds
        pool = policy.connection_pool
        assert thresholds.priority == 0  # DEFAULT
        assert thresholds.max_connections.value == pool.max_connections
        assert thresholds.max_pending_requests.value == pool.max_pending_requests
        assert thresholds.max_requests.value == pool.max_requests
        assert thresholds.max_retries.value == pool.max_retries
        # idle connections close after the policy's idle timeout, on both sides of Envoy
        idle = policy.idle_timeout.to_milliseconds()
        manager = _connection_manager(listener)
        assert _ms(manager.common_http_protocol_options.idle_timeout) == idle
        options = http_protocol_options_pb2.HttpProtocolOptions()
        assert cluster.typed_extension_protocol_options[
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        ].Unpack(options)
        assert _ms(options.common_http_protocol_options.idle_timeout) == idle


def test_quotes_policy_sets_every_field_away_from_its_default() -> None:
    # so the calls to quotes show every field reaching Envoy, not a default that matches
    from dataclasses import fields

    from trading_constructs.mesh.resilience import set_fields

    default = ResiliencePolicy()
    assert set_fields(QUOTES_POLICY) == [
        f"{group}.{option.name}"
        for group in ("retry", "outlier", "connection_pool")
        for option in fields(getattr(default, group))
    ]
    for timeout in ("per_request_timeout", "idle_timeout"):
        assert (
            getattr(QUOTES_POLICY, timeout).to_milliseconds()
            != getattr(default, timeout).to_milliseconds()
        )


def test_backend_urls_lead_to_the_outbound_listeners_in_declaration_order(task: Task) -> None:
    app = task.containers[task.name]
    local_urls = {
        variable["Name"]: variable["Value"]
        for variable in app.get("Environment", [])
        if str(variable["Value"]).startswith("http://127.0.0.1:")
    }
    outbound = _outbound(task)
    ports = {b: outbound[b][0].address.socket_address.port_value for b in task.backends}
    assert local_urls == {
        backend.upper().replace("-", "_") + "_URL": f"http://127.0.0.1:{port}"
        for backend, port in ports.items()
    }
    assert [ports[b] for b in task.backends] == list(range(15001, 15001 + len(task.backends)))


def _resource_id(template: dict[str, Any], kind: str, test: Callable[[Any], bool]) -> str:
    (found,) = [k for k, r in of_type(template, kind).items() if test(r["Properties"])]
    return found


def _ecs_service(task: Task, name: str) -> dict[str, Any]:
    definitions = {
        k
        for k, r in of_type(task.template, "AWS::ECS::TaskDefinition").items()
        if name in {c["Name"] for c in r["Properties"]["ContainerDefinitions"]}
    }
    (service,) = [
        r["Properties"]
        for r in of_type(task.template, "AWS::ECS::Service").values()
        if r["Properties"]["TaskDefinition"].get("Ref") in definitions
    ]
    return service


def _security_group(service: dict[str, Any]) -> str:
    (group,) = service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    group_id: str = group["Fn::GetAtt"][0]
    return group_id


def _ingress(template: dict[str, Any]) -> set[tuple[str, str, int, int]]:
    """(group, source group, from port, to port) of every TCP ingress rule between groups."""
    rules = set()
    for resource_id, resource in template["Resources"].items():
        kind, properties = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::EC2::SecurityGroupIngress":
            found = [(properties["GroupId"]["Fn::GetAtt"][0], properties)]
        elif kind == "AWS::EC2::SecurityGroup":
            found = [(resource_id, rule) for rule in properties.get("SecurityGroupIngress", [])]
        else:
            continue
        for group, rule in found:
            source = rule.get("SourceSecurityGroupId")
            if isinstance(source, dict) and "Fn::GetAtt" in source and rule["IpProtocol"] == "tcp":
                rules.add((group, source["Fn::GetAtt"][0], rule["FromPort"], rule["ToPort"]))
    return rules


def test_upstreams_are_the_backends_cloud_map_names_on_the_mesh_port(task: Task) -> None:
    template = task.template
    namespace_id = _resource_id(
        template,
        "AWS::ServiceDiscovery::PrivateDnsNamespace",
        lambda p: p["Name"] == task.namespace,
    )
    clusters = task.clusters()
    ingress = _ingress(template)
    caller_group = _security_group(_ecs_service(task, task.name))
    for backend in task.backends:
        # GIVEN the cluster, parsed: every task behind the backend's Cloud Map name
        cluster = clusters[backend]
        assert cluster.type == Cluster.STRICT_DNS
        assert cluster.dns_lookup_family == Cluster.V4_ONLY
        assert cluster.load_assignment.cluster_name == backend
        (locality,) = cluster.load_assignment.endpoints
        (endpoint,) = locality.lb_endpoints
        address = endpoint.endpoint.address.socket_address
        assert (address.address, address.port_value) == (task.san(backend), MESH_PORT)
        # THEN the backend's tasks register under that name (A records, every healthy task)
        discovery_id = _resource_id(
            template,
            "AWS::ServiceDiscovery::Service",
            lambda p, b=backend: p["Name"] == b,
        )
        discovery = template["Resources"][discovery_id]["Properties"]
        assert discovery["NamespaceId"] == {"Fn::GetAtt": [namespace_id, "Id"]}
        assert discovery["DnsConfig"]["RoutingPolicy"] == "MULTIVALUE"
        assert [r["Type"] for r in discovery["DnsConfig"]["DnsRecords"]] == ["A"]
        service = _ecs_service(task, backend)
        assert {"RegistryArn": {"Fn::GetAtt": [discovery_id, "Arn"]}} in service[
            "ServiceRegistries"
        ]
        # AND the backend's security group lets this caller reach the mesh port
        backend_group = _security_group(service)
        assert (backend_group, caller_group, MESH_PORT, MESH_PORT) in ingress


# -- Envoy itself: the build workflow runs the official image over the same configurations ---


def test_script_writes_each_example_configuration_and_where_its_certificates_go(
    mutual_tls: SynthesizedApp, example_tasks: dict[str, Task], tmp_path: Path
) -> None:
    # GIVEN the example's cloud assembly, WHEN the workflow's script reads it
    written = envoy_configs.write(mutual_tls.outdir, tmp_path)
    # THEN it writes each service's configuration, as the template starts Envoy with it
    assert sorted(p.name for p in written) == sorted(
        f"TradingPlatform.{name}.json" for name in EXAMPLE_SERVICES
    )
    for name, task in example_tasks.items():
        path = tmp_path / "configs" / f"TradingPlatform.{name}.json"
        assert json.loads(path.read_text()) == task.config
    # AND where the init container writes the files Envoy reads, for the throwaway ones
    env = dict(line.split("=", 1) for line in (tmp_path / "mesh-tls.env").read_text().splitlines())
    for task in example_tasks.values():
        by_key = _files_by_key(task)
        assert {
            key: f"{env['MESH_TLS_DIR']}/{env[variable]}"
            for key, variable in envoy_configs.CERTIFICATE_KEYS.items()
        } == by_key


def _assembly(tmp_path: Path, container: dict[str, Any], task: Task) -> Path:
    """A one-template assembly: ``task``'s task definition with its envoy container replaced."""
    definition = copy.deepcopy(task.task_definition)
    definition["ContainerDefinitions"] = [
        container if c["Name"] == "envoy" else c for c in definition["ContainerDefinitions"]
    ]
    template = {
        "Resources": {"Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": definition}}
    }
    (tmp_path / "cdk.out").mkdir()
    (tmp_path / "cdk.out" / "Broken.template.json").write_text(json.dumps(template))
    return tmp_path / "cdk.out"


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        ("reference", "CloudFormation reference"),
        ("unwritten file", "which nothing writes"),
    ],
)
def test_script_refuses_what_envoy_could_not_validate_as_written(
    example_tasks: dict[str, Task], tmp_path: Path, breakage: str, words: str
) -> None:
    task = example_tasks["api-gateway"]
    envoy = copy.deepcopy(_container(task.task_definition, "envoy"))
    if breakage == "reference":
        text = envoy["Command"][1]
        envoy["Command"][1] = {"Fn::Join": ["", [text[:10], {"Ref": "Namespace"}, text[10:]]]}
    else:
        config = copy.deepcopy(task.config)
        _tls(config)["common_tls_context"]["validation_context"]["trusted_ca"]["filename"] = (
            "/etc/ssl/certs/ca-certificates.crt"
        )
        envoy["Command"][1] = json.dumps(config)
    with pytest.raises(envoy_configs.ConfigError, match=words):
        envoy_configs.write(_assembly(tmp_path, envoy, task), tmp_path / "out")


def test_build_workflow_validates_with_envoys_own_image_the_tasks_run(
    example_tasks: dict[str, Task],
) -> None:
    # GIVEN the build workflow's envoy job
    job = yaml.safe_load((ROOT / ".github" / "workflows" / "build.yml").read_text())["jobs"][
        "envoy"
    ]
    image = f"envoyproxy/envoy@{ENVOY_DIGEST}"
    # THEN it runs the image every task's Envoy runs (the pull-through cache's copy of it)
    assert job["env"]["ENVOY_IMAGE"] == image
    for task in example_tasks.values():
        reference = _container(task.task_definition, "envoy")["Image"]
        assert json.dumps(reference).endswith(f'/docker-hub/{image}"]]}}'), reference
    # AND it writes the configurations with the script, makes the files Envoy reads, and
    # has Envoy validate every configuration, reading only
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'scripts/envoy_configs.py "$ENVOY_WORK"' in runs
    assert '-out "$MESH_TLS_CERT"' in runs and '-keyout "$MESH_TLS_KEY"' in runs
    assert '-out "$MESH_TLS_CA"' in runs
    assert '"$ENVOY_IMAGE" --mode validate --config-path "/configs/$name"' in runs
    assert '-v "$work/mesh-tls:$MESH_TLS_DIR:ro"' in runs
    assert job["permissions"] == {"contents": "read"}


# -- the construct stack keeps the gates every synthesized template keeps --------------------


def test_construct_stack_lints_clean_and_is_deploy_ready(
    mutual_tls_platform: MutualTlsPlatform,
) -> None:
    from cfnlint.api import lint

    template = mutual_tls_platform.template
    assert [str(m) for m in lint(json.dumps(template), regions=["us-east-1"])] == []
    assert readiness_violations(template) == {}


def test_a_worker_has_outbound_listeners_only(construct_tasks: dict[str, Task]) -> None:
    # GIVEN a worker (port=None) that calls quotes
    for name in CONSTRUCT_WORKERS:
        task = construct_tasks[name]
        # THEN its Envoy listens for its app's calls and its own health, on localhost only,
        # and has no inbound listener nor a cluster for an app that takes no calls
        assert sorted(task.listeners()) == sorted(
            ["health", *(f"outbound-{backend}" for backend in task.backends)]
        )
        for listener in task.listeners().values():
            assert listener.address.socket_address.address == "127.0.0.1"
        assert sorted(task.clusters()) == sorted(task.backends)
        # AND its app container maps no port
        assert (
            "PortMappings" not in task.containers[name] or not task.containers[name]["PortMappings"]
        )
