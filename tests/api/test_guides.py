"""Product identification guides through the gateway (issue 15): a holder writes, submits
and versions a guide with photos; a customs agency reviews and publishes it; officers search
it, read it with a verdict and print it; the published guide gives new batches their route
policy and case lines their MSRP. Readable by the holder and customs only."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from sqlmodel import Session, select

from api.guide_models import Guide, GuidePhoto
from api.models import GatewayBatch
from api.services import guides as guides_service
from tests.stack import GTIN, Stack, api_error
from tests.worlds import OTHER_GTIN


def guide_body(**extra: Any) -> dict[str, Any]:
    return {
        "gtin": GTIN,
        "brand": "Acme",
        "name": "Chrono 42 watch",
        "category": "watches_jewelry",
        "features": [
            {"kind": "hologram", "description": "3D eagle under the crown"},
            {"kind": "serial_format", "description": "SN then 4 digits, laser-etched"},
        ],
        "msrpCents": 45000,
        "currency": "USD",
        "markets": ["FR", "DE"],
        "routes": ["CNSHA", "NLRTM"],
        "importers": [{"name": "Acme EU BV", "country": "NL", "role": "importer"}],
        "contacts": [{"kind": "legal", "name": "J. Doe", "email": "legal@acme.example"}],
        "recordations": [
            {"kind": "cbp_recordation", "number": "TMK 26-001", "expires": "2099-06-30"}
        ],
        **extra,
    }


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (80, 60), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 5.0), 3: "E", 4: (4.0, 53.0, 9.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_guide_journey(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder")
    rival = stack.org("Rival", "rights_holder", gtins=(OTHER_GTIN,))
    officer = stack.org("US CBP", "customs")
    stack.sync()
    h, r, c, a = (
        stack.headers(k)
        for k in (acme["apiKey"], rival["apiKey"], officer["apiKey"], stack.admin_key)
    )
    post, get, put = stack.client.post, stack.client.get, stack.client.put

    created = post("/v1/guides", json=guide_body(), headers=h)
    assert created.status_code == 201, created.text
    guide = created.json()
    gid = guide["guideId"]
    assert guide["state"] == "draft" and guide["version"] == 1 and not guide["reliedOn"]
    # a retried create answers the same guide; another one for the product is a conflict
    again = post("/v1/guides", json=guide_body(), headers=h)
    assert again.status_code == 200 and again.json()["guideId"] == gid
    api_error(post("/v1/guides", json=guide_body(name="Other"), headers=h), 409, "conflict", gid)
    # another brand's product, a bad port, a bad body
    api_error(post("/v1/guides", json=guide_body(), headers=r), 403, "forbidden", "holds no GTIN")
    api_error(
        post("/v1/guides", json=guide_body(gtin=OTHER_GTIN, routes=["ZZZZZ"]), headers=r),
        422,
        "invalid_input",
        "ZZZZZ",
    )
    api_error(
        post("/v1/guides", json=guide_body(category="shoes"), headers=h),
        422,
        "invalid_input",
        "category",
    )
    # a draft is the holder's alone; other roles may not read guides at all
    api_error(get(f"/v1/guides/{gid}", headers=c), 404, "not_found")
    api_error(get(f"/v1/guides/{gid}", headers=r), 404, "not_found")
    api_error(get(f"/v1/guides/{gid}", headers=a), 403, "forbidden")
    api_error(post(f"/v1/guides/{gid}/publish", headers=c), 404, "not_found")

    # photos: checked from their bytes, metadata stripped
    photo = post(
        f"/v1/guides/{gid}/photos?kind=genuine&caption=front", content=jpeg_with_gps(), headers=h
    )
    assert photo.status_code == 201, photo.text
    api_error(
        post(f"/v1/guides/{gid}/photos", content=b"GIF89a" + bytes(64), headers=h),
        422,
        "invalid_input",
        "JPEG",
    )
    api_error(
        post(f"/v1/guides/{gid}/photos", content=jpeg_with_gps(), headers=r), 404, "not_found"
    )

    # the workflow: submit (holder), review and publish (customs)
    api_error(post(f"/v1/guides/{gid}/review", json={}, headers=h), 403, "forbidden")
    submitted = post(f"/v1/guides/{gid}/submit", json={}, headers=h)
    assert submitted.status_code == 200 and submitted.json()["state"] == "submitted"
    assert post(f"/v1/guides/{gid}/submit", json={}, headers=h).json()["state"] == "submitted"
    api_error(post(f"/v1/guides/{gid}/publish", json={}, headers=c), 409, "conflict", "submitted")
    queue = get("/v1/guides?state=submitted", headers=c).json()
    assert [g["guideId"] for g in queue] == [gid]
    assert get("/v1/guides?q=chrono", headers=c).json() == []  # not relied on yet
    reviewed = post(
        f"/v1/guides/{gid}/review", json={"decision": "accept", "note": "checked"}, headers=c
    )
    assert reviewed.json()["state"] == "reviewed"
    published = post(f"/v1/guides/{gid}/publish", json={}, headers=c).json()
    assert published["state"] == "published" and published["reliedOn"]
    assert (
        published["published"]["version"] == 1 and published["published"]["publishedBy"] == "US CBP"
    )

    # officers search by brand, product name, GTIN, company prefix
    for query in ("brand=acm", "name=CHRONO", f"gtin={GTIN}", "prefix=9506000", "q=42"):
        found = get(f"/v1/guides?{query}", headers=c).json()
        assert [g["guideId"] for g in found] == [gid], query
    assert get("/v1/guides?brand=nobody", headers=c).json() == []
    assert get("/v1/guides", headers=r).json() == []  # another holder sees none of Acme's
    api_error(get("/v1/guides?gtin=123", headers=c), 422, "invalid_input", "gtin")

    # a new version is a draft again; officers keep reading the published one
    v2 = put(f"/v1/guides/{gid}", json=guide_body(msrpCents=47000), headers=h).json()
    assert v2["version"] == 2 and v2["state"] == "draft"
    assert (
        put(f"/v1/guides/{gid}", json=guide_body(msrpCents=47000), headers=h).json()["version"] == 2
    )
    seen = get(f"/v1/guides/{gid}", headers=c).json()
    assert seen["version"] == 1 and seen["content"]["msrpCents"] == 45000 and seen["reliedOn"]
    history = get(f"/v1/guides/{gid}/history", headers=h).json()
    assert [e["action"] for e in history] == [
        "create",
        "photo",
        "submit",
        "review",
        "publish",
        "update",
    ]
    assert history[-1]["changes"] == [{"field": "msrpCents", "before": 45000, "after": 47000}]
    assert history[3]["by"].startswith("US CBP") and history[3]["note"] == "checked"

    # the stored photo has no EXIF / GPS left
    url = seen["photos"][0]["url"]
    stored = get(url, headers=c)
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/jpeg"
    assert b"SpyCam" not in stored.content
    with Image.open(io.BytesIO(stored.content)) as image:
        assert len(image.getexif()) == 0
    api_error(get(url, headers=r), 404, "not_found")

    # the printable PDF
    printed = get(f"/v1/guides/{gid}/pdf", headers=c)
    assert printed.status_code == 200 and printed.content.startswith(b"%PDF")
    assert printed.headers["content-type"] == "application/pdf"

    # an officer's verdict carries the essentials; a holder's does not
    batch = stack.enroll(acme["apiKey"], serials=["SN0001", "SN0002"])
    stack.sync()
    answer = stack.verify(officer["apiKey"], gtin=GTIN, serial="SN0001", lot="L1")
    assert answer["guide"]["name"] == "Chrono 42 watch" and answer["guide"]["guideId"] == gid
    assert answer["guide"]["msrp"] == {"cents": 45000, "currency": "USD"}
    assert answer["guide"]["photos"][0]["url"] == url
    assert "guide" not in stack.verify(acme["apiKey"], gtin=GTIN, serial="SN0001", lot="L1")

    # new batches default to the guide's route policy; a batch's own policy wins
    own = stack.enroll(acme["apiKey"], lot="L2", route_policy={"markets": ["US"], "nodes": []})
    with Session(stack.gateway.engine) as session:
        default = session.get(GatewayBatch, batch["batchId"])
        mine = session.get(GatewayBatch, own["batchId"])
        assert default is not None and mine is not None
        assert default.route_policy == {
            "markets": ["DE", "FR"],
            "nodes": ["CNSHA", "NLRTM"],
            "consignees": ["Acme EU BV"],
        }
        assert mine.route_policy == {"markets": ["US"], "nodes": []}

    # a case line without its MSRP takes the published guide's
    case = post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "mode": "express",
            "port": "USLAX",
            "origin": "CN",
            "presentedAt": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            "lines": [
                {"category": "watches_jewelry", "quantity": 10, "gtin": GTIN},
                {"category": "watches_jewelry", "quantity": 2, "gtin": GTIN, "unitMsrpCents": 100},
                {"category": "apparel_accessories", "quantity": 3},
            ],
        },
        headers=c,
    )
    assert case.status_code == 201, case.text
    lines = case.json()["lines"]
    assert [line["unitMsrpCents"] for line in lines] == [45000, 100, 0]


def test_bulk_import_is_all_or_nothing(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder", gtins=(GTIN, OTHER_GTIN))
    stack.sync()
    h = {**stack.headers(acme["apiKey"]), "Content-Type": "text/csv"}
    header = "gtin,companyPrefix,brand,name,category,msrp,currency,features,markets,recordations\n"
    good = (
        f"{GTIN},,Acme,Chrono,watches_jewelry,450.00,USD,hologram;eagle,FR|DE,eu_afa;AFA-1;2099-01-31\n"
        ",9506000,Acme,All Acme watches,watches_jewelry,,,,,\n"
    )
    bad = (
        good
        + f"{OTHER_GTIN},,Acme,Bag,handbags,12,USD,,XX,\n"
        + "00000000000017,,Acme,Cap,toys,,,,,\n"
    )
    failed = api_error(
        stack.client.post("/v1/guide-imports", content=header + bad, headers=h),
        422,
        "invalid_input",
    )
    problems = failed["error"]["problems"]
    assert any(p.startswith("line 4: category") for p in problems), problems
    assert any(p.startswith("line 4: markets") for p in problems), problems
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(Guide)).all() == []  # nothing half-imported
    not_mine = header + "00000000000017,,Acme,Cap,toys,,,,,\n"
    failed = api_error(
        stack.client.post("/v1/guide-imports", content=not_mine, headers=h), 422, "invalid_input"
    )
    assert failed["error"]["problems"] == ["line 2: 00000000000017 is not a product of 'Acme'"]
    done = stack.client.post("/v1/guide-imports", content=header + good, headers=h)
    assert done.status_code == 200, done.text
    assert (done.json()["created"], done.json()["updated"]) == (2, 0)
    again = stack.client.post("/v1/guide-imports", content=header + good, headers=h).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    as_json = [{"gtin": OTHER_GTIN, "brand": "Acme", "name": "Bag", "category": "handbags_wallets"}]
    jh = {**h, "Content-Type": "application/json"}
    assert stack.client.post("/v1/guide-imports", json=as_json, headers=jh).json()["created"] == 1
    api_error(
        stack.client.post(
            "/v1/guide-imports", content=b"x", headers={**h, "Content-Type": "text/plain"}
        ),
        422,
        "invalid_input",
        "text/csv",
    )


def test_photos_in_a_directory_and_an_expired_guide_is_not_relied_on(
    stack: Stack, tmp_path: Path
) -> None:
    acme = stack.org("Acme", "rights_holder")
    officer = stack.org("US CBP", "customs")
    stack.sync()
    h, c = stack.headers(acme["apiKey"]), stack.headers(officer["apiKey"])
    stack.gateway.settings.guide_photo_dir = tmp_path / "photos"
    gid = stack.client.post("/v1/guides", json=guide_body(), headers=h).json()["guideId"]
    r = stack.client.post(f"/v1/guides/{gid}/photos?kind=fake", content=jpeg_with_gps(), headers=h)
    assert r.status_code == 201, r.text
    [stored] = list((tmp_path / "photos").iterdir())
    assert stored.suffix == ".bin" and b"SpyCam" not in stored.read_bytes()
    with Session(stack.gateway.engine) as session:
        row = session.exec(select(GuidePhoto)).one()
        assert row.data is None and row.kind == "fake"
    for step, headers in (("submit", h), ("review", c), ("publish", c)):
        assert (
            stack.client.post(f"/v1/guides/{gid}/{step}", json={}, headers=headers).status_code
            == 200
        )
    fetched = stack.client.get(r.json()["url"], headers=c)
    assert fetched.status_code == 200 and fetched.content == stored.read_bytes()
    assert [g["guideId"] for g in stack.client.get("/v1/guides", headers=c).json()] == [gid]
    # the recordation expired: officers no longer rely on the guide
    with Session(stack.gateway.engine) as session:
        guide = session.exec(select(Guide)).one()
        guide.published_expires = date.today() - timedelta(days=1)
        session.add(guide)
        session.commit()
    assert stack.client.get("/v1/guides", headers=c).json() == []
    assert stack.client.get(f"/v1/guides/{gid}", headers=c).json()["reliedOn"] is False
    with Session(stack.gateway.engine) as session:
        assert guides_service.essentials(session, GTIN) is None


def test_a_photo_added_after_publication_waits_for_the_next_review(stack: Stack) -> None:
    """A photo is part of the reviewed guide: added to a published version it starts the
    next version, and officers (guide, photo link, verify essentials, PDF) keep the
    published version's photos until that version is published."""
    acme = stack.org("Acme", "rights_holder")
    officer = stack.org("US CBP", "customs")
    stack.sync()
    h, c = stack.headers(acme["apiKey"]), stack.headers(officer["apiKey"])
    post, get = stack.client.post, stack.client.get
    gid = post("/v1/guides", json=guide_body(), headers=h).json()["guideId"]
    first = post(f"/v1/guides/{gid}/photos?kind=genuine", content=jpeg_with_gps(), headers=h)
    assert first.status_code == 201 and first.json()["version"] == 1

    def publish() -> None:
        for step, headers in (("submit", h), ("review", c), ("publish", c)):
            r = post(f"/v1/guides/{gid}/{step}", json={}, headers=headers)
            assert r.status_code == 200, r.text

    publish()
    fake = Image.new("RGB", (64, 48), (200, 30, 30))
    buffer = io.BytesIO()
    fake.save(buffer, "PNG")
    later = post(f"/v1/guides/{gid}/photos?kind=fake", content=buffer.getvalue(), headers=h)
    assert later.status_code == 201, later.text
    assert later.json()["version"] == 2
    # the same photo again is the same photo, not a third version
    again = post(f"/v1/guides/{gid}/photos?kind=fake", content=buffer.getvalue(), headers=h)
    assert again.json()["photoId"] == later.json()["photoId"]
    mine = get(f"/v1/guides/{gid}", headers=h).json()
    assert mine["state"] == "draft" and mine["version"] == 2 and len(mine["photos"]) == 2

    seen = get(f"/v1/guides/{gid}", headers=c).json()
    assert seen["version"] == 1 and [p["kind"] for p in seen["photos"]] == ["genuine"]
    api_error(get(later.json()["url"], headers=c), 404, "not_found")
    with Session(stack.gateway.engine) as session:
        essentials = guides_service.essentials(session, GTIN)
        assert essentials is not None and len(essentials["photos"]) == 1

    publish()
    seen = get(f"/v1/guides/{gid}", headers=c).json()
    assert seen["version"] == 2 and [p["kind"] for p in seen["photos"]] == ["genuine", "fake"]
    assert get(later.json()["url"], headers=c).status_code == 200
    with Session(stack.gateway.engine) as session:
        essentials = guides_service.essentials(session, GTIN)
        assert essentials is not None and len(essentials["photos"]) == 2


