"""Cross-checks against the npm libraries the rest of the ecosystem uses.

`tests/js/merkle_tree.mjs` runs @openzeppelin/merkle-tree's StandardMerkleTree and
`tests/js/sign_tag.mjs` runs ethers v6 EIP-712 signing; each reads one JSON document on stdin
and writes one on stdout. Hypothesis examples are batched so each example is one node process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address as eth_utils_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import MerkleTree, leaf_hash, verify_proof
from ledger.tags import TagDomain, TagSigner, recover_signer, tag_digest

HERE = Path(__file__).resolve().parent
JS_DIR = HERE.parent / "js"
REPO_ROOT = HERE.parents[1]  # where node_modules lives

SPEC_CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
N = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
CHAIN_ID = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ENCODING = ["string", "string", "bytes32"]

Item = tuple[str, str, bytes]


def run_node(script: str, payload: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        ["node", str(JS_DIR / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, f"node {script} failed:\n{completed.stderr}"
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def spec_check_digit(body: str) -> int:
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - weighted % 10) % 10


def flip_first_bit(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


gtins = st.text("0123456789", min_size=13, max_size=13).map(
    lambda body: body + str(spec_check_digit(body))
)
# Real serials are CSET 82, but the ABI encoding must agree for any string, including
# multi-byte characters and strings longer than one 32-byte word.
serials = st.text(alphabet=SPEC_CSET82, min_size=1, max_size=20) | st.text(max_size=70)
items = st.tuples(gtins, serials, st.binary(min_size=32, max_size=32))
item_sets = st.lists(items, min_size=1, max_size=40, unique=True)


# --- Merkle trees ----------------------------------------------------------------------------------


def merkle_case(values: list[Item]) -> tuple[dict[str, Any], MerkleTree, list[bool]]:
    """The JSON case for `values`, our tree, and what JS's verify must say for each check."""
    tree = MerkleTree.from_leaves([leaf_hash(*v) for v in values])
    root = hex0x(tree.root)
    checks: list[dict[str, Any]] = []
    expected: list[bool] = []
    for gtin, serial, salt in values:
        proof = tree.proof(leaf_hash(gtin, serial, salt))
        checks.append(
            {"root": root, "value": [gtin, serial, hex0x(salt)], "proof": [hex0x(p) for p in proof]}
        )
        expected.append(True)
    gtin, serial, salt = values[0]
    proof = tree.proof(leaf_hash(gtin, serial, salt))
    negatives = [
        # Right proof, different salt: a leaf that is not in the tree.
        {"root": root, "value": [gtin, serial, hex0x(flip_first_bit(salt))], "proof": proof},
        # Right leaf and proof, wrong root.
        {
            "root": hex0x(flip_first_bit(tree.root)),
            "value": [gtin, serial, hex0x(salt)],
            "proof": proof,
        },
    ]
    if proof:
        # One flipped bit in the proof.
        broken = [flip_first_bit(proof[0]), *proof[1:]]
        negatives.append({"root": root, "value": [gtin, serial, hex0x(salt)], "proof": broken})
    for check in negatives:
        check["proof"] = [hex0x(p) for p in check["proof"]]
        checks.append(check)
        expected.append(False)
    values_json = [[g, s, hex0x(salt)] for g, s, salt in values]
    return {"values": values_json, "checks": checks}, tree, expected


def assert_same_tree(values: list[Item], tree: MerkleTree, js: dict[str, Any]) -> None:
    assert js["root"] == hex0x(tree.root)
    leaves = [leaf_hash(*v) for v in values]
    assert js["leafHashes"] == [hex0x(leaf) for leaf in leaves]
    dump = js["dump"]
    assert dump["format"] == "standard-v1"
    assert dump["leafEncoding"] == ENCODING
    assert dump["tree"] == [hex0x(tree.node(i)) for i in range(tree.size)]
    for i, leaf in enumerate(leaves):
        assert dump["values"][i]["treeIndex"] == tree.leaf_index(leaf)
        js_proof = [bytes.fromhex(p.removeprefix("0x")) for p in js["proofs"][i]]
        assert js_proof == tree.proof(leaf)
        assert verify_proof(tree.root, leaf, js_proof)


@settings(max_examples=25, deadline=None)
@given(st.lists(item_sets, min_size=1, max_size=6))
def test_merkle_trees_match_openzeppelin(batch: list[list[Item]]) -> None:
    cases = [merkle_case(values) for values in batch]
    output = run_node("merkle_tree.mjs", {"cases": [case for case, _, _ in cases]})
    assert len(output["cases"]) == len(batch)
    for values, (_, tree, expected), js in zip(batch, cases, output["cases"], strict=True):
        assert_same_tree(values, tree, js)
        # Our proofs verify with StandardMerkleTree.verify, and the broken ones do not.
        assert js["checks"] == expected


