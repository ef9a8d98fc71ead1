"""EIP-712 tag signatures, checked against eth-account and eth-keys' pure-Python backend.

The EIP-712 types and domain are written out here from the spec in `ledger/tags.py`'s
docstring (`Tag(string gtin,string serial,string lot)`, domain name "BorderLedger", version
"1"), not taken from the module, so a typo there would show up as a mismatch.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys import KeyAPI
from eth_keys.backends import NativeECCBackend
from eth_utils import to_checksum_address as eth_utils_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput, InvalidSignature
from ledger.tags import (
    SECP256K1_HALF_N,
    SECP256K1_N,
    TagDomain,
    TagSigner,
    recover_signer,
    tag_digest,
    to_checksum_address,
)

# The secp256k1 group order, from SEC 2 section 2.4.1 (not from ledger.tags).
N = int(
    "FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFE BAAEDCE6 AF48A03B BFD25E8C D0364141".replace(" ", ""), 16
)
NATIVE = KeyAPI(NativeECCBackend())
CHAIN_ID = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # first Anvil/Hardhat deployment
KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
KEY_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # Anvil/Hardhat dev account 0


def typed_message(chain_id: int, registry: str, gtin: str, serial: str, lot: str) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Tag": [
                {"name": "gtin", "type": "string"},
                {"name": "serial", "type": "string"},
                {"name": "lot", "type": "string"},
            ],
        },
        "primaryType": "Tag",
        "domain": {
            "name": "BorderLedger",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": registry,
        },
        "message": {"gtin": gtin, "serial": serial, "lot": lot},
    }


def native_sign(key: bytes, digest: bytes) -> bytes:
    """r || s || v (27/28) from eth-keys' pure-Python RFC 6979 signer."""
    raw = NATIVE.PrivateKey(key).sign_msg_hash(digest).to_bytes()
    return raw[:64] + bytes([raw[64] + 27])


def with_rsv(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


keys = st.integers(min_value=1, max_value=N - 1).map(lambda k: k.to_bytes(32, "big"))
chain_ids = st.sampled_from([1, 10, 137, 8453, 31337, 11155111]) | st.integers(0, 2**64)
registries = st.binary(min_size=20, max_size=20).map(lambda b: eth_utils_checksum(b))
fields = st.text(max_size=40)  # EIP-712 strings are any Unicode, not only CSET 82
domains = st.builds(TagDomain, chain_id=chain_ids, registry=registries)


@pytest.fixture(scope="module")
def signer() -> TagSigner:
    return TagSigner(KEY, TagDomain(CHAIN_ID, REGISTRY))


# --- constants and addresses --------------------------------------------------------------------


def test_curve_order_constants() -> None:
    assert SECP256K1_N == N
    # OpenZeppelin ECDSA.tryRecover refuses s above this constant.
    oz_half_n = int("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0", 16)
    assert oz_half_n == SECP256K1_HALF_N


def test_known_dev_key_address(signer: TagSigner) -> None:
    assert signer.address == KEY_ADDRESS
    assert Account.from_key(KEY).address == KEY_ADDRESS


@settings(max_examples=50, deadline=None)
@given(keys)
def test_signer_address_matches_eth_account(key: bytes) -> None:
    assert TagSigner(key, TagDomain(CHAIN_ID, REGISTRY)).address == Account.from_key(key).address


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=20, max_size=20))
def test_checksum_matches_eth_utils(raw: bytes) -> None:
    expected = eth_utils_checksum("0x" + raw.hex())
    assert to_checksum_address(raw.hex()) == expected
    assert to_checksum_address("0x" + raw.hex().upper()) == expected


@pytest.mark.parametrize("address", ["0x1234", "0x" + "g" * 40, "0x" + "00" * 21, ""])
def test_checksum_refuses_non_addresses(address: str) -> None:
    with pytest.raises(ValueError):
        to_checksum_address(address)


@pytest.mark.parametrize("registry", ["0x1234", "0x" + "00" * 21])
def test_domain_refuses_bad_registry(registry: str) -> None:
    with pytest.raises(ValueError):
        _ = TagDomain(CHAIN_ID, registry).separator


# --- digest agreement with eth-account --------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(domains, fields, fields, fields)
def test_digest_matches_eth_account(domain: TagDomain, gtin: str, serial: str, lot: str) -> None:
    signable = encode_typed_data(
        full_message=typed_message(domain.chain_id, domain.registry, gtin, serial, lot)
    )
    assert signable.header == domain.separator
    assert tag_digest(domain.separator, gtin, serial, lot) == _hash_eip191_message(signable)


def test_domain_as_json_is_the_eip712_domain() -> None:
    domain = TagDomain(CHAIN_ID, REGISTRY)
    assert domain.as_json() == typed_message(CHAIN_ID, REGISTRY, "", "", "")["domain"]


def test_field_order_matters() -> None:
    separator = TagDomain(CHAIN_ID, REGISTRY).separator
    base = tag_digest(separator, "09506000134352", "A", "B")
    assert tag_digest(separator, "09506000134352", "B", "A") != base
    assert tag_digest(TagDomain(1, REGISTRY).separator, "09506000134352", "A", "B") != base
    other_registry = TagDomain(CHAIN_ID, "0x" + "11" * 20).separator
    assert tag_digest(other_registry, "09506000134352", "A", "B") != base


