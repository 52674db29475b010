"""X.509 v3 certificates for the mesh CA and its leaves, encoded with ``der`` (RFC 5280).

Every key is ECDSA P-256 and every signature ecdsa-with-SHA256. This module builds the
TBSCertificate that AWS KMS signs and assembles the Certificate around the signature KMS returns
(already a DER ``Ecdsa-Sig-Value``, which is exactly the content of the signature BIT STRING).
It also reads back the few fields of a stored certificate that renewal decisions need.

The self-signed CA: basicConstraints critical CA:TRUE pathLen 0; keyUsage critical keyCertSign
and cRLSign; subjectKeyIdentifier.

A leaf: basicConstraints critical CA:FALSE; keyUsage critical digitalSignature only (RFC 8813:
keyEncipherment and dataEncipherment are not for EC keys, and TLS 1.2 ECDHE and TLS 1.3 sign
with digitalSignature); extKeyUsage serverAuth and clientAuth; subjectAltName DNS names;
authorityKeyIdentifier (the CA's subject key identifier); subjectKeyIdentifier.

Key identifiers are the SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 4.2.1.2,
method 1).

Why this encoder (with ``der``, about 700 lines) is written here rather than taken from a library
-------------------------------------------------------------------------------------------------
Evaluated in November 2026 against the two candidates, each prototyped to build the same CA and
leaf certificates (both gave the same TBSCertificate bytes as this module for 300 random inputs).
Figures: asset zip size of the encoder and what it needs; import time in a fresh Python process
after ``boto3`` is loaded, with no byte code cached (as in ``/var/task``), median of 21 runs;
lines we maintain.

=========================  ===========  ===========  =================  ==========
encoder                    asset (zip)  import       first certificate  our lines
=========================  ===========  ===========  =================  ==========
``der`` + ``x509`` (here)  8 KiB        6 ms         0.2 ms             712
``asn1crypto`` 1.5.1       +104 KiB     +50 ms       1.5 ms             ~150
``cryptography`` 50.0.2    +4.9 MiB     +68 ms       7 ms               ~150
=========================  ===========  ===========  =================  ==========

(``import boto3`` alone takes 600 to 900 ms on the same machine: no candidate changes the cold
start much.) The decision rests on the rest:

- ``cryptography`` (well maintained; a private key class whose ``sign`` calls ``kms:Sign`` works
  with its ``CertificateBuilder``) ships a native extension: a manylinux wheel per architecture
  (4.6 MiB each for x86_64 and arm64, plus ``cffi`` for the runtime's exact Python). Building the
  asset without Docker means downloading those wheels at synth (network at synth time, and an
  asset that depends on what the index served) or vendoring about 10 MiB into this library's
  wheel. Rejected.
- ``asn1crypto`` is pure Python and already installed (pg8000 -> scramp -> asn1crypto), and
  would replace ``der`` and most of this module. But its last release is 1.5.1 of March 2022,
  and it would be the only third-party code inside a function that may sign with the CA key.
- This encoder covers exactly the two certificate profiles above, uses the standard library
  only, and does not age: X.690 DER and RFC 5280 are fixed. It is held to an outside oracle:
  property tests compare it byte for byte with ``cryptography`` on random inputs, and issued
  chains pass ``cryptography``'s RFC 5280 path validation and an OpenSSL mutual-TLS handshake
  (``test/test_mtls_issuer.py``).

Kept. Revisit if the profiles grow (CRLs, other key types) or a maintained pure-Python ASN.1
library appears; the property tests then become the migration's acceptance test.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

try:  # in the wheel: trading_constructs.handlers.mesh_certificate_issuer.x509
    from . import der
except ImportError:  # in the Lambda asset: the top-level module x509
    import der  # type: ignore[import-not-found,no-redef]

__all__ = [
    "ECDSA_WITH_SHA256",
    "MAX_COMMON_NAME_LENGTH",
    "SERIAL_BITS",
    "CertificateError",
    "ParsedCertificate",
    "ca_tbs",
    "certificate",
    "ec_p256_point",
    "key_identifier",
    "leaf_tbs",
    "name",
    "parse_certificate",
    "valid_dns_name",
]

ECDSA_WITH_SHA256: Final = "1.2.840.10045.4.3.2"
EC_PUBLIC_KEY: Final = "1.2.840.10045.2.1"
PRIME256V1: Final = "1.2.840.10045.3.1.7"
COMMON_NAME: Final = "2.5.4.3"
SUBJECT_KEY_IDENTIFIER: Final = "2.5.29.14"
KEY_USAGE: Final = "2.5.29.15"
SUBJECT_ALT_NAME: Final = "2.5.29.17"
BASIC_CONSTRAINTS: Final = "2.5.29.19"
AUTHORITY_KEY_IDENTIFIER: Final = "2.5.29.35"
EXT_KEY_USAGE: Final = "2.5.29.37"
SERVER_AUTH: Final = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH: Final = "1.3.6.1.5.5.7.3.2"

# KeyUsage bit numbers (RFC 5280 4.2.1.3).
DIGITAL_SIGNATURE: Final = 0
KEY_CERT_SIGN: Final = 5
CRL_SIGN: Final = 6

MAX_COMMON_NAME_LENGTH: Final = 64  # ub-common-name
SERIAL_BITS: Final = 159  # a positive INTEGER of at most 20 octets (RFC 5280 4.1.2.2)
_P256_POINT_LENGTH: Final = 65  # uncompressed: 0x04 || X || Y
_DNS_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME: Final = re.compile(rf"(?:\*\.)?{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_MAX_DNS_NAME_LENGTH: Final = 253
_SIGNATURE_ALGORITHM: Final = der.sequence(der.oid(ECDSA_WITH_SHA256))  # parameters absent
_VERSION_3: Final = der.explicit(0, der.integer(2))
_KEY_ID_TAG: Final = 0  # AuthorityKeyIdentifier keyIdentifier [0] IMPLICIT OCTET STRING
_DNS_NAME_TAG: Final = 2  # GeneralName dNSName [2] IMPLICIT IA5String


class CertificateError(ValueError):
    """A value cannot go into a certificate, or bytes are not a certificate this module reads."""


# --- Building ---------------------------------------------------------------------------------


def valid_dns_name(value: str) -> bool:
    """Whether ``value`` is a DNS name for subjectAltName: LDH labels, optional leading ``*.``."""
    return len(value) <= _MAX_DNS_NAME_LENGTH and _DNS_NAME.fullmatch(value) is not None


def name(common_name: str) -> bytes:
    """The distinguished name ``CN=common_name`` (one RDN, UTF8String) as an encoded Name."""
    # ub-common-name counts characters; counting UTF-8 octets is stricter and is what other
    # tools (cryptography, for one) enforce.
    if (
        not 0 < len(common_name.encode("utf-8")) <= MAX_COMMON_NAME_LENGTH
        or not common_name.isprintable()
    ):
        raise CertificateError(
            f"a common name must be 1 to {MAX_COMMON_NAME_LENGTH} octets of printable UTF-8"
        )
    attribute = der.sequence(der.oid(COMMON_NAME), der.utf8_string(common_name))
    return der.sequence(der.set_of(attribute))


def ec_p256_point(subject_public_key_info: bytes) -> bytes:
    """The EC point of a P-256 SubjectPublicKeyInfo (as KMS returns), after checking its shape."""
    try:
        return _ec_p256_point(subject_public_key_info)
    except ValueError:  # DerError, or a structure of the wrong size
        raise CertificateError("the public key is not an uncompressed EC P-256 key") from None


def _ec_p256_point(subject_public_key_info: bytes) -> bytes:
    algorithm, public_key = der.children(der.parse(subject_public_key_info, der.SEQUENCE).content)
    key_type, curve = der.children(algorithm.content)
    bits = public_key.content
    if (
        algorithm.tag != der.SEQUENCE
        or key_type.tag != der.OBJECT_IDENTIFIER
        or der.read_oid(key_type.content) != EC_PUBLIC_KEY
        or curve.tag != der.OBJECT_IDENTIFIER
        or der.read_oid(curve.content) != PRIME256V1
        or public_key.tag != der.BIT_STRING
        or len(bits) != 1 + _P256_POINT_LENGTH
        or bits[:2] != b"\x00\x04"
    ):
        raise der.DerError("not an uncompressed P-256 SubjectPublicKeyInfo")
    return bits[1:]


def key_identifier(subject_public_key_info: bytes) -> bytes:
    """RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents."""
    point = ec_p256_point(subject_public_key_info)
    return hashlib.sha1(point, usedforsecurity=False).digest()


def _extension(extension_id: str, value: bytes, *, critical: bool) -> bytes:
    # critical DEFAULT FALSE: DER omits a default value.
    flag = der.boolean(True) if critical else b""
    return der.sequence(der.oid(extension_id), flag, der.octet_string(value))


def _key_usage(*bits: int) -> bytes:
    """A KeyUsage named bit list: DER drops trailing zero bits and counts them as unused."""
    highest = max(bits)
    octets = bytearray((highest // 8) + 1)
    for bit in bits:
        octets[bit // 8] |= 0x80 >> (bit % 8)
    return der.bit_string(bytes(octets), unused_bits=7 - highest % 8)


def _tbs(
    *,
    serial: int,
    issuer: bytes,
    subject: bytes,
    subject_public_key_info: bytes,
    not_before: datetime,
    not_after: datetime,
    extensions: list[bytes],
) -> bytes:
    if not 0 < serial < 1 << SERIAL_BITS:
        raise CertificateError(f"the serial number must be positive and below 2**{SERIAL_BITS}")
    if not not_before < not_after:
        raise CertificateError("notBefore must be before notAfter")
    ec_p256_point(subject_public_key_info)
    return der.sequence(
        _VERSION_3,
        der.integer(serial),
        _SIGNATURE_ALGORITHM,
        issuer,
        der.sequence(der.time(not_before), der.time(not_after)),
        subject,
        subject_public_key_info,
        der.explicit(3, der.sequence(*extensions)),
    )


def ca_tbs(
    *,
    common_name: str,
    subject_public_key_info: bytes,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> bytes:
    """The TBSCertificate of the self-signed CA (issuer = subject, pathLen 0)."""
    subject = name(common_name)
    return _tbs(
        serial=serial,
        issuer=subject,
        subject=subject,
        subject_public_key_info=subject_public_key_info,
        not_before=not_before,
        not_after=not_after,
        extensions=[
            _extension(
                BASIC_CONSTRAINTS,
                der.sequence(der.boolean(True), der.integer(0)),
                critical=True,
            ),
            _extension(KEY_USAGE, _key_usage(KEY_CERT_SIGN, CRL_SIGN), critical=True),
            _extension(
                SUBJECT_KEY_IDENTIFIER,
                der.octet_string(key_identifier(subject_public_key_info)),
                critical=False,
            ),
        ],
    )


def leaf_tbs(
    *,
    common_name: str,
    dns_names: tuple[str, ...],
    subject_public_key_info: bytes,
    issuer: bytes,
    authority_key_id: bytes,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> bytes:
    """The TBSCertificate of a TLS server-and-client leaf issued by the CA named ``issuer``."""
    if not dns_names:
        raise CertificateError("a leaf certificate needs at least one DNS name")
    invalid = [dns for dns in dns_names if not valid_dns_name(dns)]
    if invalid:
        raise CertificateError(f"invalid DNS names: {invalid}")
    general_names = [der.implicit(_DNS_NAME_TAG, dns.encode("ascii")) for dns in dns_names]
    return _tbs(
        serial=serial,
        issuer=issuer,
        subject=name(common_name),
        subject_public_key_info=subject_public_key_info,
        not_before=not_before,
        not_after=not_after,
        extensions=[
            # cA DEFAULT FALSE is omitted, so CA:FALSE is the empty SEQUENCE.
            _extension(BASIC_CONSTRAINTS, der.sequence(), critical=True),
            _extension(KEY_USAGE, _key_usage(DIGITAL_SIGNATURE), critical=True),
            _extension(
                EXT_KEY_USAGE,
                der.sequence(der.oid(SERVER_AUTH), der.oid(CLIENT_AUTH)),
                critical=False,
            ),
            _extension(SUBJECT_ALT_NAME, der.sequence(*general_names), critical=False),
            _extension(
                AUTHORITY_KEY_IDENTIFIER,
                der.sequence(der.implicit(_KEY_ID_TAG, authority_key_id)),
                critical=False,
            ),
            _extension(
                SUBJECT_KEY_IDENTIFIER,
                der.octet_string(key_identifier(subject_public_key_info)),
                critical=False,
            ),
        ],
    )


def certificate(tbs: bytes, signature: bytes) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }.

    ``signature`` is the DER ``Ecdsa-Sig-Value`` (SEQUENCE of two positive INTEGERs) that KMS
    ``Sign`` returns for ECDSA_SHA_256; it is checked for that shape, not verified.
    """
    try:
        values = der.children(der.parse(signature, der.SEQUENCE).content)
        if len(values) != 2 or any(
            value.tag != der.INTEGER or der.read_integer(value.content) <= 0 for value in values
        ):
            raise der.DerError("not two positive INTEGERs")
    except der.DerError:
        raise CertificateError("the signature is not a DER ECDSA signature") from None
    return der.sequence(tbs, _SIGNATURE_ALGORITHM, der.bit_string(signature))


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCertificate:
    """The fields of a certificate that issuance and renewal decisions use."""

    issuer: bytes  # the encoded Name
    subject: bytes  # the encoded Name
    not_before: datetime
    not_after: datetime
    subject_public_key_info: bytes
    dns_names: tuple[str, ...]
    subject_key_id: bytes | None


