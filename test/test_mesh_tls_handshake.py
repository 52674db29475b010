"""Real TLS stacks check the mesh's certificates and the rules its Envoy configuration states.

Envoy cannot run on the machines the tests run on, so two real TLS stacks stand in for it:

- the ``openssl`` binary verifies the certificates the library's issuer signs (through the KMS
  stand-in of ``issuer_support``) as strict RFC 5280 chains for TLS server and client use;
- the standard library's OpenSSL (``ssl``) plays a backend's inbound listener and a caller's
  outbound cluster over real TCP connections on 127.0.0.1. Each side is configured from its
  task's generated bootstrap (``envoy.bootstrap(TaskMesh(...))``): the certificate, key and CA
  files, whether a client certificate is required, the TLS versions, the SNI and the SAN
  matchers are read from the bootstrap's dicts, and the files are written where the bootstrap
  names them (under a temporary root), from the service's secret, as the init container does.

Where the stand-in differs from Envoy, and why the result still holds:

- Envoy checks ``match_typed_subject_alt_names`` while it verifies the peer's certificate, so a
  peer without an admitted SAN fails the handshake. Python's ``ssl`` has no hook there: the
  stand-in applies Envoy's rule (``envoy_admits``) right after the handshake and closes the
  connection before it reads or writes a byte of the request. Either way no request passes.
- The listener binds 127.0.0.1 on a free port rather than 0.0.0.0:15000, and a minimal HTTP/1.1
  exchange stands in for the HTTP connection manager and the app.
- What the bootstrap leaves unset takes Envoy's documented default (``TlsParameters``): TLS 1.2
  at least on both sides, at most TLS 1.2 for a client (upstream) and 1.3 for a server, and
  Envoy's default client cipher list. The stand-in also verifies X.509 strictly
  (``VERIFY_X509_STRICT``). A TLS setting the stand-in does not know fails the test, so the
  configuration cannot grow a rule these tests silently skip.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from issuer_support import issuer_environment, key_usage, running_platform

from trading_constructs.handlers.mesh_certificate_issuer import issuer
from trading_constructs.mesh import envoy
from trading_constructs.mesh.certificates import CA_FILE, CERT_FILE, KEY_FILE
from trading_constructs.mesh.envoy import Backend, TaskMesh
from trading_constructs.mesh.resilience import ResiliencePolicy

NAMESPACE = "trading.local"
BACKEND, CALLER, OUTSIDER = "analytics-engine", "api-gateway", "data-ingestion"
"""The backend, the one service that declared it, and a service that did not."""
SERVICES = {name: (f"{name}.{NAMESPACE}",) for name in (OUTSIDER, BACKEND, CALLER)}
APP_PORT = 8080
TIMEOUT = 5.0
Files = dict[str, str]
"""A service's secret as the issuer stores it: ``cert``, ``key`` and ``ca`` PEM texts."""
SECRET_FIELD_OF = {CERT_FILE: "cert", KEY_FILE: "key", CA_FILE: "ca"}
"""What the init container writes to each file Envoy reads (certificates.add_to_task)."""

Role = Literal["server", "client"]
TLS_VERSIONS = {
    "TLSv1_0": ssl.TLSVersion.TLSv1,
    "TLSv1_1": ssl.TLSVersion.TLSv1_1,
    "TLSv1_2": ssl.TLSVersion.TLSv1_2,
    "TLSv1_3": ssl.TLSVersion.TLSv1_3,
}
ENVOY_DEFAULT_VERSIONS: dict[Role, tuple[str, str]] = {
    "server": ("TLSv1_2", "TLSv1_3"),
    "client": ("TLSv1_2", "TLSv1_2"),
}
"""Envoy's (minimum, maximum) TLS versions where ``tls_params`` names none."""
ENVOY_DEFAULT_CLIENT_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    )
)
# The TLS settings the stand-in implements; anything else in the configuration fails the test.
UNDERSTOOD = {
    "DownstreamTlsContext": {"@type", "require_client_certificate", "common_tls_context"},
    "UpstreamTlsContext": {"@type", "sni", "common_tls_context"},
    "common_tls_context": {"tls_params", "tls_certificates", "validation_context"},
    "tls_params": {"tls_minimum_protocol_version", "tls_maximum_protocol_version"},
    "validation_context": {"trusted_ca", "match_typed_subject_alt_names"},
}
BOTH_USES = "TLS Web Server Authentication, TLS Web Client Authentication"


