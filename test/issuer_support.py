"""The mesh certificate issuer run against moto: what the issuer's tests and the TLS handshake
tests share.

moto plays KMS and Secrets Manager. Its KMS signs for real: ``create_key(KeySpec="ECC_NIST_P256",
KeyUsage="SIGN_VERIFY")`` holds an EC private key, ``Sign`` returns a DER ECDSA signature and
``GetPublicKey`` the SubjectPublicKeyInfo. moto 5.2.5 does not implement ``GenerateDataKeyPair``;
``KmsProxy`` (which the handler's KMS client factory returns) generates a P-256 pair with
``cryptography`` and returns the real API's shapes (PKCS#8 DER plaintext, SubjectPublicKeyInfo
DER, the private key encrypted by moto under the data key), after the checks the real API makes
on the data key. Everything else is delegated to moto.

Service secrets are created as the construct creates them: a ``{}`` placeholder or no value at
all (``GetSecretValue`` then fails with ``ResourceNotFoundException``). The CA secret starts
without a value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography import x509 as cx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws
from validation_support import fake_aws

from trading_constructs.handlers.mesh_certificate_issuer import issuer

REGION = "us-east-1"
ISSUER_SETTINGS = ("CA_NAME", "CERT_DAYS", "RENEW_BEFORE_DAYS", "CA_DAYS", "ECS_CLUSTER")
"""The issuer's optional settings: never inherited from the machine running the tests."""
CLIENT_FACTORIES = (issuer._kms_client, issuer._secrets_client, issuer._ecs_client)
# One session for every test: its loader keeps the parsed service models, which boto3's default
# session (reset by each mock_aws) would read from disk again for every test.
SESSION = boto3.session.Session()

Services = Mapping[str, Sequence[str]]
"""Service name -> the DNS names (SANs) its certificate carries."""


def key_usage(*granted: str) -> cx.KeyUsage:
    """An X.509 key usage that grants ``granted`` and nothing else."""
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return cx.KeyUsage(**{name: name in granted for name in names})


@dataclass
class KmsProxy:
    """moto's KMS client plus ``GenerateDataKeyPair``, recording the signing calls."""

    client: Any
    sign_calls: list[dict[str, Any]] = field(default_factory=list)
    pair_calls: list[dict[str, Any]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def sign(self, **kwargs: Any) -> Any:
        self.sign_calls.append(kwargs)
        return self.client.sign(**kwargs)

    def generate_data_key_pair(self, *, KeyId: str, KeyPairSpec: str) -> dict[str, Any]:
        self.pair_calls.append({"KeyId": KeyId, "KeyPairSpec": KeyPairSpec})
        if KeyPairSpec != "ECC_NIST_P256":
            raise NotImplementedError(KeyPairSpec)
        metadata = self.client.describe_key(KeyId=KeyId)["KeyMetadata"]
        if (
            metadata["KeySpec"] != "SYMMETRIC_DEFAULT"
            or metadata.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT"
        ):
            raise ClientError(
                {"Error": {"Code": "InvalidKeyUsageException", "Message": "not symmetric"}},
                "GenerateDataKeyPair",
            )
        private_key = ec.generate_private_key(ec.SECP256R1())
        plaintext = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        encrypted = self.client.encrypt(KeyId=KeyId, Plaintext=plaintext)
        return {
            "KeyId": encrypted["KeyId"],
            "KeyPairSpec": KeyPairSpec,
            "PrivateKeyCiphertextBlob": encrypted["CiphertextBlob"],
            "PrivateKeyPlaintext": plaintext,
            "PublicKey": private_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        }


@dataclass
class Platform:
    """The AWS side of the issuer: its keys and secrets in moto, and its settings."""

    kms: KmsProxy
    sm: Any
    ca_key_id: str
    data_key_id: str
    ca_secret_arn: str
    secret_arns: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    services: Services

    def run(self, event: dict[str, Any] | None = None) -> issuer.IssueSummary:
        return issuer.handler(event or {}, None)  # type: ignore[arg-type]

    def configure(self, services: Services | None = None, **env: str) -> None:
        services = self.services if services is None else services
        entries = [
            {"name": name, "secret_arn": self.secret_arns[name], "sans": list(sans)}
            for name, sans in services.items()
        ]
        self.monkeypatch.setenv("SERVICES", json.dumps(entries))
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)

    def value(self, arn: str) -> Any:
        response = self.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        return json.loads(response["SecretString"])

    def secret(self, service: str) -> dict[str, str]:
        value: dict[str, str] = self.value(self.secret_arns[service])
        return value

    def put(self, service: str, value: object) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        self.sm.put_secret_value(SecretId=self.secret_arns[service], SecretString=text)

    def ca_pem(self) -> str:
        pem: str = self.value(self.ca_secret_arn)["ca"]
        return pem

    def ca(self) -> cx.Certificate:
        return cx.load_pem_x509_certificate(self.ca_pem().encode())

    def leaf(self, service: str) -> cx.Certificate:
        return cx.load_pem_x509_certificate(self.secret(service)["cert"].encode())

    def snapshot(self) -> dict[str, str]:
        arns = [self.ca_secret_arn, *self.secret_arns.values()]
        return {
            arn: self.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["VersionId"]
            for arn in arns
        }

    def kms_public_key(self, key_id: str | None = None) -> bytes:
        response = self.kms.client.get_public_key(KeyId=key_id or self.ca_key_id)
        key: bytes = response["PublicKey"]
        return key


@contextmanager
def issuer_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's credentials and region, none of the issuer's settings, and fresh AWS clients."""
    fake_aws(monkeypatch, REGION, *ISSUER_SETTINGS)
    for factory in CLIENT_FACTORIES:
        factory.cache_clear()
    try:
        yield
    finally:
        for factory in CLIENT_FACTORIES:
            factory.cache_clear()


@contextmanager
def running_platform(
    monkeypatch: pytest.MonkeyPatch, services: Services, *, no_value: Sequence[str] = ()
) -> Iterator[Platform]:
    """The issuer's keys and secrets in moto, the handler pointed at them and configured for
    ``services``. The secrets of ``no_value`` are created without a value, the others with
    ``{}``."""
    with mock_aws():
        kms = SESSION.client("kms", region_name=REGION)
        sm = SESSION.client("secretsmanager", region_name=REGION)
        ca_key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
            "Arn"
        ]
        data_key_id = kms.create_key()["KeyMetadata"]["Arn"]
        ca_secret_arn = sm.create_secret(Name="trading/mesh/ca")["ARN"]
        secret_arns = {
            name: sm.create_secret(
                Name=f"trading/mesh/{name}",
                **({} if name in no_value else {"SecretString": "{}"}),
            )["ARN"]
            for name in services
        }
        proxy = KmsProxy(kms)
        monkeypatch.setattr(issuer, "_kms_client", lambda: proxy)
        monkeypatch.setattr(issuer, "_secrets_client", lambda: sm)
        monkeypatch.setenv("CA_KEY_ID", ca_key_id)
        monkeypatch.setenv("DATA_KEY_ID", data_key_id)
        monkeypatch.setenv("CA_SECRET_ARN", ca_secret_arn)
        result = Platform(
            proxy, sm, ca_key_id, data_key_id, ca_secret_arn, secret_arns, monkeypatch, services
        )
        result.configure()
        yield result
