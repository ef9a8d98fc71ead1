"""The guides domain without the gateway: content checks, workflow, history, import files,
photo sanitizing (EXIF/GPS gone) and the PDF."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
from PIL import Image

from guides import images, imports, pdf
from guides.errors import InvalidGuide, InvalidImage, TransitionNotAllowed
from guides.history import changes
from guides.imports import parse_guide
from guides.model import CATEGORIES, matches
from guides.workflow import State, advance, relied_on

TODAY = date(2026, 12, 6)
GTIN = "09506000134352"


def body(**extra: Any) -> dict[str, Any]:
    return {
        "gtin": GTIN,
        "brand": "Acme",
        "name": "Chrono 42 watch",
        "category": "watches_jewelry",
        "features": [{"kind": "hologram", "description": "3D eagle under the crown"}],
        "msrpCents": 45000,
        "currency": "EUR",
        "markets": ["fr", "DE"],
        "routes": ["CNSHA", "NLRTM"],
        "importers": [{"name": "Acme EU BV", "country": "NL", "role": "importer"}],
        "contacts": [{"kind": "legal", "name": "J. Doe", "email": "legal@acme.example"}],
        "recordations": [{"kind": "eu_afa", "number": "AFA-2026-1", "expires": "2027-06-30"}],
        **extra,
    }


def test_content_is_checked_and_normalized() -> None:
    guide = parse_guide(body())
    assert guide.markets == ["FR", "DE"] and guide.expires == date(2027, 6, 30)
    assert guide.product_key == GTIN
    assert guide.category_labels == CATEGORIES["watches_jewelry"]
    assert guide.route_policy() == {
        "markets": ["DE", "FR"],
        "nodes": ["CNSHA", "NLRTM"],
        "consignees": ["Acme EU BV"],
    }
    assert guide.essentials()["msrp"] == {"cents": 45000, "currency": "EUR"}
    with pytest.raises(InvalidGuide) as bad:
        parse_guide(body(gtin="09506000134353", markets=["XX"], category="shoes", currency="ZZZ"))
    text = "; ".join(bad.value.problems)
    for word in ("check digit", "unknown country 'XX'", "unknown category 'shoes'", "currency"):
        assert word in text, text
    with pytest.raises(InvalidGuide, match="exactly one"):
        parse_guide(body(companyPrefix="950600"))
    prefix = parse_guide(body(gtin=None, companyPrefix="950600"))
    assert prefix.product_key == "prefix:950600"
    assert matches("prefix:950600", GTIN) and not matches("prefix:950601", GTIN)


def test_workflow_and_reliance() -> None:
    guide = parse_guide(body())
    state = advance(State.DRAFT, "submit", guide, TODAY)
    assert state == State.SUBMITTED
    with pytest.raises(TransitionNotAllowed, match="cannot publish a guide that is submitted"):
        advance(state, "publish", guide, TODAY)
    state = advance(advance(state, "review", guide, TODAY), "publish", guide, TODAY)
    assert state == State.PUBLISHED
    bare = parse_guide(body(features=[], contacts=[], recordations=[]))
    with pytest.raises(InvalidGuide) as missing:
        advance(State.DRAFT, "submit", bare, TODAY)
    assert len(missing.value.problems) == 3
    expired = parse_guide(
        body(recordations=[{"kind": "cbp_recordation", "number": "TMK 1", "expires": "2026-01-01"}])
    )
    with pytest.raises(InvalidGuide, match="expired on 2026-01-01"):
        advance(State.DRAFT, "submit", expired, TODAY)
    assert relied_on(True, TODAY, TODAY) and not relied_on(True, TODAY - timedelta(days=1), TODAY)
    assert not relied_on(False, None, TODAY)


def test_history_names_what_changed() -> None:
    v1 = parse_guide(body())
    v2 = parse_guide(body(msrpCents=47000, name="Chrono 42 watch (2027)"))
    diff = {c["field"]: (c["before"], c["after"]) for c in changes(v1, v2)}
    assert diff == {
        "msrpCents": (45000, 47000),
        "name": ("Chrono 42 watch", "Chrono 42 watch (2027)"),
    }
    assert {c["field"] for c in changes(None, v1)} >= {"gtin", "brand", "features"}


CSV = (
    "gtin,brand,name,category,msrp,currency,features,markets,routes,importers,contacts,recordations\n"
    f"{GTIN},Acme,Chrono,watches_jewelry,450.00,EUR,hologram;eagle|font;serif,FR|DE,CNSHA|NLRTM,"
    "Acme EU;NL,legal;J. Doe;legal@acme.example;+33 1,eu_afa;AFA-1;2027-06-30\n"
)


def test_csv_and_json_import() -> None:
    [(where, guide)] = imports.parse_file(CSV.encode(), "csv")
    assert where == "line 2" and guide.msrp_cents == 45000 and len(guide.features) == 2
    assert guide.importers[0].role == "importer" and guide.contacts[0].phone == "+33 1"
    bad = (
        CSV
        + f"{GTIN},Acme,Again,watches_jewelry,,,,,,,,\n"
        + "00012345600013,B,N,toys,4.555,,,,,,,\n"
    )
    with pytest.raises(InvalidGuide) as failed:
        imports.parse_file(bad.encode(), "csv")
    problems = failed.value.problems
    assert any(p.startswith("line 3:") and "already described on line 2" in p for p in problems)
    assert any(p.startswith("line 4:") and "msrp" in p for p in problems), problems
    with pytest.raises(InvalidGuide, match="unknown CSV column"):
        imports.parse_file(b"gtin,colour\n1,2\n", "csv")
    [(item, _)] = imports.parse_file(
        b'{"guides": [' + str(body()).replace("'", '"').encode() + b"]}", "json"
    )
    assert item == "item 1"
    with pytest.raises(InvalidGuide) as failed:
        imports.parse_file(b'[{"gtin": "1", "brand": "", "name": "x", "category": "toys"}]', "json")
    assert all(p.startswith("item 1: ") for p in failed.value.problems)
    with pytest.raises(InvalidGuide, match="malformed"):
        imports.parse_file(b"[", "json")


def _photo_with_gps(fmt: str) -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 9.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_photos_are_reencoded_without_metadata(fmt: str, mime: str) -> None:
    raw = _photo_with_gps(fmt)
    with Image.open(io.BytesIO(raw)) as before:
        assert before.getexif().get(0x010F) == "SpyCam"  # the upload carries it
    clean = images.sanitize(raw + b"TRAILING-PAYLOAD", 1 << 20)
    assert clean.mime == mime and (clean.width, clean.height) == (64, 48)
    assert b"SpyCam" not in clean.data and b"TRAILING-PAYLOAD" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as after:
        assert len(after.getexif()) == 0 and "exif" not in after.info
        assert after.getpixel((10, 10))[:3] == pytest.approx((200, 30, 30), abs=8)


def test_photos_judged_from_bytes() -> None:
    with pytest.raises(InvalidImage, match="not a JPEG, PNG or WebP"):
        images.sanitize(b"GIF89a" + b"\0" * 100, 1 << 20)
    with pytest.raises(InvalidImage, match="not a JPEG"):
        images.sanitize(b"<svg xmlns='http://www.w3.org/2000/svg'/>", 1 << 20)
    with pytest.raises(InvalidImage, match="cannot be read"):
        images.sanitize(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 1 << 20)
    with pytest.raises(InvalidImage, match="limit is 100"):
        images.sanitize(_photo_with_gps("PNG"), 100)


def test_pdf_carries_the_notice() -> None:
    guide = parse_guide(body(description="Boîtier acier — 42 mm, “swiss made”"))
    photo = pdf.Photo(
        "fake", "seized in Rotterdam", images.sanitize(_photo_with_gps("JPEG"), 1 << 20).data
    )
    data = pdf.render(
        guide, holder="Acme", version=3, state="published", dated=TODAY, photos=[photo]
    )
    assert data.startswith(b"%PDF") and len(data) > 1000
    plain = pdf.render(
        guide, holder="Acme", version=3, state="published", dated=TODAY, compress=False
    )
    assert (
        plain.count(b"(CONFIDENTIAL - provided by the rights holder") == 1
    )  # one page, one notice
    for text in (
        b"Acme - Chrono 42 watch",
        rb"Watches; Jewellery \(EU\)",
        b"450.00 EUR",
        b"AFA-2026-1",
    ):
        assert text in plain, text
    assert pdf.latin1("a—b “c” 漢") == 'a-b "c" ?'
