"""The custody log's RFC 6962 Merkle tree: published vectors, a naive reference, properties.

Three independent checks:
- the test vectors of Certificate Transparency's reference implementation
  (google/certificate-transparency, `merkle_tree_test.cc` / `merkle_test.py`: roots of the
  8-leaf tree of the standard inputs, audit paths, consistency proofs, and an audit path of a
  real CT log entry at index 848049 of a 3,630,887-entry tree);
- a naive recursive implementation written straight from RFC 6962 §2.1 / RFC 9162 §2.1.3.1 and
  §2.1.4.1 (MTH, PATH, PROOF on lists of leaves, using hashlib directly), compared on every
  (m, n) for n <= 40;
- hypothesis: every proof verifies, and altering the leaf, index, size, a root or any proof
  element makes verification fail.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.log import (
    EMPTY_ROOT,
    LogRangeError,
    MerkleLog,
    leaf_hash,
    node_hash,
    proof_from_hex,
    proof_to_hex,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.errors import InvalidInput

# ---------------------------------------------------------------- published CT test vectors

#: The standard inputs of CT's tests, D[0..7].
CT_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
#: MTH(D[0:n]) for n = 1..8.
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
#: (index, size, audit path); CT numbers leaves from 1, these are 0-based.
CT_PATHS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
#: (old size, new size, proof).
CT_CONSISTENCY: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
#: An audit path of a real CT log entry (CT's `merkle_test.py`, MerkleVerifierTest).
CT_LOG_LEAF_HASH = "7a395c866d5ecdb0cccb623e011dbc392cd348d1d1d72776174e127a24b09c78"
CT_LOG_INDEX = 848049
CT_LOG_SIZE = 3630887
CT_LOG_ROOT = "78316a05c9bcf14a3a4548f5b854a9adfcd46a4c034401b3ce7eb7ac2f1d0ecb"
CT_LOG_PATH = [
    "1a208aeebcd1b39fe2de247ee8db9454e1e93a312d206b87f6ca9cc6ec6f1ddd",
    "0a1b78b383f580856f433c01a5741e160d451c185910027f6cc9f828687a40c4",
    "3d1745789bc63f2da15850de1c12a5bf46ed81e1cc90f086148b1662e79aab3d",
    "9095b61e14d8990acf390905621e62b1714fb8e399fbb71de5510e0aef45affe",
    "0a332b91b8fab564e6afd1dd452449e04619b18accc0ff9aa8393cd4928451f2",
    "2336f0181d264aed6d8f3a6507ca14a8d3b3c3a23791ac263e845d208c1ee330",
    "b4ce56e300590500360c146c6452edbede25d4ed83919278749ee5dbe178e048",
    "933f6ddc848ea562e4f9c5cfb5f176941301dad0c6fdb9d1fbbe34fac1be6966",
    "b95a6222958a86f74c030be27c44f57dbe313e5e7c7f4ffb98bcbd3a03bb52f2",
    "daeeb3ce5923defd0faeb8e0c210b753b85b809445d7d3d3cd537a9aabaa9c45",
    "7fadd0a13e9138a2aa6c3fdec4e2275af233b94812784f66bcca9aa8e989f2bc",
    "1864e6ba3e32878610546539734fb5eeae2529991f130c575c73a7e25a2a7c56",
    "12842d1202b1dc6828a17ab253c02e7ce9409b5192430feba44189f39cc02d66",
    "29af64b16fa3053c13d02ac63aa75b23aa468506e44c3a2315edc85d2dc22b11",
    "b527b99934a0bd9edd154e449b0502e2c499bba783f3bc3dfe23364b6b532009",
    "4584db8ae8e351ace08e01f306378a92bfd43611714814f3d834a2842d69faa8",
    "86a9a41573b0d6e4292f01e93243d6cc65b30f06606fc6fa57390e7e90ed580f",
    "a88b98fbe84d4c6aae8db9d1605dfac059d9f03fe0fcb0d5dff1295dacba09e6",
    "06326dc617a6d1f7021dc536026dbfd5fffc6f7c5531d48ef6ccd1ed1569f2a1",
    "f41fe8fdc3a2e4e8345e30216e7ebecffee26ff266eeced208a6c2a3cf08f960",
    "40cf5bde8abb76983f3e98ba97aa36240402975674e120f234b3448911090f8d",
    "b3222dc8658538079883d980d7fdc2bef9285344ea34338968f736b04aeb387a",
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def ct_log(size: int = 8) -> MerkleLog:
    log = MerkleLog()
    for data in CT_INPUTS[:size]:
        log.append(leaf_hash(data))
    return log


# ---------------------------------------------------------------- the naive reference (RFC text)


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_k(n: int) -> int:
    """The largest power of two smaller than n, found by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    """MTH over leaf *hashes*, RFC 6962 §2.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = ref_k(len(leaves))
    return ref_node(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n <= 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_consistency(m: int, leaves: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(leaves)) else ref_subproof(m, leaves, True)


def leaves_of(n: int, salt: int = 0) -> list[bytes]:
    return [ref_leaf(f"entry {salt}/{i}".encode()) for i in range(n)]


# ---------------------------------------------------------------- published vectors


class TestPublishedVectors:
    def test_hashes(self) -> None:
        assert EMPTY_ROOT.hex() == (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        assert leaf_hash(b"").hex() == CT_ROOTS[0]
        assert leaf_hash(h("101112131415161718191a1b1c1d1e1f")) == h(
            "3bfb960453ebaebf33727da7a1f4db38acc051d381b6da20d6d4e88f0eabfd7a"
        )
        assert node_hash(
            h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
            h("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"),
        ) == h("1a378704c17da31e2d05b6d121c2bb2c7d76f6ee6fa8f983e596c2d034963c57")

    def test_roots_of_every_prefix(self) -> None:
        log = ct_log()
        assert log.root(0) == EMPTY_ROOT == MerkleLog().root()
        for n, expected in enumerate(CT_ROOTS, start=1):
            assert log.root(n).hex() == expected
            assert ct_log(n).root().hex() == expected  # built to size n, not just read at n

    @pytest.mark.parametrize(("index", "size", "path"), CT_PATHS)
    def test_inclusion_proofs(self, index: int, size: int, path: list[str]) -> None:
        log = ct_log()
        proof = log.inclusion_proof(index, size)
        assert proof_to_hex(proof) == ["0x" + p for p in path]
        root = h(CT_ROOTS[size - 1])
        assert verify_inclusion(leaf_hash(CT_INPUTS[index]), index, size, proof, root)

    @pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
    def test_consistency_proofs(self, old: int, new: int, path: list[str]) -> None:
        proof = ct_log().consistency_proof(old, new)
        assert [p.hex() for p in proof] == path
        assert verify_consistency(old, new, h(CT_ROOTS[old - 1]), h(CT_ROOTS[new - 1]), proof)

    def test_audit_path_of_a_real_ct_log_entry(self) -> None:
        proof = [h(p) for p in CT_LOG_PATH]
        leaf, root = h(CT_LOG_LEAF_HASH), h(CT_LOG_ROOT)
        assert verify_inclusion(leaf, CT_LOG_INDEX, CT_LOG_SIZE, proof, root)
        assert not verify_inclusion(leaf, CT_LOG_INDEX + 1, CT_LOG_SIZE, proof, root)
        assert not verify_inclusion(leaf, CT_LOG_INDEX, CT_LOG_SIZE * 2, proof, root)
        assert not verify_inclusion(leaf, CT_LOG_INDEX, CT_LOG_SIZE, proof[:-1], root)


# ---------------------------------------------------------------- against the naive reference


def test_everything_matches_the_reference_up_to_40_leaves() -> None:
    leaves = leaves_of(40)
    log = MerkleLog()
    for n in range(41):
        # the log at size n and the log grown to 40 answer alike for sizes <= n
        assert log.size == n
        assert log.root() == ref_mth(leaves[:n])
        if n < 40:
            log.append(leaves[n])
    for n in range(41):
        root = ref_mth(leaves[:n])
        assert log.root(n) == root
        for m in range(n):
            proof = log.inclusion_proof(m, n)
            assert proof == ref_path(m, leaves[:n]), (m, n)
            assert verify_inclusion(leaves[m], m, n, proof, root), (m, n)
        for m in range(n + 1):
            proof = log.consistency_proof(m, n)
            assert proof == ref_consistency(m, leaves[:n]), (m, n)
            assert verify_consistency(m, n, ref_mth(leaves[:m]), root, proof), (m, n)


def test_extend_and_from_leaf_hashes_build_the_same_log() -> None:
    leaves = leaves_of(100, salt=1)
    appended = MerkleLog()
    for leaf in leaves:
        appended.append(leaf)
    blob = b"".join(leaves)
    rebuilt = MerkleLog.from_leaf_hashes(blob)
    from_iter = MerkleLog.from_leaf_hashes(iter(leaves))
    chunked = MerkleLog()
    for start, stop in ((0, 1), (1, 7), (7, 8), (8, 64), (64, 64), (64, 99), (99, 100)):
        assert chunked.extend(leaves[start:stop]) == start
    for log in (rebuilt, from_iter, chunked):
        assert log.size == len(log) == 100
        assert log.leaves() == blob == appended.leaves()
        assert log._levels == appended._levels
        for n in range(101):
            assert log.root(n) == appended.root(n) == ref_mth(leaves[:n])
    assert [appended.leaf(i) for i in range(100)] == leaves


# ---------------------------------------------------------------- properties

sizes = st.integers(min_value=1, max_value=300)


def flip(value: bytes, bit: int) -> bytes:
    raw = bytearray(value)
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    return bytes(raw)


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[MerkleLog, list[bytes], int, int]:
    total = draw(sizes)
    leaves = leaves_of(total, salt=draw(st.integers(0, 3)))
    size = draw(st.integers(1, total))
    index = draw(st.integers(0, size - 1))
    return MerkleLog.from_leaf_hashes(leaves), leaves, index, size


@settings(max_examples=150, deadline=None)
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_proofs_verify_and_any_alteration_fails(
    case: tuple[MerkleLog, list[bytes], int, int], data: st.DataObject
) -> None:
    log, leaves, index, size = case
    proof, root, leaf = log.inclusion_proof(index, size), log.root(size), leaves[index]
    assert verify_inclusion(leaf, index, size, proof, root)
    assert root_from_inclusion_proof(leaf, index, size, proof) == root
    assert len(proof) <= max(size - 1, 0).bit_length()

    bit = data.draw(st.integers(0, 255), label="bit")
    assert not verify_inclusion(flip(leaf, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, flip(root, bit))
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="index")
        assert not verify_inclusion(leaf, other, size, proof, root)
        assert not verify_inclusion(leaves[other], index, size, proof, root)
    # another size, checked against that size's real root (an auditor takes both together)
    for other_size in {size // 2, size * 2, size - 1, size + 1} & set(
        range(index + 1, log.size + 1)
    ):
        if other_size != size:
            assert not verify_inclusion(leaf, index, other_size, proof, log.root(other_size))
    # tree height changed under the same root: the path no longer has the right length
    assert not verify_inclusion(leaf, index, size * 2, proof, root)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="element")
        tampered = [*proof]
        tampered[at] = flip(tampered[at], bit)
        assert not verify_inclusion(leaf, index, size, tampered, root)
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
        if proof[::-1] != proof:
            assert not verify_inclusion(leaf, index, size, proof[::-1], root)
    assert not verify_inclusion(leaf, index, size, [*proof, root], root)


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[MerkleLog, int, int]:
    total = draw(sizes)
    log = MerkleLog.from_leaf_hashes(leaves_of(total, salt=draw(st.integers(0, 3))))
    new = draw(st.integers(0, total))
    old = draw(st.integers(0, new))
    return log, old, new


@settings(max_examples=150, deadline=None)
@given(case=consistency_cases(), data=st.data())
def test_consistency_proofs_verify_and_any_alteration_fails(
    case: tuple[MerkleLog, int, int], data: st.DataObject
) -> None:
    log, old, new = case
    proof, old_root, new_root = log.consistency_proof(old, new), log.root(old), log.root(new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    if old in (0, new):
        assert proof == []
    bit = data.draw(st.integers(0, 255), label="bit")
    if old == new:
        assert not verify_consistency(old, new, old_root, flip(new_root, bit), proof)
        return
    assert not verify_consistency(old, new, flip(old_root, bit), new_root, proof)
    assert not verify_consistency(new, old, new_root, old_root, proof)  # sizes swapped
    if old == 0:
        # every tree extends the empty one: nothing to prove, and nothing may be offered
        assert not verify_consistency(old, new, old_root, new_root, [new_root])
        return
    assert not verify_consistency(old, new, old_root, flip(new_root, bit), proof)
    at = data.draw(st.integers(0, len(proof) - 1), label="element")
    tampered = [*proof]
    tampered[at] = flip(tampered[at], bit)
    assert not verify_consistency(old, new, old_root, new_root, tampered)
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    # other sizes, each with its real root: this proof proves nothing about them
    for other_old in {old - 1, old + 1} & set(range(1, new)):
        other_root = log.root(other_old)
        assert not verify_consistency(other_old, new, other_root, new_root, proof)
    for other_new in {new - 1, new + 1} & set(range(old + 1, log.size + 1)):
        other_root = log.root(other_new)
        assert not verify_consistency(old, other_new, old_root, other_root, proof)
    # a rewritten entry below `old`: the new tree no longer extends the anchored old one
    leaves = [log.leaf(i) for i in range(new)]
    victim = data.draw(st.integers(0, old - 1), label="victim")
    leaves[victim] = flip(leaves[victim], bit)
    forged = MerkleLog.from_leaf_hashes(leaves)
    assert not verify_consistency(
        old, new, old_root, forged.root(), forged.consistency_proof(old, new)
    )


# ---------------------------------------------------------------- bad input and edge cases


class TestRefusals:
    def test_sizes_and_indexes_out_of_range(self) -> None:
        log = ct_log(5)
        for call in (
            lambda: log.root(6),
            lambda: log.root(-1),
            lambda: log.inclusion_proof(5, 5),
            lambda: log.inclusion_proof(0, 0),
            lambda: log.inclusion_proof(-1, 3),
            lambda: log.inclusion_proof(0, 6),
            lambda: log.consistency_proof(3, 6),
            lambda: log.consistency_proof(4, 3),
            lambda: log.consistency_proof(-1, 3),
            lambda: log.leaf(5),
            lambda: log.leaf(-1),
        ):
            with pytest.raises(LogRangeError):
                call()
        assert issubclass(LogRangeError, InvalidInput)

    def test_malformed_leaf_hashes_are_refused_and_nothing_is_appended(self) -> None:
        log = ct_log(3)
        before = log.root()
        with pytest.raises(InvalidInput, match="32 bytes"):
            log.append(b"\x01" * 31)
        with pytest.raises(InvalidInput, match="leaf 1 has 33 bytes"):
            log.extend([b"\x01" * 32, b"\x02" * 33])
        with pytest.raises(InvalidInput, match="multiple of 32"):
            log.extend(b"\x01" * 65)
        assert log.size == 3 and log.root() == before

    def test_verifiers_reject_malformed_input_without_raising(self) -> None:
        log = ct_log()
        leaf, proof, root = log.leaf(2), log.inclusion_proof(2, 8), log.root()
        assert not verify_inclusion(leaf, 8, 8, proof, root)  # index == size
        assert not verify_inclusion(leaf, -1, 8, proof, root)
        assert not verify_inclusion(leaf, 2, 0, [], EMPTY_ROOT)
        assert not verify_inclusion(leaf[:31], 2, 8, proof, root)
        assert not verify_inclusion(leaf, 2, 8, [*proof[:2], proof[2][:31]], root)
        assert not verify_inclusion(leaf, 2, 8, proof, root[:31])
        assert not verify_inclusion(leaf, True, 8, proof, root)  # type: ignore[arg-type]
        old_root = log.root(3)
        good = log.consistency_proof(3, 8)
        assert verify_consistency(3, 8, old_root, root, good)
        assert not verify_consistency(3, 8, old_root, root, [])
        assert not verify_consistency(-1, 8, old_root, root, good)
        assert not verify_consistency(3, 8, old_root[:31], root, good)
        assert not verify_consistency(3, 8, old_root, root, [good[0][:31], *good[1:]])
        # trivial cases: equal sizes need equal roots and an empty proof; from empty, the empty root
        assert verify_consistency(8, 8, root, root, [])
        assert not verify_consistency(8, 8, root, root, [root])
        assert verify_consistency(0, 8, EMPTY_ROOT, root, [])
        assert not verify_consistency(0, 8, root, root, [])
        assert not verify_consistency(0, 8, EMPTY_ROOT, root, [root])

    def test_a_proof_of_a_smaller_tree_does_not_pass_for_a_larger_one(self) -> None:
        """The final `sn == 0` checks of RFC 9162: a proof that ends inside the claimed tree
        (here one for size 4, offered with size 5 and size 4's root) is refused."""
        log = ct_log()
        assert verify_consistency(2, 4, log.root(2), log.root(4), log.consistency_proof(2, 4))
        assert not verify_consistency(2, 5, log.root(2), log.root(4), log.consistency_proof(2, 4))
        assert verify_inclusion(log.leaf(1), 1, 4, log.inclusion_proof(1, 4), log.root(4))
        assert not verify_inclusion(log.leaf(1), 1, 5, log.inclusion_proof(1, 4), log.root(4))
        # CT's "proof too short" vector: (6, 8) without its last element
        six_to_eight = [h(p) for p in CT_CONSISTENCY[2][2]]
        assert not verify_consistency(6, 8, h(CT_ROOTS[5]), h(CT_ROOTS[7]), six_to_eight[:2])

    def test_hex_proof_format_round_trips_and_names_bad_elements(self) -> None:
        proof = ct_log().inclusion_proof(5, 8)
        text = proof_to_hex(proof)
        assert all(t.startswith("0x") and len(t) == 66 and t == t.lower() for t in text)
        assert proof_from_hex(text) == proof
        assert proof_from_hex([t.removeprefix("0x").upper() for t in text]) == proof
        with pytest.raises(InvalidInput, match="proof element 1 is not hex"):
            proof_from_hex([text[0], "0xzz"])
        with pytest.raises(InvalidInput, match="proof element 0 has 31 bytes"):
            proof_from_hex(["0x" + "ab" * 31])


def test_readers_never_see_a_half_appended_leaf() -> None:
    """Proofs taken while another thread appends always verify against their own root."""
    log = MerkleLog()
    leaves = leaves_of(3000, salt=2)
    log.append(leaves[0])
    failures: list[tuple[int, int]] = []

    def writer() -> None:
        for leaf in leaves[1:]:
            log.append(leaf)

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        size = log.size
        index = size // 3
        root = log.root(size)
        if not verify_inclusion(leaves[index], index, size, log.inclusion_proof(index, size), root):
            failures.append((index, size))
    thread.join()
    assert failures == []
    assert log.root() == ref_mth(leaves)
