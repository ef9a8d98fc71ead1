"""The gateway's main path end to end: organizations, enrollment, verification, status."""

from __future__ import annotations

from tests.stack import GTIN, Stack


def test_enroll_then_verify_tag_typed_serial_and_stolen_item(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org("NL Customs", "customs")
    assert all(w["status"] == "done" for w in holder["writes"]), holder["writes"]
    batch = stack.enroll(holder["apiKey"], serials=[f"S{i}" for i in range(50)], expiry="281231")
    assert batch["registration"] == "done" and batch["txHash"]
    stack.sync()
    tags = stack.tags(holder["apiKey"], batch["batchId"])
    assert len(tags) == 50

    genuine = stack.verify(officer["apiKey"], tag=tags[3]["uri"], location={"unlocode": "NLRTM"})
    assert genuine["verdict"] == "GENUINE"
    assert genuine["proof"]["root"] == batch["root"]
    assert genuine["product"]["rightsHolder"]["name"] == "Acme Pharma"

    typed = stack.verify(officer["apiKey"], gtin=GTIN, serial="S9")
    assert typed["verdict"] == "GENUINE_UNSIGNED"
    unknown = stack.verify(officer["apiKey"], gtin=GTIN, serial="S999")
    assert unknown["verdict"] == "COUNTERFEIT_SUSPECT" and "SERIAL_UNKNOWN" in unknown["reasons"]

    r = stack.client.post(
        f"/v1/batches/{batch['batchId']}/status",
        json={"status": "stolen", "serial": "S3"},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 202 and r.json()["status"] == "done"
    stack.sync()
    stolen = stack.verify(officer["apiKey"], tag=tags[3]["uri"])
    assert stolen["verdict"] == "STOLEN" and "ITEM_STOLEN" in stolen["reasons"]
