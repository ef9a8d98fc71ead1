"""A rights holder's account pages in a real chromium, on a real gateway and chain: alerts on
its own products (filters by rule, port, severity and dates, evidence, another holder's
alerts absent, the same set GET /v1/alerts gives it), webhooks (an endpoint added, the
secret shown once, a test event arriving at a real local receiver with a valid signature,
the deliveries list, redelivery, disable and delete), API keys (made, used against the API,
rotated, revoked, each behind a confirmation naming the key), and People for a holder's and
the registry admin's org admins. Every other role is refused; forms without a CSRF token
are refused and change nothing. axe-core clean; screenshots at phone and desktop size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain.node import LocalNode
from ledger.webhooks import verify_signature
from tests.api.test_webhooks import FAST, Receiver
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import csrf_of, make_user
from tests.people import sign_in as people_sign_in
from tests.stack import GTIN, Stack, running_stack

GTIN_B = "08712345000004"  # another company prefix: another holder's product
POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]}


@pytest.fixture
def stack(anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[Stack]:
    """The usual stack, with deliveries to the loopback receiver allowed (and fast retries)."""
    with running_stack(anvil, database, tmp_path, **FAST) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def _scan(stack: Stack, key: str, serial: str, port: str, gtin: str = GTIN) -> dict[str, Any]:
    return stack.verify(
        key,
        gtin=gtin,
        serial=serial,
        location={"unlocode": port},
        scanned_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    )


def _holders_with_alerts(stack: Stack) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Acme (GTIN) and Beta (GTIN_B), each with a batch released for NL/DE; customs scans
    raise diversion alerts at two ports on Acme's items and one on Beta's."""
    acme = stack.org("Acme", "rights_holder")
    beta = stack.org("Beta", "rights_holder", gtins=(GTIN_B,))
    stack.enroll(acme["apiKey"], route_policy=POLICY)
    stack.enroll(beta["apiKey"], lot="B1", gtin=GTIN_B, route_policy=POLICY)
    stack.sync()
    customs = stack.org("Customs", "customs")
    _scan(stack, customs["apiKey"], "SN0001", "USLAX")
    _scan(stack, customs["apiKey"], "SN0002", "USNYC")
    _scan(stack, customs["apiKey"], "SN0003", "NLRTM")  # inside its markets: no alert
    _scan(stack, customs["apiKey"], "SN0009", "USLAX", gtin=GTIN_B)
    stack.sync()
    return acme, beta, customs


def _api_alerts(stack: Stack, key: str, **params: Any) -> list[dict[str, Any]]:
    r = stack.client.get("/v1/alerts", params=params, headers=stack.headers(key))
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def _shown(page: Any) -> list[str]:
    return [
        page.locator("li.alert-row").nth(i).get_attribute("id").removeprefix("alert-")
        for i in range(page.locator("li.alert-row").count())
    ]


