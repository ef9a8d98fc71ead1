"""An item's whole history as EPCIS 2.0 (`GET /v1/items/{gtin}/{serial}/custody/epcis`) and
its PDF audit report (`/audit/items/{gtin}/{serial}/report.pdf`), on a real gateway and
Anvil: the document validates against GS1's schema, the report's proof statuses are those of
`borderledger audit` (a scan row edited in the database reads "not verified" in both), and
each role reads only what the custody API lets it read."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator, FormatChecker
from pypdf import PdfReader
from sqlalchemy import update
from sqlmodel import Session, select

from api.models import ScanEvent
from api.threaded import serve_in_thread
from chain.node import LocalNode
from custody.cli import run_audit
from ledger.config import PROJECT_ROOT
from tests.audit_world import SERIAL, audit_stack, build
from tests.people import make_user, sign_in
from tests.stack import GTIN, Stack

SCHEMA = PROJECT_ROOT / "epcis" / "data" / "EPCIS-JSON-Schema.json"
EPCIS_URL = f"/v1/items/{GTIN}/{SERIAL}/custody/epcis"
REPORT_URL = f"/audit/items/{GTIN}/{SERIAL}/report.pdf"


@cache
def _validator() -> Draft7Validator:
    return Draft7Validator(json.loads(SCHEMA.read_text()), format_checker=FormatChecker())


@pytest.fixture(scope="module")
def audited(anvil: LocalNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with audit_stack(anvil, tmp_path_factory.mktemp("item-audit")) as stack:
        yield stack, build(stack)


def _person(stack: Stack, org: dict[str, Any], email: str) -> TestClient:
    """A browser-like client signed in as a new admin of `org` (its own cookies)."""
    make_user(stack, org["apiKey"], email, "admin")
    client = TestClient(stack.client.app)
    r = sign_in(client, email)
    assert r.status_code == 303, r.text
    return client


def _pdf_text(body: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)


def test_the_item_history_is_one_valid_epcis_document(audited: Any) -> None:
    stack, world = audited
    r = stack.client.get(EPCIS_URL, headers=stack.headers(world["auditor"]["apiKey"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/ld+json"
    assert f"{GTIN}-{SERIAL}-epcis.jsonld" in r.headers["content-disposition"]
    document = r.json()
    assert [e.message for e in _validator().iter_errors(document)] == []
    events = document["epcisBody"]["eventList"]
    times = [e["eventTime"] for e in events]
    assert times == sorted(times)
    # (the world's scans are dated before the enrollment: the test backdates them)
    [first] = [e for e in events if e["bizStep"] == "commissioning"]
    assert (first["action"], first["bizStep"], first["disposition"]) == (
        "ADD",
        "commissioning",
        "active",
    )
    assert first["epcList"] == [f"https://id.gs1.org/01/{GTIN}/21/{SERIAL}"]
    assert first["borderledger:batchId"] == world["batch"]["batchId"]
    scans = [e for e in events if e.get("bizStep") == "inspecting" and "borderledger:verdict" in e]
    assert [s["bizLocation"]["id"] for s in scans] == [
        "urn:un:locode:CNSHA",
        "urn:un:locode:CNSHA",
        "urn:un:locode:NLRTM",
        "urn:un:locode:NLRTM",
    ]
    assert all(s["readPoint"] == s["bizLocation"] for s in scans)
    shipped = [e for e in events if e.get("eventID") == "urn:uuid:7b0e6f5e-audit-ship-7"]
    assert len(shipped) == 1 and shipped[0]["bizLocation"]["id"] == "urn:un:locode:SGSIN"
    [stolen] = [e for e in events if e.get("borderledger:status") == "stolen"]
    assert stolen["disposition"] == "stolen" and stolen["borderledger:txHash"].startswith("0x")
    assert len(events) == 1 + 4 + 1 + 1
    # Asking twice names the same events (a receiver can de-duplicate).
    again = stack.client.get(EPCIS_URL, headers=stack.headers(world["auditor"]["apiKey"]))
    assert [e.get("eventID") for e in again.json()["epcisBody"]["eventList"]] == [
        e.get("eventID") for e in events
    ]


def test_the_epcis_export_follows_the_custody_api_scoping(audited: Any) -> None:
    stack, world = audited
    for who in ("holder", "officer"):
        r = stack.client.get(EPCIS_URL, headers=stack.headers(world[who]["apiKey"]))
        assert r.status_code == 200, (who, r.text)
    for who in ("other", "narrow"):  # another brand, an auditor granted another brand only
        r = stack.client.get(EPCIS_URL, headers=stack.headers(world[who]["apiKey"]))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (who, r.text)
    # A customs agency that never scanned the item: others' records are left out.
    r = stack.client.get(EPCIS_URL, headers=stack.headers(world["stranger"]["apiKey"]))
    assert r.status_code == 200, r.text
    events = r.json()["epcisBody"]["eventList"]
    assert not [e for e in events if "borderledger:verdict" in e or "urn:uuid:7b0e" in str(e)]
    assert stack.client.get(EPCIS_URL).status_code == 401
    r = stack.client.get(
        f"/v1/items/{GTIN[:-1]}{(int(GTIN[-1]) + 1) % 10}/{SERIAL}/custody/epcis",
        headers=stack.headers(world["auditor"]["apiKey"]),
    )
    assert r.status_code == 422 and "check digit" in r.json()["error"]["message"], r.text


def _flat(text: str) -> str:
    return " ".join(text.split())


def _entry_rows(text: str) -> dict[int, str]:
    """Each entry's table row in the report's text, by log index (the "#N" of its What)."""
    rows: dict[int, str] = {}
    current: int | None = None
    for line in text.splitlines():
        for word in line.split():
            if word.startswith("#") and word[1:].isdigit():
                current = int(word[1:])
                rows[current] = ""
        if current is not None:
            rows[current] += line + " "
    return rows


def test_the_pdf_report_gives_each_entry_the_audit_result(audited: Any) -> None:
    stack, world = audited
    client = _person(stack, world["auditor"], "reader@audit.example")
    r = client.get(REPORT_URL)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    text = _pdf_text(r.content)
    assert "Custody audit report" in text and f"GTIN {GTIN}, serial {SERIAL}" in text
    assert "Acme Pharma" in text and "TMK 19-1" in text
    assert "ALL VERIFIED" in text and ", 0 not verified, 0 pending" in _flat(text)
    rows = _entry_rows(text)
    assert len(rows) == 5  # 4 scans and the custody event, each its own row
    assert all(" verified" in r and "not verified" not in r for r in rows.values()), rows
    for place in ("CNSHA Shanghai", "SGSIN Singapore", "NLRTM Rotterdam"):
        assert place in _flat(text)
    assert "status change stolen (item): verified" in _flat(text)
    assert "enrollment: verified" in _flat(text)

    # A scan's verdict edited in the database: that entry, and only it, is not verified,
    # exactly as `borderledger audit` says of the same gateway.
    engine = stack.gateway.engine
    with Session(engine) as session:
        scans = session.exec(
            select(ScanEvent).where(ScanEvent.serial == SERIAL).order_by(ScanEvent.scanned_at)  # type: ignore[arg-type]
        ).all()
        target, verdict = scans[1].id, scans[1].verdict
        session.execute(
            update(ScanEvent).where(ScanEvent.id == target).values(verdict="GENUINE_DIVERTED")  # type: ignore[arg-type]
        )
        session.commit()
    try:
        text = _pdf_text(client.get(REPORT_URL).content)
        assert "AUDIT FAILED" in text
        rows = _entry_rows(text)
        failed_rows = {i for i, row in rows.items() if "not verified" in row}
        with serve_in_thread(stack.client.app, "uvicorn-item-audit") as url:
            _, report = run_audit(
                GTIN, SERIAL, url, stack.node.url, world["auditor"]["apiKey"], None, False
            )
        failed = [c for c in report.checks if c.state == "failed"]
        assert [c.log_index for c in failed] == sorted(failed_rows)
        assert len(failed_rows) == 1 and "changed since logged" in rows[failed_rows.pop()]
    finally:
        with Session(engine) as session:
            session.execute(
                update(ScanEvent).where(ScanEvent.id == target).values(verdict=verdict)  # type: ignore[arg-type]
            )
            session.commit()
    assert "ALL VERIFIED" in _pdf_text(client.get(REPORT_URL).content)


def test_each_role_is_refused_what_it_may_not_read(audited: Any) -> None:
    stack, world = audited
    for who, email in (
        ("holder", "h@acme.example"),
        ("officer", "o@nl.example"),
    ):
        client = _person(stack, world[who], email)
        for url in ("/audit", REPORT_URL):
            r = client.get(url)
            assert r.status_code == 403 and "auditors" in r.text, (who, url)
        assert 'href="/audit"' not in client.get("/").text
    narrow = _person(stack, world["narrow"], "n@audit.example")
    r = narrow.get(REPORT_URL)
    assert r.status_code == 404 and "not among the products you may audit" in r.text
    bad = narrow.get(f"/audit/items/{GTIN[:-1]}0/{SERIAL}/report.pdf")
    assert bad.status_code in (404, 422) and "Traceback" not in bad.text
    anonymous = TestClient(stack.client.app).get(REPORT_URL, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    admin = _person(stack, world["auditor"], "lead@audit.example")
    assert 'href="/audit"' in admin.get("/").text
