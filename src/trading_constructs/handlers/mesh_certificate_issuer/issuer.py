"""Issue and renew the service mesh's mutual-TLS certificates (Lambda handler ``issuer.handler``).

The platform CA's private key is an asymmetric AWS KMS key (``ECC_NIST_P256``, ``SIGN_VERIFY``)
that never leaves KMS: certificates are signed with ``kms:Sign`` (``ECDSA_SHA_256``, message type
``RAW`` over the DER TBSCertificate). Each service's key pair comes from
``kms:GenerateDataKeyPair`` (``ECC_NIST_P256``) under the platform's symmetric key.

One invocation:

1. Validates the configuration (raises ``ValueError`` before any AWS call).
2. Ensures the CA certificate in ``CA_SECRET_ARN`` (``{"ca": PEM}``) exists, carries the KMS key's
   public key and ``CN=CA_NAME``, is already valid and stays valid for longer than
   ``CERT_DAYS``; otherwise issues a new self-signed CA certificate (same KMS key) and stores it.
   Because the key and name do not change, leaves signed under the previous CA certificate
   still chain to the new one, and the other way round.
3. For each service in ``SERVICES``, reads its secret ``{"cert", "key", "ca", "not_after"}`` and
   issues a new key pair and certificate when the secret has no value (or ``{}``), cannot be
   read, holds another CA than the current one, names other than the configured ones, or a
   ``not_after`` within ``RENEW_BEFORE_DAYS``.

The event may be ``{"force": true}`` to reissue the CA certificate and every leaf; any other
keys (an EventBridge scheduled event, for example) are ignored. The return value summarises what
happened and never contains key or certificate material:
``{"ca": "kept" | "issued", "issued": [names], "kept": [names]}``.

Environment variables:

``CA_KEY_ID``
    The asymmetric KMS key (id, ARN or alias) that is the CA's private key.
``DATA_KEY_ID``
    The symmetric KMS key under which ``GenerateDataKeyPair`` encrypts the private keys.
``CA_SECRET_ARN``
    The secret that stores the CA certificate.
``CA_NAME``
    The CA's common name (default ``trading-platform-mesh-ca``).
``SERVICES``
    A JSON list of ``{"name": ..., "secret_arn": ..., "sans": [DNS names]}``.
``CERT_DAYS``
    Leaf validity in days, 1 to 397 (default 30).
``RENEW_BEFORE_DAYS``
    Renew a leaf this many days before it expires, 0 to ``CERT_DAYS - 1`` (default 10).
``CA_DAYS``
    CA validity in days, ``CERT_DAYS + 1`` to 36500 (default 3650).

Logs are JSON lines on standard output with a ``level`` field. They carry service names, secret
ARNs, reasons and expiry times, never a key or a certificate.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal, Protocol, TypedDict

import boto3
from botocore.exceptions import ClientError

try:  # in the wheel: trading_constructs.handlers.mesh_certificate_issuer.issuer
    from .._shared.jsonlog import JsonLogger
    from . import der, x509
except ImportError:  # in the Lambda asset: top-level modules, jsonlog copied beside this one
    import der  # type: ignore[import-not-found,no-redef]
    import x509  # type: ignore[import-not-found,no-redef]
    from jsonlog import JsonLogger  # type: ignore[import-not-found,no-redef]

__all__ = [
    "ConfigurationError",
    "IssuanceError",
    "IssueEvent",
    "IssueSummary",
    "handler",
    "load_config",
]

DEFAULT_CA_NAME: Final = "trading-platform-mesh-ca"
DEFAULT_CERT_DAYS: Final = 30
MAX_CERT_DAYS: Final = 397
DEFAULT_RENEW_BEFORE_DAYS: Final = 10
DEFAULT_CA_DAYS: Final = 3650
MAX_CA_DAYS: Final = 36500
CA_BACKDATE: Final = timedelta(hours=1)
LEAF_BACKDATE: Final = timedelta(minutes=5)
KMS_MAX_RAW_MESSAGE: Final = 4096  # kms:Sign with MessageType RAW
# Bound on a leaf's DNS names (sum of their lengths plus two octets each) that keeps the
# TBSCertificate, about 500 octets without them, under KMS_MAX_RAW_MESSAGE.
MAX_SAN_OCTETS: Final = 3000

KEY_SPEC: Final = "ECC_NIST_P256"
SIGNING_ALGORITHM: Final = "ECDSA_SHA_256"
CERTIFICATE_LABEL: Final = "CERTIFICATE"
PRIVATE_KEY_LABEL: Final = "PRIVATE KEY"
NOT_AFTER_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_AWSCURRENT: Final = "AWSCURRENT"


class IssueEvent(TypedDict, total=False):
    """The invocation event; ``force`` reissues the CA certificate and every leaf."""

    force: bool


class IssueSummary(TypedDict):
    """What one invocation did. Names only, never key or certificate material."""

    ca: Literal["kept", "issued"]
    issued: list[str]
    kept: list[str]


class ConfigurationError(ValueError):
    """The environment or the event is invalid. Raised before any AWS call."""


class IssuanceError(RuntimeError):
    """Some services could not get a certificate; the others were processed. Names only."""


@dataclass(frozen=True)
class Service:
    name: str
    secret_arn: str
    sans: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    ca_key_id: str
    data_key_id: str
    ca_secret_arn: str
    ca_name: str
    services: tuple[Service, ...]
    cert_days: int
    renew_before_days: int
    ca_days: int
    ecs_cluster: str | None = None
    """Where tasks run: renewed certificates reach them by a new deployment of the ECS
    services tagged ``SERVICE_TAG=<service name>`` (ECS reads secrets at task start only)."""


SERVICE_TAG = "trading-constructs:mesh-service"
_log: Final = JsonLogger(__name__)


@dataclass(frozen=True)
class _Ca:
    """The current CA certificate and what leaves take from it."""

    pem: str
    subject: bytes
    key_id: bytes
    not_after: datetime


# --- AWS clients ------------------------------------------------------------------------------
# Typed views of the parts of the boto3 clients and responses that this module uses.


class _GetPublicKeyResponse(TypedDict, total=False):
    PublicKey: bytes
    KeyUsage: str
    SigningAlgorithms: list[str]


class _SignResponse(TypedDict):
    Signature: bytes


class _GenerateDataKeyPairResponse(TypedDict):
    PrivateKeyPlaintext: bytes
    PublicKey: bytes


class KmsClient(Protocol):
    """The subset of the boto3 KMS client used here."""

    def get_public_key(self, *, KeyId: str) -> _GetPublicKeyResponse: ...

    def sign(
        self, *, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str
    ) -> _SignResponse: ...

    def generate_data_key_pair(
        self, *, KeyId: str, KeyPairSpec: str
    ) -> _GenerateDataKeyPairResponse: ...


class _GetSecretValueResponse(TypedDict, total=False):
    SecretString: str


class EcsClient(Protocol):
    def list_services(self, **kwargs: object) -> dict[str, Any]: ...
    def list_tags_for_resource(self, **kwargs: object) -> dict[str, Any]: ...
    def update_service(self, **kwargs: object) -> dict[str, Any]: ...


class SecretsManagerClient(Protocol):
    """The subset of the boto3 Secrets Manager client used here."""

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> _GetSecretValueResponse: ...

    def put_secret_value(self, *, SecretId: str, SecretString: str) -> object: ...


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or None


@functools.cache
def _kms_client() -> KmsClient:
    """Create the KMS client on first use and reuse it across invocations."""
    client: KmsClient = boto3.client("kms", region_name=_region())
    return client


@functools.cache
def _ecs_client() -> EcsClient:
    """Create the ECS client on first use and reuse it across invocations."""
    client: EcsClient = boto3.client("ecs", region_name=_region())
    return client


@functools.cache
def _secrets_client() -> SecretsManagerClient:
    """Create the Secrets Manager client on first use and reuse it across invocations."""
    client: SecretsManagerClient = boto3.client("secretsmanager", region_name=_region())
    return client


# --- Configuration ----------------------------------------------------------------------------


def load_config(environ: Mapping[str, str]) -> Config:
    """Read and validate the configuration. Raises ``ConfigurationError`` (a ``ValueError``)."""
    cert_days = _int_setting(environ, "CERT_DAYS", DEFAULT_CERT_DAYS, 1, MAX_CERT_DAYS)
    renew_before_days = _int_setting(
        environ, "RENEW_BEFORE_DAYS", DEFAULT_RENEW_BEFORE_DAYS, 0, cert_days - 1
    )
    ca_days = _int_setting(environ, "CA_DAYS", DEFAULT_CA_DAYS, cert_days + 1, MAX_CA_DAYS)
    ca_name = environ.get("CA_NAME", "").strip() or DEFAULT_CA_NAME
    try:
        x509.name(ca_name)
    except x509.CertificateError as error:
        raise ConfigurationError(f"CA_NAME is invalid: {error}") from None
    ca_secret_arn = _required(environ, "CA_SECRET_ARN")
    services = _services(_required(environ, "SERVICES"))
    if any(service.secret_arn == ca_secret_arn for service in services):
        raise ConfigurationError("a service secret_arn equals CA_SECRET_ARN")
    return Config(
        ca_key_id=_required(environ, "CA_KEY_ID"),
        data_key_id=_required(environ, "DATA_KEY_ID"),
        ca_secret_arn=ca_secret_arn,
        ca_name=ca_name,
        services=services,
        cert_days=cert_days,
        renew_before_days=renew_before_days,
        ca_days=ca_days,
        ecs_cluster=environ.get("ECS_CLUSTER", "").strip() or None,
    )


def _required(environ: Mapping[str, str], variable: str) -> str:
    value = environ.get(variable, "").strip()
    if not value:
        raise ConfigurationError(f"{variable} is not set")
    return value


def _int_setting(
    environ: Mapping[str, str], variable: str, default: int, low: int, high: int
) -> int:
    raw = environ.get(variable, "").strip()
    if not raw:
        value = default
    else:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{variable} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{variable} must be between {low} and {high}, got {value}")
    return value


def _services(raw: str) -> tuple[Service, ...]:
    try:
        entries: object = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"SERVICES is not valid JSON ({error.msg})") from None
    if not isinstance(entries, list):
        raise ConfigurationError("SERVICES must be a JSON list")
    services = tuple(_service(index, entry) for index, entry in enumerate(entries))
    for attribute in ("name", "secret_arn"):
        values = [getattr(service, attribute) for service in services]
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise ConfigurationError(f"SERVICES has duplicate {attribute} values: {duplicates}")
    return services


def _service(index: int, entry: object) -> Service:
    where = f"SERVICES[{index}]"
    if not isinstance(entry, dict) or set(entry) != {"name", "secret_arn", "sans"}:
        raise ConfigurationError(f"{where} must be an object with name, secret_arn and sans")
    name, secret_arn, sans = entry["name"], entry["secret_arn"], entry["sans"]
    if not isinstance(name, str):
        raise ConfigurationError(f"{where}.name must be a string")
    try:
        x509.name(name)
    except x509.CertificateError as error:
        raise ConfigurationError(f"{where}.name is invalid: {error}") from None
    if not isinstance(secret_arn, str) or not secret_arn.strip():
        raise ConfigurationError(f"{where}.secret_arn must be a non-empty string")
    if not isinstance(sans, list) or not sans or not all(isinstance(san, str) for san in sans):
        raise ConfigurationError(f"{where}.sans must be a non-empty list of DNS names")
    invalid = [san for san in sans if not x509.valid_dns_name(san)]
    if invalid:
        raise ConfigurationError(f"{where}.sans has invalid DNS names: {invalid}")
    # A mesh identity names one service: a wildcard would pass every exact-name check that
    # Envoy makes (callers admitted, backends verified), so it is never issued.
    wildcards = [san for san in sans if "*" in san]
    if wildcards:
        raise ConfigurationError(f"{where}.sans may not hold wildcards: {wildcards}")
    if len(set(sans)) != len(sans):
        raise ConfigurationError(f"{where}.sans has duplicates")
    if sum(len(san) + 2 for san in sans) > MAX_SAN_OCTETS:
        raise ConfigurationError(
            f"{where}.sans is too long for one certificate ({MAX_SAN_OCTETS} octets at most)"
        )
    return Service(name=name, secret_arn=secret_arn.strip(), sans=tuple(sans))


def _force(event: object) -> bool:
    if not isinstance(event, Mapping):
        return False
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise ConfigurationError("the event's force must be true or false")
    return force


# --- Handler ----------------------------------------------------------------------------------


def handler(event: IssueEvent, context: object) -> IssueSummary:
    """Ensure the CA certificate and every service's certificate are present and current.

    Raises:
        ConfigurationError: (a ``ValueError``) the environment or the event is invalid; raised
            before any AWS call.
        x509.CertificateError: (a ``ValueError``) a KMS key returned something this function
            cannot put in a certificate (for example ``CA_KEY_ID`` is not an ECC_NIST_P256 key).
        IssuanceError: issuing failed for some services (each is logged with its error
            code); the other services were processed.
        botocore.exceptions.ClientError: an AWS call for the CA failed.
    """
    try:
        force = _force(event)
        config = load_config(os.environ)
        return _run(config, force=force, now=_now())
    except (ConfigurationError, IssuanceError, x509.CertificateError) as error:
        # Messages of these are written here and never include key or certificate material.
        _log(logging.ERROR, str(error), error_type=type(error).__name__)
        raise
    except Exception as error:
        # Type and AWS error code only: a foreign message is not guaranteed to be free of values.
        fields: dict[str, object] = {"error_type": type(error).__name__}
        if isinstance(error, ClientError):
            fields["error_code"] = _error_code(error)
        _log(logging.ERROR, "Certificate issuance failed", **fields)
        raise


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _run(config: Config, *, force: bool, now: datetime) -> IssueSummary:
    kms = _kms_client()
    secrets_manager = _secrets_client()
    ca, ca_status = _ensure_ca(kms, secrets_manager, config, force=force, now=now)
    issued: list[str] = []
    kept: list[str] = []
    failed: list[str] = []
    for service in config.services:
        fields: dict[str, object] = {"service": service.name, "secret_id": service.secret_arn}
        try:
            reason = (
                "force"
                if force
                else _leaf_renewal_reason(secrets_manager, service, ca, config, now)
            )
            if reason is None:
                kept.append(service.name)
                _log(logging.INFO, "Certificate is current", **fields)
                continue
            not_after = _issue_leaf(kms, secrets_manager, service, ca, config, now)
        except (ClientError, x509.CertificateError) as error:
            # One service's broken secret or permissions must not hold back the others' renewal.
            failed.append(service.name)
            if isinstance(error, ClientError):
                fields["error_code"] = _error_code(error)
            _log(logging.ERROR, "Issuing failed", error_type=type(error).__name__, **fields)
            continue
        issued.append(service.name)
        _log(
            logging.INFO,
            "Issued a certificate",
            reason=reason,
            not_after=not_after.strftime(NOT_AFTER_FORMAT),
            **fields,
        )
    if failed:
        _log(
            logging.ERROR,
            "Done with failures",
            ca=ca_status,
            issued=issued,
            kept=kept,
            failed=failed,
        )
        raise IssuanceError(f"issuing failed for {failed}; the other services were processed")
    summary: IssueSummary = {"ca": ca_status, "issued": issued, "kept": kept}
    if issued and config.ecs_cluster:
        _restart(config.ecs_cluster, set(issued))
    _log(logging.INFO, "Done", **summary)
    return summary


def _restart(cluster: str, names: set[str]) -> None:
    """Start a new deployment of each ECS service whose tasks hold a reissued certificate."""
    ecs = _ecs_client()
    token: str | None = None
    while True:
        page = ecs.list_services(cluster=cluster, **({"nextToken": token} if token else {}))
        for arn in page.get("serviceArns", []):
            tags = ecs.list_tags_for_resource(resourceArn=arn).get("tags", [])
            name = next((t.get("value") for t in tags if t.get("key") == SERVICE_TAG), None)
            if name in names:
                ecs.update_service(cluster=cluster, service=arn, forceNewDeployment=True)
                _log(logging.INFO, "Started a new deployment", service=name, ecs_service=arn)
        token = page.get("nextToken")
        if not token:
            return


# --- CA ---------------------------------------------------------------------------------------


def _ensure_ca(
    kms: KmsClient,
    secrets_manager: SecretsManagerClient,
    config: Config,
    *,
    force: bool,
    now: datetime,
) -> tuple[_Ca, Literal["kept", "issued"]]:
    public_key = kms.get_public_key(KeyId=config.ca_key_id)
    spki = public_key.get("PublicKey", b"")
    if public_key.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY" or SIGNING_ALGORITHM not in (
        public_key.get("SigningAlgorithms") or [SIGNING_ALGORITHM]
    ):
        raise x509.CertificateError(f"CA_KEY_ID must be a SIGN_VERIFY {KEY_SPEC} key")
    key_id = x509.key_identifier(spki)  # raises CertificateError unless a P-256 key
    subject = x509.name(config.ca_name)
    fields: dict[str, object] = {"secret_id": config.ca_secret_arn}

    reason: str | None = "force"
    if not force:
        stored = _read_ca(secrets_manager, config.ca_secret_arn)
        if isinstance(stored, str):
            reason = stored
        else:
            pem, parsed = stored
            reason = _ca_renewal_reason(parsed, spki, subject, config, now)
            if reason is None:
                _log(
                    logging.INFO,
                    "CA certificate is current",
                    not_after=parsed.not_after.strftime(NOT_AFTER_FORMAT),
                    **fields,
                )
                return _Ca(pem, subject, key_id, parsed.not_after), "kept"

    not_after = now + timedelta(days=config.ca_days)
    tbs = x509.ca_tbs(
        common_name=config.ca_name,
        subject_public_key_info=spki,
        serial=_serial(),
        not_before=now - CA_BACKDATE,
        not_after=not_after,
    )
    pem = der.pem(CERTIFICATE_LABEL, x509.certificate(tbs, _sign(kms, config.ca_key_id, tbs)))
    secrets_manager.put_secret_value(
        SecretId=config.ca_secret_arn, SecretString=json.dumps({"ca": pem})
    )
    _log(
        logging.INFO,
        "Issued a CA certificate",
        reason=reason,
        not_after=not_after.strftime(NOT_AFTER_FORMAT),
        **fields,
    )
    return _Ca(pem, subject, key_id, not_after), "issued"


def _read_ca(
    secrets_manager: SecretsManagerClient, arn: str
) -> tuple[str, x509.ParsedCertificate] | str:
    """The stored CA PEM and its parsed fields, or why there is none to use."""
    value = _read_secret(secrets_manager, arn)
    if isinstance(value, str):
        return value
    pem = value.get("ca")
    if not isinstance(pem, str):
        return "unparseable"
    try:
        return pem, x509.parse_certificate(der.unpem(CERTIFICATE_LABEL, pem))
    except ValueError:
        return "unparseable"


def _ca_renewal_reason(
    parsed: x509.ParsedCertificate, spki: bytes, subject: bytes, config: Config, now: datetime
) -> str | None:
    if parsed.subject_public_key_info != spki:
        return "key_changed"
    if parsed.subject != subject or parsed.issuer != subject:
        return "name_changed"
    if parsed.not_before > now:
        return "not_yet_valid"
    if parsed.not_after - now <= timedelta(days=config.cert_days):
        return "expiring"
    return None


# --- Leaves -----------------------------------------------------------------------------------


def _leaf_renewal_reason(
    secrets_manager: SecretsManagerClient,
    service: Service,
    ca: _Ca,
    config: Config,
    now: datetime,
) -> str | None:
    """Why the service needs a new certificate, or None if its secret is current."""
    value = _read_secret(secrets_manager, service.secret_arn)
    if isinstance(value, str):
        return value
    cert, key, ca_pem, not_after_text = (
        value.get(field) for field in ("cert", "key", "ca", "not_after")
    )
    if not (
        isinstance(cert, str)
        and isinstance(key, str)
        and isinstance(ca_pem, str)
        and isinstance(not_after_text, str)
    ):
        return "unparseable"
    try:
        not_after = datetime.strptime(not_after_text, NOT_AFTER_FORMAT).replace(tzinfo=timezone.utc)
        der.unpem(PRIVATE_KEY_LABEL, key)
        parsed = x509.parse_certificate(der.unpem(CERTIFICATE_LABEL, cert))
    except ValueError:
        return "unparseable"
    if ca_pem.strip() != ca.pem.strip() or parsed.issuer != ca.subject:
        return "ca_changed"
    if parsed.subject != x509.name(service.name) or parsed.dns_names != service.sans:
        return "names_changed"
    if not_after - now <= timedelta(days=config.renew_before_days):
        return "expiring"
    return None


def _issue_leaf(
    kms: KmsClient,
    secrets_manager: SecretsManagerClient,
    service: Service,
    ca: _Ca,
    config: Config,
    now: datetime,
) -> datetime:
    """Issue a key pair and certificate for ``service`` and store them; return notAfter."""
    key_pair = kms.generate_data_key_pair(KeyId=config.data_key_id, KeyPairSpec=KEY_SPEC)
    not_after = now + timedelta(days=config.cert_days)
    tbs = x509.leaf_tbs(
        common_name=service.name,
        dns_names=service.sans,
        subject_public_key_info=key_pair["PublicKey"],
        issuer=ca.subject,
        authority_key_id=ca.key_id,
        serial=_serial(),
        not_before=now - LEAF_BACKDATE,
        not_after=not_after,
    )
    certificate = x509.certificate(tbs, _sign(kms, config.ca_key_id, tbs))
    value = {
        "cert": der.pem(CERTIFICATE_LABEL, certificate),
        "key": der.pem(PRIVATE_KEY_LABEL, key_pair["PrivateKeyPlaintext"]),
        "ca": ca.pem,
        "not_after": not_after.strftime(NOT_AFTER_FORMAT),
    }
    secrets_manager.put_secret_value(SecretId=service.secret_arn, SecretString=json.dumps(value))
    return not_after


# --- Helpers ----------------------------------------------------------------------------------


def _serial() -> int:
    """A random positive serial of exactly SERIAL_BITS bits (20 octets in DER)."""
    return secrets.randbits(x509.SERIAL_BITS - 1) | 1 << (x509.SERIAL_BITS - 1)


def _sign(kms: KmsClient, key_id: str, tbs: bytes) -> bytes:
    if len(tbs) > KMS_MAX_RAW_MESSAGE:
        raise x509.CertificateError(
            f"the TBSCertificate is {len(tbs)} octets; kms:Sign takes {KMS_MAX_RAW_MESSAGE}"
        )
    response = kms.sign(
        KeyId=key_id, Message=tbs, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
    )
    return response["Signature"]


def _read_secret(secrets_manager: SecretsManagerClient, arn: str) -> dict[str, object] | str:
    """The secret's AWSCURRENT JSON object, or ``"missing"``/``"unparseable"``.

    ``"missing"``: no AWSCURRENT value yet, no SecretString, or the ``{}`` placeholder.
    """
    try:
        response = secrets_manager.get_secret_value(SecretId=arn, VersionStage=_AWSCURRENT)
    except ClientError as error:
        if _error_code(error) == "ResourceNotFoundException":
            return "missing"
        raise
    text = response.get("SecretString")
    if text is None or not text.strip():
        return "missing"
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError:
        return "unparseable"
    if not isinstance(value, dict):
        return "unparseable"
    if not value:
        return "missing"
    return {str(key): item for key, item in value.items()}


def _error_code(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    return str(code)