def san(service: str) -> str:
    (name,) = SERVICES[service]
    return name


# --- Certificates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """Certificates as the services' secrets hold them."""

    current: dict[str, Files]
    """Issued by the library's issuer today."""
    rotated: dict[str, Files]
    """After a forced reissue: a new CA certificate (same KMS key and name) and new leaves."""
    expired: dict[str, Files]
    """Issued by the issuer with its clock two leaf lifetimes back."""
    not_yet_valid: dict[str, Files]
    """Issued by the issuer with its clock two days ahead."""
    foreign: dict[str, Files]
    """Another CA with the platform CA's very name, and leaves it signed with the services'
    own names and usages: only the key tells them apart."""


@pytest.fixture(scope="module")
def issued() -> Iterator[Issued]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        issuer_environment(monkeypatch),
        running_platform(monkeypatch, SERVICES) as platform,
    ):

        def issue_at(moment: datetime, force: bool = False) -> dict[str, Files]:
            monkeypatch.setattr(issuer, "_now", lambda: moment)
            assert platform.run({"force": force})["issued"] == list(SERVICES)
            return {name: platform.secret(name) for name in SERVICES}

        current = issue_at(now)
        rotated = issue_at(now, force=True)
        # A clock in the past makes a new CA certificate (the current one is not valid yet
        # then), and every leaf with it; a forced run with a clock ahead does the same.
        expired = issue_at(now - timedelta(days=2 * issuer.DEFAULT_CERT_DAYS))
        not_yet_valid = issue_at(now + timedelta(days=2), force=True)
    yield Issued(current, rotated, expired, not_yet_valid, foreign_certificates(now))


def _pem(certificate: cx.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def foreign_certificates(now: datetime) -> dict[str, Files]:
    """A CA named like the platform's with a key of its own, and a leaf per service that is
    the issuer's leaf in all but the key that signed it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, issuer.DEFAULT_CA_NAME)])
    ca_key_id = cx.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        cx.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(cx.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(cx.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(ca_key_id, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    result = {}
    for service, sans in SERVICES.items():
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            cx.CertificateBuilder()
            .subject_name(cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, service)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(cx.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(cx.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage("digital_signature"), critical=True)
            .add_extension(
                cx.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(cx.SubjectAlternativeName([cx.DNSName(n) for n in sans]), False)
            .add_extension(
                cx.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), False
            )
            .add_extension(cx.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(ca_key, hashes.SHA256())
        )
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        result[service] = {"cert": _pem(leaf), "key": private.decode(), "ca": _pem(ca)}
    return result


# --- The tasks' Envoy configuration -----------------------------------------------------------


@pytest.fixture(scope="module")
def bootstraps() -> dict[str, dict[str, Any]]:
    """The backend admits the caller that declared it; the caller and the outsider both have a
    cluster for the backend (the outsider's is a rogue task's: nobody declared it)."""
    to_backend = Backend(BACKEND, san(BACKEND), ResiliencePolicy())

    def task(name: str, callers: Sequence[str], backends: Sequence[Backend]) -> TaskMesh:
        return TaskMesh(
            name=name,
            app_port=APP_PORT,
            resilience=ResiliencePolicy(),
            callers=callers,
            backends=backends,
        )

    return {
        BACKEND: envoy.bootstrap(task(BACKEND, [san(CALLER)], [])),
        CALLER: envoy.bootstrap(task(CALLER, [], [to_backend])),
        OUTSIDER: envoy.bootstrap(task(OUTSIDER, [], [to_backend])),
    }


def _understood(section: str, config: dict[str, Any]) -> None:
    unknown = set(config) - UNDERSTOOD[section]
    assert not unknown, f"{section} has settings the TLS stand-in does not apply: {unknown}"


def _tls_socket(holder: dict[str, Any], kind: str) -> dict[str, Any]:
    transport = holder["transport_socket"]
    assert transport["name"] == envoy.TLS_SOCKET
    config: dict[str, Any] = transport["typed_config"]
    assert config["@type"].endswith(f".tls.v3.{kind}")
    _understood(kind, config)
    return config


def downstream_tls(bootstrap: dict[str, Any]) -> dict[str, Any]:
    """The inbound listener's DownstreamTlsContext: its one filter chain's, so no plain chain."""
    listeners = bootstrap["static_resources"]["listeners"]
    (inbound,) = [listener for listener in listeners if listener["name"] == "inbound"]
    (chain,) = inbound["filter_chains"]
    return _tls_socket(chain, "DownstreamTlsContext")


def upstream_tls(bootstrap: dict[str, Any], backend: str) -> dict[str, Any]:
    """The UpstreamTlsContext of the cluster a task calls ``backend`` through."""
    clusters = bootstrap["static_resources"]["clusters"]
    (cluster,) = [cluster for cluster in clusters if cluster["name"] == backend]
    return _tls_socket(cluster, "UpstreamTlsContext")


def exact_dns_matchers(validation: dict[str, Any]) -> tuple[str, ...]:
    """The names of ``match_typed_subject_alt_names``: every matcher must be an exact DNS one,
    the only kind the stand-in implements."""
    names = []
    for matcher in validation.get("match_typed_subject_alt_names", []):
        assert matcher["san_type"] == "DNS" and set(matcher["matcher"]) == {"exact"}, matcher
        names.append(matcher["matcher"]["exact"])
    return tuple(names)


@dataclass(frozen=True)
class Volume:
    """A task's certificate volume under a temporary root: the files the bootstrap names."""

    root: Path

    @classmethod
    def holding(cls, root: Path, files: Files) -> Volume:
        for filename, secret_field in SECRET_FIELD_OF.items():
            path = root / filename.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[secret_field])
        return cls(root)

    def path(self, filename: str) -> str:
        return str(self.root / filename.lstrip("/"))


