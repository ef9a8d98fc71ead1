"""Journeys through the officer's History and the agency's Alerts inbox in a real chromium:
scans made on the Scan page appear in History (filtered by port and by finding, with links
to the alert they raised); the alert is acknowledged, refused a resolution without a note,
then resolved with one (htmx swaps the one alert; the API sees the same state and note); a
rights holder's user is refused both pages. axe-core clean; screenshots at phone and
desktop size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import csrf_of, make_user
from tests.people import sign_in as people_sign_in
from tests.stack import GTIN, Stack

POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]}


def _scan(page: Any, serial: str, port: str) -> None:
    page.get_by_label("GTIN").fill(GTIN)
    page.get_by_label("Serial number").fill(serial)
    page.get_by_label("Port (UN/LOCODE, optional)").fill(port)
    page.get_by_role("button", name="Check").click()
    page.locator(f"#verdict dd:has-text('{serial}')").wait_for()


def test_history_filters_and_the_alert_is_acknowledged_then_resolved_with_a_note(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"], route_policy=POLICY)
    stack.sync()
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    sign_in(page, live, "olivia@customs.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Scan").click()
    _scan(page, "SN0001", "NLRTM")  # inside the batch's markets: no finding
    _scan(page, "SN0002", "USLAX")  # outside them: a diversion alert
    stack.sync()

    page.goto(live + "/")
    page.get_by_role("link", name="History").click()
    page.wait_for_url(live + "/history")
    rows = page.locator("ol.rows > li")
    assert rows.count() == 2
    assert "SN0002" in rows.nth(0).inner_text()  # newest first
    assert "USLAX" in rows.nth(0).inner_text() and "SN0001" in rows.nth(1).inner_text()
    assert rows.nth(0).locator(".pill").inner_text() == "Genuine, unsigned"
    assert rows.nth(0).locator("a.alert-link").count() == 1
    assert "DIVERSION_MARKET" in rows.nth(0).locator("a.alert-link").inner_text()
    assert rows.nth(1).locator("a.alert-link").count() == 0
    no_axe_violations(page)
    shoot(page, shots, "history")

    page.get_by_label("Port").fill("NLRTM")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(live + "/history?port=NLRTM&rule=")
    assert rows.count() == 1 and "SN0001" in rows.nth(0).inner_text()
    page.get_by_label("Port").fill("")
    page.get_by_label("Finding").fill("diversion")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/history?port=&rule=diversion")
    assert rows.count() == 1 and "SN0002" in rows.nth(0).inner_text()
    shoot(page, shots, "history-filtered")
    page.get_by_label("Finding").fill("")
    page.get_by_label("Port").fill("NL1")
    page.get_by_role("button", name="Filter").click()
    assert "UN/LOCODE" in page.get_by_role("alert").inner_text()
    no_axe_violations(page)

    # The alert link leads to the inbox.
    page.goto(live + "/history")
    page.locator("a.alert-link").click()
    page.wait_for_url("**/alerts#alert-*")
    alert = page.locator("li.alert-row")
    assert alert.count() == 1
    assert alert.get_attribute("data-status") == "open"
    assert "DIVERSION_MARKET" in alert.inner_text()
    assert "USLAX" in alert.locator(".evidence").inner_text()  # the officer's own scan
    no_axe_violations(page)
    shoot(page, shots, "alerts")

    alert.get_by_role("button", name="Acknowledge").click()
    page.locator("li.alert-row[data-status='acknowledged']").wait_for()
    assert page.url.startswith(live + "/alerts")  # swapped in place
    alert.get_by_role("button", name="Resolve").click()  # no note
    page.locator("li.alert-row .error").wait_for()
    assert "needs a note" in alert.locator(".error").inner_text()
    assert alert.get_attribute("data-status") == "acknowledged"
    no_axe_violations(page)
    alert.get_by_label("Note (what was found)").fill("Grey import, released with warning")
    alert.get_by_role("button", name="Resolve").click()
    page.locator("li.alert-row[data-status='resolved']").wait_for()
    assert "Grey import, released with warning" in alert.locator(".note").inner_text()
    assert alert.get_by_role("button", name="Resolve").count() == 0
    no_axe_violations(page)
    shoot(page, shots, "alerts-resolved")

    # The API (same scoping) sees what the page did.
    [listed] = stack.client.get("/v1/alerts", headers=stack.headers(customs["apiKey"])).json()
    assert listed["status"] == "resolved"
    assert listed["note"] == "Grey import, released with warning"
    # Filters: open alerts — none left; resolved — this one; a bad state: a message.
    page.goto(live + "/alerts?status=open")
    assert page.locator("li.alert-row").count() == 0
    assert page.get_by_role("status").inner_text() == "No alerts match."
    page.goto(live + "/alerts?status=resolved&port=USLAX&rule=diversion")
    assert page.locator("li.alert-row").count() == 1
    response = page.goto(live + "/alerts?status=gone")
    assert response.status == 422
    assert "gone" in page.get_by_role("alert").inner_text()


def test_another_agencys_alert_is_not_in_the_inbox(stack: Stack, live: str, page: Any) -> None:
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"], route_policy=POLICY)
    stack.sync()
    other = stack.org("Customs US", "customs")
    stack.verify(other["apiKey"], gtin=GTIN, serial="SN0009", location={"unlocode": "USLAX"})
    stack.sync()
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    sign_in(page, live, "olivia@customs.example")
    page.wait_for_url(live + "/")
    page.goto(live + "/alerts")
    assert page.locator("li.alert-row").count() == 0
    page.goto(live + "/history")
    assert page.locator("ol.rows > li").count() == 0  # and the US agency's scan is not hers


def test_a_rights_holders_user_is_refused_history_and_alerts(
    stack: Stack, live: str, page: Any
) -> None:
    holder = stack.org("Acme", "rights_holder")
    make_user(stack, holder["apiKey"], "ravi@acme.example", "analyst")
    sign_in(page, live, "ravi@acme.example")
    page.wait_for_url(live + "/")
    assert page.get_by_role("link", name="Alerts", exact=True).count() == 0
    assert page.get_by_role("link", name="History").count() == 0
    for path in ("/history", "/alerts"):
        response = page.goto(live + path)
        assert response.status == 403
        assert "customs officers" in page.get_by_role("alert").inner_text()
        no_axe_violations(page)


def test_history_pages_by_25_and_refuses_a_bad_page(stack: Stack) -> None:
    """Paging through the real routes (no browser needed): 27 scans by the user, 2 by
    another officer of the same agency (not hers)."""
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"])
    stack.sync()
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    for n in range(2):  # the agency's API key: not Olivia's scans
        stack.verify(customs["apiKey"], gtin=GTIN, serial=f"SN{900 + n:04d}")
    client = stack.client
    assert people_sign_in(client, "olivia@customs.example").status_code == 303
    token = csrf_of(client.get("/scan").text)
    for n in range(27):
        r = client.post(
            "/scan", data={"csrf_token": token, "gtin": GTIN, "serial": f"SN{n + 1:04d}"}
        )
        assert r.status_code == 200, r.text
    stack.sync()  # scan rows are written by the gateway's recorder: wait for them
    first = client.get("/history")
    assert first.status_code == 200
    assert first.text.count('class="row"') == 25
    assert "SN0027" in first.text and "SN0003" in first.text and "SN0002" not in first.text
    assert "SN0900" not in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = client.get("/history", params={"page": "2"})
    assert second.text.count('class="row"') == 2
    assert "SN0002" in second.text and "SN0001" in second.text
    assert 'rel="next"' not in second.text and 'rel="prev"' in second.text
    for bad in ("0", "x", "-1", "9999999"):
        r = client.get("/history", params={"page": bad})
        assert r.status_code == 422 and "page must be a whole number" in r.text
    r = client.get("/history", params={"rule": "no such rule!"})
    assert r.status_code == 422 and "is not a rule" in r.text


def test_alert_forms_without_htmx_and_bad_posts(stack: Stack) -> None:
    """The same forms posted plainly (no script): refusals are a message on the inbox page,
    nothing changed; a form without its CSRF token and another agency's alert are refused."""
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"], route_policy=POLICY)
    stack.sync()
    other = stack.org("Customs US", "customs")
    theirs = stack.verify(
        other["apiKey"], gtin=GTIN, serial="SN0009", location={"unlocode": "USLAX"}
    )
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    client = stack.client
    assert people_sign_in(client, "olivia@customs.example").status_code == 303
    token = csrf_of(client.get("/scan").text)
    r = client.post(
        "/scan", data={"csrf_token": token, "gtin": GTIN, "serial": "SN0002", "port": "USLAX"}
    )
    stack.sync()
    [alert] = client.get("/v1/alerts", headers=stack.headers(customs["apiKey"])).json()
    url = f"/alerts/{alert['alertId']}"
    r = client.post(f"{url}/resolve", data={"csrf_token": token, "note": "   "})
    assert r.status_code == 422 and "needs a note" in r.text
    assert f'id="alert-{alert["alertId"]}"' in r.text  # the inbox is still there
    r = client.post(f"{url}/acknowledge", data={"note": "x"})  # no CSRF token
    assert r.status_code == 403
    r = client.post(f"{url}/acknowledge", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    r = client.post(f"{url}/acknowledge", data={"csrf_token": token})
    assert r.status_code == 422 and "acknowledged; cannot mark it acknowledged" in r.text
    r = client.post(f"{url}/resolve", data={"csrf_token": token, "note": "x" * 2001})
    assert r.status_code == 422 and "too long" in r.text
    # another agency's alert: not found, as an unknown one
    [their_alert] = [f["alertId"] for f in theirs["findings"]]
    r = client.post(
        f"/alerts/{their_alert}/resolve", data={"csrf_token": token, "note": "mine now"}
    )
    assert r.status_code == 422 and "no alert" in r.text
    r = client.post(f"{url}/explode", data={"csrf_token": token})
    assert r.status_code == 404
    listed = client.get("/v1/alerts", headers=stack.headers(customs["apiKey"])).json()
    assert [a["status"] for a in listed] == ["acknowledged"]
    assert listed[0]["note"] is None
