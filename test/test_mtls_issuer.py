"""Tests for the mesh mTLS certificate issuer Lambda and its hand-written DER/X.509 encoding.

How AWS is emulated
-------------------
moto plays KMS and Secrets Manager, with ``issuer_support.KmsProxy`` adding the
``GenerateDataKeyPair`` moto lacks (see ``issuer_support``); every certificate below is verified
against the KMS key's public key. Service secrets are created as the construct creates them: a
``{}`` placeholder or no value at all. The CA secret starts without a value.

The certificates are checked three independent ways: field by field with ``cryptography.x509``;
by ``cryptography``'s RFC 5280 path validation for server and client use; and by an in-memory
mutual-TLS handshake with the standard library's OpenSSL. The encoder is checked against known
encodings and, as a property, byte for byte against what ``cryptography`` builds from the same
inputs.
"""

from __future__ import annotations

import ast
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import PolicyBuilder, Store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from issuer_support import (
    REGION,
    SESSION,
    Platform,
    issuer_environment,
    key_usage,
    running_platform,
)

from trading_constructs.assets import MESH_CERTIFICATE_ISSUER
from trading_constructs.handlers.mesh_certificate_issuer import der, issuer, x509

ASSET = MESH_CERTIFICATE_ISSUER.build()
SERVICES: dict[str, tuple[str, ...]] = {
    "data-ingestion": ("data-ingestion.trading.internal", "data-ingestion"),
    "analytics-engine": ("analytics-engine.trading.internal",),
    "api-gateway": ("api-gateway.trading.internal", "api.trading.example.com"),
}
NO_VALUE = ("analytics-engine",)  # created without a value; the others hold "{}"
CERT_DAYS = issuer.DEFAULT_CERT_DAYS
RENEW_BEFORE_DAYS = issuer.DEFAULT_RENEW_BEFORE_DAYS
LEAF_FIELDS = {"cert", "key", "ca", "not_after"}
SECRET_MARKERS = ("PRIVATE KEY", "CERTIFICATE", "-----BEGIN", "-----END")


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with issuer_environment(monkeypatch):
        yield


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    with running_platform(monkeypatch, SERVICES, no_value=NO_VALUE) as result:
        yield result


@pytest.fixture
def issued(platform: Platform) -> Platform:
    """The platform after a first run issued the CA and every leaf."""
    assert platform.run() == {"ca": "issued", "issued": list(SERVICES), "kept": []}
    return platform


# --- Checks -----------------------------------------------------------------------------------


def extension(certificate: cx.Certificate, kind: type[Any]) -> cx.Extension[Any]:
    return certificate.extensions.get_extension_for_class(kind)


