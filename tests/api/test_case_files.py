"""Case attachments that are not what they claim are refused (422, naming the disagreement);
the same bytes twice are one attachment; and a case's actions export as EPCIS 2.0 events of
its items, valid against GS1's schema (the project's copy of ../shared/epcis, read here
without the gateway's own loader), with CBV steps and dispositions where they exist."""

from __future__ import annotations

import json
import struct
import zlib
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker
from sqlmodel import Session, select

from api.case_models import CaseAction, CaseAttachment
from api.services.case_epcis import VOCABULARY
from ledger.config import PROJECT_ROOT
from tests.api.cases_kit import LINES, applied, case_world, open_case, upload
from tests.stack import GTIN, Stack, api_error

#: GS1's schema: the project's byte-for-byte copy of ../shared/epcis (tests/epcis/test_schema.py
#: checks the copy against the shared original), read here without the project's own loader.
SCHEMA = PROJECT_ROOT / "epcis" / "data" / "EPCIS-JSON-Schema.json"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png()
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\x00" * 32
    + b"\xff\xd9"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WEBP_BODY = b"WEBPVP8 " + struct.pack("<I", 10) + b"\x00" * 10
WEBP = b"RIFF" + struct.pack("<I", len(WEBP_BODY)) + WEBP_BODY
world = pytest.fixture(case_world, name="world")


def _open(stack: Stack, key: str, **overrides: Any) -> str:
    """A case whose watches line names the enrolled GTIN (its items export as EPCIS)."""
    lines = [{**LINES[0], "gtin": GTIN}, LINES[1]]
    return str(open_case(stack, key, **{"lines": lines, **overrides})["id"])


def test_attachments_are_what_they_claim(stack: Stack, world: Any) -> None:
    key = world["officer"]
    cid = _open(stack, key)
    for name, data, media in (
        ("goods.png", PNG, "image/png"),
        ("goods.jpg", JPEG, "image/jpeg"),
        ("label.webp", WEBP, "image/webp"),
        ("invoice.pdf", PDF, "application/pdf"),
    ):
        r = upload(stack, key, cid, name, data, media)
        assert r.status_code == 201, r.text
        assert r.json()["mediaType"] == media and r.json()["size"] == len(data)
    again = upload(stack, key, cid, "goods-again.png", PNG, "image/png")
    assert again.status_code == 200 and again.json()["replayed"] is True  # same bytes, once
    refused = [
        (("photo.png", b"<html><script>alert(1)</script></html>", "image/png"), "none of"),
        (("photo.png", JPEG, "image/png"), "claims image/png but its bytes are image/jpeg"),
        (("photo.jpg", PNG, "image/png"), "its name must end in .png"),
        (("photo.exe", b"MZ\x90\x00", "application/octet-stream"), "not accepted"),
        (("photo.png", PNG[:-12], "image/png"), "not a complete image/png"),
        (("doc.pdf", b"%PDF-1.4\nno end", "application/pdf"), "not a complete application/pdf"),
        (("empty.png", b"", "image/png"), "empty"),
    ]
    for (name, data, media), words in refused:
        api_error(upload(stack, key, cid, name, data, media), 422, "invalid_input", words)
    # too large: 413, nothing stored
    stack.gateway.settings.case_attachment_max_bytes = 100
    big = upload(stack, key, cid, "big.pdf", PDF + b" " * 200, "application/pdf")
    api_error(big, 413, "payload_too_large")
    stack.gateway.settings.case_attachment_max_bytes = 10 * 1024 * 1024
    # no file part: 422 from validation
    r = stack.client.post(f"/v1/cases/{cid}/attachments", headers=stack.headers(key))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    # another agency: not found; the rights holder: not an officer
    api_error(upload(stack, world["agency"], cid, "a.png", PNG, "image/png"), 404, "not_found")
    holder = world["holder"]
    api_error(upload(stack, holder, cid, "a.png", PNG, "image/png"), 403, "forbidden")

    listed = stack.client.get(f"/v1/cases/{cid}/attachments", headers=stack.headers(key)).json()
    assert [a["fileName"] for a in listed] == [
        "goods.png",
        "goods.jpg",
        "label.webp",
        "invoice.pdf",
    ]
    with Session(stack.gateway.engine) as session:
        rows = session.exec(select(CaseAttachment)).all()
        assert len(rows) == 4 and {r.data for r in rows} == {PNG, JPEG, WEBP, PDF}
        notes = session.exec(select(CaseAction).where(CaseAction.action == "note")).all()
        assert len(notes) == 4  # each attachment once in the case's log
        assert all(n.log_index is not None for n in notes)


