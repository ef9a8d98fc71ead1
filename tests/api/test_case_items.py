"""A case's scanned items and its staged attachments: the opening scan and the agency's other
scans of the shipment become the case's items (a rights holder reads them from the stage that
discloses them), an officer adds another scan once per key (in the custody log), images are
listed and downloaded by the rights holder exactly as its stage allows, and clock reminders
reach the holder's webhook before the deadline."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader
from sqlmodel import Session, select

from api import case_clocks
from api.case_models import CaseAction, CaseClock
from api.models import WebhookDelivery
from custody import entries
from tests.api.cases_kit import act as _act
from tests.api.cases_kit import case_world, upload
from tests.api.cases_kit import get_case as _get
from tests.api.test_case_files import JPEG, PNG
from tests.stack import GTIN, Stack, api_error

OTHER_GTIN = "09506000134376"
PDF = b"%PDF-1.4\ntrailer<<>>\n%%EOF\n"
world = pytest.fixture(case_world, name="world")


def _scan(stack: Stack, key: str, serial: str, shipment: str | None) -> str:
    body: dict[str, Any] = {
        "gtin": GTIN,
        "lot": "L1",
        "serial": serial,
        "location": {"unlocode": "USLAX"},
    }
    if shipment is not None:
        body["shipment"] = shipment
    scan = str(stack.verify(key, **body)["scanId"])
    stack.gateway.scans.flush()  # stored by the writer thread: the case reads them at once
    return scan


def _open_from_scan(stack: Stack, key: str, scan: str) -> dict[str, Any]:
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "source": "scan",
            "scanId": scan,
            "mode": "express",
            "presentedAt": datetime.now(UTC).isoformat(),
            "lines": [{"category": "watches_jewelry", "quantity": 3, "unitMsrpCents": 100}],
        },
        headers=stack.headers(key),
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def test_a_case_holds_its_shipment_scans_disclosed_by_stage(stack: Stack, world: Any) -> None:
    stack.enroll(world["holder"])
    stack.sync()
    first = _scan(stack, world["officer"], "SN0001", "AWB 777-1")
    second = _scan(stack, world["officer"], "SN0002", "AWB 777-1")
    _scan(stack, world["officer"], "SN0003", "AWB 999-9")  # another shipment
    _scan(stack, world["agency"], "SN0004", "AWB 777-1")  # another agency's scan
    later = _scan(stack, world["officer"], "SN0005", None)
    theirs = _scan(stack, world["agency"], "SN0006", None)

    case = _open_from_scan(stack, world["officer"], second)
    cid = case["id"]
    items = case["items"]
    assert sorted(i["scanId"] for i in items) == sorted([first, second])
    assert {i["serial"] for i in items} == {"SN0001", "SN0002"}
    one = items[0]
    assert one["gtin"] == GTIN.zfill(14) and one["lot"] == "L1" and one["port"] == "USLAX"
    assert one["verdict"] and one["scannedAt"] and one["holder"] == world["holder_id"]

    # the rights holder reads no item before the unredacted stage, then only its own
    assert "items" not in _get(stack, world["holder"], cid).json()
    api_error(_get(stack, world["other"], cid), 404, "not_found")

    # an officer adds another scan of its agency: once per key, in the custody log
    added = _act(stack, world["officer"], cid, "add_item", "i1", scanId=later)
    assert added.status_code == 201, added.text
    assert added.json()["logIndex"] is not None
    replay = _act(stack, world["officer"], cid, "add_item", "i1", scanId=later)
    assert replay.status_code == 200 and replay.json()["replayed"] is True
    api_error(_act(stack, world["officer"], cid, "add_item", "i2", scanId=later), 409, "conflict")
    api_error(_act(stack, world["officer"], cid, "add_item", "i3", scanId=theirs), 404, "not_found")
    api_error(_act(stack, world["officer"], cid, "add_item", "i4"), 422, "invalid_input", "scanId")
    api_error(_act(stack, world["holder"], cid, "add_item", "i5", scanId=later), 403, "forbidden")
    assert len(_get(stack, world["officer"], cid).json()["items"]) == 3
    with Session(stack.gateway.engine) as session:
        logged = session.exec(select(CaseAction).where(CaseAction.action == "add_item")).all()
        assert len(logged) == 1 and logged[0].record is not None

    for n, action in enumerate(("detain", "send_notice", "answer")):
        assert _act(stack, world["officer"], cid, action, f"s{n}").status_code == 201
    assert "items" not in _get(stack, world["holder"], cid).json()  # limited stage
    assert _act(stack, world["officer"], cid, "disclose_unredacted", "u").status_code == 201
    seen = _get(stack, world["holder"], cid).json()["items"]
    assert sorted(i["serial"] for i in seen) == ["SN0001", "SN0002", "SN0005"]
    assert all("holder" not in i for i in seen)

    pdf = stack.client.get(
        f"/v1/cases/{cid}/documents/unredacted_disclosure_letter",
        headers=stack.headers(world["holder"]),
    )
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def _upload(stack: Stack, key: str, cid: str, name: str, data: bytes, kind: str) -> Any:
    media = {"png": "image/png", "jpg": "image/jpeg", "pdf": "application/pdf"}[name[-3:]]
    return upload(stack, key, cid, name, data, media, kind=kind)


def test_the_holder_reads_the_images_its_stage_allows(stack: Stack, world: Any) -> None:
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "mode": "mail",
            "port": "USLAX",
            "presentedAt": datetime.now(UTC).isoformat(),
            "rightsHolders": [world["holder_id"]],
        },
        headers=stack.headers(world["officer"]),
    )
    cid = r.json()["id"]
    officer = world["officer"]
    red = _upload(stack, officer, cid, "red.png", PNG, "image_redacted")
    assert red.status_code == 201 and red.json()["kind"] == "image_redacted", red.text
    full = _upload(stack, officer, cid, "full.jpg", JPEG, "image_unredacted")
    assert full.status_code == 201, full.text
    doc = _upload(stack, officer, cid, "memo.pdf", PDF, "document")
    assert doc.status_code == 201, doc.text
    api_error(_upload(stack, officer, cid, "red.png", PNG, "document"), 409, "conflict", "image")
    bad = _upload(stack, officer, cid, "memo.pdf", PDF, "image_redacted")
    api_error(bad, 422, "invalid_input", "not an image")
    api_error(_upload(stack, officer, cid, "red.png", PNG, "image_secret"), 422, "invalid_input")
    ids = {k: v.json()["attachmentId"] for k, v in (("red", red), ("full", full), ("doc", doc))}

    def listed(key: str) -> list[str]:
        r = stack.client.get(f"/v1/cases/{cid}/attachments", headers=stack.headers(key))
        assert r.status_code == 200, r.text
        return [a["attachmentId"] for a in r.json()]

    def download(key: str, which: str) -> Any:
        url = f"/v1/cases/{cid}/attachments/{ids[which]}"
        return stack.client.get(url, headers=stack.headers(key))

    holder = world["holder"]
    assert listed(officer) == [ids["red"], ids["full"], ids["doc"]]
    got = download(officer, "doc")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert listed(holder) == []
    api_error(download(holder, "red"), 404, "not_found")
    assert _act(stack, officer, cid, "request_help", "h").status_code == 201  # redacted stage
    assert listed(holder) == [ids["red"]]
    got = download(holder, "red")
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["x-content-type-options"] == "nosniff"
    api_error(download(holder, "full"), 404, "not_found")
    api_error(download(holder, "doc"), 404, "not_found")
    for n, action in enumerate(("detain", "send_notice", "answer", "disclose_unredacted")):
        assert _act(stack, officer, cid, action, f"a{n}").status_code == 201
    assert listed(holder) == [ids["red"], ids["full"]]
    assert download(holder, "full").content == JPEG
    api_error(download(holder, "doc"), 404, "not_found")
    for key in (world["other"], world["agency"]):
        api_error(download(key, "red"), 404, "not_found")
        r = stack.client.get(f"/v1/cases/{cid}/attachments", headers=stack.headers(key))
        api_error(r, 404, "not_found")


def test_clock_reminders_reach_the_holder_webhook_before_the_deadline(
    stack: Stack, world: Any
) -> None:
    r = stack.client.put(
        f"/v1/organizations/{world['holder_id']}/webhook",
        json={"url": "https://hooks.watchmaker.example/bl"},
        headers=stack.headers(world["holder"]),
    )
    assert r.status_code in (200, 201), r.text
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "mode": "mail",
            "port": "USLAX",
            "presentedAt": datetime.now(UTC).isoformat(),
            "rightsHolders": [world["holder_id"]],
        },
        headers=stack.headers(world["officer"]),
    )
    cid = r.json()["id"]
    with Session(stack.gateway.engine) as session:
        clock = session.exec(select(CaseClock).where(CaseClock.name == "decide")).one()
        remind, due = clock.remind_at, clock.due_at
    moment = (remind if remind.tzinfo else remind.replace(tzinfo=UTC)) + timedelta(minutes=1)
    assert moment < (due if due.tzinfo else due.replace(tzinfo=UTC))
    assert case_clocks.process_due(stack.gateway.engine, now=moment).reminders >= 1
    with Session(stack.gateway.engine) as session:
        rows = session.exec(
            select(WebhookDelivery).where(WebhookDelivery.organization_id == world["holder_id"])
        ).all()
    sent = [dict(r.payload) for r in rows if r.event == case_clocks.EVENT_REMINDER]
    assert [p["data"]["clock"] for p in sent] == ["decide"]
    assert sent[0]["data"]["caseId"] == cid and "dueAt" in sent[0]["data"]
    assert not [r for r in rows if r.event == case_clocks.EVENT_EXPIRED]


def test_each_holder_reads_its_own_products_items(stack: Stack, world: Any) -> None:
    stack.enroll(world["holder"], serials=["SN0001"])
    stack.enroll(world["other"], gtin=OTHER_GTIN, serials=["OS0001"])
    stack.sync()
    mine = _scan(stack, world["officer"], "SN0001", "AWB 555-5")
    body = {"gtin": OTHER_GTIN, "lot": "L1", "serial": "OS0001", "shipment": "AWB 555-5"}
    theirs = str(stack.verify(world["officer"], location={"unlocode": "USLAX"}, **body)["scanId"])
    stack.gateway.scans.flush()
    case = _open_from_scan(stack, world["officer"], mine)
    cid = case["id"]
    assert sorted(case["rightsHolders"]) == sorted([world["holder_id"], world["other_id"]])
    assert {i["scanId"] for i in case["items"]} == {mine, theirs}
    for n, action in enumerate(("detain", "send_notice", "answer", "disclose_unredacted")):
        assert _act(stack, world["officer"], cid, action, f"s{n}").status_code == 201
    for key, serial in ((world["holder"], "SN0001"), (world["other"], "OS0001")):
        seen = _get(stack, key, cid).json()["items"]
        assert [i["serial"] for i in seen] == [serial]
        letter = stack.client.get(
            f"/v1/cases/{cid}/documents/unredacted_disclosure_letter", headers=stack.headers(key)
        )
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(letter.content)).pages)
        assert serial in text and ({"SN0001", "OS0001"} - {serial}).pop() not in text

    epcis = stack.client.get(f"/v1/cases/{cid}/epcis", headers=stack.headers(world["officer"]))
    assert epcis.status_code == 200, epcis.text
    lists = [e["epcList"] for e in epcis.json()["epcisBody"]["eventList"]]
    expected = {entries.item_key(GTIN, "SN0001"), entries.item_key(OTHER_GTIN, "OS0001")}
    assert lists and all(set(epcs) == expected for epcs in lists)
