"""Trust bundles: the gateway's index, signed with its Ed25519 key, for verifying offline.

A scanner at a port without network must still judge tags. The gateway hands it a *trust
bundle* (rights holders, signer keys with their add/revoke times, batches and their roots,
items with a non-active status, route policies, and the index block it was cut at) signed with
the gateway's own Ed25519 key, so a bundle copied through any untrusted channel (a USB stick,
a device sync) is refused if one byte of it changed.

Format (docs/formats.md, "Trust bundle"): a JSON envelope

    {"format": "borderledger/trust-bundle-envelope/1",
     "payload": base64url(P),                        # no padding
     "signature": {"algorithm": "Ed25519", "keyId": …, "publicKey": hex, "value": base64url(sig)}}

where `P` is the exact bytes that were signed: the payload object as RFC 8785 canonical JSON
(`ledger.canonical`), and `sig = Ed25519.sign(P)`. The verifier checks the signature over the
bytes *before* parsing them, so no re-serialisation (floats, escapes, key order) can make two
implementations disagree. The payload names its own `format`, which separates it from
anything else the key might sign later and says how `P` was written:
"borderledger/trust-bundle/2" is JCS (what the gateway issues); "borderledger/trust-bundle/1"
bundles (Python `json.dumps`, sorted keys, UTF-8: a route policy's `valid_from` written
`1767225600.0`) are still accepted until they age out. The envelope's `publicKey` is
informational: a verifier uses the key it pinned.

The gateway's key is `BORDERLEDGER_BUNDLE_SIGNING_KEY` (hex of a 32-byte Ed25519 seed) or,
when unset, derived from `BORDERLEDGER_SECRET_KEY` with HKDF-SHA256 (no salt,
info `borderledger-trust-bundle-ed25519`, 32 bytes) — so every worker of one gateway signs
with the same key, and the key survives restarts without a file.

Domain module: imports neither web3 nor FastAPI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.canonical import canonical_json
from ledger.errors import InvalidInput

ENVELOPE_FORMAT = "borderledger/trust-bundle-envelope/1"
PAYLOAD_FORMAT = "borderledger/trust-bundle/2"
PAYLOAD_FORMAT_1 = "borderledger/trust-bundle/1"
#: Payload formats a verifier accepts (the signature covers the bytes, whichever encoder wrote them).
PAYLOAD_FORMATS = frozenset({PAYLOAD_FORMAT, PAYLOAD_FORMAT_1})
HKDF_INFO = b"borderledger-trust-bundle-ed25519"
ALGORITHM = "Ed25519"


class BundleRefused(InvalidInput):
    """A trust bundle that must not be used: unreadable, tampered, or signed by another key."""


# ------------------------------------------------------------------------------- keys


def derive_signing_key(secret_key: str) -> Ed25519PrivateKey:
    """The gateway's bundle key derived from its secret-key setting (HKDF-SHA256, see above)."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret_key.encode()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def signing_key(secret_key: str, seed_hex: str | None = None) -> Ed25519PrivateKey:
    """The dedicated key when configured (hex seed), else the one derived from `secret_key`."""
    if seed_hex:
        try:
            seed = bytes.fromhex(seed_hex.removeprefix("0x"))
        except ValueError:
            raise InvalidInput("BORDERLEDGER_BUNDLE_SIGNING_KEY is not hex") from None
        if len(seed) != 32:
            raise InvalidInput(
                f"BORDERLEDGER_BUNDLE_SIGNING_KEY is {len(seed)} bytes; an Ed25519 seed is 32"
            )
        return Ed25519PrivateKey.from_private_bytes(seed)
    return derive_signing_key(secret_key)


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw 32-byte public key as 64 lowercase hex digits (how keys are pinned)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def key_id(public_hex: str) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A pinned key as given by a user: 64 hex digits (an `ed25519:` prefix is allowed)."""
    cleaned = text.strip().removeprefix("ed25519:").removeprefix("0x").lower()
    try:
        raw = bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidInput(f"gateway key {text!r} is not hex (expected 64 hex digits)") from None
    if len(raw) != 32:
        raise InvalidInput(
            f"gateway key {text!r} is {len(raw)} bytes; an Ed25519 public key is 32 (64 hex digits)"
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def key_description(private: Ed25519PrivateKey) -> dict[str, str]:
    """What the gateway publishes about its key (GET /v1/trust-bundle/key, dev.json)."""
    public = public_key_hex(private)
    return {"algorithm": ALGORITHM, "publicKey": public, "keyId": key_id(public)}


# ------------------------------------------------------------------------------- envelope


def canonical_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes that are signed: RFC 8785 canonical JSON."""
    return canonical_json(payload)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str, what: str) -> bytes:
    """Strict base64url: one spelling per byte string, so no character can change unnoticed."""
    try:
        data = base64.b64decode(
            (text + "=" * (-len(text) % 4)).encode("ascii"), altchars=b"-_", validate=True
        )
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise BundleRefused(f"trust bundle refused: its {what} is not base64url") from None
    if _b64(data) != text:
        raise BundleRefused(f"trust bundle refused: its {what} is not canonical base64url")
    return data


