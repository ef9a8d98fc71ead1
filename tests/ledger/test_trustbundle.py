"""Trust bundle envelopes: signature round trip, and every kind of tampering refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.trustbundle import (
    PAYLOAD_FORMAT,
    BundleRefused,
    canonical_bytes,
    derive_signing_key,
    envelope_from_bytes,
    key_id,
    parse_public_key,
    public_key_hex,
    sign_bundle,
    signing_key,
    verify_bundle,
)

KEY = derive_signing_key("test-secret")
PUBLIC = public_key_hex(KEY)


def payload(**extra: Any) -> dict[str, Any]:
    return {
        "format": PAYLOAD_FORMAT,
        "chainId": 31337,
        "registry": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "issuedAt": 1_800_000_000,
        "index": {"block": 12, "blockTime": 1_799_999_990},
        "holders": [{"address": "0xabc", "name": "Acme Pharma — Zürich", "gtins": ["1"]}],
        "signers": [],
        "batches": [],
        "items": [],
        **extra,
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)  # RFC 8785 numbers are doubles: exact to 2^53
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5))
def test_round_trip_of_any_json_payload(extra: dict[str, Any]) -> None:
    body = {**extra, **payload()}
    envelope = sign_bundle(body, KEY)
    # the file a scanner stores: the envelope re-serialised any way at all still verifies,
    # because the signature covers the payload bytes, not a re-encoding of them
    stored = json.dumps(envelope, indent=3).encode()
    verified = verify_bundle(envelope_from_bytes(stored), PUBLIC)
    assert verified.payload == json.loads(canonical_bytes(body))
    assert verified.public_key == PUBLIC
    assert unb64(envelope["payload"]) == canonical_bytes(body)


def test_envelope_names_its_key_and_the_key_is_derived_as_documented() -> None:
    envelope = sign_bundle(payload(), KEY)
    assert envelope["signature"]["publicKey"] == PUBLIC
    assert envelope["signature"]["keyId"] == key_id(PUBLIC) and len(key_id(PUBLIC)) == 16
    # HKDF-SHA256, no salt, info "borderledger-trust-bundle-ed25519", 32 bytes (docs/formats.md)
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"borderledger-trust-bundle-ed25519"
    ).derive(b"test-secret")
    assert public_key_hex(Ed25519PrivateKey.from_private_bytes(seed)) == PUBLIC
    assert public_key_hex(derive_signing_key("test-secret")) == PUBLIC  # deterministic
    assert public_key_hex(derive_signing_key("other-secret")) != PUBLIC
    # a dedicated seed wins over the derived key
    dedicated = signing_key("test-secret", "11" * 32)
    assert public_key_hex(dedicated) != PUBLIC
    assert public_key_hex(dedicated) == public_key_hex(
        Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
    )
    for bad in ("zz", "11" * 31):
        with pytest.raises(InvalidInput, match="BUNDLE_SIGNING_KEY"):
            signing_key("x", bad)


def test_every_flipped_byte_of_the_file_is_refused() -> None:
    raw = json.dumps(sign_bundle(payload(), KEY)).encode()
    assert verify_bundle(envelope_from_bytes(raw), PUBLIC).payload["chainId"] == 31337
    for i in range(len(raw)):
        for bit in (0x01, 0x20):
            tampered = bytearray(raw)
            tampered[i] ^= bit
            with pytest.raises(BundleRefused, match=r"^trust bundle refused: "):
                verify_bundle(envelope_from_bytes(bytes(tampered)), PUBLIC)


def test_a_changed_field_is_refused() -> None:
    envelope = sign_bundle(payload(), KEY)
    body = json.loads(unb64(envelope["payload"]))
    body["items"] = []
    body["index"]["block"] = 13  # a newer-looking bundle
    forged = {**envelope, "payload": b64(canonical_bytes(body))}
    with pytest.raises(BundleRefused, match="altered after the gateway signed it"):
        verify_bundle(forged, PUBLIC)
    # the same content with different whitespace is other bytes: refused too
    spaced = {
        **envelope,
        "payload": b64(json.dumps(json.loads(unb64(envelope["payload"]))).encode()),
    }
    with pytest.raises(BundleRefused, match="altered"):
        verify_bundle(spaced, PUBLIC)


def test_a_bundle_re_signed_with_another_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    body = payload(items=[{"batchId": "0x1", "itemKey": "0x2", "status": "stolen"}])
    resigned = sign_bundle(body, other)
    with pytest.raises(BundleRefused, match="not by the pinned gateway key") as info:
        verify_bundle(resigned, PUBLIC)
    assert key_id(public_key_hex(other)) in str(info.value)
    # an attacker who also rewrites the envelope's key fields gains nothing
    lying = {**resigned, "signature": {**resigned["signature"], "publicKey": PUBLIC}}
    with pytest.raises(BundleRefused, match="altered"):
        verify_bundle(lying, PUBLIC)
    # with the other key pinned, it verifies (the pin decides, nothing else)
    assert verify_bundle(resigned, public_key_hex(other)).payload["items"][0]["status"] == "stolen"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a borderledger/trust-bundle-envelope/1"),
        (b'{"format": "borderledger/trust-bundle-envelope/1"}', "lacks payload or signature"),
        (
            b'{"format": "borderledger/trust-bundle-envelope/1", "payload": "e30", '
            b'"signature": {"algorithm": "RSA", "value": "AA"}}',
            "algorithm 'RSA'",
        ),
        (
            b'{"format": "borderledger/trust-bundle-envelope/1", "payload": "e30", '
            b'"signature": {"algorithm": "Ed25519", "value": "!!!"}}',
            "signature is not base64url|altered",
        ),
    ],
)
def test_malformed_envelopes_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(BundleRefused, match=message):
        verify_bundle(envelope_from_bytes(raw), PUBLIC)


def test_a_signed_payload_that_is_not_a_bundle_is_refused() -> None:
    data = b'{"format":"something-else/1"}'
    envelope = {
        "format": "borderledger/trust-bundle-envelope/1",
        "payload": b64(data),
        "signature": {
            "algorithm": "Ed25519",
            "keyId": key_id(PUBLIC),
            "publicKey": PUBLIC,
            "value": b64(KEY.sign(data)),
        },
    }
    with pytest.raises(BundleRefused, match="not borderledger/trust-bundle/1"):
        verify_bundle(envelope, PUBLIC)
    with pytest.raises(ValueError, match="format"):
        sign_bundle({"format": "x"}, KEY)


def test_pinned_key_spellings() -> None:
    for text in (PUBLIC, PUBLIC.upper(), "ed25519:" + PUBLIC, "0x" + PUBLIC, f" {PUBLIC}\n"):
        assert public_key_hex(parse_public_key(text)) == PUBLIC
    for bad in ("nothex", PUBLIC[:-2]):
        with pytest.raises(InvalidInput, match="gateway key"):
            parse_public_key(bad)