@cache
def _shared_validator() -> Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    return Draft7Validator(schema, format_checker=FormatChecker())


def test_case_actions_export_as_epcis_events_of_the_items(stack: Stack, world: Any) -> None:
    key, second = world["officer"], world["second"]
    stack.enroll(world["holder"])
    stack.sync()
    scan = stack.verify(key, gtin=GTIN, serial="SN0001", location={"unlocode": "USLAX"})
    cid = _open(stack, key, source="scan", scanId=scan["scanId"])
    applied(stack, key, cid, "detain", "d")
    applied(stack, key, cid, "custody", "c", storage="Bay 4", seals=["S1"])
    seize = applied(stack, key, cid, "seize", "s")
    pending = stack.client.get(f"/v1/cases/{cid}/epcis", headers=stack.headers(key)).json()
    steps = [e["borderledger:caseAction"] for e in pending["epcisBody"]["eventList"]]
    assert steps == ["open", "detain", "custody"]  # a seizure awaiting approval is not done
    url = f"/v1/cases/{cid}/actions/{seize['actionId']}/approve"
    r = stack.client.post(url, json={"idempotencyKey": "a"}, headers=stack.headers(second))
    assert r.status_code == 201, r.text
    applied(stack, key, cid, "forfeit", "f")
    destroy = applied(stack, key, cid, "destroy", "x")
    url = f"/v1/cases/{cid}/actions/{destroy['actionId']}/approve"
    r = stack.client.post(url, json={"idempotencyKey": "b"}, headers=stack.headers(second))
    assert r.status_code == 201, r.text

    r = stack.client.get(f"/v1/cases/{cid}/epcis", headers=stack.headers(key))
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    document = r.json()
    problems = [e.message for e in _shared_validator().iter_errors(document)]
    assert problems == []
    assert {"borderledger": VOCABULARY} in document["@context"]
    events = document["epcisBody"]["eventList"]
    by_action = {e["borderledger:caseAction"]: e for e in events}
    assert list(by_action) == ["open", "detain", "custody", "seize", "forfeit", "destroy"]
    item = f"https://id.gs1.org/01/{GTIN}/21/SN0001"
    for event in events:
        assert event["type"] == "ObjectEvent" and event["action"] == "OBSERVE"
        assert event["epcList"] == [item]
        # both lines: the one without a GTIN takes the scanned item's (open_case)
        assert event["quantityList"] == [
            {"epcClass": f"https://id.gs1.org/01/{GTIN}", "quantity": 50}
        ]
        assert event["readPoint"] == {"id": "urn:un:locode:USLAX"}
        assert event["bizTransactionList"] == [{"bizTransaction": f"urn:borderledger:case:{cid}"}]
        assert event["borderledger:caseId"] == cid
        assert "Bay 4" not in json.dumps(event)  # parameters are never exported
    # CBV where it has the word, the documented extension vocabulary where not
    assert (by_action["detain"]["bizStep"], by_action["detain"]["disposition"]) == (
        "holding",
        "non_sellable_other",
    )
    assert by_action["custody"]["bizStep"] == "storing"
    assert (by_action["destroy"]["bizStep"], by_action["destroy"]["disposition"]) == (
        "destroying",
        "destroyed",
    )
    assert by_action["seize"]["bizStep"] == VOCABULARY + "bizstep/seizing"
    assert by_action["seize"]["disposition"] == VOCABULARY + "disposition/seized"
    assert by_action["seize"]["borderledger:stateAfter"] == "seized"
    # the event ids are the actions' ids: the same export twice names the same events
    again = stack.client.get(f"/v1/cases/{cid}/epcis", headers=stack.headers(key)).json()
    assert [e["eventID"] for e in again["epcisBody"]["eventList"]] == [e["eventID"] for e in events]
    # only the case's agency exports: another agency 404, the holder 403
    api_error(
        stack.client.get(f"/v1/cases/{cid}/epcis", headers=stack.headers(world["agency"])),
        404,
        "not_found",
    )
    api_error(
        stack.client.get(f"/v1/cases/{cid}/epcis", headers=stack.headers(world["holder"])),
        403,
        "forbidden",
    )
