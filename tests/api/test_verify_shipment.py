"""The shipment reference on POST /v1/verify (docs/formats.md, "Shipment reference"): stored
on the scan row and echoed in the verdict, so scans group by shipment; a malformed one is a
422 naming `shipment` with nothing recorded."""

from __future__ import annotations

from sqlmodel import Session, func, select

from api.models import ScanEvent
from tests.stack import GTIN, Stack, api_error


def _scans(stack: Stack) -> int:
    stack.sync()
    with Session(stack.gateway.engine) as session:
        return session.exec(select(func.count()).select_from(ScanEvent)).one()


def test_a_shipment_reference_is_stored_on_the_scan_and_scans_group_by_it(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"])
    stack.sync()
    customs = stack.org("Customs NL", "customs")
    key = customs["apiKey"]
    for serial in ("SN0001", "SN0002"):
        answer = stack.verify(
            key, gtin=GTIN, serial=serial, location={"unlocode": "NLRTM"}, shipment="MAEU 123/45-6"
        )
        assert answer["shipment"] == "MAEU 123/45-6"
    other = stack.verify(key, gtin=GTIN, serial="SN0003")
    assert other["shipment"] is None
    stack.sync()
    with Session(stack.gateway.engine) as session:
        grouped = session.exec(
            select(ScanEvent.serial).where(ScanEvent.shipment == "MAEU 123/45-6")
        ).all()
    assert sorted(s for s in grouped if s) == ["SN0001", "SN0002"]


BAD = ["", " AWB1", "AWB\n1", "AWB;DROP", "é123", "X" * 36, "-123", 123]


def test_a_malformed_shipment_reference_is_refused_and_nothing_recorded(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"])
    stack.sync()
    customs = stack.org("Customs NL", "customs")
    before = _scans(stack)
    for shipment in BAD:
        r = stack.client.post(
            "/v1/verify",
            json={"gtin": GTIN, "serial": "SN0001", "shipment": shipment},
            headers=stack.headers(customs["apiKey"]),
        )
        api_error(r, 422, "invalid_input", "shipment")
    assert _scans(stack) == before
