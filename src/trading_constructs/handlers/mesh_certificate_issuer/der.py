"""A minimal DER (ITU-T X.690) encoder and reader: exactly what X.509 v3 certificates need.

Encoder: BOOLEAN, INTEGER, BIT STRING, OCTET STRING, NULL, OBJECT IDENTIFIER, UTF8String,
PrintableString, IA5String, UTCTime and GeneralizedTime (chosen by year as RFC 5280 4.1.2.5
requires), SEQUENCE, SET OF, and context-specific explicit and implicit tags. Only low tag
numbers (0 to 30) exist here; X.509 needs no others.

Reader: strict DER TLV parsing (definite, minimal lengths; low tag numbers) plus INTEGER,
OBJECT IDENTIFIER and time decoding. It reads back certificates this package wrote, so it
rejects rather than tolerates anything outside DER.

``pem`` and ``unpem`` convert between DER and the RFC 7468 textual encoding.

Why this is not a library (asn1crypto, cryptography): see the docstring of ``x509``, with the
measurements.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from typing import Final, NamedTuple

__all__ = [
    "BIT_STRING",
    "BOOLEAN",
    "GENERALIZED_TIME",
    "IA5_STRING",
    "INTEGER",
    "NULL",
    "OBJECT_IDENTIFIER",
    "OCTET_STRING",
    "PRINTABLE_STRING",
    "SEQUENCE",
    "SET",
    "UTC_TIME",
    "UTF8_STRING",
    "DerError",
    "Tlv",
    "bit_string",
    "boolean",
    "children",
    "context_tag",
    "encode_length",
    "explicit",
    "generalized_time",
    "ia5_string",
    "implicit",
    "integer",
    "null",
    "octet_string",
    "oid",
    "parse",
    "pem",
    "printable_string",
    "read",
    "read_integer",
    "read_oid",
    "read_time",
    "sequence",
    "set_of",
    "time",
    "tlv",
    "unpem",
    "utc_time",
    "utf8_string",
]

# Universal tags (with the constructed bit for SEQUENCE and SET).
BOOLEAN: Final = 0x01
INTEGER: Final = 0x02
BIT_STRING: Final = 0x03
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
UTF8_STRING: Final = 0x0C
PRINTABLE_STRING: Final = 0x13
IA5_STRING: Final = 0x16
UTC_TIME: Final = 0x17
GENERALIZED_TIME: Final = 0x18
SEQUENCE: Final = 0x30
SET: Final = 0x31

_CONTEXT: Final = 0x80
_CONSTRUCTED: Final = 0x20
_MAX_LOW_TAG_NUMBER: Final = 30
_MAX_LENGTH_OCTETS: Final = 4  # 4 GiB: far beyond any certificate

_DOTTED: Final = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
_PRINTABLE: Final = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")
_UTC_TIME: Final = re.compile(rb"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z")
_GENERALIZED_TIME: Final = re.compile(rb"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z")


class DerError(ValueError):
    """A value cannot be DER-encoded, or bytes are not the DER this reader accepts."""


# --- Encoder ----------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """Definite-form length octets: short form below 128, minimal long form from 128."""
    if length < 0:
        raise DerError(f"negative length {length}")
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(octets) > _MAX_LENGTH_OCTETS:
        raise DerError(f"length {length} is too large")
    return bytes([0x80 | len(octets)]) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """Encode one element from its identifier octet and its content octets."""
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F:
        raise DerError(f"tag {tag:#x} is not a single-octet low tag number")
    return bytes([tag]) + encode_length(len(content)) + content


def boolean(value: bool) -> bytes:
    """BOOLEAN: DER requires 0xFF for TRUE."""
    return tlv(BOOLEAN, b"\xff" if value else b"\x00")


def integer(value: int) -> bytes:
    """INTEGER: minimal two's complement (127 is 02 01 7F, 128 is 02 02 00 80)."""
    magnitude = value if value >= 0 else ~value
    return tlv(INTEGER, value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True))


