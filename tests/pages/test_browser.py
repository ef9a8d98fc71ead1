"""Journeys in a real chromium: sign in, typed serial → verdict, wrong password, lock-out,
a disabled user signed out, a rights holder's user kept off officer pages, a form without
its CSRF token refused; no serious or critical axe-core violation on the pages; screenshots
at phone (390 x 844) and desktop (1280 x 800) size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.pages.conftest import PHONE, no_axe_violations, shoot, sign_in
from tests.people import PASSWORD, make_user
from tests.stack import GTIN, Stack


def test_officer_signs_in_and_a_typed_serial_gets_its_verdict(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    holder = stack.org("Acme", "rights_holder")
    stack.enroll(holder["apiKey"])
    stack.sync()
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    page.goto(live + "/login")
    no_axe_violations(page)
    shoot(page, shots, "login")
    sign_in(page, live, "olivia@customs.example")
    page.wait_for_url(live + "/")
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome, Olivia"
    no_axe_violations(page)
    shoot(page, shots, "home-officer")
    page.get_by_role("link", name="Scan").click()
    page.wait_for_url(live + "/scan")
    page.get_by_label("GTIN").fill(GTIN)
    page.get_by_label("Serial number").fill("SN0001")
    page.get_by_label("Port (UN/LOCODE, optional)").fill("NLRTM")
    page.get_by_role("button", name="Check").click()
    word = page.locator("#verdict .word")
    word.wait_for()
    assert word.inner_text() == "Genuine, unsigned"  # typed: the serial proven, no signature
    assert page.url == live + "/scan"  # htmx swapped the verdict in, no page load
    assert "SERIAL_IN_BATCH" in page.locator("#verdict").inner_text()
    no_axe_violations(page)
    shoot(page, shots, "scan-genuine")
    page.get_by_label("Serial number").fill("FORGED1")
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict .word", has_text="Potential suspect").wait_for()
    no_axe_violations(page)
    shoot(page, shots, "scan-suspect")
    page.get_by_label("GTIN").fill("123")
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict .error").wait_for()
    assert "gtin" in page.locator("#verdict .error").inner_text().lower()
    # Sign out: back to the sign-in page, and the scan page wants a session again.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live + "/login")
    page.goto(live + "/scan")
    assert page.url.startswith(live + "/login")


def test_wrong_password_then_lock_out(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    stack.gateway.settings.login_max_failures = 3
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    sign_in(page, live, "olivia@customs.example", "not my password")
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Wrong email or password."
    assert page.get_by_label("Email").input_value() == "olivia@customs.example"
    no_axe_violations(page)
    shoot(page, shots, "login-wrong-password")
    sign_in(page, live, "olivia@customs.example", "not my password")
    sign_in(page, live, "olivia@customs.example", "not my password")
    assert "locked" in page.get_by_role("alert").inner_text()
    sign_in(page, live, "olivia@customs.example")  # the right one, while locked
    assert "locked" in page.get_by_role("alert").inner_text()
    assert page.url == live + "/login"


def test_a_disabled_user_is_signed_out(stack: Stack, live: str, page: Any) -> None:
    customs = stack.org("Customs NL", "customs")
    invitation = make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    sign_in(page, live, "olivia@customs.example")
    page.goto(live + "/scan")
    r = stack.client.post(
        f"/v1/users/{invitation['user']['id']}/disable", headers=stack.headers(customs["apiKey"])
    )
    assert r.status_code == 200
    # The next action, even an htmx one, lands on the sign-in page.
    page.get_by_label("GTIN").fill(GTIN)
    page.get_by_label("Serial number").fill("SN0001")
    page.get_by_role("button", name="Check").click()
    page.wait_for_url(live + "/login?ended=1")
    assert "session has ended" in page.get_by_role("status").inner_text()


def test_a_rights_holders_user_cannot_open_officer_pages(
    stack: Stack, live: str, page: Any, shots: Path | None
) -> None:
    holder = stack.org("Acme", "rights_holder")
    make_user(stack, holder["apiKey"], "ravi@acme.example", "analyst", language="fr")
    sign_in(page, live, "ravi@acme.example")
    page.wait_for_url(live + "/")
    assert page.get_by_role("link", name="Contrôle").count() == 0  # French, and no Scan
    assert page.locator("html").get_attribute("lang") == "fr"
    no_axe_violations(page)
    shoot(page, shots, "home-analyst-fr")
    response = page.goto(live + "/scan")
    assert response.status == 403
    assert "agents des douanes" in page.get_by_role("alert").inner_text()
    no_axe_violations(page)


def test_a_form_without_its_csrf_token_is_refused(stack: Stack, live: str, page: Any) -> None:
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    sign_in(page, live, "olivia@customs.example")
    page.goto(live + "/")
    # A form posted from elsewhere has no token: remove it, and htmx's header too.
    page.evaluate(
        "() => { document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove());"
        " document.querySelector('meta[name=csrf-token]').remove(); }"
    )
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(live + "/language")
    assert page.get_by_role("heading", level=1).inner_text() == "Form refused"
    page.goto(live + "/")  # still signed in: the refusal changed nothing
    assert page.get_by_role("button", name="Sign out").count() == 1


def test_an_org_admin_invites_and_disables_people_from_the_people_page(
    stack: Stack, live: str, chromium: Any, page: Any, shots: Path | None
) -> None:
    customs = stack.org("Customs NL", "customs")
    make_user(stack, customs["apiKey"], "ada@customs.example", "admin")
    make_user(stack, customs["apiKey"], "olivia@customs.example", "officer")
    officer_context = chromium.new_context(viewport=PHONE)
    officer = officer_context.new_page()
    sign_in(officer, live, "olivia@customs.example")
    officer.wait_for_url(live + "/")

    sign_in(page, live, "ada@customs.example")
    page.get_by_role("link", name="People").click()
    page.wait_for_url(live + "/people")
    page.get_by_label("Email").fill("new@customs.example")
    page.get_by_label("Name").fill("Noah New")
    page.get_by_label("Role").select_option("officer")
    page.get_by_role("button", name="Invite").click()
    link = page.locator(".notice code").inner_text()
    assert link.startswith(live + "/invite?token=")
    assert page.get_by_text("officer · invited").count() == 1
    page.get_by_role("link", name="Disable olivia@customs.example").click()
    assert "Disable Olivia (olivia@customs.example)?" in page.locator(".question").inner_text()
    page.get_by_role("button", name="Disable the user").click()
    page.wait_for_url(live + "/people")
    assert page.get_by_role("link", name="Enable olivia@customs.example").count() == 1
    no_axe_violations(page)
    shoot(page, shots, "people-admin")
    # The officer's next page load finds the session gone.
    officer.goto(live + "/scan")
    assert officer.url == live + "/login?ended=1"
    officer_context.close()
    # The invitee sets a password through the link and signs in.
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    no_axe_violations(page)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(live + "/login")
    sign_in(page, live, "new@customs.example")
    page.wait_for_url(live + "/")
    assert page.get_by_role("link", name="Scan").count() == 1
