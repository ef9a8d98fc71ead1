"""People: invitations, sign-in with sessions and CSRF, lock-out, disabling, roles of users,
named API keys, and the audit trail (who did what)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.pages.kit import VERDICT_WORDS
from tests.people import PASSWORD, csrf_of, make_user, sign_in
from tests.stack import GTIN, Stack, api_error


@pytest.fixture
def fast(stack: Stack) -> Stack:
    """No delay on failed sign-ins (the delay is a setting; its rule is tested alone)."""
    stack.gateway.settings.login_failure_delay = 0.0
    return stack


def _fresh_client(stack: Stack) -> TestClient:
    return TestClient(stack.client.app)


def _customs(stack: Stack) -> dict[str, Any]:
    return stack.org("Customs NL", "customs")


def test_invited_officer_signs_in_with_an_httponly_session_cookie(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "Officer@Example.org", "officer")
    client = _fresh_client(fast)
    r = sign_in(client, "officer@example.ORG")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "bl_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # development; the setting turns it on elsewhere
    home = client.get("/")
    assert home.status_code == 200 and "Officer" in home.text and 'href="/scan"' in home.text


def test_secure_cookie_outside_development(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    fast.gateway.settings.cookie_secure = True
    r = sign_in(TestClient(fast.client.app, base_url="https://testserver"), "o@example.org")
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_wrong_password_is_a_message_and_lockout_follows(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    client = _fresh_client(fast)
    r = sign_in(client, "o@example.org", "wrong password!")
    assert r.status_code == 401 and "wrong email or password" in r.text.lower()
    assert "Traceback" not in r.text
    unknown = sign_in(client, "nobody@example.org", "wrong password!")
    assert unknown.status_code == 401 and "wrong email or password" in unknown.text.lower()
    for _ in range(3):
        sign_in(client, "o@example.org", "wrong password!")
    locked = sign_in(client, "o@example.org", "wrong password!")
    assert locked.status_code == 423 and "locked" in locked.text
    # The right password no longer helps while locked.
    assert sign_in(client, "o@example.org").status_code == 423
    # The organization's admin (its key) re-enabling the user lifts the lock.
    users = fast.client.get("/v1/users", headers=fast.headers(customs["apiKey"])).json()
    r = fast.client.post(
        f"/v1/users/{users[0]['id']}/enable", headers=fast.headers(customs["apiKey"])
    )
    assert r.status_code == 200
    assert sign_in(client, "o@example.org").status_code == 303


def test_a_disabled_user_is_signed_out_at_once(fast: Stack) -> None:
    customs = _customs(fast)
    invitation = make_user(fast, customs["apiKey"], "o@example.org", "officer")
    client = _fresh_client(fast)
    sign_in(client, "o@example.org")
    assert client.get("/scan").status_code == 200
    r = fast.client.post(
        f"/v1/users/{invitation['user']['id']}/disable", headers=fast.headers(customs["apiKey"])
    )
    assert r.status_code == 200 and r.json()["active"] is False
    api_error(client.get("/v1/organizations/me"), 401, "unauthenticated", "session")
    r = client.get("/scan", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?ended=1"
    refused = sign_in(client, "o@example.org")
    assert refused.status_code == 401 and "disabled" in refused.text


def test_a_rights_holders_user_cannot_open_officer_pages(fast: Stack) -> None:
    holder = fast.org("Acme", "rights_holder")
    make_user(fast, holder["apiKey"], "analyst@acme.example", "analyst")
    client = _fresh_client(fast)
    sign_in(client, "analyst@acme.example")
    r = client.get("/scan")
    assert r.status_code == 403 and "customs officers" in r.text
    home = client.get("/")
    assert 'href="/scan"' not in home.text
    # The same role rule through the API with the session: officers only.
    csrf = csrf_of(home.text)
    api_error(
        client.post("/v1/alerts/x/acknowledge", json={}, headers={"X-CSRF-Token": csrf}),
        403,
        "forbidden",
        "rights_holder",
    )


def test_missing_or_wrong_csrf_token_is_refused(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    client = _fresh_client(fast)
    client.get("/login")
    r = client.post("/login", data={"email": "o@example.org", "password": PASSWORD})
    assert r.status_code == 403 and "Form refused" in r.text
    sign_in(client, "o@example.org")
    r = client.post("/scan", data={"gtin": GTIN, "serial": "SN0001"})
    assert r.status_code == 403 and "Form refused" in r.text
    r = client.post("/scan", data={"gtin": GTIN, "serial": "SN0001", "csrf_token": "forged"})
    assert r.status_code == 403
    # The API with the session cookie: an unsafe request needs X-CSRF-Token.
    api_error(client.post("/v1/api-keys", json={"name": "x"}), 403, "forbidden", "csrf")
    r = client.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/scan").status_code == 200  # still signed in


def test_officer_scans_a_typed_serial_and_sees_the_verdict(fast: Stack) -> None:
    holder = fast.org("Acme", "rights_holder")
    batch = fast.enroll(holder["apiKey"])
    fast.sync()
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    client = _fresh_client(fast)
    sign_in(client, "o@example.org")
    csrf = csrf_of(client.get("/scan").text)
    r = client.post(
        "/scan", data={"gtin": GTIN, "serial": "SN0001", "port": "nlrtm", "csrf_token": csrf}
    )
    assert r.status_code == 200, r.text
    assert 'data-verdict="GENUINE' in r.text and "SERIAL_IN_BATCH" in r.text
    forged = client.post(
        "/scan",
        data={"gtin": GTIN, "serial": "NOPE1", "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert forged.status_code == 200 and "<html" not in forged.text  # the fragment only
    assert VERDICT_WORDS["COUNTERFEIT_SUSPECT"][0] in forged.text
    bad = client.post("/scan", data={"gtin": "12", "serial": "SN0001", "csrf_token": csrf})
    assert bad.status_code == 422 and 'class="error"' in bad.text and "Traceback" not in bad.text
    bad_port = client.post(
        "/scan", data={"gtin": GTIN, "serial": "SN0001", "port": "ZZ", "csrf_token": csrf}
    )
    assert bad_port.status_code == 422 and "port" in bad_port.text.lower()
    fast.gateway.scans.flush()
    # Who scanned is recorded with the scan and in the audit trail.
    trail = fast.client.get("/v1/audit", headers=fast.headers(customs["apiKey"])).json()
    scans = [e for e in trail["events"] if e["action"] == "scan"]
    assert len(scans) == 2 and {e["actor"] for e in scans} == {"user:o@example.org"}
    assert batch["batchId"]


def test_user_language_is_french_when_chosen(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer", language="fr")
    client = _fresh_client(fast)
    sign_in(client, "o@example.org")
    home = client.get("/")
    assert 'lang="fr"' in home.text and "Se déconnecter" in home.text
    r = client.post("/language", data={"language": "en", "csrf_token": csrf_of(home.text)})
    assert r.status_code == 200 and "Sign out" in r.text
    r = client.post("/language", data={"language": "xx", "csrf_token": csrf_of(home.text)})
    assert r.status_code == 422


def test_invitations_are_the_org_admins_and_roles_follow_the_kind(fast: Stack) -> None:
    customs = _customs(fast)
    key = fast.headers(customs["apiKey"])
    api_error(
        fast.client.post(
            "/v1/users", json={"email": "a@x.example", "name": "A", "role": "analyst"}, headers=key
        ),
        422,
        "invalid_input",
        "officer",
    )
    api_error(
        fast.client.post(
            "/v1/users", json={"email": "not-an-email", "name": "A", "role": "officer"}, headers=key
        ),
        422,
        "invalid_input",
        "email",
    )
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    api_error(
        fast.client.post(
            "/v1/users",
            json={"email": "O@example.org", "name": "B", "role": "officer"},
            headers=key,
        ),
        409,
        "conflict",
    )
    # An officer (not an admin) may not invite, list users or read the audit trail.
    client = _fresh_client(fast)
    sign_in(client, "o@example.org")
    csrf = {"X-CSRF-Token": csrf_of(client.get("/").text)}
    api_error(client.get("/v1/users"), 403, "forbidden", "admin")
    api_error(client.get("/v1/audit"), 403, "forbidden", "admin")
    api_error(
        client.post(
            "/v1/users", json={"email": "c@x.example", "name": "C", "role": "officer"}, headers=csrf
        ),
        403,
        "forbidden",
    )
    # The registry admin invites another organization's first admin, nothing else.
    admin = fast.headers(fast.admin_key)
    r = fast.client.post(
        "/v1/users",
        json={
            "email": "boss@customs.example",
            "name": "Boss",
            "role": "admin",
            "organizationId": customs["id"],
        },
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["user"]["organizationId"] == customs["id"]
    assert r.json()["url"].endswith(f"/invite?token={r.json()['token']}")
    api_error(
        fast.client.post(
            "/v1/users",
            json={
                "email": "x@customs.example",
                "name": "X",
                "role": "officer",
                "organizationId": customs["id"],
            },
            headers=admin,
        ),
        403,
        "forbidden",
    )
    # A used invitation is refused; a short password too.
    api_error(
        fast.client.post("/v1/invitations/accept", json={"token": "nope", "password": PASSWORD}),
        422,
        "invalid_input",
        "invitation",
    )
    api_error(
        fast.client.post(
            "/v1/invitations/accept", json={"token": r.json()["token"], "password": "short"}
        ),
        422,
        "invalid_input",
        "password",
    )


def test_invitation_page_sets_the_password(fast: Stack) -> None:
    customs = _customs(fast)
    r = fast.client.post(
        "/v1/users",
        json={"email": "new@example.org", "name": "New", "role": "officer"},
        headers=fast.headers(customs["apiKey"]),
    )
    token = r.json()["token"]
    client = _fresh_client(fast)
    page = client.get(f"/invite?token={token}")
    csrf = csrf_of(page.text)
    differ = client.post(
        "/invite",
        data={"token": token, "password": PASSWORD, "confirm": "other one!!", "csrf_token": csrf},
    )
    assert differ.status_code == 422 and "differ" in differ.text
    ok = client.post(
        "/invite",
        data={"token": token, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/login"
    assert sign_in(client, "new@example.org").status_code == 303


def test_api_keys_are_named_listed_rotated_and_revoked(fast: Stack) -> None:
    customs = _customs(fast)
    first = fast.headers(customs["apiKey"])
    keys = fast.client.get("/v1/api-keys", headers=first).json()
    assert [(k["name"], k["revokedAt"], k["key"]) for k in keys] == [("default", None, None)]
    r = fast.client.post("/v1/api-keys", json={"name": "terminal scanner"}, headers=first)
    assert r.status_code == 201
    second = r.json()
    assert second["key"].startswith(second["prefix"])
    two = fast.headers(second["key"])
    assert fast.client.get("/v1/organizations/me", headers=two).status_code == 200
    rotated = fast.client.post(f"/v1/api-keys/{second['id']}/rotate", headers=first).json()
    assert rotated["name"] == "terminal scanner" and rotated["key"] != second["key"]
    api_error(fast.client.get("/v1/organizations/me", headers=two), 401, "unauthenticated")
    three = fast.headers(rotated["key"])
    assert fast.client.get("/v1/organizations/me", headers=three).status_code == 200
    r = fast.client.delete(f"/v1/api-keys/{rotated['id']}", headers=first)
    assert r.status_code == 200 and r.json()["revokedAt"] is not None
    api_error(fast.client.get("/v1/organizations/me", headers=three), 401, "unauthenticated")
    api_error(fast.client.delete(f"/v1/api-keys/{rotated['id']}", headers=first), 409, "conflict")
    # Another organization's key is not ours to touch.
    holder = fast.org("Acme", "rights_holder")
    api_error(
        fast.client.delete(f"/v1/api-keys/{rotated['id']}", headers=fast.headers(holder["apiKey"])),
        404,
        "not_found",
    )
    api_error(
        fast.client.post("/v1/api-keys", json={"name": " "}, headers=first), 422, "invalid_input"
    )
    # The stack's admin key (made before keys had names) still works.
    assert fast.client.get("/v1/api-keys", headers=fast.headers(fast.admin_key)).status_code == 200


def test_audit_trail_names_who_did_what_in_json_and_csv(fast: Stack) -> None:
    holder = fast.org("Acme", "rights_holder")
    batch = fast.enroll(holder["apiKey"])
    fast.sync()
    make_user(fast, holder["apiKey"], "analyst@acme.example", "analyst")
    client = _fresh_client(fast)
    sign_in(client, "analyst@acme.example")
    csrf = {"X-CSRF-Token": csrf_of(client.get("/").text)}
    r = client.post(
        f"/v1/batches/{batch['batchId']}/status",
        json={"status": "stolen", "serial": "SN0003"},
        headers=csrf,
    )
    assert r.status_code in (200, 202), r.text
    fast.verify(holder["apiKey"], gtin=GTIN, serial="SN0001")
    fast.gateway.scans.flush()
    key = fast.headers(holder["apiKey"])
    events = fast.client.get("/v1/audit", headers=key).json()["events"]
    by_action = {e["action"]: e for e in events}
    assert by_action["status.change"]["actor"] == "user:analyst@acme.example"
    assert by_action["status.change"]["subject"] == f"{GTIN}/SN0003"
    assert by_action["batch.enroll"]["actor"].startswith("api_key:blk_")
    assert by_action["scan"]["actor"].startswith("api_key:blk_")
    assert by_action["user.invite"]["subject"] == "analyst@acme.example"
    r = fast.client.get("/v1/audit?format=csv", headers=key)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["action"] for row in rows} == set(by_action)
    assert any(row["actor"] == "user:analyst@acme.example" for row in rows)
    # Another organization's trail is its own.
    customs = _customs(fast)
    other = fast.client.get("/v1/audit", headers=fast.headers(customs["apiKey"])).json()
    assert other["events"] == []
    api_error(fast.client.get("/v1/audit?format=xml", headers=key), 422, "invalid_input")


def test_alert_acknowledgement_names_the_user(fast: Stack) -> None:
    from api.models import Alert

    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    from sqlmodel import Session

    with Session(fast.gateway.engine) as session:
        session.add(
            Alert(
                alert_id="00000000-0000-4000-8000-000000000001",
                rule="clone",
                reason_code="CLONE_SUSPECT",
                severity="high",
                gtin=GTIN,
                serial="SN1",
                location="NLRTM",
                evidence=["s1"],
                raised_by=customs["id"],  # the agency's own scan raised it: in its view
            )
        )
        session.commit()
    client = _fresh_client(fast)
    sign_in(client, "o@example.org")
    csrf = {"X-CSRF-Token": csrf_of(client.get("/").text)}
    r = client.post(
        "/v1/alerts/00000000-0000-4000-8000-000000000001/acknowledge",
        json={"note": "seen"},
        headers=csrf,
    )
    assert r.status_code == 200, r.text
    events = fast.client.get("/v1/audit", headers=fast.headers(customs["apiKey"])).json()
    assert events["events"][0]["action"] == "alert.acknowledged"
    assert events["events"][0]["actor"] == "user:o@example.org"


def test_failed_sign_in_delay_grows_and_is_capped() -> None:
    from api.users import failure_delay
    from ledger.config import Settings

    settings = Settings(login_failure_delay=0.5)
    assert failure_delay(settings, 1) == 0.5
    assert failure_delay(settings, 4) == 2.0
    assert failure_delay(settings, 50) == 3.0


def test_people_page_is_the_org_admins_and_bad_input_is_a_message(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "ada@customs.example", "admin")
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    officer = _fresh_client(fast)
    sign_in(officer, "o@example.org")
    assert officer.get("/people").status_code == 403
    admin = _fresh_client(fast)
    sign_in(admin, "ada@customs.example")
    page = admin.get("/people")
    assert page.status_code == 200 and "o@example.org" in page.text
    csrf = csrf_of(page.text)
    for data, words in (
        ({"email": "nope", "name": "N", "role": "officer"}, "not an email address"),
        ({"email": "n@x.example", "name": "N", "role": "analyst"}, "admin, officer"),
        ({"email": "n@x.example", "name": "N", "role": "pilot"}, "Choose a role"),
        ({"email": "o@example.org", "name": "N", "role": "officer"}, "already exists"),
    ):
        r = admin.post("/people/invite", data={**data, "csrf_token": csrf})
        assert r.status_code == 422 and words in r.text and "Traceback" not in r.text, data
    me = admin.get("/v1/users").json()
    ada = next(u for u in me if u["email"] == "ada@customs.example")
    r = admin.post(f"/people/{ada['id']}/disable", data={"csrf_token": csrf})
    assert r.status_code == 422 and "cannot disable yourself" in r.text
    assert admin.post("/people/999/disable", data={}).status_code == 403  # no CSRF token
    csv_export = admin.get("/v1/audit?format=csv")
    assert csv_export.status_code == 200 and "user.invite" in csv_export.text


def test_verify_api_with_a_session_needs_the_csrf_header(fast: Stack) -> None:
    """POST /v1/verify's lean front passes a key-less request to FastAPI, where the session
    cookie is a principal like a key (and its CSRF token is required)."""
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    client = _fresh_client(fast)
    sign_in(client, "o@example.org")
    csrf = csrf_of(client.get("/").text)
    body = {"gtin": GTIN, "serial": "SN0001"}
    api_error(client.post("/v1/verify", json=body), 403, "forbidden", "csrf")
    r = client.post("/v1/verify", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["verdict"] == "COUNTERFEIT_SUSPECT", r.text
    api_error(_fresh_client(fast).post("/v1/verify", json=body), 401, "unauthenticated")


def test_audit_csv_cells_never_start_a_formula() -> None:
    from api.audit import to_csv

    row = {
        "at": "2026-12-06T00:00:00+00:00",
        "actor": "user:o@example.org",
        "actorKind": "user",
        "actorId": 1,
        "action": "status.change",
        "subject": "=HYPERLINK(1)",
        "detail": {"serial": "=1"},
    }
    [_, line] = to_csv([row]).splitlines()
    assert ",'=HYPERLINK(1)," in line and line.endswith('"{""serial"":""=1""}"')


def test_an_expired_session_sends_back_to_sign_in(fast: Stack) -> None:
    customs = _customs(fast)
    make_user(fast, customs["apiKey"], "o@example.org", "officer")
    fast.gateway.settings.session_hours = 1e-9  # expired as soon as made
    client = _fresh_client(fast)
    assert sign_in(client, "o@example.org").status_code == 303
    r = client.get("/scan", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?ended=1"
    page = client.get("/login?ended=1")
    assert "Your session has ended" in page.text
    api_error(client.get("/v1/organizations/me"), 401, "unauthenticated")


def test_another_organizations_user_is_not_found(fast: Stack) -> None:
    customs = _customs(fast)
    holder = fast.org("Acme", "rights_holder")
    invitation = make_user(fast, customs["apiKey"], "o@example.org", "officer")
    user_id = invitation["user"]["id"]
    for action in ("disable", "enable"):
        api_error(
            fast.client.post(
                f"/v1/users/{user_id}/{action}", headers=fast.headers(holder["apiKey"])
            ),
            404,
            "not_found",
        )
    listed = fast.client.get("/v1/users", headers=fast.headers(holder["apiKey"])).json()
    assert listed == []


def test_names_with_control_characters_are_refused(fast: Stack) -> None:
    """A NUL in a name was a 500 on PostgreSQL (text cannot hold it; found by the fuzzer):
    names and emails with control characters are a 422 naming the field, nothing stored."""
    customs = _customs(fast)
    first = fast.headers(customs["apiKey"])
    for name in ("\x00", "scanner\x00", "line\nbreak"):
        r = fast.client.post("/v1/api-keys", json={"name": name}, headers=first)
        assert r.status_code == 422 and "name" in r.text, (name, r.text)
        r = fast.client.post(
            "/v1/users",
            json={"email": "a@b.example", "name": name, "role": "officer"},
            headers=first,
        )
        assert r.status_code in (403, 422), r.text  # not an org admin's key: 403 before or 422
    r = fast.client.post(
        "/v1/users",
        json={"email": "a\x00b@customs.example", "name": "A", "role": "officer"},
        headers=fast.headers(fast.admin_key),
    )
    assert r.status_code == 422 and "email" in r.text, r.text
    keys = fast.client.get("/v1/api-keys", headers=first).json()
    assert [k["name"] for k in keys] == ["default"]
