"""The registry admin's operations pages in chromium (issue 15): locations (add, edit, a bad
UN/LOCODE refused with a message), route policies in force, the chain-writes queue (a write the
contract really reverted shows failed; after the cause is fixed, "Retry" lands it), and jobs
(an enrollment job queued, cancelled, retried to done). Other organizations get 403; a form
without the session's CSRF token is refused. Screenshots in docs/screenshots/admin-*.png."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.api.test_chain_writes import refused_registration
from tests.api.test_guides import guide_body
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import GTIN, Stack

ADMIN = "root@registry.example"


def _admin(stack: Stack) -> None:
    make_user(stack, stack.admin_key, ADMIN, "admin")


def test_admin_adds_and_edits_a_location_and_reads_route_policies(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    holder = stack.org("Acme", "rights_holder")
    customs = stack.org("US CBP", "customs")
    stack.sync()
    h, c = stack.headers(holder["apiKey"]), stack.headers(customs["apiKey"])
    stack.enroll(
        holder["apiKey"],
        lot="ROUTE1",
        route_policy={"markets": ["US"], "nodes": ["CNSHA", "USLAX"]},
    )
    # a published guide (markets FR, DE; routes CNSHA, NLRTM) is the default of the next lot
    gid = stack.client.post("/v1/guides", json=guide_body(), headers=h).json()["guideId"]
    for step, headers in (("submit", h), ("review", c), ("publish", c)):
        r = stack.client.post(f"/v1/guides/{gid}/{step}", json={}, headers=headers)
        assert r.status_code == 200, r.text
    stack.enroll(holder["apiKey"], lot="ROUTE2")
    _admin(stack)
    sign_in(page, live, ADMIN)
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Locations and route policies").click()
    page.wait_for_url(live + "/admin/locations")
    page.get_by_label("UN/LOCODE or name").fill("rotterdam")
    page.get_by_role("button", name="Search").click()
    page.get_by_text("NLRTM · Rotterdam").first.wait_for()
    no_axe_violations(page)

    page.get_by_label("UN/LOCODE", exact=True).fill("NL-X1")
    page.get_by_label("Name", exact=True).fill("Moerdijk bonded depot")
    page.get_by_label("Country (ISO 3166, 2 letters)").fill("NL")
    page.get_by_label("Latitude (-90 to 90)").fill("95")
    page.get_by_label("Longitude (-180 to 180)").fill("4.6")
    page.get_by_role("button", name="Save the location").click()
    alert = page.get_by_role("alert").inner_text()
    assert "“NL-X1” is not a UN/LOCODE" in alert and "Latitude must be a number" in alert
    assert page.get_by_label("Name", exact=True).input_value() == "Moerdijk bonded depot"
    no_axe_violations(page)
    shoot(page, shots, "admin-locations-error")
    page.get_by_label("UN/LOCODE", exact=True).fill("BEXD2")  # not the country given
    page.get_by_label("Latitude (-90 to 90)").fill("51.70")
    page.get_by_role("button", name="Save the location").click()
    assert "does not start with its country NL" in page.get_by_role("alert").inner_text()
    page.get_by_label("UN/LOCODE", exact=True).fill("NLXD2")
    page.get_by_role("button", name="Save the location").click()
    page.get_by_text("Location NLXD2 saved.").wait_for()
    page.get_by_text("NLXD2 · Moerdijk bonded depot").first.wait_for()

    page.get_by_role("link", name="Edit NLXD2").first.click()
    assert page.get_by_label("UN/LOCODE", exact=True).input_value() == "NLXD2"
    page.get_by_label("Name", exact=True).fill("Moerdijk depot 2")
    page.get_by_role("button", name="Save the location").click()
    page.get_by_text("Location NLXD2 saved.").wait_for()
    page.get_by_text("NLXD2 · Moerdijk depot 2").first.wait_for()
    listed = stack.client.get("/v1/locations", headers=stack.headers(stack.admin_key)).json()
    assert [(x["unlocode"], x["name"]) for x in listed] == [("NLXD2", "Moerdijk depot 2")]
    shoot(page, shots, "admin-locations")

    page.get_by_role("link", name="Route policies").click()
    page.get_by_label("GTIN (14 digits)").fill(GTIN)
    page.get_by_role("button", name="Show").click()
    batches = page.locator("ol[aria-labelledby=batches-heading] > li")
    assert batches.count() == 2
    assert (
        "ROUTE2" in batches.nth(0).inner_text() and "CNSHA → NLRTM" in batches.nth(0).inner_text()
    )
    assert "DE, FR" in batches.nth(0).inner_text()
    assert (
        "ROUTE1" in batches.nth(1).inner_text() and "CNSHA → USLAX" in batches.nth(1).inner_text()
    )
    defaults = page.locator("ol[aria-labelledby=defaults-heading] > li").inner_text()
    assert "DE, FR" in defaults and "CNSHA → NLRTM" in defaults and "Acme" in defaults
    no_axe_violations(page)
    shoot(page, shots, "admin-route-policies")
    page.goto(live + "/admin/route-policies?gtin=12ab")
    assert page.get_by_role("alert").inner_text() == "A GTIN is 14 digits."


def test_a_failed_chain_write_is_retried_to_done(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    holder, enrolled, admin = refused_registration(stack)
    _admin(stack)
    sign_in(page, live, ADMIN)
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Chain writes").click()
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/chain-writes?status=failed*")
    row = page.locator("li.row.write-failed")
    assert row.count() == 1
    text = row.inner_text()
    assert "register_batch" in text and f"batch {GTIN}/FAIL1" in text
    assert "GtinOwnedByAnotherHolder" in text and "Acme" in text
    no_axe_violations(page)
    shoot(page, shots, "admin-chain-writes-failed")

    me = stack.client.get("/v1/organizations/me", headers=stack.headers(holder["apiKey"])).json()
    admin.reassign_gtin(GTIN, me["address"])  # the admin fixes the cause on chain
    page.get_by_role("button", name="Retry write").click()
    page.get_by_role("status").get_by_text("now done").wait_for()
    page.get_by_text(f"batch {GTIN}/FAIL1").wait_for()
    assert page.locator("li.row.write-failed").count() == 0
    assert page.locator("li.row.write-done").first.get_by_text("done", exact=True).count() == 1
    batch = stack.registry.get_batch(enrolled["batchId"])
    assert batch.registered and batch.root == enrolled["root"]
    no_axe_violations(page)
    shoot(page, shots, "admin-chain-writes")

    # a form without the session's CSRF token is refused, and nothing is retried
    csrf = page.request.post(
        live + "/admin/chain-writes/1/retry", form={"csrf_token": "forged"}, max_redirects=0
    )
    assert csrf.status == 403 and "Form refused" in csrf.text()
    # an unknown write, or no write id at all: said on the page
    page.goto(live + "/admin/chain-writes")
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    for bad in ("999999", "nope"):
        r = page.request.post(
            live + f"/admin/chain-writes/{bad}/retry", form={"csrf_token": token or ""}
        )
        assert r.status == 404 and "no chain write" in r.text(), r.text()


def test_jobs_page_shows_an_enrollment_job_cancel_and_retry(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    holder = stack.org("Acme", "rights_holder")
    make_user(stack, holder["apiKey"], "hana@acme.example", "analyst")
    _admin(stack)
    stack.gateway.settings.sync_enroll_limit = 50
    stack.gateway.jobs.stopping.set()  # no runner takes it yet: the job stays queued
    try:
        r = stack.client.post(
            "/v1/batches",
            json={"gtin": GTIN, "lot": "JOB1", "serials": [f"J{i:04d}" for i in range(120)]},
            headers=stack.headers(holder["apiKey"]),
        )
        assert r.status_code == 202, r.text
        sign_in(page, live, ADMIN)
        page.wait_for_url(live + "/")
        page.get_by_role("link", name="Jobs").click()
        page.wait_for_url(live + "/admin/jobs")
        row = page.locator("li.row").first
        assert "enroll" in row.inner_text() and "queued" in row.inner_text()
        assert "0 / 120" in row.inner_text()
        no_axe_violations(page)
        page.get_by_role("button", name="Cancel job").click()
        page.locator("li.row .pill", has_text="cancelled").wait_for()
    finally:
        stack.gateway.jobs.stopping.clear()
    page.get_by_role("button", name="Retry job").click()
    deadline = time.monotonic() + 60
    while "done" not in page.locator("li.row .pill").first.inner_text():
        assert time.monotonic() < deadline, page.locator("li.row").first.inner_text()
        time.sleep(0.5)
        page.goto(live + "/admin/jobs")
    assert "120 / 120" in page.locator("li.row").first.inner_text()
    no_axe_violations(page)
    shoot(page, shots, "admin-jobs")
    page.get_by_role("button", name="Sign out").click()

    # the holder sees its own job at /jobs, and is refused the admin's pages
    sign_in(page, live, "hana@acme.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Jobs").click()
    page.wait_for_url(live + "/jobs")
    assert "enroll" in page.locator("li.row").first.inner_text()
    no_axe_violations(page)
    for path in ("/admin/locations", "/admin/route-policies", "/admin/chain-writes", "/admin/jobs"):
        response = page.goto(live + path)
        assert response is not None and response.status == 403, path
        page.get_by_text("This page is for the registry admin.").wait_for()
    refused = page.request.post(
        live + "/admin/locations", form={"unlocode": "NLXD3"}, max_redirects=0
    )
    assert refused.status == 403
    page.goto(live + "/")
    page.get_by_role("link", name="Jobs").wait_for()
    assert page.get_by_role("link", name="Chain writes").count() == 0


def test_customs_and_signed_out_are_kept_out(stack: Stack, live: str, page: Any) -> None:
    customs = stack.org("NL Customs", "customs")
    make_user(stack, customs["apiKey"], "omar@customs.example", "officer")
    response = page.goto(live + "/admin/chain-writes")
    assert response is not None and page.url.startswith(live + "/login")
    sign_in(page, live, "omar@customs.example")
    page.wait_for_url(live + "/")
    for path in ("/admin/locations", "/admin/chain-writes", "/admin/jobs"):
        response = page.goto(live + path)
        assert response is not None and response.status == 403, path
    response = page.goto(live + "/jobs")
    assert response is not None and response.status == 200
    page.get_by_text("No job.").wait_for()