def parse_certificate(certificate_der: bytes) -> ParsedCertificate:
    """Read a DER certificate's names, validity, key, DNS names and subject key identifier.

    The signature is not verified (the Lambda runtime has no EC implementation); callers compare
    the fields with what they expect instead.
    """
    try:
        return _parse_certificate(certificate_der)
    except (ValueError, IndexError) as error:  # DerError, a bad size, a non-ASCII DNS name
        raise CertificateError(f"not a readable certificate ({type(error).__name__})") from None


def _parse_certificate(certificate_der: bytes) -> ParsedCertificate:
    outer = der.children(der.parse(certificate_der, der.SEQUENCE).content)
    if len(outer) != 3 or outer[0].tag != der.SEQUENCE:
        raise der.DerError("a Certificate is a SEQUENCE of three elements")
    fields = der.children(outer[0].content)
    if fields and fields[0].tag == der.context_tag(0, constructed=True):
        fields = fields[1:]  # version
    if len(fields) < 6:
        raise der.DerError("a TBSCertificate has at least six fields")
    _serial, _algorithm, issuer, validity, subject, spki, *optional = fields
    times = der.children(validity.content)
    if validity.tag != der.SEQUENCE or len(times) != 2:
        raise der.DerError("Validity is a SEQUENCE of two times")
    dns_names: tuple[str, ...] = ()
    subject_key_id: bytes | None = None
    for element in optional:
        if element.tag != der.context_tag(3, constructed=True):
            continue
        for extension in der.children(der.parse(element.content, der.SEQUENCE).content):
            parts = der.children(extension.content)
            extension_id = der.read_oid(parts[0].content)
            value = parts[-1].content
            if extension_id == SUBJECT_ALT_NAME:
                dns_tag = der.context_tag(_DNS_NAME_TAG, constructed=False)
                dns_names = tuple(
                    general.content.decode("ascii")
                    for general in der.children(der.parse(value, der.SEQUENCE).content)
                    if general.tag == dns_tag
                )
            elif extension_id == SUBJECT_KEY_IDENTIFIER:
                subject_key_id = der.parse(value, der.OCTET_STRING).content
    return ParsedCertificate(
        issuer=issuer.encoded,
        subject=subject.encoded,
        not_before=der.read_time(times[0]),
        not_after=der.read_time(times[1]),
        subject_public_key_info=spki.encoded,
        dns_names=dns_names,
        subject_key_id=subject_key_id,
    )
