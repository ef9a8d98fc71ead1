"""API keys and roles: who may call what, and how keys are kept."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from api.models import ApiKey
from tests.stack import GTIN, Stack, api_error

SERIALS = [f"A{i}" for i in range(5)]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "blk_notakeyatall"},
        {"Authorization": "Bearer blk_unknown-key-0000000000000000000000000000"},
        {"X-API-Key": ""},
        {"X-API-Key": "blk_unknown-key-0000000000000000000000000000"},
    ],
    ids=[
        "none",
        "bearer-no-key",
        "bearer-blank",
        "basic",
        "no-scheme",
        "unknown-bearer",
        "empty-x-api-key",
        "unknown-x-api-key",
    ],
)
def test_missing_malformed_or_unknown_key_is_401_json(
    stack: Stack, headers: dict[str, str]
) -> None:
    requests = [
        ("GET", "/v1/organizations/me", None),
        ("POST", "/v1/verify", {"gtin": GTIN, "serial": "S1"}),
        ("POST", "/v1/batches", {"gtin": GTIN, "lot": "L1", "serials": ["S1"]}),
        ("GET", "/v1/batches/0x" + "00" * 32, None),
        ("POST", "/v1/organizations", {"name": "Intruder", "role": "admin"}),
    ]
    for method, path, body in requests:
        r = stack.client.request(method, path, json=body, headers=headers)
        api_error(r, 401, "unauthenticated")
    with stack.gateway.engine.connect() as connection:
        names = connection.execute(sa.text("SELECT name FROM organizations")).scalars().all()
        batches = connection.execute(sa.text("SELECT count(*) FROM gateway_batches")).scalar()
    assert names == ["Registry admin"] and batches == 0


def test_both_header_forms_authenticate(stack: Stack) -> None:
    for headers in (
        {"Authorization": f"Bearer {stack.admin_key}"},
        {"Authorization": f"bearer {stack.admin_key}"},
        {"X-API-Key": stack.admin_key},
    ):
        r = stack.client.get("/v1/organizations/me", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "admin" and r.json()["apiKey"] is None


def test_only_admin_creates_organizations(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    officer = stack.org("NL Customs", "customs")
    auditor = stack.org("Audit Co", "auditor")
    for who in (holder, officer, auditor):
        r = stack.client.post(
            "/v1/organizations",
            json={"name": f"made by {who['name']}", "role": "admin"},
            headers=stack.headers(who["apiKey"]),
        )
        api_error(r, 403, "forbidden")
    with stack.gateway.engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM organizations")).scalar()
    assert count == 4
    # names and recordations are printable text (PostgreSQL cannot even store a NUL)
    for body in (
        {"name": "a\u0000b", "role": "auditor"},
        {"name": "line\nbreak", "role": "auditor"},
        {"name": "", "role": "auditor"},
        {"name": "x" * 201, "role": "auditor"},
        {"name": "ok", "role": "rights_holder", "recordation": "TMK\u00001"},
        {"name": "ok", "role": "superuser"},
    ):
        r = stack.client.post(
            "/v1/organizations", json=body, headers=stack.headers(stack.admin_key)
        )
        api_error(r, 422, "invalid_input")
    with stack.gateway.engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM organizations")).scalar()
    assert count == 4
    # the admin can; a duplicate name is a conflict
    r = stack.client.post(
        "/v1/organizations",
        json={"name": "Acme", "role": "auditor"},
        headers=stack.headers(stack.admin_key),
    )
    api_error(r, 409, "conflict")


def test_officer_cannot_enroll_or_change_status(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    officer = stack.org("NL Customs", "customs")
    batch = stack.enroll(holder["apiKey"], serials=SERIALS)
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "L2", "serials": SERIALS},
        headers=stack.headers(officer["apiKey"]),
    )
    api_error(r, 403, "forbidden")
    r = stack.client.post(
        "/v1/batches?gtin=" + GTIN + "&lot=L3",
        content=b"serial\nX1\n",
        headers={**stack.headers(officer["apiKey"]), "Content-Type": "text/csv"},
    )
    api_error(r, 403, "forbidden")
    r = stack.client.post(
        f"/v1/batches/{batch['batchId']}/status",
        json={"status": "recalled"},
        headers=stack.headers(officer["apiKey"]),
    )
    api_error(r, 403, "forbidden")
    with stack.gateway.engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM gateway_batches")).scalar()
    assert count == 1
    # but an officer verifies
    stack.sync()
    assert stack.verify(officer["apiKey"], gtin=GTIN, serial="A1")["verdict"] == "GENUINE_UNSIGNED"


def test_auditor_reads_but_cannot_verify_enroll_or_change_status(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    auditor = stack.org("Audit Co", "auditor")
    assert auditor["address"] is None and auditor["signer"] is None
    stack.grant(auditor, [holder["id"]])
    batch = stack.enroll(holder["apiKey"], serials=SERIALS)
    stack.sync()
    key = stack.headers(auditor["apiKey"])

    r = stack.client.post("/v1/verify", json={"gtin": GTIN, "serial": "A1"}, headers=key)
    api_error(r, 403, "forbidden")
    r = stack.client.post(
        "/v1/batches", json={"gtin": GTIN, "lot": "L9", "serials": SERIALS}, headers=key
    )
    api_error(r, 403, "forbidden")
    for body in ({"status": "recalled"}, {"status": "stolen", "serial": "A1"}):
        r = stack.client.post(f"/v1/batches/{batch['batchId']}/status", json=body, headers=key)
        api_error(r, 403, "forbidden")
    r = stack.client.get(f"/v1/batches/{batch['batchId']}/tags", headers=key)
    api_error(r, 403, "forbidden")

    # reading the batch is what an auditor is for
    r = stack.client.get(f"/v1/batches/{batch['batchId']}", headers=key)
    assert r.status_code == 200 and r.json()["root"] == batch["root"]
    with stack.gateway.engine.connect() as connection:
        scans = connection.execute(sa.text("SELECT count(*) FROM scan_events")).scalar()
        statuses = connection.execute(
            sa.text("SELECT count(*) FROM pending_writes WHERE kind LIKE 'set_%'")
        ).scalar()
    stack.sync()
    assert scans == 0 and statuses == 0
    # nothing changed on chain either
    assert stack.verify(holder["apiKey"], gtin=GTIN, serial="A1")["verdict"] == "GENUINE_UNSIGNED"


def test_rights_holder_cannot_touch_another_holders_batch(stack: Stack) -> None:
    acme = stack.org("Acme", "rights_holder")
    rival = stack.org("Rival", "rights_holder")
    batch = stack.enroll(acme["apiKey"], serials=SERIALS)
    stack.sync()
    bid = batch["batchId"]
    key = stack.headers(rival["apiKey"])

    # another holder's batch is answered as an unknown one
    api_error(stack.client.get(f"/v1/batches/{bid}", headers=key), 404, "not_found", bid)
    for fmt in ("csv", "zip", "pdf"):
        r = stack.client.get(f"/v1/batches/{bid}/tags?format={fmt}", headers=key)
        api_error(r, 404, "not_found")
    for body in ({"status": "recalled"}, {"status": "stolen", "serial": "A1"}):
        r = stack.client.post(f"/v1/batches/{bid}/status", json=body, headers=key)
        api_error(r, 404, "not_found")
    stack.sync()
    officer = stack.org("NL Customs", "customs")
    verdict = stack.verify(officer["apiKey"], gtin=GTIN, serial="A1", lot="L1")
    assert verdict["verdict"] == "GENUINE_UNSIGNED"

    # the same lot again by the rival: a conflict; another lot of Acme's GTIN: forbidden
    r = stack.client.post(
        "/v1/batches", json={"gtin": GTIN, "lot": "L1", "serials": SERIALS}, headers=key
    )
    api_error(r, 409, "conflict")
    r = stack.client.post(
        "/v1/batches", json={"gtin": GTIN, "lot": "RIVAL-1", "serials": SERIALS}, headers=key
    )
    api_error(r, 403, "forbidden")
    with stack.gateway.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT lot FROM gateway_batches")).scalars().all()
    assert rows == ["L1"]
    # the admin may read it
    r = stack.client.get(f"/v1/batches/{bid}", headers=stack.headers(stack.admin_key))
    assert r.status_code == 200


def test_gtin_of_another_holder_refused_before_the_index_catches_up(stack: Stack) -> None:
    """The rival's enrollment comes before the indexer has seen Acme's batch: it must still be
    refused, not accepted and then rejected on chain."""
    acme = stack.org("Acme", "rights_holder")
    rival = stack.org("Rival", "rights_holder")
    stack.enroll(acme["apiKey"], serials=SERIALS)  # no stack.sync()
    logs_before = len(stack.registry.contract.events.BatchRegistered.get_logs(from_block=0))
    r = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "RIVAL-1", "serials": SERIALS},
        headers=stack.headers(rival["apiKey"]),
    )
    api_error(r, 403, "forbidden")
    assert len(stack.registry.contract.events.BatchRegistered.get_logs(from_block=0)) == logs_before
    with stack.gateway.engine.connect() as connection:
        lots = connection.execute(sa.text("SELECT lot FROM gateway_batches")).scalars().all()
    assert lots == ["L1"]


def test_api_keys_are_stored_hashed(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    officer = stack.org("NL Customs", "customs")
    keys = [stack.admin_key, holder["apiKey"], officer["apiKey"]]
    assert all(k.startswith("blk_") and len(k) > 40 for k in keys)
    with stack.gateway.engine.connect() as connection:
        rows = connection.execute(sa.select(ApiKey.__table__)).mappings().all()  # type: ignore[attr-defined]
    assert len(rows) == 3
    dumped = repr([dict(row) for row in rows])
    for key in keys:
        assert key not in dumped
        assert key[4:] not in dumped
        assert hashlib.sha256(key.encode()).hexdigest() in {row["key_hash"] for row in rows}
    assert all(len(row["prefix"]) <= 12 for row in rows)
    # the key is shown once: /me does not show it again
    r = stack.client.get("/v1/organizations/me", headers=stack.headers(holder["apiKey"]))
    assert r.status_code == 200 and r.json()["apiKey"] is None
    assert r.json()["name"] == "Acme" and r.json()["role"] == "rights_holder"


def test_revoked_key_is_refused(stack: Stack) -> None:
    holder = stack.org("Acme", "rights_holder")
    with stack.gateway.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE key_hash = :h"),
            {"h": hashlib.sha256(holder["apiKey"].encode()).hexdigest()},
        )
    stack.client.app.state.key_cache.clear()  # type: ignore[attr-defined]
    r = stack.client.get("/v1/organizations/me", headers=stack.headers(holder["apiKey"]))
    api_error(r, 401, "unauthenticated")


# ------------------------------------------------------------- principals and role rules

#: Routes anyone may call without a key.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/v1/tag-format",
    "/v1/trust-bundle/key",
    "/v1/invitations/accept",  # the invitation's token is the proof
    "/v1/case-links/{token}",  # a case party's single-use link is the proof (no account)
    "/v1/case-links/{token}/answer",
}


def _calls(dependant: Any) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


def test_every_route_but_the_public_ones_names_its_roles() -> None:
    """Each route that takes a caller takes it through exactly one role dependency (built by
    `role_rule`, the one rule), never as a bare principal."""
    from fastapi.routing import APIRoute

    from api.deps import current_principal
    from api.routes import ROUTERS

    # The pages (api.pages, not in the API schema) check their session and role themselves.
    routes = [
        r
        for router in ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute) and r.include_in_schema
    ]
    checked = 0
    for route in routes:
        calls = _calls(route.dependant)
        rules = [c for c in calls if getattr(c, "__qualname__", "") == "role_rule.<locals>.check"]
        if route.path in PUBLIC:
            assert current_principal not in calls and not rules, route.path
            continue
        assert len(rules) == 1, (route.path, route.methods)
        direct = [d.call for d in route.dependant.dependencies]
        assert current_principal not in direct, (route.path, "takes a bare principal")
        checked += 1
    assert checked >= 30


def test_a_principal_is_its_organization_acting_through_a_key(stack: Stack) -> None:
    from sqlmodel import Session

    from api.models import Role
    from api.orgs import principal_for_key
    from api.principal import Actor, require_role
    from ledger.errors import PermissionDenied

    holder = stack.org("Keyed Pharma", "rights_holder")
    with Session(stack.gateway.engine) as session:
        principal = principal_for_key(session, holder["apiKey"])
        key_id = session.execute(
            sa.select(ApiKey.id).where(ApiKey.organization_id == holder["id"])  # type: ignore[arg-type]
        ).scalar_one()
    assert principal is not None
    assert principal.organization_id == holder["id"] and principal.role == "rights_holder"
    assert principal.actor == Actor("api_key", key_id, holder["apiKey"][:12])
    assert require_role(principal, principal.role) is principal
    with pytest.raises(PermissionDenied, match=r"Keyed Pharma.*needs: customs, admin"):
        require_role(principal, Role.CUSTOMS, Role.ADMIN)


def test_custody_timeline_roles_and_the_holders_own_products(stack: Stack) -> None:
    """Officers, admins and granted auditors read any item's custody; a rights holder only
    the items of GTINs it enrolled (another's is not found), and no role without a key."""
    owner = stack.org("Owner Pharma", "rights_holder")
    other = stack.org("Other Pharma", "rights_holder")
    officer = stack.org("Custody Customs", "customs")
    auditor = stack.org("Custody Audit", "auditor")
    stack.grant(auditor)
    stack.enroll(owner["apiKey"], serials=SERIALS)
    stack.sync()
    path = f"/v1/items/{GTIN}/{SERIALS[0]}/custody"
    bodies = []
    for key in (owner["apiKey"], officer["apiKey"], auditor["apiKey"], stack.admin_key):
        r = stack.client.get(path, headers=stack.headers(key))
        assert r.status_code == 200, r.text
        bodies.append(r.json())
    assert all(b == bodies[0] for b in bodies[1:])
    assert bodies[0]["enrollment"]["gtin"] == GTIN
    api_error(
        stack.client.get(path, headers=stack.headers(other["apiKey"])),
        404,
        "not_found",
        "products you may read",
    )
    api_error(stack.client.get(path), 401, "unauthenticated")
    # The log itself is every role's to check.
    for key in (other["apiKey"], auditor["apiKey"]):
        r = stack.client.get("/v1/log/checkpoints", headers=stack.headers(key))
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"agency", "registry", "chainId", "size", "checkpoints"}