def assert_ca(ca: cx.Certificate, kms_public_key: bytes, name: str) -> None:
    public_key = ca.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert (
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == kms_public_key
    )
    ca.verify_directly_issued_by(ca)  # self-signed, and the signature verifies with the KMS key
    assert ca.version is cx.Version.v3
    assert ca.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert ca.subject == ca.issuer == cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, name)])
    assert 0 < ca.serial_number < 2**159 and ca.serial_number.bit_length() == 159
    basic = extension(ca, cx.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = extension(ca, cx.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not (usage.value.digital_signature or usage.value.key_encipherment)
    ski = extension(ca, cx.SubjectKeyIdentifier)
    assert ski.value == cx.SubjectKeyIdentifier.from_public_key(public_key)
    assert {item.oid for item in ca.extensions} == {
        cx.BasicConstraints.oid,
        cx.KeyUsage.oid,
        cx.SubjectKeyIdentifier.oid,
    }
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert lifetime == timedelta(days=issuer.DEFAULT_CA_DAYS) + issuer.CA_BACKDATE


def assert_leaf(platform: Platform, service: str, sans: tuple[str, ...]) -> cx.Certificate:
    value = platform.secret(service)
    assert set(value) == LEAF_FIELDS
    ca = platform.ca()
    assert value["ca"] == platform.ca_pem()
    leaf = cx.load_pem_x509_certificate(value["cert"].encode())
    leaf.verify_directly_issued_by(ca)
    assert leaf.version is cx.Version.v3
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    # ecdsa-with-SHA256 with the parameters absent (RFC 5758), never NULL.
    encoded = leaf.public_bytes(serialization.Encoding.DER)
    assert bytes.fromhex("300a06082a8648ce3d040302") in encoded
    assert bytes.fromhex("300c06082a8648ce3d0403020500") not in encoded
    assert leaf.subject == cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, service)])
    assert leaf.issuer == ca.subject
    assert leaf.serial_number.bit_length() == 159
    basic = extension(leaf, cx.BasicConstraints)
    assert basic.critical and not basic.value.ca and basic.value.path_length is None
    usage = extension(leaf, cx.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.crl_sign or usage.value.key_encipherment)
    assert list(extension(leaf, cx.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    san = extension(leaf, cx.SubjectAlternativeName)
    assert not san.critical
    assert tuple(san.value.get_values_for_type(cx.DNSName)) == sans
    assert len(list(san.value)) == len(sans)
    aki = extension(leaf, cx.AuthorityKeyIdentifier).value
    assert aki.key_identifier == extension(ca, cx.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    leaf_public_key = leaf.public_key()
    assert isinstance(leaf_public_key, ec.EllipticCurvePublicKey)
    assert leaf_public_key.curve.name == "secp256r1"
    assert extension(leaf, cx.SubjectKeyIdentifier).value == (
        cx.SubjectKeyIdentifier.from_public_key(leaf_public_key)
    )
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == timedelta(days=CERT_DAYS) + issuer.LEAF_BACKDATE
    assert value["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    private_key = serialization.load_pem_private_key(value["key"].encode(), password=None)
    assert value["key"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    assert private_key.public_key() == leaf_public_key
    return leaf


def issue_reasons(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The reason logged for each certificate issued since the last capture."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {
        line["service"]: line["reason"]
        for line in lines
        if line["message"] == "Issued a certificate"
    }


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str
) -> dict[str, Any]:
    """Run a TLS handshake in memory (no sockets); return the client certificate as the server
    saw it."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client certificate when it reads the client's
            # Finished; one exchange of application data makes sure that has happened.
            client_side.write(b"ping")
            server_in.write(client_out.read())
            assert server_side.read(4) == b"ping"
            peer = server_side.getpeercert()
            assert peer is not None
            return peer
    raise AssertionError(f"the handshake did not finish: {done}")


def tls_context(
    purpose: int, platform: Platform, service: str, tmp_path: Path, ca_pem: str | None = None
) -> ssl.SSLContext:
    value = platform.secret(service)
    cert_file, key_file = tmp_path / f"{service}.crt", tmp_path / f"{service}.key"
    cert_file.write_text(value["cert"])
    key_file.write_text(value["key"])
    context = ssl.SSLContext(purpose)
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cadata=ca_pem or value["ca"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


# --- Issuance ---------------------------------------------------------------------------------


def test_first_run_issues_a_ca_and_a_certificate_per_service(issued: Platform) -> None:
    assert set(issued.value(issued.ca_secret_arn)) == {"ca"}
    assert_ca(issued.ca(), issued.kms_public_key(), issuer.DEFAULT_CA_NAME)
    for service, sans in SERVICES.items():
        assert_leaf(issued, service, sans)
    serials = {issued.leaf(service).serial_number for service in SERVICES}
    assert len(serials) == len(SERVICES)


def test_kms_is_called_as_designed(issued: Platform) -> None:
    assert [call["KeyId"] for call in issued.kms.sign_calls] == [issued.ca_key_id] * 4
    for call in issued.kms.sign_calls:
        assert call["MessageType"] == "RAW"
        assert call["SigningAlgorithm"] == "ECDSA_SHA_256"
        assert len(call["Message"]) <= issuer.KMS_MAX_RAW_MESSAGE
    assert issued.kms.pair_calls == [
        {"KeyId": issued.data_key_id, "KeyPairSpec": "ECC_NIST_P256"}
    ] * len(SERVICES)
    # What was signed is exactly each certificate's TBSCertificate.
    signed = [call["Message"] for call in issued.kms.sign_calls]
    assert signed[0] == issued.ca().tbs_certificate_bytes
    assert signed[1:] == [issued.leaf(service).tbs_certificate_bytes for service in SERVICES]


def test_chains_pass_rfc5280_path_validation_for_server_and_client_use(issued: Platform) -> None:
    store = Store([issued.ca()])
    for service, sans in SERVICES.items():
        leaf = issued.leaf(service)
        for dns_name in sans:
            verifier = PolicyBuilder().store(store).build_server_verifier(cx.DNSName(dns_name))
            assert verifier.verify(leaf, []) == [leaf, issued.ca()]
        client = PolicyBuilder().store(store).build_client_verifier().verify(leaf, [])
        assert [name.value for name in client.subjects or []] == list(sans)
    with pytest.raises(cx.verification.VerificationError):
        PolicyBuilder().store(store).build_server_verifier(
            cx.DNSName("analytics-engine.trading.internal")
        ).verify(issued.leaf("data-ingestion"), [])


def test_services_complete_a_mutual_tls_handshake_with_openssl(
    issued: Platform, tmp_path: Path
) -> None:
    server = tls_context(ssl.PROTOCOL_TLS_SERVER, issued, "analytics-engine", tmp_path)
    client = tls_context(ssl.PROTOCOL_TLS_CLIENT, issued, "data-ingestion", tmp_path)
    peer = handshake(server, client, "analytics-engine.trading.internal")
    assert peer["subject"] == ((("commonName", "data-ingestion"),),)
    assert peer["subjectAltName"] == tuple(("DNS", name) for name in SERVICES["data-ingestion"])
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(server, client, "api-gateway.trading.internal")


def test_a_certificate_from_another_ca_is_refused(issued: Platform, tmp_path: Path) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    name = cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, issuer.DEFAULT_CA_NAME)])
    now = datetime.now(timezone.utc)
    other_ca = (
        cx.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(stranger.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(cx.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(stranger, hashes.SHA256())
    )
    other_pem = other_ca.public_bytes(serialization.Encoding.PEM).decode()
    server = tls_context(ssl.PROTOCOL_TLS_SERVER, issued, "analytics-engine", tmp_path, other_pem)
    client = tls_context(ssl.PROTOCOL_TLS_CLIENT, issued, "data-ingestion", tmp_path)
    with pytest.raises(ssl.SSLError):
        handshake(server, client, "analytics-engine.trading.internal")


def test_ca_secret_placeholder_is_treated_as_missing(platform: Platform) -> None:
    platform.sm.put_secret_value(SecretId=platform.ca_secret_arn, SecretString="{}")
    assert platform.run()["ca"] == "issued"
    assert_ca(platform.ca(), platform.kms_public_key(), issuer.DEFAULT_CA_NAME)


def test_ca_name_comes_from_the_environment(platform: Platform) -> None:
    platform.configure(CA_NAME="Trading Mesh CA (staging)", CERT_DAYS="7", RENEW_BEFORE_DAYS="2")
    platform.run()
    ca = platform.ca()
    assert ca.subject.rfc4514_string() == "CN=Trading Mesh CA (staging)"
    leaf = platform.leaf("api-gateway")
    assert leaf.issuer == ca.subject
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=7, minutes=5)


# --- Renewal ----------------------------------------------------------------------------------


def test_second_run_keeps_everything(issued: Platform) -> None:
    before = issued.snapshot()
    signatures = len(issued.kms.sign_calls)
    assert issued.run() == {"ca": "kept", "issued": [], "kept": list(SERVICES)}
    assert issued.snapshot() == before
    assert len(issued.kms.sign_calls) == signatures


@pytest.mark.parametrize(
    ("days_left", "reissued"),
    [
        (-1, True),  # expired
        (RENEW_BEFORE_DAYS - 1, True),
        (RENEW_BEFORE_DAYS, True),  # "within RENEW_BEFORE_DAYS" includes the boundary
        (RENEW_BEFORE_DAYS + 1, False),
    ],
)
def test_only_the_expiring_certificate_is_renewed(
    issued: Platform, capsys: pytest.CaptureFixture[str], days_left: int, reissued: bool
) -> None:
    value = issued.secret("api-gateway")
    not_after = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days_left)
    issued.put("api-gateway", {**value, "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ")})
    before = issued.snapshot()
    capsys.readouterr()
    summary = issued.run()
    renewed = ["api-gateway"] if reissued else []
    assert issue_reasons(capsys) == dict.fromkeys(renewed, "expiring")
    assert summary == {
        "ca": "kept",
        "issued": renewed,
        "kept": [name for name in SERVICES if name not in renewed],
    }
    after = issued.snapshot()
    changed = {arn for arn in before if before[arn] != after[arn]}
    assert changed == {issued.secret_arns[name] for name in renewed}
    if reissued:
        assert issued.secret("api-gateway")["cert"] != value["cert"]
        assert_leaf(issued, "api-gateway", SERVICES["api-gateway"])


def test_force_reissues_the_ca_and_every_certificate(issued: Platform) -> None:
    old_ca = issued.ca()
    old_leaves = {service: issued.secret(service) for service in SERVICES}
    assert issued.run({"force": True}) == {"ca": "issued", "issued": list(SERVICES), "kept": []}
    new_ca = issued.ca()
    assert new_ca.serial_number != old_ca.serial_number
    assert_ca(new_ca, issued.kms_public_key(), issuer.DEFAULT_CA_NAME)
    for service, sans in SERVICES.items():
        assert_leaf(issued, service, sans)
        assert issued.secret(service)["key"] != old_leaves[service]["key"]
        # Same KMS key and name: certificates chain to the old and the new CA certificate alike,
        # so services that have not reloaded yet keep trusting each other.
        old_leaf = cx.load_pem_x509_certificate(old_leaves[service]["cert"].encode())
        old_leaf.verify_directly_issued_by(new_ca)
        issued.leaf(service).verify_directly_issued_by(old_ca)


def test_force_false_is_an_ordinary_run(issued: Platform) -> None:
    assert issued.run({"force": False})["ca"] == "kept"
    # An EventBridge scheduled event carries other keys; they are ignored.
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events"}
    assert issued.run(scheduled) == {"ca": "kept", "issued": [], "kept": list(SERVICES)}


def test_a_new_ca_key_reissues_every_certificate(issued: Platform) -> None:
    new_key = issued.kms.client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    issued.configure(CA_KEY_ID=new_key["KeyMetadata"]["KeyId"])
    assert issued.run() == {"ca": "issued", "issued": list(SERVICES), "kept": []}
    assert_ca(
        issued.ca(),
        issued.kms_public_key(new_key["KeyMetadata"]["KeyId"]),
        issuer.DEFAULT_CA_NAME,
    )
    for service, sans in SERVICES.items():
        assert_leaf(issued, service, sans)


def test_a_new_ca_name_reissues_every_certificate(issued: Platform) -> None:
    issued.configure(CA_NAME="trading-mesh-ca-2")
    assert issued.run() == {"ca": "issued", "issued": list(SERVICES), "kept": []}
    assert_ca(issued.ca(), issued.kms_public_key(), "trading-mesh-ca-2")
    for service, sans in SERVICES.items():
        assert_leaf(issued, service, sans)


def test_a_ca_about_to_expire_is_replaced_with_every_certificate(
    issued: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_not_after = issued.ca().not_valid_after_utc
    # The CA must outlive a new leaf: at CERT_DAYS before its end it is replaced.
    later = ca_not_after - timedelta(days=CERT_DAYS)
    monkeypatch.setattr(issuer, "_now", lambda: later - timedelta(seconds=1))
    assert issued.run()["ca"] == "kept"
    monkeypatch.setattr(issuer, "_now", lambda: later)
    capsys.readouterr()
    assert issued.run() == {"ca": "issued", "issued": list(SERVICES), "kept": []}
    assert issue_reasons(capsys) == dict.fromkeys(SERVICES, "ca_changed")
    new_ca = issued.ca()
    assert new_ca.not_valid_after_utc == later + timedelta(days=issuer.DEFAULT_CA_DAYS)
    for service in SERVICES:
        assert issued.secret(service)["ca"] == issued.ca_pem()
        issued.leaf(service).verify_directly_issued_by(new_ca)


def test_a_leaf_holding_another_ca_is_reissued(
    issued: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    value = issued.secret("data-ingestion")
    issued.put("data-ingestion", {**value, "ca": value["ca"] + "x"})
    capsys.readouterr()
    assert issued.run()["issued"] == ["data-ingestion"]
    assert issue_reasons(capsys) == {"data-ingestion": "ca_changed"}
    assert issued.secret("data-ingestion")["ca"] == issued.ca_pem()


def test_changed_names_reissue_that_service(
    issued: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    services = {**SERVICES, "analytics-engine": ("analytics.trading.internal", "analytics")}
    issued.configure(services)
    capsys.readouterr()
    assert issued.run() == {
        "ca": "kept",
        "issued": ["analytics-engine"],
        "kept": ["data-ingestion", "api-gateway"],
    }
    assert issue_reasons(capsys) == {"analytics-engine": "names_changed"}
    assert_leaf(issued, "analytics-engine", services["analytics-engine"])


def test_an_unusable_secret_is_reissued(
    issued: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    service = "data-ingestion"
    current = issued.secret(service)
    broken_key = "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n"
    cases: list[tuple[object, str]] = [
        ("not json", "unparseable"),
        ("[]", "unparseable"),
        ('"text"', "unparseable"),
        ("{}", "missing"),
        ({"cert": "x", "key": "y", "ca": "z"}, "unparseable"),
        ({**current, "not_after": 1}, "unparseable"),
        ({**current, "not_after": "2099-01-01 00:00:00"}, "unparseable"),
        ({**current, "cert": current["cert"].replace("MII", "MIX", 1)}, "unparseable"),
        ({**current, "key": broken_key}, "unparseable"),
        ({**current, "cert": current["ca"]}, "names_changed"),  # the CA's certificate
    ]
    for value, reason in cases:
        issued.put(service, value)
        capsys.readouterr()
        assert issued.run()["issued"] == [service], value
        assert issue_reasons(capsys) == {service: reason}, value
        assert_leaf(issued, service, SERVICES[service])
    # A binary value: Secrets Manager returns no SecretString.
    issued.sm.put_secret_value(SecretId=issued.secret_arns[service], SecretBinary=b"x")
    assert issued.run()["issued"] == [service]
    assert issue_reasons(capsys) == {service: "missing"}
    assert_leaf(issued, service, SERVICES[service])


def test_an_unusable_ca_secret_is_replaced(issued: Platform) -> None:
    for value in ('{"ca": "garbage"}', '{"ca": 1}', "[1]", "nope", '{"other": 1}'):
        issued.sm.put_secret_value(SecretId=issued.ca_secret_arn, SecretString=value)
        assert issued.run() == {"ca": "issued", "issued": list(SERVICES), "kept": []}, value
        assert_ca(issued.ca(), issued.kms_public_key(), issuer.DEFAULT_CA_NAME)


# --- Failures ---------------------------------------------------------------------------------


def _no_client() -> Any:
    raise AssertionError("an AWS client was created before the configuration was validated")


@pytest.mark.parametrize(
    ("env", "event", "message"),
    [
        ({"CERT_DAYS": "0"}, {}, "CERT_DAYS must be between 1 and 397"),
        ({"CERT_DAYS": "398"}, {}, "CERT_DAYS must be between 1 and 397"),
        ({"CERT_DAYS": "thirty"}, {}, "CERT_DAYS must be an integer"),
        ({"RENEW_BEFORE_DAYS": "30"}, {}, "RENEW_BEFORE_DAYS must be between 0 and 29"),
        ({"CERT_DAYS": "10", "RENEW_BEFORE_DAYS": "10"}, {}, "RENEW_BEFORE_DAYS must be"),
        ({"RENEW_BEFORE_DAYS": "-1"}, {}, "RENEW_BEFORE_DAYS must be"),
        ({"CA_DAYS": "30"}, {}, "CA_DAYS must be between 31 and 36500"),
        ({"CA_NAME": "x" * 65}, {}, "CA_NAME is invalid"),
        ({"SERVICES": "[{"}, {}, "SERVICES is not valid JSON"),
        ({"SERVICES": '{"name": "a"}'}, {}, "SERVICES must be a JSON list"),
        ({"SERVICES": '[{"name": "a", "secret_arn": "s"}]'}, {}, "SERVICES\\[0\\] must be"),
        ({"SERVICES": '[{"name": "a", "secret_arn": "s", "sans": []}]'}, {}, "non-empty list"),
        ({"SERVICES": '[{"name": "a", "secret_arn": "s", "sans": ["a_b"]}]'}, {}, "invalid DNS"),
        (
            {"SERVICES": '[{"name": "a", "secret_arn": "s", "sans": ["*.trading.local"]}]'},
            {},
            "may not hold wildcards",
        ),
        ({"SERVICES": '[{"name": "", "secret_arn": "s", "sans": ["a"]}]'}, {}, "name is invalid"),
        ({"SERVICES": '[{"name": "a", "secret_arn": "", "sans": ["a"]}]'}, {}, "secret_arn"),
        (
            {"SERVICES": '[{"name": "a", "secret_arn": "s", "sans": ["a", "a"]}]'},
            {},
            "duplicates",
        ),
        (
            {
                "SERVICES": json.dumps(
                    [{"name": "a", "secret_arn": "s", "sans": [f"{n}.example" for n in range(400)]}]
                )
            },
            {},
            "too long",
        ),
        (
            {
                "SERVICES": json.dumps(
                    [
                        {"name": "a", "secret_arn": "s1", "sans": ["a"]},
                        {"name": "a", "secret_arn": "s2", "sans": ["b"]},
                    ]
                )
            },
            {},
            "duplicate name",
        ),
        ({"SERVICES": ""}, {}, "SERVICES is not set"),
        ({"CA_KEY_ID": ""}, {}, "CA_KEY_ID is not set"),
        ({}, {"force": "yes"}, "force must be true or false"),
    ],
)
def test_configuration_errors_raise_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    event: dict[str, Any],
    message: str,
) -> None:
    valid = {
        "CA_KEY_ID": "alias/mesh-ca",
        "DATA_KEY_ID": "alias/platform",
        "CA_SECRET_ARN": "ca-secret",
        "SERVICES": json.dumps([{"name": "a", "secret_arn": "a-secret", "sans": ["a.internal"]}]),
    }
    for name, value in {**valid, **env}.items():
        monkeypatch.setenv(name, value)
    # Neither client can be created, so no AWS call (and no write) can happen.
    monkeypatch.setattr(issuer, "_kms_client", _no_client)
    monkeypatch.setattr(issuer, "_secrets_client", _no_client)
    with pytest.raises(ValueError, match=message) as raised:
        issuer.handler(event, None)  # type: ignore[arg-type]
    assert isinstance(raised.value, issuer.ConfigurationError)


def test_a_service_secret_equal_to_the_ca_secret_is_refused(platform: Platform) -> None:
    platform.secret_arns["evil"] = platform.ca_secret_arn
    platform.configure({**SERVICES, "evil": ("evil.trading.internal",)})
    with pytest.raises(ValueError, match="equals CA_SECRET_ARN"):
        platform.run()


def test_a_ca_key_that_is_not_a_p256_signing_key_is_refused(platform: Platform) -> None:
    rsa = platform.kms.client.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    platform.configure(CA_KEY_ID=rsa["KeyMetadata"]["KeyId"])
    with pytest.raises(x509.CertificateError, match="ECC_NIST_P256"):
        platform.run()
    assert platform.kms.sign_calls == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        platform.sm.get_secret_value(SecretId=platform.ca_secret_arn, VersionStage="AWSCURRENT")


def test_one_failing_service_does_not_hold_back_the_others(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = platform.secret_arns["data-ingestion"].replace("data-ingestion", "deleted")
    platform.secret_arns["deleted"] = missing
    platform.configure({"deleted": ("deleted.trading.internal",), **SERVICES})
    with pytest.raises(issuer.IssuanceError, match=r"\['deleted'\]"):
        platform.run()
    for service, sans in SERVICES.items():
        assert_leaf(platform, service, sans)
    failures = [
        line
        for line in map(json.loads, capsys.readouterr().out.splitlines())
        if line.get("service") == "deleted"
    ]
    assert failures == [
        {
            **failures[0],
            "level": "ERROR",
            "message": "Issuing failed",
            "error_code": "ResourceNotFoundException",
        }
    ]


def test_an_aws_failure_for_the_ca_is_logged_by_code_and_raised(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    platform.configure(CA_KEY_ID="alias/missing")
    with pytest.raises(ClientError):
        platform.run()
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["level"] == "ERROR" and last["error_code"] == "NotFoundException"


def test_logs_and_results_never_contain_key_or_certificate_material(
    platform: Platform,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    results = [platform.run(), platform.run(), platform.run({"force": True})]
    platform.configure(CERT_DAYS="0")
    with pytest.raises(ValueError):
        platform.run()
    output = capsys.readouterr()
    lines = [json.loads(line) for line in output.out.splitlines()]
    assert lines and all(line["level"] in {"INFO", "ERROR"} for line in lines)
    assert output.err == ""
    bodies = [platform.ca_pem()] + [
        platform.secret(service)[part] for service in SERVICES for part in ("cert", "key")
    ]
    fragments = [body.splitlines()[1][:32] for body in bodies]  # first base64 line of each
    for text in (output.out, caplog.text, json.dumps(results)):
        for marker in (*SECRET_MARKERS, *fragments):
            assert marker not in text


# --- The Lambda asset -------------------------------------------------------------------------


def test_the_asset_runs_as_top_level_modules_without_cryptography() -> None:
    """The Lambda runtime puts the asset folder on sys.path and has no ``cryptography``."""
    program = f"""
import json, sys
sys.modules["cryptography"] = None
sys.modules["trading_constructs"] = None
sys.path.insert(0, {str(ASSET)!r})
import issuer, x509, der, jsonlog
assert issuer.der is der and issuer.x509 is x509 and x509.der is der
assert isinstance(issuer._log, jsonlog.JsonLogger)
assert callable(issuer.handler)
print(json.dumps(der.pem("X", x509.name("ok"))))
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout).startswith("-----BEGIN X-----\n")


def test_the_asset_imports_only_the_standard_library_boto3_and_itself() -> None:
    allowed = {*sys.stdlib_module_names, "boto3", "botocore", "__future__"}
    allowed |= {"der", "x509", "jsonlog"}
    modules = sorted(path.name for path in ASSET.rglob("*") if path.is_file())
    assert modules == ["der.py", "issuer.py", "jsonlog.py", "x509.py"]
    for path in ASSET.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else []
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)


def test_clients_are_created_once_in_the_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
    kms, secrets_manager = issuer._kms_client(), issuer._secrets_client()
    assert kms is issuer._kms_client() and secrets_manager is issuer._secrets_client()
    assert getattr(kms, "meta").region_name == "eu-west-2"  # noqa: B009
    assert getattr(secrets_manager, "meta").region_name == "eu-west-2"  # noqa: B009


# --- DER encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (der.integer(0), "020100"),
        (der.integer(1), "020101"),
        (der.integer(127), "02017f"),
        (der.integer(128), "02020080"),
        (der.integer(255), "020200ff"),
        (der.integer(256), "02020100"),
        (der.integer(-1), "0201ff"),
        (der.integer(-128), "020180"),
        (der.integer(-129), "0202ff7f"),
        (der.integer(-256), "0202ff00"),
        (der.boolean(True), "0101ff"),
        (der.boolean(False), "010100"),
        (der.null(), "0500"),
        (der.octet_string(b"\x01\x02"), "04020102"),
        (der.bit_string(b""), "030100"),
        (der.bit_string(b"\x06", unused_bits=1), "03020106"),
        (der.oid("1.2.840.10045.4.3.2"), "06082a8648ce3d040302"),
        (der.oid("1.2.840.10045.2.1"), "06072a8648ce3d0201"),
        (der.oid("1.2.840.10045.3.1.7"), "06082a8648ce3d030107"),
        (der.oid("2.5.4.3"), "0603550403"),
        (der.oid("2.5.29.17"), "0603551d11"),
        (der.oid("1.3.6.1.5.5.7.3.1"), "06082b06010505070301"),
        (der.oid("2.999.3"), "0603883703"),
        (der.utf8_string("é"), "0c02c3a9"),
        (der.printable_string("Trading CA"), "130a54726164696e67204341"),
        (der.ia5_string("a.b"), "1603612e62"),
        (der.sequence(), "3000"),
        (der.sequence(der.integer(1), der.null()), "30050201010500"),
        (der.set_of(der.integer(2), der.integer(1)), "3106020101020102"),
        (der.explicit(0, der.integer(2)), "a003020102"),
        (der.explicit(3, der.sequence()), "a3023000"),
        (der.implicit(2, b"a"), "820161"),
        (der.implicit(0, b"\x01\x02"), "80020102"),
        (x509._key_usage(x509.KEY_CERT_SIGN, x509.CRL_SIGN), "03020106"),
        (x509._key_usage(x509.DIGITAL_SIGNATURE), "03020780"),
        (x509._key_usage(0, 8), "0303078080"),  # digitalSignature + decipherOnly
    ],
)
def test_known_encodings(encoded: bytes, expected: str) -> None:
    assert encoded.hex() == expected


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8180"),
        (255, "81ff"),
        (256, "820100"),
        (65535, "82ffff"),
        (65536, "83010000"),
    ],
)
def test_length_octets(length: int, expected: str) -> None:
    assert der.encode_length(length).hex() == expected
    element = der.octet_string(bytes(length))
    assert element[1 : 1 + len(expected) // 2].hex() == expected
    assert der.parse(element, der.OCTET_STRING).content == bytes(length)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(1950, 1, 1, tzinfo=timezone.utc), "170d3530303130313030303030305a"),
        (
            datetime(2049, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
            "170d3439313233313233353935395a",
        ),
        (datetime(2050, 1, 1, tzinfo=timezone.utc), "180f32303530303130313030303030305a"),
        (
            datetime(1949, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
            "180f31393439313233313233353935395a",
        ),
        (
            datetime(2030, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "170d3330303630313132303030305a",
        ),
    ],
)
def test_times_follow_rfc5280(moment: datetime, expected: str) -> None:
    assert der.time(moment).hex() == expected
    assert der.read_time(der.parse(der.time(moment))) == moment.replace(microsecond=0)


def test_encoder_rejects_what_x509_does_not_allow() -> None:
    with pytest.raises(der.DerError):
        der.time(datetime(2030, 1, 1))  # naive
    with pytest.raises(der.DerError):
        der.utc_time(datetime(2050, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(der.DerError):
        der.printable_string("a@b")
    with pytest.raises(der.DerError):
        der.ia5_string("é")
    with pytest.raises(der.DerError):
        der.bit_string(b"\x01", unused_bits=1)  # unused bits must be zero
    for bad in ("1", "3.1", "1.40", "1.2.-3", "1..2", "1.02", "a.b"):
        with pytest.raises(der.DerError):
            der.oid(bad)
    with pytest.raises(der.DerError):
        der.tlv(0x1F, b"")  # high tag number form
    with pytest.raises(der.DerError):
        der.explicit(31, b"")


@pytest.mark.parametrize(
    "encoding",
    [
        "0281050102030405",  # non-minimal long-form length
        "0280",  # indefinite length
        "020201",  # truncated content
        "02",  # truncated header
        "1f2000",  # high tag number
        "0201000500",  # trailing bytes
    ],
)
def test_reader_rejects_non_der(encoding: str) -> None:
    with pytest.raises(der.DerError):
        der.parse(bytes.fromhex(encoding))


@pytest.mark.parametrize("content", ["", "0001", "ff80"])
def test_reader_rejects_non_minimal_integers(content: str) -> None:
    with pytest.raises(der.DerError):
        der.read_integer(bytes.fromhex(content))


def test_pem_round_trip() -> None:
    body = bytes(range(256))
    text = der.pem("CERTIFICATE", body)
    lines = text.splitlines()
    assert lines[0] == "-----BEGIN CERTIFICATE-----" and lines[-1] == "-----END CERTIFICATE-----"
    assert all(len(line) <= 64 for line in lines[1:-1]) and text.endswith("\n")
    assert der.unpem("CERTIFICATE", "junk\r\n" + text.replace("\n", "\r\n")) == body
    with pytest.raises(der.DerError):
        der.unpem("PRIVATE KEY", text)
    with pytest.raises(der.DerError):
        der.unpem("CERTIFICATE", text.replace("A", "*"))


def decode_integer(element: bytes) -> int:
    """An INTEGER decoder independent of ``der``: short or long length, two's complement."""
    assert element[0] == 0x02
    if element[1] < 0x80:
        length, start = element[1], 2
    else:
        count = element[1] & 0x7F
        length, start = int.from_bytes(element[2 : 2 + count], "big"), 2 + count
    content = element[start:]
    assert len(content) == length
    return int.from_bytes(content, "big", signed=True)


@given(st.integers(min_value=-(2**2100), max_value=2**2100))
def test_integer_round_trips_and_is_minimal(value: int) -> None:
    encoded = der.integer(value)
    assert decode_integer(encoded) == value
    content = der.parse(encoded, der.INTEGER).content
    assert der.read_integer(content) == value  # read_integer rejects non-minimal content
    assert len(content) == (value.bit_length() if value >= 0 else (~value).bit_length()) // 8 + 1


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_length_round_trips(length: int) -> None:
    octets = der.encode_length(length)
    if length < 128:
        assert octets == bytes([length])
    else:
        assert octets[0] == 0x80 | (len(octets) - 1) and octets[1] != 0
        assert int.from_bytes(octets[1:], "big") == length


@given(
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=0, max_value=2**64),
    st.lists(st.integers(min_value=0, max_value=2**64), max_size=8),
)
def test_oid_round_trips(first: int, second: int, rest: list[int]) -> None:
    if first < 2:
        second %= 40
    dotted = ".".join(str(arc) for arc in [first, second, *rest])
    encoded = der.oid(dotted)
    assert der.read_oid(der.parse(encoded, der.OBJECT_IDENTIFIER).content) == dotted


@given(
    st.datetimes(
        min_value=datetime(1950, 1, 1),
        max_value=datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.just(timezone.utc),
    )
)
def test_time_round_trips(moment: datetime) -> None:
    encoded = der.time(moment)
    assert encoded[0] == (der.UTC_TIME if moment.year < 2050 else der.GENERALIZED_TIME)
    assert der.read_time(der.parse(encoded)) == moment.replace(microsecond=0)


# --- X.509 against cryptography ---------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
_dns_names = st.lists(
    st.lists(_label, min_size=1, max_size=4).map(".".join), min_size=1, max_size=5, unique=True
)
_common_names = st.text(min_size=1, max_size=64).filter(
    lambda text: text.isprintable() and len(text.encode()) <= x509.MAX_COMMON_NAME_LENGTH
)
_moments = st.datetimes(
    min_value=datetime(1950, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(timezone.utc),
).map(lambda moment: moment.replace(microsecond=0))
_SIGNER = ec.generate_private_key(ec.SECP256R1())
_SUBJECT_KEY = ec.generate_private_key(ec.SECP256R1()).public_key()
_SPKI = _SUBJECT_KEY.public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)


@given(_common_names)
def test_names_match_cryptography(common_name: str) -> None:
    expected = cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, common_name)]).public_bytes()
    assert x509.name(common_name) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _common_names,
    _common_names,
    _dns_names,
    st.integers(min_value=1, max_value=2**159 - 1),
    _moments,
    st.integers(min_value=1, max_value=400 * 86400),
)
def test_tbs_certificates_match_cryptography_byte_for_byte(
    common_name: str,
    ca_name: str,
    dns_names: list[str],
    serial: int,
    not_before: datetime,
    seconds: int,
) -> None:
    not_after = not_before + timedelta(seconds=seconds)
    ca_key_id = cx.SubjectKeyIdentifier.from_public_key(_SIGNER.public_key()).digest

    def build(builder: cx.CertificateBuilder, subject: str, issuer_name: str) -> cx.Certificate:
        return (
            builder.subject_name(cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(cx.Name([cx.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .sign(_SIGNER, hashes.SHA256())
        )

    leaf = build(
        cx.CertificateBuilder()
        .public_key(_SUBJECT_KEY)
        .add_extension(cx.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage("digital_signature"), critical=True)
        .add_extension(
            cx.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            cx.SubjectAlternativeName([cx.DNSName(name) for name in dns_names]), critical=False
        )
        .add_extension(
            cx.AuthorityKeyIdentifier(ca_key_id, None, None),
            critical=False,
        )
        .add_extension(cx.SubjectKeyIdentifier.from_public_key(_SUBJECT_KEY), critical=False),
        common_name,
        ca_name,
    )
    assert leaf.tbs_certificate_bytes == x509.leaf_tbs(
        common_name=common_name,
        dns_names=tuple(dns_names),
        subject_public_key_info=_SPKI,
        issuer=x509.name(ca_name),
        authority_key_id=ca_key_id,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
    )
    ca = build(
        cx.CertificateBuilder()
        .public_key(_SUBJECT_KEY)
        .add_extension(cx.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage("key_cert_sign", "crl_sign"), critical=True)
        .add_extension(cx.SubjectKeyIdentifier.from_public_key(_SUBJECT_KEY), critical=False),
        ca_name,
        ca_name,
    )
    assert ca.tbs_certificate_bytes == x509.ca_tbs(
        common_name=ca_name,
        subject_public_key_info=_SPKI,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
    )
    parsed = x509.parse_certificate(leaf.public_bytes(serialization.Encoding.DER))
    assert parsed.not_before == not_before and parsed.not_after == not_after
    assert parsed.dns_names == tuple(dns_names)
    assert parsed.subject == x509.name(common_name) and parsed.issuer == x509.name(ca_name)
    assert parsed.subject_public_key_info == _SPKI
    assert parsed.subject_key_id == x509.key_identifier(_SPKI)
    assert parsed.subject_key_id == cx.SubjectKeyIdentifier.from_public_key(_SUBJECT_KEY).digest


def test_parse_rejects_what_is_not_a_certificate() -> None:
    for data in (b"", b"\x30\x00", der.sequence(der.sequence(), der.null(), der.null())):
        with pytest.raises(x509.CertificateError):
            x509.parse_certificate(data)


def test_public_keys_other_than_p256_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    spki = p384.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for data in (spki, b"", b"\x30\x00", _SPKI[:-1]):
        with pytest.raises(x509.CertificateError, match="P-256"):
            x509.ec_p256_point(data)
    assert x509.ec_p256_point(_SPKI) == _SUBJECT_KEY.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def test_signatures_that_are_not_der_ecdsa_are_refused() -> None:
    tbs = der.sequence()
    for signature in (b"", b"\x30\x00", der.sequence(der.integer(1)), b"\x00" * 64):
        with pytest.raises(x509.CertificateError):
            x509.certificate(tbs, signature)
    with pytest.raises(x509.CertificateError):
        x509.certificate(tbs, der.sequence(der.integer(-1), der.integer(1)))


class _EcsSpy:
    """moto's ECS, recording the deployments the issuer starts."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.deployed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_service(self, **kwargs: Any) -> Any:
        assert kwargs["forceNewDeployment"] is True
        self.deployed.append(kwargs["service"].rsplit("/", 1)[-1])
        return self.client.update_service(**kwargs)


def test_renewed_certificates_reach_running_tasks_by_a_new_deployment(
    issued: Platform,
) -> None:
    # GIVEN ECS services tagged with the mesh service their tasks hold a certificate of
    ecs = SESSION.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="trading")
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "a", "image": "x", "memory": 512}]
    )
    name = next(iter(SERVICES))
    for ecs_name, mesh_name in (("blue", name), ("green", name), ("other", "not-renewed")):
        ecs.create_service(
            cluster="trading",
            serviceName=ecs_name,
            taskDefinition="app",
            desiredCount=0,
            tags=[{"key": issuer.SERVICE_TAG, "value": mesh_name}],
        )
    spy = _EcsSpy(ecs)
    issued.monkeypatch.setattr(issuer, "_ecs_client", lambda: spy)
    issued.monkeypatch.setenv("ECS_CLUSTER", "trading")
    # WHEN one service's certificate is near its end and gets reissued
    issued.put(name, {**issued.secret(name), "not_after": "2000-01-01T00:00:00Z"})
    summary = issued.run()
    # THEN its ECS services, and only they, start a new deployment
    assert name in summary["issued"]
    assert sorted(spy.deployed) == ["blue", "green"]


def test_without_a_renewal_nothing_is_redeployed(issued: Platform) -> None:
    ecs = SESSION.client("ecs", region_name=REGION)
    spy = _EcsSpy(ecs)
    issued.monkeypatch.setattr(issuer, "_ecs_client", lambda: spy)
    issued.monkeypatch.setenv("ECS_CLUSTER", "trading")
    assert issued.run()["issued"] == []
    assert spy.deployed == []
