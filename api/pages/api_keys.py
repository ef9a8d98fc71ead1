"""An organization admin's API keys page (every kind of organization): the keys (prefix,
name, created, revoked, what they may do), a new key with its secret shown once, rotation
(a new key of the same name, the old one revoked) and revocation, each behind a
confirmation naming the key. Through `api.orgs`, the service of /v1/api-keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api import orgs, users
from api.models import ApiKey, Role
from api.pages.kit import (
    checked_form,
    gateway_of,
    page,
    render_confirmation,
    require_org_admin,
    status_of,
)
from ledger.errors import BorderLedgerError, NotFound

router = APIRouter(include_in_schema=False)
KEYS_SHOWN = 200
#: What a key may do: the API of its organization's kind (docs/people.md, scopes).
SCOPES = {
    Role.ADMIN: "registry admin: every route",
    Role.RIGHTS_HOLDER: "rights holder: batches, statuses, alerts, webhooks of its own products",
    Role.CUSTOMS: "customs agency: verify, scans, alerts, cases",
    Role.AUDITOR: "auditor: read what it was granted",
}


def _keys(
    request: Request, admin: users.SignedIn, status_code: int = 200, **context: Any
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        keys = orgs.list_keys(session, admin.principal, KEYS_SHOWN)
    org = admin.principal.organization
    return page(
        request,
        admin,
        "api_keys.html",
        status_code,
        keys=keys,
        org=org,
        scope=SCOPES.get(org.role, org.role.value),
        **context,
    )


@router.get("/api-keys", response_class=HTMLResponse)
def api_keys_page(request: Request, done: str = "") -> Response:
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    return _keys(request, admin, done="The key is revoked." if done == "revoked" else None)


@router.post("/api-keys", response_class=HTMLResponse)
async def create_key(request: Request) -> Response:
    """A new named key; its secret is on this answer only (not a redirect: nothing to
    re-show on a reload)."""
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    name = form.get("name", "").strip()[:200]
    if not name or len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return _keys(
            request,
            admin,
            422,
            name=name,
            error="A key's name is 1-100 characters, no control characters.",
        )
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            row, key = orgs.create_key(session, admin.principal, name)
    except BorderLedgerError as exc:
        return _keys(request, admin, status_of(exc), name=name, error=str(exc))
    return _keys(request, admin, created={"key": key, "name": row.name, "verb": "created"})


def _own(request: Request, admin: users.SignedIn, key_id: int) -> ApiKey:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        row = session.get(ApiKey, key_id)
    if row is None or row.organization_id != admin.principal.organization_id:
        raise NotFound(f"no API key {key_id} in your organization")
    return row


@router.get("/api-keys/{key_id}/{action}", response_class=HTMLResponse)
def confirm(request: Request, key_id: int, action: str) -> Response:
    """The confirmation page of a rotation or revocation, naming the key."""
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    if action not in ("rotate", "revoke"):
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        row = _own(request, admin, key_id)
    except BorderLedgerError as exc:
        return _keys(request, admin, status_of(exc), error=str(exc))
    if row.revoked_at is not None:
        return _keys(
            request, admin, 409, error=f"API key {row.name} ({row.prefix}…) is already revoked"
        )
    named = f"“{row.name}” ({row.prefix}…)"
    if action == "rotate":
        question = (
            f"Rotate the API key {named}? A new key of the same name replaces it; the old key "
            "stops working at once, so update the machines that use it."
        )
    else:
        question = f"Revoke the API key {named}? It stops working at once; this cannot be undone."
    return render_confirmation(
        request,
        admin,
        title="Rotate the API key?" if action == "rotate" else "Revoke the API key?",
        question=question,
        action=f"/api-keys/{key_id}/{action}",
        button="Rotate the key" if action == "rotate" else "Revoke the key",
        back="/api-keys",
    )


@router.post("/api-keys/{key_id}/{action}", response_class=HTMLResponse)
async def rotate_or_revoke(request: Request, key_id: int, action: str) -> Response:
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    if action not in ("rotate", "revoke"):
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            if action == "rotate":
                row, key = orgs.rotate_key(session, admin.principal, key_id)
            else:
                orgs.revoke_key(session, admin.principal, key_id)
    except BorderLedgerError as exc:
        return _keys(request, admin, status_of(exc), error=str(exc))
    finally:
        # The old key stops working at once in this process (as DELETE /v1/api-keys/{id}).
        request.app.state.key_cache.clear()
    if action == "revoke":
        return RedirectResponse("/api-keys?done=revoked", status_code=303)
    return _keys(request, admin, created={"key": key, "name": row.name, "verb": "rotated"})
