"""GS1 Digital Link URIs for tags: `https://<host>/01/<gtin>/10/<lot>/21/<serial>?sig=<b64url>`.

The host is the rights holder's resolver and is ignored by verification: what is checked is
the identity in the path and the signature. Path values are percent-encoded as GS1 Digital
Link requires (CSET 82 allows `/`, `%`, `?`, `&` and others in serials).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ledger.errors import InvalidDigitalLink, InvalidInput
from ledger.gs1 import normalize_gtin, validate_lot, validate_serial

SIGNATURE_LENGTH = 65
DEFAULT_HOST = "id.borderledger.example"


def encode_signature(signature: bytes) -> str:
    """base64url without padding, as carried in the `sig` query attribute."""
    return base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def decode_signature(text: str) -> bytes:
    """Decode a `sig` attribute; it must be base64url of exactly 65 bytes."""
    if not text or any(c not in _B64URL for c in text):
        raise InvalidDigitalLink(f"sig {text!r} is not base64url (A-Z a-z 0-9 - _, no padding)")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidDigitalLink(f"sig {text!r} is not valid base64url: {exc}") from None
    if len(raw) != SIGNATURE_LENGTH:
        raise InvalidDigitalLink(
            f"sig decodes to {len(raw)} bytes; a tag signature is {SIGNATURE_LENGTH} bytes"
        )
    if encode_signature(raw) != text:
        # base64 has spare bits in the last character; only one spelling of a signature
        # is accepted, so a tag URI is a unique key for what it carries.
        raise InvalidDigitalLink(f"sig {text!r} is not the canonical base64url of its bytes")
    return raw


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class DigitalLink:
    """The parts of a tag URI. `signature` is None for an unsigned Digital Link."""

    gtin: str
    lot: str
    serial: str
    signature: bytes | None = None
    host: str = DEFAULT_HOST

    def to_uri(self) -> str:
        path = f"/01/{self.gtin}/10/{quote(self.lot, safe='')}/21/{quote(self.serial, safe='')}"
        query = f"?sig={encode_signature(self.signature)}" if self.signature is not None else ""
        return f"https://{self.host}{path}{query}"


def parse_digital_link(uri: str) -> DigitalLink:
    """Parse a tag URI, validating every part; raises `InvalidDigitalLink` naming the problem.

    Accepts any http(s) host, GTIN-8/12/13/14 (normalised to 14 digits), and unknown query
    attributes (ignored). Requires lot (AI 10) and serial (AI 21) in that order, as in GS1
    Digital Link's qualifier path `01/{gtin}/10/{lot}/21/{serial}`.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidDigitalLink("tag URI is empty")
    if len(uri) > 2048:
        raise InvalidDigitalLink(f"tag URI is {len(uri)} characters; at most 2048 are accepted")
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidDigitalLink(f"tag URI {uri!r} is not an http(s) URL with a host")
    segments = parts.path.split("/")[1:]
    if "01" not in segments:
        raise InvalidDigitalLink(f"tag URI {uri!r} has no GTIN (/01/<gtin>) in its path")
    start = segments.index("01")
    tail = segments[start:]
    if len(tail) != 6 or tail[2] != "10" or tail[4] != "21":
        raise InvalidDigitalLink(
            f"tag URI path {parts.path!r} must end in /01/<gtin>/10/<lot>/21/<serial>"
        )
    for segment in (tail[3], tail[5]):
        if _BAD_ESCAPE.search(segment):
            raise InvalidDigitalLink(
                f"tag URI path segment {segment!r} has a '%' not followed by two hex digits"
            )
    try:
        gtin = normalize_gtin(tail[1])
        lot = validate_lot(unquote(tail[3], errors="strict"))
        serial = validate_serial(unquote(tail[5], errors="strict"))
    except UnicodeDecodeError:
        raise InvalidDigitalLink(
            f"tag URI {uri!r} has percent-escapes that are not UTF-8"
        ) from None
    except InvalidInput as exc:
        raise InvalidDigitalLink(f"tag URI {uri!r}: {exc}") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    sigs = query.get("sig", [])
    if len(sigs) > 1:
        raise InvalidDigitalLink(f"tag URI {uri!r} has {len(sigs)} sig attributes; expected one")
    signature = decode_signature(sigs[0]) if sigs else None
    return DigitalLink(gtin, lot, serial, signature, parts.netloc)
