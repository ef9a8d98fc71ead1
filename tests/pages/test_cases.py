"""Case pages in a real chromium: the officer's list (overdue on top) → the case → detention,
notice (with the party's link), seizure requested by one officer and approved by a second;
a double submit applied once and a stale form's 409 shown on the page; the rights holder's
redacted view and its answer; the importer's single-use link answering once; another
agency's officer refused. axe-core clean; screenshots docs/screenshots/cases-*.png."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_case_files import PNG
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import Stack

NAME = "Shenzhen Example Trading Co"
AWB = "AWB 123-45678901"


@pytest.fixture
def world(stack: Stack) -> dict[str, Any]:
    holder = stack.org("Watchmaker SA", "rights_holder", "TMK 21-1")
    customs = stack.org("CBP LAX", "customs")
    agency = stack.org("CBP JFK", "customs")
    make_user(stack, customs["apiKey"], "olivia@cbp.example", "officer")
    make_user(stack, customs["apiKey"], "oscar@cbp.example", "officer")
    make_user(stack, agency["apiKey"], "jane@jfk.example", "officer")
    make_user(stack, holder["apiKey"], "ravi@watch.example", "analyst")
    return {"holder": holder, "customs": customs, "agency": agency}


def _open(stack: Stack, world: Any, days_ago: float = 0.1, **overrides: Any) -> str:
    body = {
        "profile": "us-trademark",
        "mode": "express",
        "port": "USLAX",
        "origin": "CN",
        "reference": AWB,
        "description": "wrist watches bearing the mark",
        "presentedAt": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "rightsHolders": [world["holder"]["id"]],
        "lines": [
            {"category": "watches_jewelry", "quantity": 40, "unitMsrpCents": 25_000},
            {"category": "handbags_wallets", "quantity": 10, "unitMsrpCents": 90_000},
        ],
        "parties": [{"role": "importer", "name": NAME, "address": "1 Harbour Rd", "country": "HK"}],
        **overrides,
    }
    r = stack.client.post("/v1/cases", json=body, headers=stack.headers(world["customs"]["apiKey"]))
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    return case_id


def _act(stack: Stack, world: Any, case: str, action: str) -> Any:
    r = stack.client.post(
        f"/v1/cases/{case}/actions",
        json={"action": action, "idempotencyKey": action},
        headers=stack.headers(world["customs"]["apiKey"]),
    )
    assert r.status_code == 201, r.text
    return r.json()


def _history(stack: Stack, world: Any, case: str) -> list[str]:
    r = stack.client.get(f"/v1/cases/{case}", headers=stack.headers(world["customs"]["apiKey"]))
    return [h["action"] for h in r.json()["history"]]


def test_officer_takes_a_case_through_detention_notice_and_seizure(
    stack: Stack, world: Any, live: str, page: Any, shots: Path | None
) -> None:
    fresh = _open(stack, world, reference="AWB 999-00000001")
    late = _open(stack, world, days_ago=12, reference="AWB 555-00000002")  # decide overdue
    sign_in(page, live, "olivia@cbp.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Cases").click()
    page.wait_for_url(live + "/cases")
    rows = page.locator("ol.cases > li")
    assert rows.count() == 2
    assert "AWB 555-00000002" in rows.nth(0).inner_text()  # overdue on top
    assert "Overdue" in rows.nth(0).inner_text() and "overdue" in rows.nth(0).get_attribute("class")
    assert "days left" in rows.nth(1).inner_text() and "USLAX" in rows.nth(1).inner_text()
    no_axe_violations(page)
    shoot(page, shots, "cases-list")
    page.get_by_label("State").select_option("detained")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_text("No cases match.").is_visible()
    assert late

    page.goto(live + "/cases")
    page.get_by_role("link", name="AWB 999-00000001").click()
    page.wait_for_url(live + f"/cases/{fresh}")
    text = page.locator("main").inner_text()
    for field in (NAME, "watches jewelry", "USD 10,000.00", "decide", "days left", "Watchmaker SA"):
        assert field in text, field
    no_axe_violations(page)
    shoot(page, shots, "cases-case-presented")

    # A second tab renders the page now; its forms carry their own keys.
    stale = page.context.new_page()
    stale.goto(live + f"/cases/{fresh}")
    form = page.locator("form.action-form", has=page.get_by_role("button", name="Detain"))
    fields = {
        name: form.locator(f"input[name={name}]").input_value()
        for name in ("csrf_token", "action", "idempotency_key")
    }
    form.get_by_role("button", name="Detain", exact=True).click()
    page.wait_for_url(live + f"/cases/{fresh}?done=detain")
    assert "detained" in page.locator(".case-head").inner_text()
    # The same form sent again (a double submit): one detention, no refusal.
    again = page.request.post(live + f"/cases/{fresh}/actions", form=fields)
    assert again.ok and "not allowed" not in again.text()
    assert _history(stack, world, fresh).count("detain") == 1
    # The stale tab's "Detain" has a key of its own: the state refuses it, on the page (409).
    stale.get_by_role("button", name="Detain", exact=True).click()
    alert = stale.get_by_role("alert")
    assert "not allowed in state 'detained'" in alert.inner_text()
    no_axe_violations(stale)
    stale.close()

    page.get_by_role("button", name="Send notice").click()
    link = page.locator(".party-link").inner_text()
    assert "/case-link/" in link
    page.get_by_role("button", name="Seize · needs a second officer").click()
    page.wait_for_url(live + f"/cases/{fresh}?done=pending")
    page.get_by_role("button", name="Approve seize").click()
    assert "second officer" in page.get_by_role("alert").inner_text()  # not the requester
    assert "notice sent" in page.locator(".case-head").inner_text()
    no_axe_violations(page)
    shoot(page, shots, "cases-case-pending-approval")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live, "oscar@cbp.example")
    page.wait_for_url(live + "/")
    page.goto(live + f"/cases/{fresh}")
    page.get_by_role("button", name="Approve seize").click()
    page.wait_for_url(live + f"/cases/{fresh}?done=approved_seize")
    assert "seized" in page.locator(".case-head").inner_text()
    timeline = page.locator("ol.timeline").inner_text()
    assert "officer (Olivia) · approved by Oscar" in timeline  # names, not actor keys
    documents = page.get_by_role("link", name="Notice of seizure (PDF)")
    response = page.request.get(live + documents.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    no_axe_violations(page)
    shoot(page, shots, "cases-case-seized")


def test_holder_sees_the_redacted_case_and_answers(
    stack: Stack, world: Any, live: str, page: Any, shots: Path | None
) -> None:
    us = _open(stack, world)
    _act(stack, world, us, "detain")
    _act(stack, world, us, "send_notice")
    eu = _open(
        stack,
        world,
        profile="eu-standard",
        memberState="NL",
        port="NLRTM",
        currency="EUR",
        reference="MRN 23NL000000001",
        parties=[{"role": "declarant", "name": "Rotterdam Forwarding BV", "country": "NL"}],
    )
    _act(stack, world, eu, "detain")
    _act(stack, world, eu, "notify")
    sign_in(page, live, "ravi@watch.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Cases").click()
    rows = page.locator("ol.cases > li")
    assert rows.count() == 2
    assert AWB not in page.locator("main").inner_text()  # the reference is not the holder's
    no_axe_violations(page)
    shoot(page, shots, "cases-holder-list")

    page.goto(live + f"/cases/{us}")
    text = page.locator("main").inner_text()
    assert "USLAX" in text and "wrist watches bearing the mark" in text  # limited information
    assert NAME not in text and AWB not in text and "USD" not in text  # not at this stage
    assert page.get_by_role("button", name="Detain", exact=True).count() == 0
    no_axe_violations(page)
    shoot(page, shots, "cases-holder-us")
    page.get_by_role("button", name="Confirm the goods infringe").click()
    page.wait_for_url(live + f"/cases/{us}?done=confirm_infringement")
    assert page.get_by_role("button", name="Post a bond").count() == 0  # not before the answer
    _act(stack, world, us, "answer")  # the officer records the importer's answer
    page.goto(live + f"/cases/{us}")
    page.get_by_label("amount (post bond)").fill("USD 5,000")
    page.get_by_role("button", name="Post a bond").click()
    page.wait_for_url(live + f"/cases/{us}?done=post_bond")
    assert _history(stack, world, us)[-3:] == ["confirm_infringement", "answer", "post_bond"]

    page.goto(live + f"/cases/{eu}")
    assert "Rotterdam Forwarding BV" in page.locator("main").inner_text()  # Art. 17(4)
    page.get_by_label("text (confirm) · optional").fill("The marks are counterfeit.")
    page.get_by_role("button", name="Confirm infringement and consent to destruction").click()
    page.wait_for_url(live + f"/cases/{eu}?done=confirm")
    assert "holder confirmed" in page.locator(".case-head").inner_text()
    page.get_by_role("link", name="Consent form (PDF)").wait_for()
    no_axe_violations(page)
    shoot(page, shots, "cases-holder-eu-confirmed")


def test_importer_link_answers_once(
    stack: Stack, world: Any, live: str, page: Any, shots: Path | None
) -> None:
    case = _open(stack, world)
    _act(stack, world, case, "detain")
    token = _act(stack, world, case, "send_notice")["partyLink"]
    page.goto(live + f"/case-link/{token}")
    text = page.locator("main").inner_text()
    assert NAME in text and "watches jewelry" in text and "Customs notice" in text
    assert page.get_by_role("link", name="Notice of detention (PDF)").count() == 1
    no_axe_violations(page)
    shoot(page, shots, "cases-link")
    page.get_by_label("Your explanation (optional)").fill("Bought from the brand's distributor.")
    csrf = page.locator("input[name=csrf_token]").input_value()
    page.get_by_role("button", name="Send answer").click()
    assert "was recorded" in page.get_by_role("status").inner_text()
    assert "answered" in page.locator(".case-head").inner_text()
    shoot(page, shots, "cases-link-answered")
    # The same form sent again: the link answers once, and says so on the page.
    again = page.request.post(
        live + f"/case-link/{token}", form={"csrf_token": csrf, "action": "answer", "text": "x"}
    )
    assert again.status == 409 and "already used" in again.text()
    assert _history(stack, world, case).count("answer") == 1
    page.goto(live + f"/case-link/{token}")
    assert "already given" in page.locator("main").inner_text()
    no_axe_violations(page)
    response = page.goto(live + "/case-link/" + "x" * 43)
    assert response is not None and response.status == 404


def test_another_agencys_officer_is_refused(stack: Stack, world: Any, live: str, page: Any) -> None:
    case = _open(stack, world)
    sign_in(page, live, "jane@jfk.example")
    page.wait_for_url(live + "/")
    page.goto(live + "/cases")
    assert page.locator("ol.cases > li").count() == 0
    response = page.goto(live + f"/cases/{case}")
    assert response is not None and response.status == 404
    assert f"no case '{case}'" in page.get_by_role("alert").inner_text()
    no_axe_violations(page)


def test_bad_input_on_the_case_pages_is_a_message(stack: Stack, world: Any) -> None:
    """Every bad form or address is a page saying what is wrong, never a stack trace, and
    changes nothing."""
    from fastapi.testclient import TestClient

    from tests.people import csrf_of
    from tests.people import sign_in as sign_in_client

    stack.gateway.settings.login_failure_delay = 0.0
    case = _open(stack, world)
    client = TestClient(stack.client.app)
    assert sign_in_client(client, "olivia@cbp.example").status_code == 303
    html = client.get(f"/cases/{case}").text
    csrf = csrf_of(html)
    url = f"/cases/{case}/actions"

    def post(**form: str) -> Any:
        r = client.post(url, data={"csrf_token": csrf, **form}, follow_redirects=False)
        assert "Traceback" not in r.text
        return r

    assert "Choose an action" in post(action="", idempotency_key="k1").text
    unknown = post(action="fly", idempotency_key="k2")
    assert unknown.status_code == 422 and "no action &#39;fly&#39;" in unknown.text
    missing = post(action="custody", idempotency_key="k3")
    assert missing.status_code == 422 and "needs: storage" in missing.text
    late = post(action="forfeit", idempotency_key="k4")
    assert late.status_code == 409 and "not allowed in state &#39;presented&#39;" in late.text
    assert post(action="detain", idempotency_key="bad key!").status_code == 422
    no_token = client.post(url, data={"action": "detain", "idempotency_key": "k5"})
    assert no_token.status_code == 403 and "Form refused" in no_token.text
    assert _history(stack, world, case) == ["open"]  # nothing half-written

    approve = client.post(
        f"/cases/{case}/approve/00000000-0000-0000-0000-000000000000",
        data={"csrf_token": csrf, "idempotency_key": "a"},
    )
    assert approve.status_code == 404 and "no action" in approve.text
    assert client.get("/cases/not-a-case").status_code == 404
    listed = client.get("/cases?page_no=abc&state=" + "x" * 500)
    assert listed.status_code == 200 and "No cases match." in listed.text
    assert client.get("/case-link/short").status_code == 404
    answer = client.post("/case-link/" + "x" * 43, data={"action": "answer"})
    assert answer.status_code == 403 and "Form refused" in answer.text
    missing_doc = client.get(f"/v1/cases/{case}/documents/notice_of_detention")
    assert missing_doc.status_code == 409 and "presented" in missing_doc.json()["error"]["message"]


def test_the_list_pages_by_twenty_and_filters_open_cases(stack: Stack, world: Any) -> None:
    from fastapi.testclient import TestClient

    from tests.people import sign_in as sign_in_client

    stack.gateway.settings.login_failure_delay = 0.0
    ids = [_open(stack, world, reference=f"AWB 100-{n:08d}") for n in range(21)]
    _act(stack, world, ids[0], "release")  # closed: no clock, listed last, not "open"
    client = TestClient(stack.client.app)
    assert sign_in_client(client, "olivia@cbp.example").status_code == 303
    first = client.get("/cases").text
    assert first.count('class="case-link"') == 20 and "page_no=2" in first
    second = client.get("/cases?page_no=2").text
    assert second.count('class="case-link"') == 1 and "AWB 100-00000000" in second
    assert "No deadline running" in second and "page_no=3" not in second
    opened = client.get("/cases?open=1&page_no=2").text
    assert opened.count('class="case-link"') == 0
    released = client.get("/cases?state=released").text
    assert released.count('class="case-link"') == 1 and "AWB 100-00000000" in released


def test_the_case_page_lists_its_scanned_items_by_stage(
    stack: Stack, world: Any, live: str, page: Any, shots: Path | None
) -> None:
    from tests.stack import GTIN

    key = world["customs"]["apiKey"]
    stack.enroll(world["holder"]["apiKey"], serials=["SN0001", "SN0002"])
    stack.sync()
    scans = [
        stack.verify(
            key, gtin=GTIN, lot="L1", serial=s, location={"unlocode": "USLAX"}, shipment="AWB 42"
        )["scanId"]
        for s in ("SN0001", "SN0002")
    ]
    stack.gateway.scans.flush()  # scans are stored by the writer thread
    r = stack.client.post(
        "/v1/cases",
        json={
            "profile": "us-trademark",
            "source": "scan",
            "scanId": scans[0],
            "mode": "express",
            "presentedAt": datetime.now(UTC).isoformat(),
        },
        headers=stack.headers(key),
    )
    assert r.status_code == 201, r.text
    case = r.json()["id"]
    sign_in(page, live, "olivia@cbp.example")
    page.wait_for_url(live + "/")
    page.goto(live + f"/cases/{case}")
    table = page.get_by_role("table", name="Scanned items")
    text = table.inner_text()
    assert "SN0001" in text and "SN0002" in text and "USLAX" in text
    no_axe_violations(page)
    shoot(page, shots, "cases-items-officer")

    for name, kind in (("goods.png", "image_redacted"), ("memo.pdf", "document")):
        data = PNG if name.endswith(".png") else b"%PDF-1.4\ntrailer<<>>\n%%EOF\n"
        media = "image/png" if name.endswith(".png") else "application/pdf"
        r = stack.client.post(
            f"/v1/cases/{case}/attachments",
            files={"file": (name, data, media)},
            data={"kind": kind},
            headers=stack.headers(key),
        )
        assert r.status_code == 201, r.text
    page.goto(live + f"/cases/{case}")
    files = page.locator("ul[aria-labelledby=attachments-heading]").inner_text()
    assert "goods.png" in files and "memo.pdf" in files

    page.context.clear_cookies()
    sign_in(page, live, "ravi@watch.example")
    page.wait_for_url(live + "/")
    page.goto(live + f"/cases/{case}")
    text = page.locator("main").inner_text()
    assert "SN0001" not in text and "goods.png" not in text  # stage none: neither
    _act(stack, world, case, "request_help")  # the redacted stage: the redacted image
    page.goto(live + f"/cases/{case}")
    link = page.get_by_role("link", name="goods.png")
    assert "memo.pdf" not in page.locator("main").inner_text()
    got = page.request.get(live + str(link.get_attribute("href")))
    assert got.status == 200 and got.body() == PNG
    no_axe_violations(page)
    shoot(page, shots, "cases-items-holder-redacted")
    for action in ("detain", "send_notice", "answer", "disclose_unredacted"):
        _act(stack, world, case, action)
    page.goto(live + f"/cases/{case}")
    assert "SN0002" in page.get_by_role("table", name="Scanned items").inner_text()
