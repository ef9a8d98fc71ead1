"""The audit's checks on a timeline built here from a real log, anchored on Anvil and Hardhat:
an honest timeline verifies; every kind of tampering fails the check that should catch it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from custody import entries
from custody.audit import audit_timeline
from custody.cli import Web3ChainView
from custody.log import MerkleLog, proof_to_hex
from tests.conftest import Chain

GTIN, SERIAL = "09506000134352", "SN1"
KEY = entries.item_key(GTIN, SERIAL)


def _record(n: int) -> dict[str, Any]:
    return {"scan_id": f"scan-{n}", "gtin": GTIN, "serial": SERIAL, "verdict": "GENUINE"}


def _timeline(chain: Chain) -> dict[str, Any]:
    """Six entries about the item among others, checkpoints at 4 and 9 anchored on chain."""
    chain.client(chain.admin).accredit_customs_agency(chain.agency.address, "NL Customs")
    log = MerkleLog()
    shown: list[dict[str, Any]] = []
    prev: int | None = None
    for n in range(10):
        mine = n % 2 == 0 or n == 9
        record = _record(n) if mine else {"scan_id": f"other-{n}"}
        links = {KEY: prev} if mine else {}
        log.append(entries.entry_leaf("scan", record, links))
        if mine:
            shown.append(
                {
                    "logIndex": n,
                    "kind": "scan",
                    "v": entries.ENTRY_VERSION,
                    "record": record,
                    "previous": links,
                }
            )
            prev = n
    agency = chain.client(chain.agency)
    checkpoints = []
    for size in (4, 9):
        agency.anchor_checkpoint(size, log.root(size))
        checkpoints.append(
            {"agency": chain.agency.address, "size": size, "root": _hex(log.root(size))}
        )
    log_size = log.size  # 10: entry 9 is pending
    for entry in shown:
        size = next((c["size"] for c in checkpoints if c["size"] > entry["logIndex"]), None)
        entry["anchoring"] = "anchored" if size else "pending"
        entry["checkpointSize"] = size
        entry["inclusionProof"] = (
            proof_to_hex(log.inclusion_proof(entry["logIndex"], size)) if size else []
        )
    return {
        "item": {"gtin": GTIN, "serial": SERIAL, "key": KEY},
        "log": {
            "agency": chain.agency.address,
            "registry": chain.registry.address,
            "chainId": chain.registry.chain_id,
            "size": log_size,
        },
        "enrollment": None,
        "entries": shown,
        "statusChanges": [],
        "checkpoints": checkpoints,
        "consistency": [{"from": 4, "to": 9, "proof": proof_to_hex(log.consistency_proof(4, 9))}],
    }


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _failed(timeline: dict[str, Any], chain: Chain, **options: Any) -> list[str]:
    view = Web3ChainView(chain.node.url, chain.registry.address)
    report = audit_timeline(timeline, view, **options)
    return [c.subject + ": " + c.detail for c in report.checks if c.state == "failed"]


@pytest.fixture
def honest(chain: Chain) -> dict[str, Any]:
    return _timeline(chain)


def test_an_honest_timeline_verifies(chain: Chain, honest: dict[str, Any]) -> None:
    view = Web3ChainView(chain.node.url, chain.registry.address)
    report = audit_timeline(honest, view, registry=chain.registry.address)
    assert report.ok, report.to_dict()
    summary = report.to_dict()
    assert summary["pending"] == 2  # entry 9 (not anchored) and the missing enrollment
    assert summary["verified"] == 1 + 1 + 1 + 2 + 1 + 5 + 1  # chain, registry, agency, cps, …
    assert _failed(honest, chain, strict=True) == [
        "entry 9 (scan: ): pending anchoring: no anchored checkpoint covers it yet"
    ]


@pytest.mark.parametrize(
    ("tamper", "caught"),
    [
        (lambda t: t["entries"][1]["record"].update(verdict="COUNTERFEIT_SUSPECT"), "entry 2 "),
        (lambda t: t["entries"].pop(2), "history of"),
        (lambda t: t["entries"][0]["previous"].update({KEY: 7}), "entry 0 "),
        (lambda t: t["checkpoints"][1].update(root="0x" + "11" * 32), "checkpoint 9"),
        (
            lambda t: t["checkpoints"].append({"size": 10, "root": "0x" + "22" * 32}),
            "never anchored",
        ),
        (lambda t: t["consistency"].clear(), "consistency 4 → 9: no consistency proof"),
        (lambda t: t["consistency"][0]["proof"].reverse(), "consistency 4 → 9: proof does not"),
        (lambda t: t["entries"][0]["inclusionProof"].append("0xzz"), "malformed inclusion"),
        (lambda t: t["entries"][3].update(checkpointSize=4), "entry 6 "),
        (lambda t: t["log"].update(chainId=1), "chain: "),
        (lambda t: t["log"].update(agency="0x" + "33" * 20), "anchoring agency"),
    ],
)
def test_tampering_is_caught(
    chain: Chain, honest: dict[str, Any], tamper: Any, caught: str
) -> None:
    forged = copy.deepcopy(honest)
    tamper(forged)
    failed = _failed(forged, chain)
    assert any(caught in f for f in failed), failed


def test_a_wrong_registry_and_a_non_timeline(chain: Chain, honest: dict[str, Any]) -> None:
    assert any(f.startswith("registry") for f in _failed(honest, chain, registry="0x" + "44" * 20))
    view = Web3ChainView(chain.node.url, chain.registry.address)
    from ledger.errors import InvalidInput

    with pytest.raises(InvalidInput):
        audit_timeline({"entries": []}, view)
