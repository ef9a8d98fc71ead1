"""Merkle trees: proofs, serialisation, and agreement with a naive OpenZeppelin-style tree.

The reference below is written straight from the description of `@openzeppelin/merkle-tree`'s
StandardMerkleTree (leaf = keccak256(keccak256(abi.encode(values))), leaves sorted by hash and
stored in reverse at the end of a 2n-1 array, node i = keccak256(sorted(child 2i+1, 2i+2))),
using eth-abi and pycryptodome's Keccak instead of `ledger.hashing`.
"""

from __future__ import annotations

import hashlib
import hmac

import eth_abi
import pytest
from Crypto.Hash import keccak as _keccak
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    MerkleTree,
    item_salt,
    leaf_hash,
    node_hash,
    process_proof,
    verify_proof,
)

SPEC_CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

Item = tuple[str, str, bytes]


# --- the independent reference ----------------------------------------------------------------


def ref_keccak(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def ref_leaf(item: Item) -> bytes:
    return ref_keccak(ref_keccak(eth_abi.encode(["string", "string", "bytes32"], list(item))))


def ref_tree(items: list[Item]) -> list[bytes]:
    leaves = sorted(ref_leaf(item) for item in items)
    n = len(leaves)
    tree: list[bytes] = [b""] * (2 * n - 1)
    for i, leaf in enumerate(leaves):
        tree[len(tree) - 1 - i] = leaf
    for i in range(len(tree) - 1 - n, -1, -1):
        pair = sorted([tree[2 * i + 1], tree[2 * i + 2]])
        tree[i] = ref_keccak(pair[0] + pair[1])
    return tree


def ref_proof(tree: list[bytes], index: int) -> list[bytes]:
    proof = []
    while index > 0:
        proof.append(tree[index - 1 if index % 2 == 0 else index + 1])
        index = (index - 1) // 2
    return proof


# --- strategies -------------------------------------------------------------------------------


def spec_check_digit(body: str) -> int:
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - weighted % 10) % 10


gtins = st.text("0123456789", min_size=13, max_size=13).map(
    lambda body: body + str(spec_check_digit(body))
)
items = st.tuples(
    gtins,
    st.text(alphabet=SPEC_CSET82, min_size=1, max_size=20),
    st.binary(min_size=32, max_size=32),
)
item_sets = st.lists(items, min_size=1, max_size=60, unique=True)


def build(values: list[Item]) -> MerkleTree:
    return MerkleTree.from_leaves([leaf_hash(*item) for item in values])


