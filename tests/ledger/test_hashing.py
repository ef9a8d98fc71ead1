"""Keccak-256 and the hand-rolled ABI encoder, checked against eth-hash, web3 and eth-abi."""

from __future__ import annotations

import hashlib

import eth_abi
import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from eth_hash.auto import keccak as eth_hash_keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from ledger.hashing import abi_encode_strings_and_words, keccak256

words = st.binary(min_size=32, max_size=32)
# Include long and multi-byte strings so lengths cross 32-byte word boundaries.
strings = st.text(max_size=100)


# --- keccak256 --------------------------------------------------------------------------------


def test_keccak256_known_vectors() -> None:
    # Ethereum's empty-input hash (e.g. the code hash of an account without code).
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    # The ERC-20 Transfer event topic.
    assert keccak256(b"Transfer(address,address,uint256)").hex() == (
        "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    )


def test_keccak256_is_not_nist_sha3() -> None:
    assert keccak256(b"") != hashlib.sha3_256(b"").digest()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_keccak256_matches_eth_hash_web3_and_pycryptodome(data: bytes) -> None:
    digest = keccak256(data)
    assert len(digest) == 32
    assert digest == eth_hash_keccak(data)
    assert digest == bytes(Web3.keccak(data))
    assert digest == pycryptodome_keccak.new(digest_bits=256, data=data).digest()


# --- abi_encode_strings_and_words -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(strings, strings, words)
def test_leaf_encoding_matches_eth_abi(gtin: str, serial: str, salt: bytes) -> None:
    ours = abi_encode_strings_and_words([gtin, serial, salt])
    assert ours == eth_abi.encode(["string", "string", "bytes32"], [gtin, serial, salt])
    assert len(ours) % 32 == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(strings | words, max_size=8))
def test_any_mix_of_strings_and_words_matches_eth_abi(values: list[str | bytes]) -> None:
    types = ["string" if isinstance(v, str) else "bytes32" for v in values]
    assert abi_encode_strings_and_words(values) == eth_abi.encode(types, values)


def test_realistic_leaf_encoding_round_trips_through_eth_abi() -> None:
    salt = bytes(range(32))
    encoded = abi_encode_strings_and_words(["09506000134352", "SN/0001%", salt])
    assert eth_abi.decode(["string", "string", "bytes32"], encoded) == (
        "09506000134352",
        "SN/0001%",
        salt,
    )


@pytest.mark.parametrize("length", [0, 1, 20, 31, 33, 64])
def test_wrong_size_bytes32_raises(length: int) -> None:
    with pytest.raises(ValueError, match=f"got {length}"):
        abi_encode_strings_and_words(["x", bytes(length)])
