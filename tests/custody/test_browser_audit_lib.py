"""The auditor page's in-browser checks (api/pages/web/lib/custody_audit.js) agree with the
Python the gateway and `borderledger audit` use: entry leaves in both entry versions (RFC 8785
and the legacy sorted json.dumps), RFC 9162 inclusion and consistency proofs for every index
and pairs of sizes up to 40 (tampered proofs refused by both), and batch ids. Run with node
on the same module the page bundles."""

from __future__ import annotations

import json
import random
from typing import Any

from custody import entries
from custody.log import MerkleLog, leaf_hash, proof_to_hex, verify_consistency, verify_inclusion
from ledger.batch import batch_id_of
from tests.ledger.test_crosscheck_js import run_node


def _flip(proof: list[str]) -> list[str]:
    if not proof:
        return ["0x" + "00" * 32]
    first = proof[0]
    return [first[:-1] + ("0" if first[-1] != "0" else "1"), *proof[1:]]


def test_the_page_library_computes_what_the_gateway_does() -> None:
    rng = random.Random(15)
    items: list[dict[str, Any]] = []
    for i in range(24):
        record = {
            "scan_id": f"scan-{i}",
            "latitude": round(rng.uniform(-80, 80), 6) + 0.5e-7,  # never a whole number
            "longitude": 4.25,
            "name": rng.choice(["Zoë", "€ 1", "\u2028", 'a"b\\\\c', "😀", "\u007f"]),
            "n": rng.randint(-(2**53), 2**53),
            "big": 1e21,
            "small": 1.5e-7,
            "reasons": ["A", "B"] if i % 3 else [],
            "nested": {"b": 1, "a": [None, True, False], "\ue000": 2, "😀": 3},
        }
        previous = {"https://id.gs1.org/01/09506000134352/21/A": i - 1 if i else None}
        items.append({"kind": "scan", "record": record, "previous": previous, "v": 1 + i % 2})
    log = MerkleLog()
    for leaf in (leaf_hash(b"e%d" % i) for i in range(40)):
        log.append(leaf)
    inclusion, consistency, expected_incl, expected_cons = [], [], [], []
    for size in range(1, 41):
        root = "0x" + log.root(size).hex()
        for index in range(size):
            proof = proof_to_hex(log.inclusion_proof(index, size))
            leaf_text = "0x" + leaf_hash(b"e%d" % index).hex()
            tampered = _flip(proof) if index % 2 else proof
            case = {
                "leaf": leaf_text,
                "index": index,
                "size": size,
                "proof": tampered,
                "root": root,
            }
            inclusion.append(case)
            expected_incl.append(
                verify_inclusion(
                    bytes.fromhex(leaf_text[2:]),
                    index,
                    size,
                    [bytes.fromhex(p[2:]) for p in tampered],
                    bytes.fromhex(root[2:]),
                )
            )
        for old in range(0, size + 1, 3):
            proof = proof_to_hex(log.consistency_proof(old, size))
            tampered = _flip(proof) if old % 2 and proof else proof
            old_root = "0x" + log.root(old).hex()
            consistency.append(
                {"from": old, "to": size, "old": old_root, "new": root, "proof": tampered}
            )
            expected_cons.append(
                verify_consistency(
                    old,
                    size,
                    log.root(old),
                    log.root(size),
                    [bytes.fromhex(p[2:]) for p in tampered],
                )
            )
    data = {
        "entries": items,
        "inclusion": inclusion,
        "consistency": consistency,
        "gtin": "09506000134352",
        "lot": "L-é 1",
    }
    result = run_node("custody_audit.mjs", {"text": json.dumps(data)})
    expected_leaves = [
        "0x" + entries.entry_leaf(e["kind"], e["record"], e["previous"], e["v"]).hex()
        for e in items
    ]
    assert result["leaves"] == expected_leaves
    assert result["inclusion"] == expected_incl and True in expected_incl
    assert False in expected_incl and False in expected_cons
    assert result["consistency"] == expected_cons
    assert result["batch"] == "0x" + batch_id_of("09506000134352", "L-é 1").hex()
