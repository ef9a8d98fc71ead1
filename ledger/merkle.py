"""Merkle trees byte-compatible with OpenZeppelin's StandardMerkleTree.

Leaves are items `(gtin, serial, salt)` with types `["string", "string", "bytes32"]`:
`leaf = keccak256(keccak256(abi.encode(gtin, serial, salt)))` (hashed twice so a leaf can never
be taken for an inner node), leaves sorted by hash, inner nodes `keccak256(sort(a, b))`, and the
array layout of `@openzeppelin/merkle-tree` (root at index 0, leaves at the end in reverse order).
Same values give the same root and proofs as the npm library, and proofs verify with
OpenZeppelin's `MerkleProof` on chain; `tests/ledger/test_crosscheck_js.py` checks it.

The salt keeps serials private: a proof reveals sibling hashes, and serials are often
sequential, so unsalted leaves would let anyone holding one proof test guesses for others.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.hashing import abi_encode_strings_and_words, keccak256

HASH_LENGTH = 32
LEAF_ENCODING = ("string", "string", "bytes32")


def item_salt(batch_secret: bytes, gtin: str, serial: str) -> bytes:
    """HMAC-SHA256(batch secret, gtin || serial): deterministic, so re-running gives one root.

    GTINs are always 14 digits, so the concatenation is unambiguous.
    """
    return hmac.new(batch_secret, (gtin + serial).encode(), hashlib.sha256).digest()


def leaf_hash(gtin: str, serial: str, salt: bytes) -> bytes:
    """StandardMerkleTree leaf hash of the item `(gtin, serial, salt)`."""
    return keccak256(keccak256(abi_encode_strings_and_words([gtin, serial, salt])))


def node_hash(a: bytes, b: bytes) -> bytes:
    """Hash of two sibling nodes, in sorted order (what OpenZeppelin's MerkleProof expects)."""
    return keccak256(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf`."""
    computed = leaf
    for sibling in proof:
        computed = node_hash(computed, sibling)
    return computed


def verify_proof(root: bytes, leaf: bytes, proof: Iterable[bytes]) -> bool:
    """Whether `proof` shows `leaf` under `root` (same rule as MerkleProof.verify)."""
    return hmac.compare_digest(process_proof(leaf, proof), root)


@dataclass(frozen=True, slots=True)
class MerkleTree:
    """A built tree: `nodes` holds every node hash back to back, in the npm library's layout.

    One flat `bytes` instead of a list of two million objects keeps a million-item tree at
    64 MB and lets it be written to disk and loaded again as is.
    """

    nodes: bytes
    leaf_count: int

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Build the tree over leaf hashes (any order: they are sorted, as the library does)."""
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        ordered = sorted(leaves)
        n = len(ordered)
        size = 2 * n - 1
        tree: list[bytes] = [b""] * size
        for i, leaf in enumerate(ordered):
            if len(leaf) != HASH_LENGTH:
                raise ValueError(f"leaf {i} is {len(leaf)} bytes, expected {HASH_LENGTH}")
            tree[size - 1 - i] = leaf
        for i in range(size - 1 - n, -1, -1):
            left, right = tree[2 * i + 1], tree[2 * i + 2]
            tree[i] = keccak256(left + right if left <= right else right + left)
        return cls(b"".join(tree), n)

    @classmethod
    def from_bytes(cls, nodes: bytes) -> MerkleTree:
        """Load a tree saved with `nodes` (as written by `enroll`)."""
        if not nodes or len(nodes) % HASH_LENGTH or (len(nodes) // HASH_LENGTH) % 2 == 0:
            raise ValueError("a saved tree is an odd number of 32-byte nodes")
        return cls(nodes, (len(nodes) // HASH_LENGTH + 1) // 2)

    @property
    def size(self) -> int:
        return 2 * self.leaf_count - 1

    def node(self, index: int) -> bytes:
        return self.nodes[index * HASH_LENGTH : (index + 1) * HASH_LENGTH]

    @property
    def root(self) -> bytes:
        return self.node(0)

    def leaf_index(self, leaf: bytes) -> int:
        """Tree index of `leaf` (binary search: leaves sit sorted, in reverse, at the end)."""
        lo, hi = 0, self.leaf_count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.node(self.size - 1 - mid) < leaf:
                lo = mid + 1
            else:
                hi = mid
        if lo == self.leaf_count or self.node(self.size - 1 - lo) != leaf:
            raise KeyError(leaf.hex())
        return self.size - 1 - lo

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from `leaf` up to the root; raises KeyError if it is not a leaf."""
        index = self.leaf_index(leaf)
        proof = []
        while index > 0:
            sibling = index + 1 if index % 2 == 1 else index - 1
            proof.append(self.node(sibling))
            index = (index - 1) // 2
        return proof
