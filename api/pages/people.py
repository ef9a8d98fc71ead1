"""An organization admin's People page: invite, list, disable and re-enable its users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api import users
from api.models import User, UserRole
from api.pages.kit import checked_form, gateway_of, page, render_confirmation, require_org_admin
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)
_EMPTY = {"email": "", "name": "", "role": ""}


def _people(
    request: Request,
    admin: users.SignedIn,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        people = users.list_users(session, admin.principal)
    org = admin.principal.organization
    return page(
        request,
        admin,
        "people.html",
        status_code,
        people=people,
        # The kind's own role first (the usual invitation), admin last.
        roles=sorted((r.value for r in users.ROLES_BY_KIND[org.role]), key=lambda r: r == "admin"),
        org=org,
        **context,
    )


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request) -> Response:
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    return _people(request, admin, form=_EMPTY)


@router.post("/people/invite", response_class=HTMLResponse)
async def invite(request: Request) -> Response:
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    fields = {k: form.get(k, "").strip()[:254] for k in ("email", "name", "role", "language")}
    try:
        role = UserRole(fields["role"])
    except ValueError:
        return _people(request, admin, 422, form=fields, error="Choose a role.")
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            invited, token = users.invite(
                session,
                gateway.settings,
                admin.principal,
                fields["email"],
                fields["name"],
                role,
                fields["language"] or "en",
            )
    except BorderLedgerError as exc:
        return _people(request, admin, 422, form=fields, error=str(exc))
    link = str(request.url_for("invitation_page")) + f"?token={token}"
    return _people(request, admin, form=_EMPTY, invited={"email": invited.email, "link": link})


@router.get("/people/{user_id}/{action}", response_class=HTMLResponse)
def confirm_enable_or_disable(request: Request, user_id: int, action: str) -> Response:
    """The confirmation page naming the user and what disabling (or enabling) does."""
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    if action not in ("disable", "enable"):
        return Response("not found", status_code=404, media_type="text/plain")
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        person = session.get(User, user_id)
    if person is None or person.organization_id != admin.principal.organization_id:
        return _people(
            request, admin, 404, form=_EMPTY, error=f"no user {user_id} in your organization"
        )
    who = f"{person.name} ({person.email})"
    if action == "disable":
        question = f"Disable {who}? They are signed out at once and cannot sign in until enabled."
    else:
        question = f"Enable {who}? They can sign in again."
    return render_confirmation(
        request,
        admin,
        title="Disable this user?" if action == "disable" else "Enable this user?",
        question=question,
        action=f"/people/{user_id}/{action}",
        button="Disable the user" if action == "disable" else "Enable the user",
        back="/people",
    )


@router.post("/people/{user_id}/{action}")
async def enable_or_disable(request: Request, user_id: int, action: str) -> Response:
    admin = require_org_admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    if action not in ("disable", "enable"):
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            users.set_disabled(session, admin.principal, user_id, action == "disable")
    except BorderLedgerError as exc:
        return _people(request, admin, 422, form=_EMPTY, error=str(exc))
    return RedirectResponse("/people", status_code=303)