# --- signing and recovery ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(keys, domains, fields, fields, fields)
def test_signatures_equal_eth_account_and_recover(
    key: bytes, domain: TagDomain, gtin: str, serial: str, lot: str
) -> None:
    signer = TagSigner(key, domain)
    signature = signer.sign(gtin, serial, lot)
    message = typed_message(domain.chain_id, domain.registry, gtin, serial, lot)
    theirs = Account.sign_typed_data(key, full_message=message)

    assert len(signature) == 65
    assert signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= N // 2  # low s
    # RFC 6979 + low s is deterministic, so independent signers agree byte for byte.
    assert signature == bytes(theirs.signature)
    assert signature == native_sign(key, bytes(theirs.message_hash))

    digest = tag_digest(domain.separator, gtin, serial, lot)
    assert recover_signer(digest, signature) == signer.address == Account.from_key(key).address
    assert Account._recover_hash(digest, signature=signature) == signer.address


@settings(max_examples=40, deadline=None)
@given(fields, fields, fields, fields)
def test_recovery_over_other_values_gives_another_address(
    gtin: str, serial: str, lot: str, other: str
) -> None:
    signer = TagSigner(KEY, TagDomain(CHAIN_ID, REGISTRY))
    signature = signer.sign(gtin, serial, lot)
    separator = TagDomain(CHAIN_ID, REGISTRY).separator
    if other != serial:
        assert recover_signer(tag_digest(separator, gtin, other, lot), signature) != KEY_ADDRESS
    assert recover_signer(tag_digest(separator, gtin, serial, lot), signature) == KEY_ADDRESS


def test_eth_account_signature_recovers_here() -> None:
    message = typed_message(CHAIN_ID, REGISTRY, "09506000134352", "SN/001", "L1")
    signed = Account.sign_typed_data(KEY, full_message=message)
    digest = tag_digest(TagDomain(CHAIN_ID, REGISTRY).separator, "09506000134352", "SN/001", "L1")
    assert recover_signer(digest, bytes(signed.signature)) == KEY_ADDRESS


# --- refused signatures ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(keys, fields, fields, fields)
def test_malleable_high_s_twin_is_refused(key: bytes, gtin: str, serial: str, lot: str) -> None:
    domain = TagDomain(CHAIN_ID, REGISTRY)
    signature = TagSigner(key, domain).sign(gtin, serial, lot)
    digest = tag_digest(domain.separator, gtin, serial, lot)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    twin = with_rsv(r, N - s, 55 - signature[64])  # v 27 <-> 28
    # The twin is a mathematically valid signature by the same key (eth-keys accepts it) ...
    recovered = NATIVE.Signature(vrs=(twin[64] - 27, r, N - s)).recover_public_key_from_msg_hash(
        digest
    )
    assert recovered.to_checksum_address() == Account.from_key(key).address
    # ... which is exactly why it must be refused.
    with pytest.raises(InvalidSignature, match="malleable"):
        recover_signer(digest, twin)


@pytest.mark.parametrize("length", [0, 1, 64, 66, 130])
def test_wrong_length_is_refused(signer: TagSigner, length: int) -> None:
    signature = (signer.sign("g", "s", "l") * 3)[:length]
    with pytest.raises(InvalidSignature, match=f"{length} bytes; expected 65"):
        recover_signer(bytes(32), signature)


@pytest.mark.parametrize("v", [2, 26, 29, 35, 36, 255])
def test_bad_v_is_refused(signer: TagSigner, v: int) -> None:
    signature = signer.sign("g", "s", "l")[:64] + bytes([v])
    with pytest.raises(InvalidSignature, match=f"v is {v}"):
        recover_signer(bytes(32), signature)


@pytest.mark.parametrize("v", [0, 1])
def test_legacy_v_zero_one_is_refused_as_on_chain(signer: TagSigner, v: int) -> None:
    """OpenZeppelin's ECDSA (and so the registry) refuses v = 0/1; so must we, or the two
    would disagree about the same tag."""
    digest = tag_digest(TagDomain(CHAIN_ID, REGISTRY).separator, "g", "s", "l")
    legacy = signer.sign("g", "s", "l")[:64] + bytes([v])
    with pytest.raises(InvalidSignature, match=f"v is {v}"):
        recover_signer(digest, legacy)


@pytest.mark.parametrize(
    ("r", "s"),
    [(0, 1), (N, 1), (N + 1, 1), (2**256 - 1, 1), (1, 0), (0, 0)],
    ids=["r=0", "r=n", "r=n+1", "r=max", "s=0", "r=s=0"],
)
def test_out_of_range_r_or_s_is_refused(r: int, s: int) -> None:
    with pytest.raises(InvalidSignature, match="out of range"):
        recover_signer(bytes(32), with_rsv(r, s, 27))


def test_s_just_above_half_n_is_refused_and_half_n_accepted() -> None:
    half = N // 2
    with pytest.raises(InvalidSignature, match="malleable"):
        recover_signer(bytes(range(32)), with_rsv(1, half + 1, 27))
    # s == n/2 is the largest low s: not refused as malleable (r=1 is an x on the curve).
    assert recover_signer(bytes(range(32)), with_rsv(1, half, 27)).startswith("0x")


def test_r_that_is_not_a_curve_x_coordinate_is_refused() -> None:
    p = 2**256 - 2**32 - 977
    x = next(x for x in range(1, 100) if pow((x**3 + 7) % p, (p - 1) // 2, p) != 1)
    with pytest.raises(InvalidSignature, match="does not recover"):
        recover_signer(bytes(32), with_rsv(x, 1, 27))


def test_signature_errors_are_input_errors() -> None:
    with pytest.raises(InvalidInput):
        recover_signer(bytes(32), b"")
    with pytest.raises(ValueError):
        recover_signer(bytes(32), b"")