def bit_string(data: bytes, unused_bits: int = 0) -> bytes:
    """BIT STRING: the unused-bits octet (0 to 7, and 0 when empty), then the bits."""
    if not 0 <= unused_bits <= 7 or (unused_bits and not data):
        raise DerError(f"invalid unused bit count {unused_bits}")
    if unused_bits and data[-1] & ((1 << unused_bits) - 1):
        raise DerError("the unused bits of a DER BIT STRING must be zero")
    return tlv(BIT_STRING, bytes([unused_bits]) + data)


def octet_string(data: bytes) -> bytes:
    return tlv(OCTET_STRING, data)


def null() -> bytes:
    return tlv(NULL, b"")


def oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER (1.2.840.10045.4.3.2 is 06 08 2A 86 48 CE 3D 04 03 02)."""
    if not _DOTTED.fullmatch(dotted):
        raise DerError(f"invalid object identifier {dotted!r}")
    arcs = [int(arc) for arc in dotted.split(".")]
    if arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise DerError(f"invalid object identifier {dotted!r}")
    content = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        group = [arc & 0x7F]
        arc >>= 7
        while arc:
            group.append(0x80 | (arc & 0x7F))
            arc >>= 7
        content.extend(reversed(group))
    return tlv(OBJECT_IDENTIFIER, bytes(content))


def utf8_string(text: str) -> bytes:
    return tlv(UTF8_STRING, text.encode("utf-8"))


def printable_string(text: str) -> bytes:
    if not _PRINTABLE.fullmatch(text):
        raise DerError(f"{text!r} has characters outside the PrintableString set")
    return tlv(PRINTABLE_STRING, text.encode("ascii"))


def ia5_string(text: str) -> bytes:
    if not text.isascii():
        raise DerError(f"{text!r} has characters outside IA5 (ASCII)")
    return tlv(IA5_STRING, text.encode("ascii"))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DerError("certificate times must be timezone-aware")
    return moment.astimezone(timezone.utc)


def utc_time(moment: datetime) -> bytes:
    """UTCTime YYMMDDHHMMSSZ, whole seconds (fractions dropped); RFC 5280 years 1950 to 2049."""
    moment = _utc(moment)
    if not 1950 <= moment.year <= 2049:
        raise DerError(f"UTCTime cannot represent the year {moment.year}")
    return tlv(UTC_TIME, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))


def generalized_time(moment: datetime) -> bytes:
    """GeneralizedTime YYYYMMDDHHMMSSZ, whole seconds (fractions dropped), as RFC 5280 requires."""
    moment = _utc(moment)
    return tlv(GENERALIZED_TIME, f"{moment.year:04d}{moment:%m%d%H%M%S}Z".encode("ascii"))


def time(moment: datetime) -> bytes:
    """An X.509 Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5)."""
    moment = _utc(moment)
    if 1950 <= moment.year <= 2049:
        return utc_time(moment)
    return generalized_time(moment)


def sequence(*elements: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(elements))


def set_of(*elements: bytes) -> bytes:
    """SET OF: DER orders the encoded elements as octet strings."""
    return tlv(SET, b"".join(sorted(elements)))


def context_tag(number: int, *, constructed: bool) -> int:
    """The identifier octet of context-specific tag ``[number]``."""
    if not 0 <= number <= _MAX_LOW_TAG_NUMBER:
        raise DerError(f"context tag number {number} is out of range")
    return _CONTEXT | (_CONSTRUCTED if constructed else 0) | number


def explicit(number: int, element: bytes) -> bytes:
    """``[number] EXPLICIT``: a constructed context tag around a whole encoded element."""
    return tlv(context_tag(number, constructed=True), element)


def implicit(number: int, content: bytes, *, constructed: bool = False) -> bytes:
    """``[number] IMPLICIT``: the context tag replaces the element's own tag (pass its content)."""
    return tlv(context_tag(number, constructed=constructed), content)