def tls_context(
    role: Role, common: dict[str, Any], volume: Volume, *, with_certificate: bool = True
) -> ssl.SSLContext:
    """An OpenSSL context set as Envoy sets itself from ``common_tls_context``."""
    _understood("common_tls_context", common)
    params = common.get("tls_params", {})
    _understood("tls_params", params)
    context = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if role == "server" else ssl.PROTOCOL_TLS_CLIENT
    )
    lowest, highest = ENVOY_DEFAULT_VERSIONS[role]
    context.minimum_version = TLS_VERSIONS[params.get("tls_minimum_protocol_version", lowest)]
    context.maximum_version = TLS_VERSIONS[params.get("tls_maximum_protocol_version", highest)]
    if role == "client":
        context.set_ciphers(ENVOY_DEFAULT_CLIENT_CIPHERS)
    if with_certificate:
        (pair,) = common["tls_certificates"]
        context.load_cert_chain(
            volume.path(pair["certificate_chain"]["filename"]),
            volume.path(pair["private_key"]["filename"]),
        )
    validation = common["validation_context"]
    _understood("validation_context", validation)
    context.load_verify_locations(cafile=volume.path(validation["trusted_ca"]["filename"]))
    context.check_hostname = False  # Envoy checks the peer's names by the SAN matchers alone
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


# --- Envoy's SAN matching ---------------------------------------------------------------------


class NotAdmitted(Exception):
    """The peer's certificate verified, but none of its SANs is one the configuration admits."""


def dns_name_match(name: str, pattern: str) -> bool:
    """Envoy's ``Utility::dnsNameMatch``, which an exact DNS SAN matcher uses: ``name`` is the
    matcher's, ``pattern`` the certificate's SAN. Case-insensitive; a wildcard in the SAN's
    left-most label (not an A-label) stands for one label."""
    name, pattern = name.lower(), pattern.lower()
    if name == pattern:
        return True
    name_parts, pattern_parts = name.split(".", 1), pattern.split(".", 1)
    if len(name_parts) < 2 or len(pattern_parts) < 2:
        return False
    (label, rest), (glob, pattern_rest) = name_parts, pattern_parts
    if "*" not in glob or "*" in pattern_rest or glob.startswith("xn--") or rest != pattern_rest:
        return False
    if glob == "*":
        return True
    if glob.count("*") != 1:
        return False
    prefix, suffix = glob.split("*")
    return len(glob) <= len(label) + 1 and label.startswith(prefix) and label.endswith(suffix)