def flip_bit(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    mutable = bytearray(data)
    mutable[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutable)


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(item_sets)
def test_tree_matches_naive_reference(values: list[Item]) -> None:
    tree = build(values)
    reference = ref_tree(values)
    assert tree.nodes == b"".join(reference)
    assert tree.root == reference[0]
    assert tree.leaf_count == len(values)
    assert tree.size == len(reference)
    for item in values:
        leaf = ref_leaf(item)
        assert leaf_hash(*item) == leaf
        index = tree.leaf_index(leaf)
        assert reference[index] == leaf
        assert tree.proof(leaf) == ref_proof(reference, index)


@settings(max_examples=60, deadline=None)
@given(item_sets)
def test_every_proof_verifies(values: list[Item]) -> None:
    tree = build(values)
    for item in values:
        leaf = leaf_hash(*item)
        proof = tree.proof(leaf)
        assert verify_proof(tree.root, leaf, proof)
        assert process_proof(leaf, proof) == tree.root
        # Depth of a leaf in a complete binary tree of 2n-1 nodes.
        assert len(proof) <= (len(values) - 1).bit_length()


@settings(max_examples=60, deadline=None)
@given(item_sets, items)
def test_a_leaf_outside_the_set_fails(values: list[Item], outsider: Item) -> None:
    assume(outsider not in values)
    tree = build(values)
    foreign = leaf_hash(*outsider)
    with pytest.raises(KeyError):
        tree.proof(foreign)
    for item in values:
        assert not verify_proof(tree.root, foreign, tree.proof(leaf_hash(*item)))


@settings(max_examples=60, deadline=None)
@given(item_sets, st.data())
def test_a_flipped_bit_breaks_the_proof(values: list[Item], data: st.DataObject) -> None:
    tree = build(values)
    item = data.draw(st.sampled_from(values))
    leaf = leaf_hash(*item)
    proof = tree.proof(leaf)
    bit = data.draw(st.integers(min_value=0, max_value=255))
    assert not verify_proof(tree.root, flip_bit(leaf, bit), proof)
    assert not verify_proof(flip_bit(tree.root, bit), leaf, proof)
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        broken = list(proof)
        broken[position] = flip_bit(broken[position], bit)
        assert not verify_proof(tree.root, leaf, broken)
        assert not verify_proof(tree.root, leaf, proof[:-1])
        assert not verify_proof(tree.root, leaf, [*proof, proof[-1]])


@settings(max_examples=60, deadline=None)
@given(item_sets, st.randoms(use_true_random=False))
def test_leaf_order_does_not_matter(values: list[Item], rng) -> None:
    leaves = [leaf_hash(*item) for item in values]
    shuffled = list(leaves)
    rng.shuffle(shuffled)
    assert MerkleTree.from_leaves(shuffled) == MerkleTree.from_leaves(leaves)


@settings(max_examples=60, deadline=None)
@given(item_sets)
def test_from_bytes_round_trips(values: list[Item]) -> None:
    tree = build(values)
    loaded = MerkleTree.from_bytes(tree.nodes)
    assert loaded == tree
    assert loaded.leaf_count == len(values)
    for item in values:
        leaf = leaf_hash(*item)
        assert loaded.proof(leaf) == tree.proof(leaf)


# --- examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 59, 60, 61, 100])
def test_every_size_matches_reference_and_every_proof_verifies(n: int) -> None:
    values = [
        ("09506000134352", f"SN{i:05d}/{chr(65 + i % 26)}", hashlib.sha256(bytes([i])).digest())
        for i in range(n)
    ]
    tree = build(values)
    reference = ref_tree(values)
    assert tree.nodes == b"".join(reference)
    for item in values:
        leaf = ref_leaf(item)
        assert verify_proof(reference[0], leaf, tree.proof(leaf))


def test_single_leaf_tree_root_is_the_leaf() -> None:
    item = ("09506000134352", "SN1", bytes(32))
    leaf = leaf_hash(*item)
    tree = MerkleTree.from_leaves([leaf])
    assert tree.root == leaf == ref_leaf(item)
    assert tree.nodes == leaf
    assert tree.size == 1
    assert tree.proof(leaf) == []
    assert verify_proof(tree.root, leaf, [])


def test_two_leaf_tree_root_is_the_sorted_pair_hash() -> None:
    a, b = leaf_hash("09506000134352", "A", bytes(32)), leaf_hash("09506000134352", "B", bytes(32))
    low, high = sorted([a, b])
    expected = ref_keccak(low + high)
    assert MerkleTree.from_leaves([a, b]).root == expected
    assert node_hash(a, b) == node_hash(b, a) == expected


def test_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        MerkleTree.from_leaves([])


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_leaves_must_be_32_bytes(length: int) -> None:
    with pytest.raises(ValueError, match=f"{length} bytes"):
        MerkleTree.from_leaves([bytes(32), bytes(length)])


@pytest.mark.parametrize("size", [0, 31, 33, 64, 2 * 32, 4 * 32, 3 * 32 + 1])
def test_from_bytes_refuses_malformed_data(size: int) -> None:
    with pytest.raises(ValueError, match="odd number of 32-byte nodes"):
        MerkleTree.from_bytes(bytes(size))


# --- salts ------------------------------------------------------------------------------------


def test_item_salt_rfc4231_vector() -> None:
    # RFC 4231 test case 2: HMAC-SHA-256(key="Jefe", data="what do ya want for nothing?").
    assert item_salt(b"Jefe", "what do ya want ", "for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=64),
    gtins,
    st.text(alphabet=SPEC_CSET82, min_size=1, max_size=20),
)
def test_item_salt_is_hmac_sha256_of_gtin_and_serial(secret: bytes, gtin: str, serial: str) -> None:
    salt = item_salt(secret, gtin, serial)
    assert salt == hmac.new(secret, (gtin + serial).encode(), hashlib.sha256).digest()
    assert len(salt) == 32
    assert item_salt(secret, gtin, serial) == salt  # deterministic
    assert item_salt(secret + b"x", gtin, serial) != salt
    assert item_salt(secret, gtin, serial + "x") != salt
