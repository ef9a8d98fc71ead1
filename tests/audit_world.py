"""One item's history for the auditor's tests (tests/api/test_item_audit.py,
tests/pages/test_audit_find.py): enrolled by a rights holder, scanned at Shanghai, shipped
via Singapore (a captured EPCIS event), scanned at Rotterdam, anchored in two checkpoints,
then reported stolen on chain; and the parties each role test needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chain.node import LocalNode
from ledger.gs1 import gtin_check_digit
from tests.stack import GTIN, Stack, running_stack, scratch_database

AGENCY = "NL Customs"
SERIAL = "SN0007"
#: A GTIN of another brand (its holder's auditor may not read the item).
_OTHER = "0950600099999"
OTHER_GTIN = _OTHER + str(gtin_check_digit(_OTHER))
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


@contextmanager
def audit_stack(node: LocalNode, home: Path) -> Iterator[Stack]:
    """A stack whose gateway anchors its custody log as `AGENCY`, on a scratch database."""
    with (
        scratch_database(home, "gateway.db", "t_") as database,
        running_stack(node, database, home, anchor_organization=AGENCY) as stack,
    ):
        yield stack


def _anchor(stack: Stack) -> None:
    stack.gateway.scans.flush()
    stack.gateway.custody.anchorer.run_once(force=True)
    stack.sync()


def build(stack: Stack) -> dict[str, Any]:
    """The parties and the item's history (module docstring)."""
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    other = stack.org("Other Brand", "rights_holder", gtins=(OTHER_GTIN,))
    officer = stack.org(AGENCY, "customs")
    stranger = stack.org("FR Customs", "customs")
    auditor = stack.org("Court of Audit", "auditor")
    stack.grant(auditor)
    narrow = stack.org("Brand Auditor", "auditor")
    stack.grant(narrow, [other["id"]])
    batch = stack.enroll(holder["apiKey"])
    stack.sync()
    key = officer["apiKey"]
    for hours in (0, 5):
        stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "CNSHA"},
                     scanned_at=(START + timedelta(hours=hours)).isoformat())  # fmt: skip
    event = {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:7b0e6f5e-audit-ship-7",
        "eventTime": (START + timedelta(hours=12)).isoformat(),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{SERIAL}"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "readPoint": {"id": "urn:un:locode:SGSIN"},
        "bizLocation": {"id": "urn:un:locode:SGSIN"},
    }
    r = stack.client.post(
        "/v1/epcis/capture",
        json={
            "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": START.isoformat(),
            "epcisBody": {"eventList": [event]},
        },
        headers=stack.headers(key),
    )
    assert r.status_code == 200, r.text
    _anchor(stack)
    for hours in (30, 31):
        stack.verify(key, gtin=GTIN, serial=SERIAL, location={"unlocode": "NLRTM"},
                     scanned_at=(START + timedelta(hours=hours)).isoformat())  # fmt: skip
    _anchor(stack)
    r = stack.client.post(
        f"/v1/batches/{batch['batchId']}/status",
        json={"status": "stolen", "serial": SERIAL},
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    stack.sync()
    return {
        "holder": holder,
        "other": other,
        "officer": officer,
        "stranger": stranger,
        "auditor": auditor,
        "narrow": narrow,
        "batch": batch,
    }