def envoy_admits(peer: dict[str, Any] | None, matchers: Sequence[str]) -> str | None:
    """Envoy's rule for ``match_typed_subject_alt_names``, applied after the handshake (see the
    module docstring): any SAN of the peer matching any matcher admits it, and no matchers
    admit every verified peer. Returns the admitted SAN (``None`` for a peer without a
    certificate, which only a server that does not require one lets through, and to which
    Envoy applies no matcher)."""
    if not peer:
        return None
    sans: list[str] = [value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"]
    if not matchers:
        return sans[0] if sans else ""
    for name in sans:
        if any(dns_name_match(matcher, name) for matcher in matchers):
            return name
    raise NotAdmitted(f"no SAN of {sans} matches {list(matchers)}")


# --- The two ends of a mesh connection --------------------------------------------------------


def _read_head(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionError(f"the peer closed after {data!r}")
        data += chunk
    return data.split(b"\r\n", 1)[0]


def _read_to_end(connection: socket.socket) -> bytes:
    data = b""
    while chunk := connection.recv(4096):
        data += chunk
    return data


@dataclass(frozen=True)
class Served:
    """What the backend's listener saw of a request it answered."""

    caller: str | None
    version: str | None
    cipher: str
    request: bytes


@dataclass
class Inbound:
    """A backend task's inbound listener, as its DownstreamTlsContext states it; the response
    body is what ``x-forwarded-client-cert`` would tell the app about its caller."""

    context: ssl.SSLContext
    matchers: tuple[str, ...]
    server_names: list[str | None] = field(default_factory=list)

    @classmethod
    def of(cls, bootstrap: dict[str, Any], volume: Volume) -> Inbound:
        tls = downstream_tls(bootstrap)
        common = tls["common_tls_context"]
        context = tls_context("server", common, volume)
        required = tls.get("require_client_certificate", False)
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
        inbound = cls(context, exact_dns_matchers(common["validation_context"]))
        context.sni_callback = lambda _socket, name, _context: inbound.server_names.append(name)
        return inbound

    def serve(self, connection: socket.socket) -> Served:
        with self.context.wrap_socket(connection, server_side=True) as tls:
            caller = envoy_admits(tls.getpeercert(), self.matchers)
            request = _read_head(tls)
            body = f"DNS={caller}".encode()
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            tls.sendall(head.encode() + body)
            cipher = tls.cipher()
            assert cipher is not None
            return Served(caller, tls.version(), cipher[0], request)


@dataclass(frozen=True)
class Outbound:
    """The cluster a task calls a backend through, as its UpstreamTlsContext states it."""

    context: ssl.SSLContext
    sni: str
    matchers: tuple[str, ...]

    @classmethod
    def of(
        cls,
        bootstrap: dict[str, Any],
        backend: str,
        volume: Volume,
        *,
        with_certificate: bool = True,
    ) -> Outbound:
        tls = upstream_tls(bootstrap, backend)
        common = tls["common_tls_context"]
        context = tls_context("client", common, volume, with_certificate=with_certificate)
        return cls(context, tls["sni"], exact_dns_matchers(common["validation_context"]))

    def call(self, connection: socket.socket) -> bytes:
        with self.context.wrap_socket(connection, server_hostname=self.sni) as tls:
            envoy_admits(tls.getpeercert(), self.matchers)
            tls.sendall(f"GET /quotes HTTP/1.1\r\nhost: {self.sni}\r\n\r\n".encode())
            return _read_to_end(tls)


def plain_call(connection: socket.socket) -> bytes:
    """A caller that skips TLS altogether."""
    connection.sendall(f"GET /quotes HTTP/1.1\r\nhost: {san(BACKEND)}\r\n\r\n".encode())
    return _read_to_end(connection)


@dataclass(frozen=True)
class Exchange:
    served: Served | Exception
    response: bytes | Exception

    @property
    def answered(self) -> bool:
        return isinstance(self.response, bytes) and self.response.startswith(b"HTTP/1.1 200 ")


def connect(
    serve: Callable[[socket.socket], Served], call: Callable[[socket.socket], bytes]
) -> Exchange:
    """One connection over TCP on 127.0.0.1: ``serve`` in a thread, ``call`` here."""
    outcome: dict[str, Served | Exception] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)

        def accept_one() -> None:
            try:
                connection, _ = listener.accept()
                connection.settimeout(TIMEOUT)
                outcome["served"] = serve(connection)
            except Exception as error:
                outcome["served"] = error

        thread = threading.Thread(target=accept_one, daemon=True)
        thread.start()
        response: bytes | Exception
        try:
            with socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as connection:
                response = call(connection)
        except Exception as error:
            response = error
        thread.join(TIMEOUT)
    assert not thread.is_alive(), "the listener did not finish"
    return Exchange(outcome["served"], response)


def refused_by_server(exchange: Exchange, reason: str) -> None:
    """The listener refused the connection for ``reason`` and the caller got no response."""
    assert not exchange.answered, exchange.response
    assert isinstance(exchange.served, Exception), exchange.served
    assert re.search(reason, str(exchange.served), re.IGNORECASE), exchange.served


def refused_by_client(exchange: Exchange, reason: str) -> None:
    """The caller gave up on the server for ``reason`` before it sent the request."""
    assert isinstance(exchange.response, Exception), exchange.response
    assert re.search(reason, str(exchange.response), re.IGNORECASE), exchange.response
    assert not isinstance(exchange.served, Served), exchange.served


@pytest.fixture
def tasks(
    tmp_path: Path, bootstraps: dict[str, dict[str, Any]], issued: Issued
) -> Callable[..., tuple[Inbound, Outbound]]:
    """The backend's listener and a caller's cluster, each holding the given secret."""

    def make(
        caller: str = CALLER,
        *,
        caller_files: Files | None = None,
        backend_files: Files | None = None,
        with_certificate: bool = True,
    ) -> tuple[Inbound, Outbound]:
        backend_volume = Volume.holding(
            tmp_path / "backend", backend_files or issued.current[BACKEND]
        )
        caller_volume = Volume.holding(tmp_path / "caller", caller_files or issued.current[caller])
        inbound = Inbound.of(bootstraps[BACKEND], backend_volume)
        outbound = Outbound.of(
            bootstraps[caller], BACKEND, caller_volume, with_certificate=with_certificate
        )
        return inbound, outbound

    return make


# --- The issued certificates, by openssl ------------------------------------------------------


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=30
    )