def test_officers_search_the_published_name_while_a_rename_is_a_draft(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder")
    officer = stack.org("US CBP", "customs")
    stack.sync()
    h, c = stack.headers(acme["apiKey"]), stack.headers(officer["apiKey"])
    post, get, put = stack.client.post, stack.client.get, stack.client.put
    gid = post("/v1/guides", json=guide_body(), headers=h).json()["guideId"]
    for step, headers in (("submit", h), ("review", c), ("publish", c)):
        assert post(f"/v1/guides/{gid}/{step}", json={}, headers=headers).status_code == 200
    renamed = put(f"/v1/guides/{gid}", json=guide_body(name="Diver 300"), headers=h)
    assert renamed.json()["state"] == "draft"

    def found(query: str, headers: dict[str, str]) -> list[str]:
        return [g["guideId"] for g in get(f"/v1/guides?{query}", headers=headers).json()]

    # officers find what they read (the published name), not the unreviewed rename
    assert found("name=chrono", c) == [gid] and found("q=chrono", c) == [gid]
    assert found("name=diver", c) == [] and found("q=diver", c) == []
    # the holder searches its current version
    assert found("name=diver", h) == [gid] and found("name=chrono", h) == []
    # the rename published: officers find the new name
    for step, headers in (("submit", h), ("review", c), ("publish", c)):
        assert post(f"/v1/guides/{gid}/{step}", json={}, headers=headers).status_code == 200
    assert found("name=diver", c) == [gid] and found("name=chrono", c) == []