def sign_bundle(payload: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The envelope for `payload` (which must carry `format: PAYLOAD_FORMAT`)."""
    if payload.get("format") != PAYLOAD_FORMAT:
        raise ValueError(f"a trust bundle payload names format {PAYLOAD_FORMAT!r}")
    data = canonical_bytes(payload)
    public = public_key_hex(key)
    return {
        "format": ENVELOPE_FORMAT,
        "payload": _b64(data),
        "signature": {
            "algorithm": ALGORITHM,
            "keyId": key_id(public),
            "publicKey": public,
            "value": _b64(key.sign(data)),
        },
    }


@dataclass(frozen=True)
class VerifiedBundle:
    """A payload whose signature checked out under `public_key` (hex)."""

    payload: dict[str, Any]
    public_key: str


def envelope_from_bytes(raw: bytes) -> dict[str, Any]:
    """Parse the envelope file (not yet verified)."""
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleRefused(f"trust bundle refused: not JSON ({exc})") from None
    if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT:
        raise BundleRefused(f"trust bundle refused: not a {ENVELOPE_FORMAT} envelope")
    return envelope


def verify_bundle(envelope: dict[str, Any], pinned: Ed25519PublicKey | str) -> VerifiedBundle:
    """Check the envelope's signature with the pinned key, then parse the payload.

    Raises `BundleRefused` with a message saying what is wrong: another key signed it (the
    envelope's key id is named), the signature does not match the bytes (tampered), or the
    payload is not a trust bundle."""
    key = parse_public_key(pinned) if isinstance(pinned, str) else pinned
    pinned_hex = public_key_hex(key)
    signature = envelope.get("signature")
    payload_text = envelope.get("payload")
    if not isinstance(signature, dict) or not isinstance(payload_text, str):
        raise BundleRefused("trust bundle refused: the envelope lacks payload or signature")
    if signature.get("algorithm") != ALGORITHM:
        raise BundleRefused(
            f"trust bundle refused: signature algorithm {signature.get('algorithm')!r}; "
            f"expected {ALGORITHM}"
        )
    value = signature.get("value")
    if not isinstance(value, str):
        raise BundleRefused("trust bundle refused: the signature has no value")
    data = _unb64(payload_text, "payload")
    sig = _unb64(value, "signature")
    claimed = signature.get("publicKey")
    claimed_id = signature.get("keyId")
    try:
        key.verify(sig, data)
    except _BadSignature:
        if isinstance(claimed, str) and claimed != pinned_hex:
            raise BundleRefused(
                f"trust bundle refused: it is signed by key {str(claimed_id)!r} "
                f"({claimed[:16]}…), not by the pinned gateway key {key_id(pinned_hex)!r} "
                f"({pinned_hex[:16]}…)"
            ) from None
        raise BundleRefused(
            "trust bundle refused: its signature does not match its contents "
            "(the bundle was altered after the gateway signed it)"
        ) from None
    if claimed != pinned_hex or claimed_id != key_id(pinned_hex):
        # Signed by the pinned key, but the envelope's key fields were edited: not as issued.
        raise BundleRefused(
            "trust bundle refused: the envelope's publicKey/keyId were altered after signing"
        )
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleRefused(f"trust bundle refused: signed payload is not JSON ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") not in PAYLOAD_FORMATS:
        raise BundleRefused(
            f"trust bundle refused: the signed payload is not {PAYLOAD_FORMAT_1} "
            f"nor {PAYLOAD_FORMAT}"
        )
    return VerifiedBundle(payload, pinned_hex)
