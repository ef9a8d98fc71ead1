"""The registry admin's organization pages in chromium (issue 15), on a real Anvil: the admin
creates a rights holder and sees its accreditation on chain with its block, binds a GTIN
(a bad check digit said on the page first), suspends the holder after a confirmation naming
it, and a verification of the holder's product then names it suspended as the API does; an
auditor is granted one holder; the admin's people are invited and disabled on /people;
every other kind of organization is refused every /admin page (403) and a form without the
session's CSRF token is refused. axe-clean; screenshots docs/screenshots/admin-orgs-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from api.models import Organization, Role
from api.outbox import enqueue
from ledger.gs1 import gtin_check_digit
from ledger.models import ZERO_ADDRESS
from tests.pages.conftest import no_axe_violations, shoot, sign_in
from tests.people import make_user
from tests.stack import GTIN, Stack

GTIN_2 = "0950600013436"  # another GTIN of the same prefix (check digit computed)
ADMIN_PAGES = (
    "/admin/organizations",
    "/admin/organizations?kind=auditor",
    "/admin/organizations/1",
    "/admin/organizations/1/suspend",
    "/admin/organizations/1/writes",
    "/admin/organizations/1/prefixes/950600/unbind",
)
PREFIX = "950600"  # GTIN's company prefix


def test_admin_creates_binds_suspends_and_grants(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    make_user(stack, stack.admin_key, "root@registry.example", "admin")
    sign_in(page, live, "root@registry.example")
    page.wait_for_url(live + "/")
    page.get_by_role("link", name="Organizations").click()
    page.wait_for_url(live + "/admin/organizations")
    no_axe_violations(page)

    # create a rights holder: its page comes back with the key and the accreditation
    page.get_by_label("Kind", exact=True).last.select_option("rights_holder")
    page.get_by_label("Name").fill("Acme Watches")
    page.get_by_label("Recordation numbers (rights holders)").fill("TMK 26-001")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", level=1, name="Acme Watches").wait_for()
    key = page.locator("code.link-text").inner_text()
    assert key.startswith("blk_")
    accreditation = page.locator("#accreditation")
    accreditation.get_by_text("on chain").wait_for()
    org_url = page.url.rsplit("#", 1)[0]
    listed = stack.client.get("/v1/organizations", headers=stack.headers(stack.admin_key)).json()
    acme = next(o for o in listed["organizations"] if o["name"] == "Acme Watches")
    assert f"block {acme['accreditation']['block']}" in accreditation.inner_text()
    org_url = f"{live}/admin/organizations/{acme['id']}"

    # bind a GTIN: a wrong check digit is said on the page, then the right one lands
    page.goto(org_url)
    page.get_by_label("GTIN to bind (8, 12, 13 or 14 digits)").fill(GTIN[:-1] + "3")
    page.get_by_role("button", name="Bind the GTIN").click()
    assert "check digit" in page.get_by_role("alert").inner_text()
    no_axe_violations(page)
    page.get_by_label("GTIN to bind (8, 12, 13 or 14 digits)").fill(GTIN)
    page.get_by_role("button", name="Bind the GTIN").click()
    page.get_by_role("list", name="Bound GTINs").get_by_text("on chain").wait_for()
    assert GTIN in page.get_by_role("list", name="Bound GTINs").inner_text()
    stack.enroll(key, serials=["SN0001", "SN0002"])
    stack.sync()
    shoot(page, shots, "admin-orgs-holder")

    # a write still queued (the chain not asked yet): the list polls itself with htmx and
    # shows it on chain once the outbox submits it, without a page load
    other = GTIN_2[:13] + str(gtin_check_digit(GTIN_2[:13]))
    with Session(stack.gateway.engine) as session:
        registry_admin = session.exec(select(Organization).where(Organization.role == Role.ADMIN))
        admin_id = registry_admin.one().id
        assert admin_id is not None
        payload = {"gtin": other, "holder": acme["address"]}
        enqueue(session, admin_id, "bind_gtin", payload, f"bind_gtin:{other}:{acme['address']}")
        session.commit()
    page.reload()
    queued = page.locator("#writes li", has_text=other)
    assert "queued" in queued.inner_text()
    page.evaluate("window.notReloaded = true")
    stack.gateway.writer.process()
    queued.get_by_text("on chain").wait_for()
    assert page.evaluate("window.notReloaded") is True

    # suspend it: a confirmation naming it and what follows, then the revocation on chain
    page.get_by_role("link", name="Suspend Acme Watches…").click()
    page.get_by_role("heading", level=1, name="Suspend Acme Watches?").wait_for()
    assert "stay genuine" in page.locator("main").inner_text()
    no_axe_violations(page)
    shoot(page, shots, "admin-orgs-suspend")
    page.get_by_role("button", name="Suspend Acme Watches for good").click()
    page.wait_for_url(org_url)
    page.get_by_text("Suspended from block").wait_for()
    detail = stack.client.get(
        f"/v1/organizations/{acme['id']}", headers=stack.headers(stack.admin_key)
    ).json()
    assert detail["suspended"] and f"block {detail['revocation']['block']}" in page.inner_text(
        "main"
    )
    assert page.get_by_role("button", name="Bind the GTIN").count() == 0
    stack.sync()
    verdict = stack.verify(stack.admin_key, gtin=GTIN, serial="SN0001")
    assert verdict["product"]["rightsHolder"]["revokedAt"]  # the API's suspended state
    page.goto(live + "/scan")
    page.get_by_label("GTIN").fill(GTIN)
    page.get_by_label("Serial number").fill("SN0001")
    page.get_by_role("button", name="Check").click()
    page.locator("[data-holder=suspended]").wait_for()
    # enrolled before the revocation: still genuine, as the contract says
    assert page.locator("#verdict .word").inner_text() == "Genuine, unsigned"

    # an auditor, granted Acme only
    page.goto(live + "/admin/organizations")
    page.get_by_label("Kind", exact=True).last.select_option("auditor")
    page.get_by_label("Name").fill("Audit & Co")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", level=1, name="Audit & Co").wait_for()
    auditor_url = page.url
    page.goto(live + "/admin/organizations?kind=auditor")
    page.get_by_role("link", name="Audit & Co").click()
    page.get_by_label("The rights holders ticked below").check()
    page.get_by_role("button", name="Save the grants").click()
    assert "Tick at least one" in page.get_by_role("alert").inner_text()
    page.get_by_label("The rights holders ticked below").check()
    page.get_by_label("Acme Watches").check()
    page.get_by_role("button", name="Save the grants").click()
    page.get_by_text("The records of: Acme Watches").wait_for()
    auditor = next(
        o
        for o in stack.client.get(
            "/v1/organizations?kind=auditor", headers=stack.headers(stack.admin_key)
        ).json()["organizations"]
    )
    grants = stack.client.get(
        f"/v1/organizations/{auditor['id']}/grants", headers=stack.headers(stack.admin_key)
    ).json()
    assert grants == {"organizationId": auditor["id"], "all": False, "holders": [acme["id"]]}
    assert auditor_url.startswith(live + "/admin/organizations")
    no_axe_violations(page)
    shoot(page, shots, "admin-orgs-auditor")

    page.goto(live + "/admin/organizations")
    page.get_by_text("suspended", exact=True).wait_for()
    no_axe_violations(page)
    shoot(page, shots, "admin-orgs-list")

    # a form without the session's token is refused, and nothing is created
    r = page.request.post(
        live + "/admin/organizations",
        form={"csrf_token": "forged", "name": "Forged Org", "role": "auditor"},
    )
    assert r.status == 403 and "Form refused" in r.text()
    names = stack.client.get("/v1/organizations", headers=stack.headers(stack.admin_key)).json()
    assert "Forged Org" not in {o["name"] for o in names["organizations"]}

    # the admin's own people: linked from the list, invited and disabled on /people
    page.get_by_role("link", name="Users of the registry admin").click()
    page.wait_for_url(live + "/people")
    page.get_by_label("Email").fill("second@registry.example")
    page.get_by_label("Name").fill("Second Admin")
    page.get_by_role("button", name="Invite").click()
    page.get_by_text("Invitation for second@registry.example").wait_for()
    page.get_by_role("link", name="Disable second@registry.example").click()
    page.get_by_role("button", name="Disable the user").click()
    page.get_by_role("link", name="Enable second@registry.example").wait_for()


def test_admin_binds_and_unbinds_a_company_prefix(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    """A prefix in a GS1 range that numbers no company is said on the page; a good one is
    bound only after a confirmation saying what it does, and the holder then enrolls a GTIN
    under it with no GTIN binding; unbinding is confirmed the same way. Nothing reaches the
    chain before a confirmation."""
    make_user(stack, stack.admin_key, "root@registry.example", "admin")
    acme = stack.org("Acme Watches", "rights_holder", gtins=())
    sign_in(page, live, "root@registry.example")
    page.wait_for_url(live + "/")
    org_url = f"{live}/admin/organizations/{acme['id']}"
    page.goto(org_url)
    page.get_by_text("No company prefix bound yet.").wait_for()
    field = page.get_by_label("Company prefix to bind (6 to 12 digits)")
    field.fill("2012345")
    page.get_by_role("button", name="Bind the prefix…").click()
    assert "restricted circulation" in page.get_by_role("alert").inner_text()
    no_axe_violations(page)

    field = page.get_by_label("Company prefix to bind (6 to 12 digits)")
    field.fill(PREFIX)
    page.get_by_role("button", name="Bind the prefix…").click()
    title = f"Bind company prefix {PREFIX} to Acme Watches?"
    page.get_by_role("heading", level=1, name=title).wait_for()
    assert "unless the GTIN is bound on its own" in page.locator("main").inner_text()
    assert stack.registry.company_prefix_holder(PREFIX) == ZERO_ADDRESS  # not before
    no_axe_violations(page)
    shoot(page, shots, "admin-orgs-prefix-confirm")
    page.get_by_role("button", name=f"Bind {PREFIX} to Acme Watches").click()
    bound = page.get_by_role("list", name="Bound company prefixes")
    bound.get_by_text("on chain").wait_for()
    assert PREFIX in bound.inner_text()
    assert stack.registry.company_prefix_holder(PREFIX) == acme["address"]
    assert f"Company prefix binding {PREFIX}" in page.locator("#writes").inner_text()
    # the holder enrolls a GTIN under the prefix: no GTIN binding needed
    stack.enroll(acme["apiKey"], serials=["SN0001"])
    assert stack.registry.gtin_holder(GTIN) == ZERO_ADDRESS
    stack.sync()
    page.reload()
    shoot(page, shots, "admin-orgs-prefixes")

    page.get_by_role("link", name=f"Unbind {PREFIX}…").click()
    title = f"Unbind company prefix {PREFIX} from Acme Watches?"
    page.get_by_role("heading", level=1, name=title).wait_for()
    assert "stay its own and stay genuine" in page.locator("main").inner_text()
    assert stack.registry.company_prefix_holder(PREFIX) == acme["address"]  # not before
    no_axe_violations(page)
    page.get_by_role("button", name=f"Unbind {PREFIX} from Acme Watches").click()
    page.get_by_text("No company prefix bound yet.").wait_for()
    assert stack.registry.company_prefix_holder(PREFIX) == ZERO_ADDRESS
    stack.sync()
    page.reload()
    page.get_by_text("No company prefix bound yet.").wait_for()
    assert f"Company prefix unbinding {PREFIX}" in page.locator("#writes").inner_text()


def test_other_kinds_are_refused_every_admin_page(stack: Stack, live: str, page: Any) -> None:
    customs = stack.org("Customs NL", "customs")
    holder = stack.org("Brand", "rights_holder", gtins=())
    auditor = stack.org("Audit", "auditor")
    for org, email in (
        (customs, "boss@customs.example"),
        (holder, "boss@brand.example"),
        (auditor, "boss@audit.example"),
    ):
        make_user(stack, org["apiKey"], email, "admin")  # the strongest role of each kind
        sign_in(page, live, email)
        page.wait_for_url(live + "/")
        assert page.get_by_role("link", name="Organizations").count() == 0
        for path in ADMIN_PAGES:
            r = page.request.get(live + path)
            assert r.status == 403 and "registry admin" in r.text(), (email, path, r.status)
        csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
        actions = ("", "/1/bindings", "/1/suspend", "/1/grants", "/1/invite", "/1/prefixes")
        for action in (*actions, f"/1/prefixes/{PREFIX}/unbind"):
            r = page.request.post(
                live + "/admin/organizations" + action,
                form={
                    "csrf_token": csrf or "",
                    "name": "X",
                    "role": "auditor",
                    "gtin": GTIN,
                    "prefix": PREFIX,
                    "confirm": "yes",
                },
            )
            assert r.status == 403, (email, action, r.status)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(live + "/login")
    listed = stack.client.get("/v1/organizations", headers=stack.headers(stack.admin_key))
    assert {o["name"] for o in listed.json()["organizations"]} == {
        "Registry admin",
        "Customs NL",
        "Brand",
        "Audit",
    }


def test_pages_work_without_javascript(stack: Stack, live: str, chromium: Any) -> None:
    """Every admin form is a plain form post: with scripts off, creating a customs agency
    shows its accreditation on chain, and a bad form is said on the page."""
    make_user(stack, stack.admin_key, "root@registry.example", "admin")
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live, "root@registry.example")
        page.goto(live + "/admin/organizations")
        page.get_by_label("Kind", exact=True).last.select_option("customs")
        page.get_by_label("Name").fill("Douane FR")
        page.get_by_role("button", name="Create").click()
        page.get_by_role("heading", level=1, name="Douane FR").wait_for()
        page.locator("#accreditation").get_by_text("on chain").wait_for()
        page.goto(live + "/admin/organizations")
        page.get_by_label("Kind", exact=True).last.select_option("customs")
        page.get_by_label("Name").fill("Douane FR")
        page.get_by_role("button", name="Create").click()
        assert "already exists" in page.get_by_role("alert").inner_text()
        page.goto(live + "/admin/organizations?kind=customs")
        assert page.get_by_role("link", name="Douane FR").count() == 1
    finally:
        context.close()