def test_large_realistic_batch_matches_openzeppelin() -> None:
    secret = b"batch secret"
    values: list[Item] = []
    for i in range(300):
        serial = f"SN{i:06d}/{chr(65 + i % 26)}%"
        salt = hmac.new(secret, ("09506000134352" + serial).encode(), hashlib.sha256).digest()
        values.append(("09506000134352", serial, salt))
    case, tree, expected = merkle_case(values)
    (js,) = run_node("merkle_tree.mjs", {"cases": [case]})["cases"]
    assert_same_tree(values, tree, js)
    assert js["checks"] == expected
    assert expected.count(False) == 3


# --- EIP-712 tag signatures ----------------------------------------------------------------------


keys = st.integers(min_value=1, max_value=N - 1).map(lambda k: k.to_bytes(32, "big"))
registries = st.just(REGISTRY) | st.binary(min_size=20, max_size=20).map(eth_utils_checksum)
fields = st.text(max_size=40)
tags = st.tuples(fields, fields, fields)
signing_cases = st.tuples(keys, registries, st.lists(tags, min_size=1, max_size=3))


def js_domain(registry: str) -> dict[str, Any]:
    return {
        "name": "BorderLedger",
        "version": "1",
        "chainId": CHAIN_ID,
        "verifyingContract": registry,
    }


@settings(max_examples=15, deadline=None)
@given(st.lists(signing_cases, min_size=1, max_size=4))
def test_tag_signatures_match_ethers(
    batch: list[tuple[bytes, str, list[tuple[str, str, str]]]],
) -> None:
    payload_cases = []
    signers = []
    for key, registry, tag_values in batch:
        signer = TagSigner(key, TagDomain(CHAIN_ID, registry))
        signers.append(signer)
        payload_cases.append(
            {
                "privateKey": hex0x(key),
                "domain": js_domain(registry),
                "tags": [
                    {
                        "gtin": gtin,
                        "serial": serial,
                        "lot": lot,
                        "pythonSignature": hex0x(signer.sign(gtin, serial, lot)),
                    }
                    for gtin, serial, lot in tag_values
                ],
            }
        )
    output = run_node("sign_tag.mjs", {"cases": payload_cases})
    assert len(output["cases"]) == len(batch)
    for (_key, registry, tag_values), signer, js in zip(
        batch, signers, output["cases"], strict=True
    ):
        assert js["address"] == signer.address
        separator = TagDomain(CHAIN_ID, registry).separator
        for (gtin, serial, lot), js_tag in zip(tag_values, js["tags"], strict=True):
            digest = tag_digest(separator, gtin, serial, lot)
            assert js_tag["digest"] == hex0x(digest)  # ethers.TypedDataEncoder.hash
            ethers_signature = bytes.fromhex(js_tag["signature"].removeprefix("0x"))
            assert recover_signer(digest, ethers_signature) == signer.address
            assert js_tag["pythonSigner"] == signer.address  # ethers.verifyTypedData
            # Both sides use RFC 6979 nonces and low s, so the bytes are identical.
            assert ethers_signature == signer.sign(gtin, serial, lot)


def test_ethers_recovers_someone_else_for_a_tampered_tag() -> None:
    key = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
    signer = TagSigner(key, TagDomain(CHAIN_ID, REGISTRY))
    genuine = signer.sign("09506000134352", "SN0001", "L1")
    payload = {
        "cases": [
            {
                "privateKey": hex0x(key),
                "domain": js_domain(REGISTRY),
                "tags": [
                    {
                        "gtin": "09506000134352",
                        "serial": "SN0001",
                        "lot": "L1",
                        "pythonSignature": hex0x(genuine),
                    },
                    # The signature of SN0001 presented with another serial.
                    {
                        "gtin": "09506000134352",
                        "serial": "SN0002",
                        "lot": "L1",
                        "pythonSignature": hex0x(genuine),
                    },
                ],
            },
            {
                # Same key and values, other registry: the domain separates deployments.
                "privateKey": hex0x(key),
                "domain": js_domain("0x" + "11" * 20),
                "tags": [
                    {
                        "gtin": "09506000134352",
                        "serial": "SN0001",
                        "lot": "L1",
                        "pythonSignature": hex0x(genuine),
                    },
                ],
            },
        ]
    }
    first, other_registry = run_node("sign_tag.mjs", payload)["cases"]
    assert first["address"] == signer.address
    assert first["tags"][0]["pythonSigner"] == signer.address
    assert first["tags"][1]["pythonSigner"] != signer.address
    assert other_registry["tags"][0]["pythonSigner"] != signer.address
    assert other_registry["tags"][0]["digest"] != first["tags"][0]["digest"]
