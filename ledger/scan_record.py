"""Signed offline scan records: the format a device queues and the gateway checks (pure).

An officer's handheld that cannot reach the gateway still records what it scanned, signs each
record with its Ed25519 key and sends the records later (`borderledger sync`). Both sides use
this module, so the bytes signed on the device are exactly the bytes checked by the gateway:

* the record is a JSON object serialised canonically (`canonical_json`): RFC 8785 (JCS) for
  schema `borderledger/offline-scan/4`, what devices write now (with `user`, the person
  signed in on the device, and `shipment`, the shipment reference the officer set), for
  schema 3 (the same without `shipment`) and schema 2 (without `user` either); records of schema
  `borderledger/offline-scan/1` (sorted keys, no whitespace, non-ASCII as `\\u` escapes) are
  still read. The device signs those bytes and sends them as they are (a string), so the
  gateway never re-serialises anything to check a signature, whichever the version;
* a device id is derived from the public key (`device_id_of`): the device knows its id before
  it is registered, and one key can only ever be one device.

The format is public (docs/formats.md, "Signed offline scan record").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.canonical import LEGACY, read_int
from ledger.canonical import canonical_json as jcs
from ledger.errors import InvalidInput

SCHEMA = "borderledger/offline-scan/4"
SCHEMA_3 = "borderledger/offline-scan/3"
SCHEMA_2 = "borderledger/offline-scan/2"
SCHEMA_1 = "borderledger/offline-scan/1"
#: Every schema a record may name, and the encoding its signed text was written in.
SCHEMAS = {SCHEMA: "jcs", SCHEMA_3: "jcs", SCHEMA_2: "jcs", SCHEMA_1: "python-ascii"}
#: Fields of a record of schema 1 or 2, all present (null where unknown).
FIELDS_2 = frozenset(
    {
        "schema",
        "scanId",
        "deviceId",
        "scannedAt",
        "location",
        "payload",
        "kind",
        "tag",
        "gtin",
        "serial",
        "lot",
        "offlineVerdict",
    }
)
#: Schema 3 adds `user`: the email of the person signed in on the device (null when none).
FIELDS_3 = FIELDS_2 | {"user"}
#: Schema 4 adds `shipment`: the shipment reference the officer set (null when none).
FIELDS = FIELDS_3 | {"shipment"}
#: Fields each schema's records carry, all present.
FIELDS_OF = {SCHEMA: FIELDS, SCHEMA_3: FIELDS_3, SCHEMA_2: FIELDS_2, SCHEMA_1: FIELDS_2}
#: A shipment reference (customs entry, air-waybill or parcel number): letters, digits and
#: the separators carriers print (space . / -), at most 35 characters (UN/EDIFACT's reference
#: length), starting with a letter or digit. The same rule as `shipment` on /v1/verify.
SHIPMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,34}$"
_SHIPMENT = re.compile(SHIPMENT_PATTERN)
CHECKABLE_KINDS = frozenset({"tag", "gs1", "typed"})
#: A record larger than this (bytes) is refused: a tag URI is at most 2 KiB.
MAX_RECORD_BYTES = 16_384
_DEVICE_ID = re.compile(r"^dev-[0-9a-f]{32}$")
_UNLOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
_VERDICT = re.compile(r"^[A-Z_]{1,32}$")


def canonical_json(value: Any, schema: str = SCHEMA) -> str:
    """The serialisation that is signed: RFC 8785 for the current schema, the old encoder
    for schema 1 (kept to reproduce what older devices signed)."""
    encoding = SCHEMAS[schema]
    return (jcs(value) if encoding == "jcs" else LEGACY[encoding](value)).decode("utf-8")


def device_id_of(public_key: bytes) -> str:
    """`dev-` + the first 16 bytes of SHA-256 of the raw 32-byte public key, in hex."""
    return "dev-" + hashlib.sha256(public_key).digest()[:16].hex()


def encode_public_key(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key in standard base64 (44 characters): how the API takes it."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def decode_public_key(text: str) -> tuple[Ed25519PublicKey, bytes]:
    """An Ed25519 public key from base64 (standard or URL-safe, padding optional) of its 32 raw
    bytes, or from a PEM SubjectPublicKeyInfo block. Returns the key and its raw bytes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"publicKey: not a readable PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput("publicKey: the PEM block is not an Ed25519 key")
        return key, key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise InvalidInput("publicKey: not base64 of a 32-byte Ed25519 key, nor PEM") from None
    if len(raw) != 32:
        raise InvalidInput(f"publicKey: an Ed25519 key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw), raw


def format_time(at: datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`: one spelling per instant."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_record(
    *,
    device_id: str,
    payload: str,
    kind: str,
    tag: str | None,
    gtin: str | None,
    serial: str | None,
    lot: str | None,
    location: str | None,
    scanned_at: datetime,
    offline_verdict: dict[str, Any] | None = None,
    scan_id: str | None = None,
    user: str | None = None,
    shipment: str | None = None,
) -> str:
    """A new record as canonical JSON text (a fresh UUID4 scan id unless given), naming the
    `user` signed in on the device and the `shipment` reference set, when there are."""
    record = {
        "schema": SCHEMA,
        "scanId": scan_id or str(uuid.uuid4()),
        "deviceId": device_id,
        "scannedAt": format_time(scanned_at),
        "location": location,
        "payload": payload,
        "kind": kind,
        "tag": tag,
        "gtin": gtin,
        "serial": serial,
        "lot": lot,
        "offlineVerdict": offline_verdict,
        "user": user,
        "shipment": shipment,
    }
    parse_record(canonical_json(record))  # never queue what the gateway would refuse to read
    return canonical_json(record)


def sign_record(key: Ed25519PrivateKey, text: str) -> str:
    """Ed25519 signature over the record's UTF-8 bytes, standard base64 (88 characters)."""
    return base64.b64encode(key.sign(text.encode())).decode()


def check_signature(public_key: Ed25519PublicKey, text: str, signature: str) -> bool:
    """True when `signature` (base64) is the key's Ed25519 signature over `text` as sent."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 64 or base64.b64encode(raw).decode() != signature:
        return False  # one spelling per signature: no unused bits, no other padding
    try:
        public_key.verify(raw, text.encode())
    except _BadSignature:
        return False
    return True


@dataclass(frozen=True)
class ScanRecord:
    """A record read back and validated (the fields the gateway acts on)."""

    scan_id: str
    device_id: str
    scanned_at: datetime
    location: str | None
    payload: str
    kind: str
    tag: str | None
    gtin: str | None
    serial: str | None
    lot: str | None
    offline_verdict: dict[str, Any] | None
    #: Who was signed in on the device (schema 3; None for older records or no one).
    user: str | None = None
    #: The shipment reference the officer set (schema 4; None for older records or none set).
    shipment: str | None = None

    @property
    def offline_verdict_name(self) -> str | None:
        """The `verdict` string of the opaque offline verdict object, when it has one."""
        value = (self.offline_verdict or {}).get("verdict")
        return value if isinstance(value, str) and _VERDICT.match(value) else None


def _optional_str(record: dict[str, Any], name: str, limit: int) -> str | None:
    value = record[name]
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InvalidInput(f"record field {name} must be null or a string of 1-{limit} characters")
    return value


def parse_record(text: str) -> ScanRecord:
    """Read and validate a record's JSON text; every problem is an InvalidInput naming it."""
    if len(text.encode()) > MAX_RECORD_BYTES:
        raise InvalidInput(f"record larger than {MAX_RECORD_BYTES} bytes")
    try:
        # Numbers are doubles (RFC 8785): an integer past 2^53 is read as the double it is.
        record = json.loads(text, parse_int=read_int)
    except ValueError as exc:
        raise InvalidInput(f"record is not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise InvalidInput("record is not a JSON object")
    if "schema" in record and record["schema"] not in SCHEMAS:
        raise InvalidInput(
            f"record schema {record['schema']!r} is not {SCHEMA!r} "
            f"(nor the older {SCHEMA_3!r}, {SCHEMA_2!r} or {SCHEMA_1!r})"
        )
    expected = FIELDS_OF.get(str(record.get("schema")), FIELDS_2)
    missing = sorted(expected - set(record))
    extra = sorted(set(record) - expected)
    if missing or extra:
        raise InvalidInput(
            "record fields: "
            + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else [])
                + ([f"unknown {', '.join(extra)}"] if extra else [])
            )
        )
    scan_id = record["scanId"]
    try:
        if not isinstance(scan_id, str) or str(uuid.UUID(scan_id)) != scan_id:
            raise ValueError
    except ValueError:
        raise InvalidInput("scanId must be a UUID in lowercase hyphenated form") from None
    device_id = record["deviceId"]
    if not isinstance(device_id, str) or not _DEVICE_ID.match(device_id):
        raise InvalidInput("deviceId must be dev- and 32 hex digits")
    scanned_at = record["scannedAt"]
    try:
        if not isinstance(scanned_at, str) or not scanned_at.endswith("Z"):
            raise ValueError
        at = datetime.fromisoformat(scanned_at)
    except ValueError:
        raise InvalidInput("scannedAt must be RFC 3339 UTC time ending in Z") from None
    location = _optional_str(record, "location", 5)
    if location is not None and not _UNLOCODE.match(location):
        raise InvalidInput(f"location {location!r} is not a UN/LOCODE")
    payload = record["payload"]
    if not isinstance(payload, str) or not 0 < len(payload) <= 4096:
        raise InvalidInput("payload must be the code's text as read (1-4096 characters)")
    kind = record["kind"]
    if kind not in CHECKABLE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(sorted(CHECKABLE_KINDS))}")
    tag = _optional_str(record, "tag", 2048)
    gtin = _optional_str(record, "gtin", 14)
    serial = _optional_str(record, "serial", 20)
    lot = _optional_str(record, "lot", 20)
    if tag is None and (gtin is None or serial is None):
        raise InvalidInput("a record needs tag, or gtin and serial")
    user = _optional_str(record, "user", 254) if "user" in record else None
    shipment = _optional_str(record, "shipment", 35) if "shipment" in record else None
    if shipment is not None and not _SHIPMENT.match(shipment):
        raise InvalidInput(
            f"shipment {shipment!r} is not a shipment reference: letters, digits, space . / -, "
            "starting with a letter or digit, at most 35 characters"
        )
    verdict = record["offlineVerdict"]
    if verdict is not None and not isinstance(verdict, dict):
        raise InvalidInput("offlineVerdict must be null or a JSON object")
    return ScanRecord(
        scan_id,
        device_id,
        at,
        location,
        payload,
        kind,
        tag,
        gtin,
        serial,
        lot,
        verdict,
        user,
        shipment,
    )