def verify(ca: Path, leaf: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` against ``ca`` alone: no system trust store."""
    return openssl(
        "verify", "-x509_strict", "-no-CApath", "-no-CAstore", "-CAfile", ca, *options, leaf
    )


@pytest.mark.parametrize("service", list(SERVICES))
def test_issued_certificates_pass_openssl_strict_verification_for_server_and_client_use(
    issued: Issued, tmp_path: Path, service: str
) -> None:
    # GIVEN the CA certificate and a service's certificate from the library's issuer
    files = issued.current[service]
    ca, leaf = tmp_path / "ca.pem", tmp_path / "leaf.pem"
    ca.write_text(files["ca"])
    leaf.write_text(files["cert"])
    # WHEN openssl verifies the chain strictly, as a TLS server's and as a TLS client's
    results = {
        purpose: verify(ca, leaf, "-purpose", purpose) for purpose in ("sslserver", "sslclient")
    }
    by_name = verify(ca, leaf, "-purpose", "sslserver", "-verify_hostname", san(service))
    extensions = openssl("x509", "-in", leaf, "-noout", "-ext", "extendedKeyUsage,subjectAltName")
    # THEN both pass, the certificate is good for the service's own name, and it carries both
    # usages and exactly that one SAN
    for purpose, result in results.items():
        assert (result.returncode, result.stdout.strip()) == (0, f"{leaf}: OK"), (purpose, result)
    assert by_name.returncode == 0, by_name.stderr
    lines = [line.strip() for line in extensions.stdout.splitlines()]
    assert lines == [
        "X509v3 Extended Key Usage:",
        BOTH_USES,
        "X509v3 Subject Alternative Name:",
        f"DNS:{san(service)}",
    ]
    # AND the CA certificate itself is a strictly valid self-signed root
    assert verify(ca, ca, "-check_ss_sig").returncode == 0


def test_openssl_refuses_another_name_and_another_ca(issued: Issued, tmp_path: Path) -> None:
    """The control for the test above: the same openssl call fails where it should."""
    # GIVEN the backend's certificate, the platform CA and a CA of the same name, another key
    leaf, ca, foreign_ca = (tmp_path / name for name in ("leaf.pem", "ca.pem", "foreign.pem"))
    leaf.write_text(issued.current[BACKEND]["cert"])
    ca.write_text(issued.current[BACKEND]["ca"])
    foreign_ca.write_text(issued.foreign[BACKEND]["ca"])
    # WHEN openssl checks it for the caller's name, and against the other CA
    wrong_name = verify(ca, leaf, "-purpose", "sslserver", "-verify_hostname", san(CALLER))
    wrong_ca = verify(foreign_ca, leaf, "-purpose", "sslclient")
    # THEN both fail, for those reasons
    assert wrong_name.returncode != 0 and "hostname mismatch" in wrong_name.stderr
    assert wrong_ca.returncode != 0
    assert "unable to get local issuer certificate" in wrong_ca.stderr


# --- The inbound listener ---------------------------------------------------------------------


def test_the_declared_caller_is_admitted_and_its_request_served(
    bootstraps: dict[str, dict[str, Any]], tasks: Callable[..., tuple[Inbound, Outbound]]
) -> None:
    # GIVEN the backend's listener and its declared caller's cluster, as configured
    inbound, outbound = tasks()
    # WHEN the caller sends a request through it
    exchange = connect(inbound.serve, outbound.call)
    # THEN the backend answers, knowing the caller by its certificate's name, over TLS 1.3 (the
    # configuration raises an Envoy client's default maximum of 1.2)
    assert exchange.answered, exchange
    assert exchange.response.endswith(f"DNS={san(CALLER)}".encode())  # type: ignore[union-attr]
    assert isinstance(exchange.served, Served)
    assert exchange.served.caller == san(CALLER)
    assert exchange.served.request == b"GET /quotes HTTP/1.1"
    assert exchange.served.version == "TLSv1.3"
    assert exchange.served.cipher.startswith("TLS_")
    # AND the configuration said so: a client certificate is required, and only the caller's
    # name is admitted; the caller sends and expects the backend's name
    assert downstream_tls(bootstraps[BACKEND])["require_client_certificate"] is True
    assert inbound.matchers == (san(CALLER),)
    assert inbound.server_names == [san(BACKEND)]
    assert outbound.matchers == (san(BACKEND),)
    assert inbound.context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert outbound.context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_a_plain_connection_is_refused(tasks: Callable[..., tuple[Inbound, Outbound]]) -> None:
    # GIVEN the backend's listener
    inbound, _ = tasks()
    # WHEN a caller sends plain HTTP to it
    exchange = connect(inbound.serve, plain_call)
    # THEN no response comes back: the listener speaks TLS only
    refused_by_server(exchange, "http request|wrong version number")
    assert exchange.response == b"" or isinstance(exchange.response, ConnectionError)


# --- The outbound cluster ---------------------------------------------------------------------


def foreign(issued: Issued, service: str) -> Files:
    """``service``'s name on a certificate from another CA of the same name, beside the
    platform's CA certificate."""
    return {**issued.foreign[service], "ca": issued.current[service]["ca"]}


NOT_ADMITTED = f"no SAN of \\['{re.escape(san(OUTSIDER))}'\\] matches"
UNVERIFIED = "certificate verify failed"

# A task the configuration does not admit: (the tasks given, the side that refuses, why).
REFUSED_IN_THE_HANDSHAKE = {
    # a valid platform certificate of a service the backend did not admit: it verifies, but
    # its name is not admitted, so no request passes
    "undeclared-client": (lambda _: {"caller": OUTSIDER}, refused_by_server, NOT_ADMITTED),
    # the declared caller's name on a certificate from another CA of the same name
    "foreign-client": (
        lambda i: {"caller_files": foreign(i, CALLER)},
        refused_by_server,
        UNVERIFIED,
    ),
    # the declared caller's cluster without its certificate: the backend requires one
    "no-client-certificate": (
        lambda _: {"with_certificate": False},
        refused_by_server,
        "peer did not return a certificate",
    ),
    # a task at the backend's address that holds another service's valid certificate: the
    # caller hangs up before it sends the request
    "misnamed-server": (
        lambda i: {"backend_files": i.current[OUTSIDER]},
        refused_by_client,
        NOT_ADMITTED,
    ),
    # a task at the backend's address with the backend's name from another CA
    "foreign-server": (
        lambda i: {"backend_files": foreign(i, BACKEND)},
        refused_by_client,
        UNVERIFIED,
    ),
}


@pytest.mark.parametrize(
    ("given", "refused", "reason"),
    list(REFUSED_IN_THE_HANDSHAKE.values()),
    ids=list(REFUSED_IN_THE_HANDSHAKE),
)
def test_a_connection_the_configuration_does_not_admit_is_refused_in_the_handshake(
    issued: Issued,
    tasks: Callable[..., tuple[Inbound, Outbound]],
    given: Callable[[Issued], dict[str, Any]],
    refused: Callable[[Exchange, str], None],
    reason: str,
) -> None:
    # GIVEN the row's backend listener and caller cluster
    inbound, outbound = tasks(**given(issued))
    # WHEN the caller calls the backend
    exchange = connect(inbound.serve, outbound.call)
    # THEN the row's side refuses the other during the handshake, for the row's reason
    refused(exchange, reason)


# --- Validity and rotation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "reason"),
    [("expired", "certificate has expired"), ("not_yet_valid", "certificate is not yet valid")],
)
@pytest.mark.parametrize("holder", ["caller", "backend"])
def test_a_certificate_out_of_its_validity_is_refused(
    issued: Issued,
    tasks: Callable[..., tuple[Inbound, Outbound]],
    when: str,
    reason: str,
    holder: str,
) -> None:
    # GIVEN one end holding a certificate from the issuer that is out of its validity now (and
    # today's CA certificate: a bundle that is not valid yet would fail every peer instead)
    stale: dict[str, Files] = getattr(issued, when)
    if holder == "caller":
        inbound, outbound = tasks(
            caller_files={**stale[CALLER], "ca": issued.current[CALLER]["ca"]}
        )
    else:
        inbound, outbound = tasks(
            backend_files={**stale[BACKEND], "ca": issued.current[BACKEND]["ca"]}
        )
    # WHEN the caller calls the backend
    exchange = connect(inbound.serve, outbound.call)
    # THEN the other end refuses it
    if holder == "caller":
        refused_by_server(exchange, reason)
    else:
        refused_by_client(exchange, reason)


@pytest.mark.parametrize("rotated", ["caller", "backend"])
def test_tasks_on_either_side_of_a_ca_rotation_still_connect(
    issued: Issued, tasks: Callable[..., tuple[Inbound, Outbound]], rotated: str
) -> None:
    # GIVEN one end restarted after a forced reissue (a new CA certificate, same key and name)
    # while the other still holds the files from before
    if rotated == "caller":
        inbound, outbound = tasks(caller_files=issued.rotated[CALLER])
    else:
        inbound, outbound = tasks(backend_files=issued.rotated[BACKEND])
    assert issued.rotated[CALLER]["ca"] != issued.current[CALLER]["ca"]
    # WHEN the caller calls the backend
    exchange = connect(inbound.serve, outbound.call)
    # THEN each trusts the other's certificate: the request is served
    assert exchange.answered, exchange


# --- The matcher the stand-in implements ------------------------------------------------------


@pytest.mark.parametrize(
    ("matcher", "certificate_san", "matches"),
    [
        ("analytics-engine.trading.local", "analytics-engine.trading.local", True),
        ("analytics-engine.trading.local", "Analytics-Engine.Trading.Local", True),
        ("analytics-engine.trading.local", "api-gateway.trading.local", False),
        ("analytics-engine.trading.local", "analytics-engine.trading.local.evil", False),
        ("analytics-engine.trading.local", "analytics-engine", False),
        # Envoy's DNS semantics: a wildcard SAN stands for any one label.
        ("analytics-engine.trading.local", "*.trading.local", True),
        ("analytics-engine.trading.local", "analytics-*.trading.local", True),
        ("analytics-engine.trading.local", "*.local", False),
        ("analytics-engine.trading.local", "xn--*.trading.local", False),
        ("*.trading.local", "analytics-engine.trading.local", False),
    ],
)
def test_the_stand_in_matches_dns_names_as_envoy_does(
    matcher: str, certificate_san: str, matches: bool
) -> None:
    assert dns_name_match(matcher, certificate_san) is matches


def test_envoy_admits_on_any_san_matching_any_matcher() -> None:
    peer = {"subjectAltName": (("DNS", "a.trading.local"), ("DNS", "b.trading.local"))}
    assert envoy_admits(peer, ["x.trading.local", "b.trading.local"]) == "b.trading.local"
    assert envoy_admits(peer, []) == "a.trading.local"  # no matcher: any verified peer
    assert envoy_admits(None, ["b.trading.local"]) is None  # no certificate: no matcher applies
    with pytest.raises(NotAdmitted):
        envoy_admits(peer, ["c.trading.local"])