def test_holder_filters_its_alerts_and_sees_the_evidence(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    acme, beta, _ = _holders_with_alerts(stack)
    mine = _api_alerts(stack, acme["apiKey"])
    theirs = _api_alerts(stack, beta["apiKey"])
    assert len(mine) == 2 and len(theirs) == 1
    make_user(stack, acme["apiKey"], "ravi@acme.example", "analyst")
    sign_in(page, live, "ravi@acme.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Alerts on your products").click()
    page.wait_for_url(live + "/product-alerts")
    assert _shown(page) == [a["alertId"] for a in mine]  # newest first, as the API lists them
    assert theirs[0]["alertId"] not in page.content() and GTIN_B not in page.content()
    first = page.locator("li.alert-row").first
    assert "DIVERSION_MARKET" in first.inner_text() and "USNYC" in first.inner_text()
    evidence = first.locator(".evidence").inner_text()
    assert "USNYC" in evidence and "Genuine" in evidence  # the scan: place, verdict, time
    assert "UTC" in evidence
    assert first.locator(".policy").inner_text() == "markets: DE, NL; nodes: CNSHA, NLRTM"
    assert first.get_by_role("button").count() == 0  # customs acknowledge and resolve
    no_axe_violations(page)
    shoot(page, shots, "product-alerts")

    # Each filter gives what the API gives for the same filter.
    page.get_by_label("Port (UN/LOCODE)").fill("USLAX")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/product-alerts?rule=&port=USLAX*")
    assert _shown(page) == [a["alertId"] for a in _api_alerts(stack, acme["apiKey"], port="USLAX")]
    assert len(_shown(page)) == 1 and "SN0001" in page.locator("li.alert-row").inner_text()
    page.get_by_label("Port (UN/LOCODE)").fill("")
    page.get_by_label("Rule").fill("clone")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**rule=clone*")
    assert _shown(page) == [] and page.get_by_role("status").inner_text() == "No alerts match."
    page.get_by_label("Rule").fill("diversion")
    severity = mine[0]["severity"]
    page.get_by_label("Severity").select_option(severity)
    today = datetime.now(UTC).date()
    page.get_by_label("From", exact=True).fill(today.isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**severity={severity}*")
    assert set(_shown(page)) == {a["alertId"] for a in mine}
    shoot(page, shots, "product-alerts-filtered")
    page.get_by_label("To", exact=True).fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("From", exact=True).fill((today - timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**to=*")
    assert _shown(page) == []
    other = "low" if severity != "low" else "critical"
    page.goto(live + f"/product-alerts?severity={other}")
    assert _shown(page) == []
    response = page.goto(live + f"/product-alerts?from={today}&to={today - timedelta(days=1)}")
    assert (
        response.status == 422 and "is after the to date" in page.get_by_role("alert").inner_text()
    )
    no_axe_violations(page)

    # Beta's analyst sees Beta's alert and none of Acme's.
    page.get_by_role("button", name="Sign out").click()
    make_user(stack, beta["apiKey"], "bea@beta.example", "analyst")
    sign_in(page, live, "bea@beta.example")
    page.wait_for_url(live + "/")
    page.goto(live + "/product-alerts")
    assert _shown(page) == [theirs[0]["alertId"]]


def test_product_alerts_page_and_refuses_bad_filters(stack: Stack) -> None:
    """Paging through the real routes (no browser): 22 alerts, 20 a page; bad filters a 422
    page with the message, never a 500."""
    acme = stack.org("Acme", "rights_holder")
    stack.enroll(acme["apiKey"], serials=[f"SN{i:04d}" for i in range(22)], route_policy=POLICY)
    stack.sync()
    customs = stack.org("Customs", "customs")
    for i in range(22):
        _scan(stack, customs["apiKey"], f"SN{i:04d}", "USLAX")
    stack.sync()
    assert len(_api_alerts(stack, acme["apiKey"])) == 22
    make_user(stack, acme["apiKey"], "ravi@acme.example", "analyst")
    client = stack.client
    assert people_sign_in(client, "ravi@acme.example").status_code == 303
    first = client.get("/product-alerts", params={"port": "USLAX"})
    assert first.status_code == 200 and first.text.count('class="row alert-row') == 20
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = client.get("/product-alerts", params={"port": "USLAX", "page": "2"})
    assert second.text.count('class="row alert-row') == 2 and 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text
    for params, words in (
        ({"page": "0"}, "page must be a whole number"),
        ({"port": "NL1"}, "UN/LOCODE"),
        ({"rule": "no rule!"}, "is not a rule"),
        ({"severity": "huge"}, "is not one of low"),
        ({"from": "2026-13-01"}, "is not a date"),
        ({"to": "1999-12-31"}, "out of range"),
    ):
        r = client.get("/product-alerts", params=params)
        assert r.status_code == 422 and words in r.text and "Traceback" not in r.text, params


def test_webhook_endpoint_test_event_deliveries_and_redelivery(
    stack: Stack, live: str, page: Any, shots: Path | None, receiver: Receiver
) -> None:
    acme = stack.org("Acme", "rights_holder")
    make_user(stack, acme["apiKey"], "ada@acme.example", "admin")
    sign_in(page, live, "ada@acme.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Webhooks").click()
    page.wait_for_url(live + "/webhooks")
    assert page.get_by_role("status").last.inner_text() == "No deliveries match."
    page.get_by_label("Receiver URL (https)").fill("ftp://hooks.acme.example/x")
    page.get_by_role("button", name="Add the endpoint").click()
    assert "must be http or https" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Receiver URL (https)").input_value() == "ftp://hooks.acme.example/x"
    r = stack.client.get(
        f"/v1/organizations/{acme['id']}/webhook", headers=stack.headers(acme["apiKey"])
    )
    assert r.status_code == 404  # nothing stored
    page.get_by_label("Receiver URL (https)").fill(receiver.url)
    page.get_by_label("Send alerts of severity").select_option("medium")
    page.get_by_label("diversion").check()
    page.get_by_role("button", name="Add the endpoint").click()
    secret = page.locator("#shown-secret").inner_text()
    assert secret and "shown once" in page.locator(".secret").inner_text()
    # the copy button is shown by the page's script (hidden without JS): wait for it
    page.get_by_role("button", name="Copy the secret").wait_for(state="visible")
    assert receiver.url in page.locator(".endpoint").inner_text()
    assert "severity medium and above; diversion" in page.locator(".endpoint").inner_text()
    no_axe_violations(page)
    shoot(page, shots, "webhooks-secret")
    page.goto(live + "/webhooks")
    assert page.locator("#shown-secret").count() == 0 and secret not in page.content()

    page.get_by_role("button", name="Send a test event").click()
    page.wait_for_url("**/webhooks?done=test")
    stack.gateway.webhooks.drain()
    [got] = receiver.requests
    verify_signature(secret, got.headers["BorderLedger-Signature"], got.body)  # the shown secret
    assert json.loads(got.body)["type"] == "webhook.test"
    page.goto(live + "/webhooks")
    delivery = page.locator("li.delivery")
    assert delivery.count() == 1
    assert delivery.get_attribute("data-delivery") == got.headers["BorderLedger-Delivery"]
    assert delivery.get_attribute("data-status") == "delivered"
    assert delivery.locator(".attempts").inner_text() == "1"
    assert delivery.locator(".code").inner_text() == "200"
    no_axe_violations(page)
    shoot(page, shots, "webhooks")

    delivery.get_by_role("button", name="Redeliver").click()
    page.wait_for_url("**/webhooks?done=redelivered")
    stack.gateway.webhooks.drain()
    assert receiver.ids() == [got.headers["BorderLedger-Delivery"]] * 2
    page.goto(live + "/webhooks?status=failed")
    assert page.locator("li.delivery").count() == 0
    page.goto(live + "/webhooks?status=delivered&event=webhook.test")
    assert page.locator("li.delivery").count() == 1
    response = page.goto(live + "/webhooks?status=lost")
    assert response.status == 422 and "lost" in page.get_by_role("alert").inner_text()

    # Disable, then delete behind a confirmation naming the endpoint.
    page.goto(live + "/webhooks")
    page.get_by_role("button", name="Disable").click()
    page.wait_for_url("**/webhooks?done=disabled")
    assert page.locator(".endpoint-state").inner_text() == "disabled"
    page.get_by_label("Send alerts of severity").select_option("high")
    page.get_by_role("button", name="Save the endpoint").click()
    page.wait_for_url("**/webhooks?done=saved")
    assert page.locator(".endpoint-state").inner_text() == "disabled"  # an edit keeps it
    assert "severity high and above" in page.locator(".endpoint").inner_text()
    page.get_by_role("link", name="Delete the endpoint").click()
    assert receiver.url in page.locator(".question").inner_text()
    no_axe_violations(page)
    page.get_by_role("button", name="Delete the endpoint").click()
    page.wait_for_url("**/webhooks?done=deleted")
    assert page.locator(".endpoint").count() == 0
    r = stack.client.get(
        f"/v1/organizations/{acme['id']}/webhook", headers=stack.headers(acme["apiKey"])
    )
    assert r.status_code == 404


def _me(live: str, key: str) -> httpx.Response:
    """The API as a machine calls it, on the gateway that serves the pages (its key cache is
    the one the page clears)."""
    return httpx.get(live + "/v1/organizations/me", headers={"X-API-Key": key}, timeout=10)


def test_api_key_created_used_rotated_and_revoked(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    acme = stack.org("Acme", "rights_holder")
    make_user(stack, acme["apiKey"], "ada@acme.example", "admin")
    sign_in(page, live, "ada@acme.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url(live + "/api-keys")
    page.get_by_label("Name (what the key is for)").fill("ERP sync")
    page.get_by_role("button", name="Create the key").click()
    key = page.locator("#new-key").inner_text()
    assert key.startswith("blk_")
    page.get_by_role("button", name="Copy the key").wait_for(state="visible")
    no_axe_violations(page)
    shoot(page, shots, "api-keys-created")
    me = _me(live, key)
    assert me.status_code == 200 and me.json()["name"] == "Acme"
    page.goto(live + "/api-keys")
    assert key not in page.content()  # shown once
    row = page.locator(f"li[data-prefix='{key[:12]}']")
    assert "ERP sync" in row.inner_text() and row.get_attribute("data-state") == "active"
    assert "rights holder" in page.locator(".muted").first.inner_text()

    row.get_by_role("link", name=f"Rotate ERP sync {key[:12]}").click()
    assert f"“ERP sync” ({key[:12]}…)" in page.locator(".question").inner_text()
    no_axe_violations(page)
    shoot(page, shots, "api-keys-confirm")
    page.get_by_role("button", name="Rotate the key").click()
    new = page.locator("#new-key").inner_text()
    assert new.startswith("blk_") and new != key
    assert _me(live, key).status_code == 401
    assert _me(live, new).status_code == 200

    page.goto(live + "/api-keys")
    assert page.locator(f"li[data-prefix='{key[:12]}']").get_attribute("data-state") == "revoked"
    page.get_by_role("link", name=f"Revoke ERP sync {new[:12]}").click()
    assert f"Revoke the API key “ERP sync” ({new[:12]}…)?" in page.locator(".question").inner_text()
    page.get_by_role("button", name="Revoke the key").click()
    page.wait_for_url("**/api-keys?done=revoked")
    assert page.locator(f"li[data-prefix='{new[:12]}']").get_attribute("data-state") == "revoked"
    assert _me(live, new).status_code == 401
    no_axe_violations(page)
    shoot(page, shots, "api-keys")


def test_people_for_a_holders_and_the_registry_admins_org_admins(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    acme = stack.org("Acme", "rights_holder")
    make_user(stack, acme["apiKey"], "ada@acme.example", "admin")
    make_user(stack, acme["apiKey"], "ravi@acme.example", "analyst")
    sign_in(page, live, "ada@acme.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="People").click()
    assert page.get_by_text("analyst · active").count() == 1
    assert page.get_by_text("admin · active").count() == 1
    page.get_by_role("link", name="Disable ravi@acme.example").click()
    assert "Disable Ravi (ravi@acme.example)?" in page.locator(".question").inner_text()
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(live + "/people")
    assert page.get_by_text("analyst · active").count() == 1  # cancelled: nothing changed
    page.get_by_role("link", name="Disable ravi@acme.example").click()
    page.get_by_role("button", name="Disable the user").click()
    page.wait_for_url(live + "/people")
    assert page.get_by_text("analyst · disabled").count() == 1
    page.get_by_role("link", name="Enable ravi@acme.example").click()
    assert "Enable Ravi (ravi@acme.example)?" in page.locator(".question").inner_text()
    page.get_by_role("button", name="Enable the user").click()
    assert page.get_by_text("analyst · active").count() == 1
    no_axe_violations(page)
    shoot(page, shots, "people-holder")

    page.get_by_role("button", name="Sign out").click()
    make_user(stack, stack.admin_key, "root@registry.example", "admin")
    make_user(stack, stack.admin_key, "rue@registry.example", "admin")
    sign_in(page, live, "root@registry.example")
    page.wait_for_url(live + "/")
    page.goto(live + "/people")
    page.get_by_role("link", name="Disable rue@registry.example").click()
    page.get_by_role("button", name="Disable the user").click()
    page.wait_for_url(live + "/people")
    assert page.get_by_role("link", name="Enable rue@registry.example").count() == 1
    page.goto(live + "/api-keys")
    assert "registry admin" in page.locator(".muted").first.inner_text()
    assert page.locator("li[data-state='active']").count() >= 1
    assert page.get_by_role("link", name="Webhooks").count() == 0
    assert page.goto(live + "/webhooks").status == 403


def test_every_other_role_is_refused(stack: Stack, live: str, page: Any) -> None:
    acme = stack.org("Acme", "rights_holder")
    customs = stack.org("Customs", "customs")
    make_user(stack, acme["apiKey"], "ravi@acme.example", "analyst")
    make_user(stack, customs["apiKey"], "cleo@customs.example", "admin")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    refused = {
        "ravi@acme.example": ("/webhooks", "/api-keys", "/people"),
        "cleo@customs.example": ("/webhooks", "/product-alerts"),
        "olivia@customs.example": ("/webhooks", "/api-keys", "/people", "/product-alerts"),
    }
    for email, paths in refused.items():
        sign_in(page, live, email)
        page.wait_for_url(live + "/")
        for path in paths:
            assert page.locator(f"a[href='{path}']").count() == 0, (email, path)
            response = page.goto(live + path)
            assert response.status == 403, (email, path)
            assert page.get_by_role("alert").count() == 1
        no_axe_violations(page)
        page.goto(live + "/")  # the 403 page has no header
        page.get_by_role("button", name="Sign out").click()
    page.goto(live + "/api-keys")
    assert page.url.startswith(live + "/login")  # signed out: to sign in


def test_forms_without_csrf_and_other_organizations_objects_are_refused(
    stack: Stack, receiver: Receiver
) -> None:
    """Plain form posts (no script): without the CSRF token a 403 page and nothing changes;
    another organization's key or delivery is not found, and stays as it was."""
    acme = stack.org("Acme", "rights_holder")
    beta = stack.org("Beta", "rights_holder", gtins=())
    stack.client.put(
        f"/v1/organizations/{beta['id']}/webhook",
        json={"url": receiver.url},
        headers=stack.headers(beta["apiKey"]),
    )
    stack.client.post(
        f"/v1/organizations/{beta['id']}/webhook/test", headers=stack.headers(beta["apiKey"])
    )
    [theirs] = stack.client.get(
        "/v1/webhook-deliveries", headers=stack.headers(beta["apiKey"])
    ).json()
    beta_keys = stack.client.get("/v1/api-keys", headers=stack.headers(beta["apiKey"])).json()
    make_user(stack, acme["apiKey"], "ada@acme.example", "admin")
    client = stack.client
    assert people_sign_in(client, "ada@acme.example").status_code == 303
    csrf = csrf_of(client.get("/api-keys").text)
    keys_before = client.get("/v1/api-keys").json()
    for path, data in (
        ("/api-keys", {"name": "sneaky"}),
        (f"/api-keys/{keys_before[0]['id']}/revoke", {}),
        ("/webhooks", {"url": receiver.url}),
        ("/webhooks/test", {}),
        (f"/webhooks/deliveries/{theirs['deliveryId']}/redeliver", {}),
    ):
        r = client.post(path, data={**data, "csrf_token": "forged"})
        assert r.status_code == 403 and "Form refused" in r.text, path
    assert client.get("/v1/api-keys").json() == keys_before
    assert client.get(f"/v1/organizations/{acme['id']}/webhook").status_code == 404

    r = client.post(f"/api-keys/{beta_keys[0]['id']}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 404 and "no API key" in r.text
    assert client.get(f"/api-keys/{beta_keys[0]['id']}/revoke").status_code == 404
    me = stack.client.get("/v1/organizations/me", headers=stack.headers(beta["apiKey"]))
    assert me.status_code == 200  # Beta's key still works
    r = client.post(
        f"/webhooks/deliveries/{theirs['deliveryId']}/redeliver", data={"csrf_token": csrf}
    )
    assert r.status_code == 404 and "no webhook delivery" in r.text
    r = client.post("/webhooks/test", data={"csrf_token": csrf})  # no endpoint yet
    assert r.status_code == 404 and "has no webhook endpoint" in r.text
    r = client.post("/api-keys", data={"name": "", "csrf_token": csrf})
    assert r.status_code == 422 and "1-100 characters" in r.text
    r = client.post("/webhooks", data={"url": "not a url", "csrf_token": csrf})
    assert r.status_code == 422 and "Traceback" not in r.text
    r = client.post(
        "/webhooks",
        data={"url": receiver.url, "min_severity": "huge", "csrf_token": csrf},
    )
    assert r.status_code == 422 and "minSeverity" in r.text
    assert client.get(f"/v1/organizations/{acme['id']}/webhook").status_code == 404
