"""A case's documents as PDF: drawn from the case's data, scoped and redacted per reader like
the case itself (a rights holder's copy holds only what its stage discloses), 404 for an
unknown kind, 409 naming the state for one the case has not issued, the importer's copy
through its link. Text is read back out of the PDF (pypdf)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader

from api import case_documents
from api.services.case_documents import known_kinds
from tests.api.cases_kit import AWB, NAME, applied, case_world, open_case
from tests.stack import Stack, api_error

world = pytest.fixture(case_world, name="world")


def _open(stack: Stack, key: str, **overrides: Any) -> str:
    """A case whose exporter is named too (the documents print both parties)."""
    parties = [
        {"role": "importer", "name": NAME, "address": "1 Harbour Rd", "country": "HK"},
        {"role": "exporter", "name": "Guangzhou Export Ltd", "country": "CN"},
    ]
    case_id: str = open_case(stack, key, **{"parties": parties, **overrides})["id"]
    return case_id


def _act(stack: Stack, key: str, case: str, action: str, **params: Any) -> Any:
    return applied(stack, key, case, action, action, **params)


def _doc(stack: Stack, key: str | None, case: str, kind: str) -> Any:
    headers = stack.headers(key) if key else {}
    return stack.client.get(f"/v1/cases/{case}/documents/{kind}", headers=headers)


def text_of(r: Any) -> str:
    """The PDF's text, its lines joined (so a value never hides behind a line break)."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(r.content))
    return " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)


def test_documents_follow_the_case_and_the_readers_stage(stack: Stack, world: Any) -> None:
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])
    # Nothing issued yet: 409 naming the state; an unknown kind: 404 JSON.
    api_error(
        _doc(stack, world["officer"], cid, "notice_of_detention"), 409, "conflict", "'presented'"
    )
    api_error(_doc(stack, world["officer"], cid, "bogus"), 404, "not_found", "bogus")
    api_error(_doc(stack, world["officer"], cid, "consent_form"), 404, "not_found", "us-trademark")
    api_error(_doc(stack, world["officer"], cid, "Bad-Kind"), 422, "invalid_input")

    _act(stack, world["officer"], cid, "detain")
    link = _act(stack, world["officer"], cid, "send_notice")["partyLink"]

    notice = text_of(_doc(stack, world["officer"], cid, "notice_of_detention"))
    for field in ("Notice of detention", NAME, "1 Harbour Rd", AWB, "USLAX", "CN", "express"):
        assert field in notice, field
    assert "watches_jewelry: 40 x USD 250.00 = USD 10,000.00" in notice
    assert "importer_answer: due" in notice and "19 CFR 133.21" in notice
    assert "CBP LAX" in notice

    # The holder's copies: the limited information of its stage, no party, no reference.
    letter = text_of(_doc(stack, world["holder"], cid, "limited_information_letter"))
    for field in ("USLAX", "wrist watches bearing the mark", "50", "CN"):
        assert field in letter, field
    held = text_of(_doc(stack, world["holder"], cid, "notice_of_detention"))
    assert NAME not in held and "1 Harbour Rd" not in held and AWB not in held
    assert "watches_jewelry" not in held  # lines are not the holder's at this stage
    assert "USLAX" in held and "not disclosed at this stage" in held

    # Another holder, another agency: the case does not exist for them.
    api_error(_doc(stack, world["other"], cid, "notice_of_detention"), 404, "not_found")
    api_error(_doc(stack, world["agency"], cid, "notice_of_detention"), 404, "not_found")
    assert _doc(stack, None, cid, "notice_of_detention").status_code == 401

    # The importer's copy through its link (its view: its own name, the lines).
    mine = stack.client.get(f"/case-link/{link}/documents/notice_of_detention")
    assert NAME in text_of(mine) and "watches_jewelry" in text_of(mine)
    stranger = stack.client.get(f"/case-link/{link}/documents/destruction_certificate")
    assert stranger.status_code == 409 and "notice_sent" in stranger.text


def test_seizure_notice_and_the_eight_items(stack: Stack, world: Any) -> None:
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])
    _act(stack, world["officer"], cid, "detain")
    asked = _act(stack, world["second"], cid, "seize")
    api_error(
        _doc(stack, world["officer"], cid, "notice_of_seizure"), 409, "conflict", "'detained'"
    )
    r = stack.client.post(
        f"/v1/cases/{cid}/actions/{asked['actionId']}/approve",
        json={"idempotencyKey": "a"},
        headers=stack.headers(world["officer"]),
    )
    assert r.status_code == 201, r.text
    seizure = text_of(_doc(stack, world["officer"], cid, "notice_of_seizure"))
    assert "Notice of seizure" in seizure and "approved by" in seizure
    assert "USD 19,000.00" in seizure and NAME in seizure
    assert "Post-seizure disclosure to the rights holder (8 items)" in seizure

    # The holder reads the notice of seizure only as far as its stage goes: no parties yet.
    held = text_of(_doc(stack, world["holder"], cid, "notice_of_seizure"))
    assert NAME not in held and "Guangzhou Export Ltd" not in held
    _act(stack, world["officer"], cid, "disclose_post_seizure")
    eight = text_of(_doc(stack, world["holder"], cid, "post_seizure_disclosure"))
    for field in (NAME, "1 Harbour Rd", "Guangzhou Export Ltd", "USLAX", "CN", "50"):
        assert field in eight, field
    assert "Manufacturer none recorded" in eight
    assert AWB not in eight  # the reference is not one of the eight items


def test_eu_notifications_and_the_consent_form(stack: Stack, world: Any) -> None:
    cid = _open(
        stack,
        world["officer"],
        profile="eu-standard",
        memberState="NL",
        port="NLRTM",
        currency="EUR",
        rightsHolders=[world["holder_id"]],
        parties=[{"role": "declarant", "name": "Rotterdam Forwarding BV", "country": "NL"}],
    )
    _act(stack, world["officer"], cid, "detain")
    _act(stack, world["officer"], cid, "notify")
    declarant = text_of(_doc(stack, world["officer"], cid, "eu_notification_declarant"))
    assert "Rotterdam Forwarding BV" in declarant and "deemed to consent" in declarant
    assert "608/2013" in declarant
    holder = text_of(_doc(stack, world["holder"], cid, "eu_notification_holder"))
    assert "Rotterdam Forwarding BV" in holder and "NLRTM" in holder
    _act(stack, world["holder"], cid, "confirm")
    form = text_of(_doc(stack, world["holder"], cid, "consent_form"))
    assert "Consent to destruction" in form and "Signature" in form


def test_every_kind_a_profile_issues_has_a_layout(stack: Stack, world: Any) -> None:
    """Each document kind named in the profiles' data is drawn, from a whole officer's view."""
    assert set(case_documents.KINDS) == set(known_kinds())
    cid = _open(stack, world["officer"], rightsHolders=[world["holder_id"]])
    view = stack.client.get(f"/v1/cases/{cid}", headers=stack.headers(world["officer"])).json()
    for kind, spec in case_documents.KINDS.items():
        pdf = case_documents.render(kind, view, "a legal basis", "An agency")
        text = " ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages)
        assert spec.title.split(" (")[0] in " ".join(text.split()), kind
        assert AWB in text or "reference" not in spec.fields, kind