def pem(label: str, der_bytes: bytes) -> str:
    """RFC 7468 text: BEGIN/END lines around base64 in 64-character lines, ending in a newline."""
    encoded = base64.b64encode(der_bytes).decode("ascii")
    lines = [encoded[index : index + 64] for index in range(0, len(encoded), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"


def unpem(label: str, text: str) -> bytes:
    """The DER bytes of the first ``label`` block in ``text``. Raises ``DerError`` if none."""
    match = re.search(
        rf"-----BEGIN {re.escape(label)}-----([A-Za-z0-9+/=\s]*)-----END {re.escape(label)}-----",
        text,
    )
    if match is None:
        raise DerError(f"no {label} PEM block")
    try:
        return base64.b64decode("".join(match.group(1).split()), validate=True)
    except binascii.Error:
        raise DerError(f"the {label} PEM block is not valid base64") from None


# --- Reader -----------------------------------------------------------------------------------


class Tlv(NamedTuple):
    """One decoded element: identifier octet, content octets and the whole encoding."""

    tag: int
    content: bytes
    encoded: bytes


def read(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Read the element at ``offset``; return it and the offset just past it."""
    if offset + 2 > len(data):
        raise DerError("truncated element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not supported")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise DerError("indefinite lengths are not DER")
        if count > _MAX_LENGTH_OCTETS or position + count > len(data):
            raise DerError("invalid length")
        octets = data[position : position + count]
        length = int.from_bytes(octets, "big")
        if octets[0] == 0 or length < 0x80:
            raise DerError("non-minimal length")
        position += count
    end = position + length
    if end > len(data):
        raise DerError("truncated element")
    return Tlv(tag, data[position:end], data[offset:end]), end


def children(content: bytes) -> list[Tlv]:
    """The consecutive elements that make up ``content`` exactly (a SEQUENCE's or SET's)."""
    elements: list[Tlv] = []
    offset = 0
    while offset < len(content):
        element, offset = read(content, offset)
        elements.append(element)
    return elements


def parse(data: bytes, tag: int | None = None) -> Tlv:
    """The single element that ``data`` is, with no trailing bytes; checks ``tag`` if given."""
    element, end = read(data)
    if end != len(data):
        raise DerError("trailing bytes after the element")
    if tag is not None and element.tag != tag:
        raise DerError(f"expected tag {tag:#04x}, found {element.tag:#04x}")
    return element


def read_integer(content: bytes) -> int:
    """Decode INTEGER content octets, rejecting empty and non-minimal encodings."""
    if not content:
        raise DerError("empty INTEGER")
    if len(content) > 1 and (
        (content[0] == 0x00 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    ):
        raise DerError("non-minimal INTEGER")
    return int.from_bytes(content, "big", signed=True)


def read_oid(content: bytes) -> str:
    """Decode OBJECT IDENTIFIER content octets to dotted decimal."""
    if not content or content[-1] & 0x80:
        raise DerError("truncated OBJECT IDENTIFIER")
    values: list[int] = []
    value = 0
    start = True
    for octet in content:
        if start and octet == 0x80:
            raise DerError("non-minimal OBJECT IDENTIFIER arc")
        value = (value << 7) | (octet & 0x7F)
        start = not octet & 0x80
        if start:
            values.append(value)
            value = 0
    first = min(values[0] // 40, 2)
    arcs = [first, values[0] - 40 * first, *values[1:]]
    return ".".join(str(arc) for arc in arcs)


def read_time(element: Tlv) -> datetime:
    """Decode an X.509 Time (UTCTime or GeneralizedTime, whole seconds, ``Z``) to UTC."""
    if element.tag == UTC_TIME:
        match = _UTC_TIME.fullmatch(element.content)
        if match is None:
            raise DerError("invalid UTCTime")
        year = int(match.group(1))
        year += 1900 if year >= 50 else 2000
    elif element.tag == GENERALIZED_TIME:
        match = _GENERALIZED_TIME.fullmatch(element.content)
        if match is None:
            raise DerError("invalid GeneralizedTime")
        year = int(match.group(1))
    else:
        raise DerError(f"tag {element.tag:#04x} is not a time")
    month, day, hour, minute, second = (int(group) for group in match.groups()[1:])
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        raise DerError("invalid date or time") from None
