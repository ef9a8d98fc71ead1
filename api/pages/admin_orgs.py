"""The registry admin's organization pages (issue 15): the list and creation of
organizations, and one organization's page — accreditation progress, GTIN bindings,
suspension (the rights holder's revocation on chain, after a confirmation), an auditor's
grants and the invitation of the organization's first admin.

Chain writes (accreditation, bindings, revocation) are submitted at once by the services;
while one is still queued or sent, the page's write list polls itself with htmx
(`/admin/organizations/{id}/writes`), and a reload shows the same without JavaScript.
Routes validate and call `api.services.organizations`, `.rights`, `.grants` and
`api.users`: nothing here writes to the database or the chain itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api import users
from api.models import Organization, Role, UserRole, WriteStatus
from api.pages.kit import checked_form, error_page, gateway_of, page, require
from api.schemas import OrganizationCreate
from api.services import grants, organizations, rights
from ledger.errors import BorderLedgerError
from ledger.gs1 import validate_company_prefix

router = APIRouter(include_in_schema=False)

#: The kinds of organization the admin creates, with their names on the page.
KINDS: dict[str, str] = {
    Role.RIGHTS_HOLDER.value: "Rights holder",
    Role.CUSTOMS.value: "Customs agency",
    Role.AUDITOR.value: "Auditor",
}
PAGE_SIZE = 50
_EMPTY = {"name": "", "role": Role.RIGHTS_HOLDER.value, "recordation": ""}


def _admin(request: Request) -> users.SignedIn | Response:
    """The registry admin's people only (every other kind and role: 403)."""
    return require(
        request,
        kinds=(Role.ADMIN,),
        user_roles=(UserRole.ADMIN,),
        refusal="This page is for the registry admin.",
    )


def _org_id(request: Request, signed_in: users.SignedIn, raw: str) -> int | Response:
    """The organization id of the path, or a 404 page (never a JSON 422 on a page)."""
    if raw.isdigit() and 1 <= int(raw) <= 2**31 - 1:
        return int(raw)
    return _missing(request, signed_in, raw)


def _admin_and_org(request: Request, raw_id: str) -> tuple[users.SignedIn, int] | Response:
    """The registry admin and the organization of the path, or the page refusing either."""
    admin = _admin(request)
    if isinstance(admin, Response):
        return admin
    organization_id = _org_id(request, admin, raw_id)
    if isinstance(organization_id, Response):
        return organization_id
    return admin, organization_id


async def _admin_org_form(
    request: Request, raw_id: str
) -> tuple[users.SignedIn, int, dict[str, str]] | Response:
    """A form posted about the organization of the path: the registry admin, the
    organization and the form's fields (CSRF checked), or the page refusing any of them."""
    found = _admin_and_org(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id = found
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    return admin, organization_id, form


def _missing(request: Request, signed_in: users.SignedIn, raw: object) -> HTMLResponse:
    return error_page(
        request,
        signed_in.user.language,
        404,
        "No such organization",
        f"There is no organization {raw}.",
    )


def _list(
    request: Request, admin: users.SignedIn, status_code: int = 200, **context: Any
) -> HTMLResponse:
    kind_raw = request.query_params.get("kind", "")
    kind = Role(kind_raw) if kind_raw in KINDS else None
    try:
        offset = max(0, min(int(request.query_params.get("offset", "0")), 2**31 - 1))
    except ValueError:
        offset = 0
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        states, total = organizations.listing(session, kind, PAGE_SIZE, offset)
    following = offset + len(states)
    return page(
        request,
        admin,
        "admin_orgs.html",
        status_code,
        states=states,
        total=total,
        kind=kind.value if kind else "",
        kinds=KINDS,
        offset=offset,
        next_offset=following if following < total else None,
        previous_offset=max(0, offset - PAGE_SIZE) if offset else None,
        **{"form": _EMPTY, **context},
    )


@router.get("/admin/organizations", response_class=HTMLResponse)
def organizations_page(request: Request) -> Response:
    admin = _admin(request)
    if isinstance(admin, Response):
        return admin
    return _list(request, admin)


@router.post("/admin/organizations", response_class=HTMLResponse)
async def create_organization(request: Request) -> Response:
    """Create an organization; its page comes back at once with its API key (shown once)
    and the progress of its accreditation."""
    admin = _admin(request)
    if isinstance(admin, Response):
        return admin
    form = await checked_form(request, admin)
    if isinstance(form, Response):
        return form
    fields = {k: form.get(k, "").strip()[:300] for k in ("name", "role", "recordation")}
    if fields["role"] not in KINDS:
        return _list(request, admin, 422, form=fields, error="Choose the kind of organization.")
    try:
        body = OrganizationCreate(
            name=fields["name"], role=Role(fields["role"]), recordation=fields["recordation"]
        )
    except ValidationError as exc:
        return _list(request, admin, 422, form=fields, error=_problem(exc))
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            org, key, _ = organizations.create(session, gateway, admin.principal, body)
            created = org.id
    except BorderLedgerError as exc:
        return _list(request, admin, 422, form=fields, error=str(exc))
    assert created is not None
    return _organization(request, admin, created, status_code=201, api_key=key)


def _problem(exc: ValidationError) -> str:
    """The first problem of a form, in words (which field, what is wrong)."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "form"
    names = {"name": "Name", "recordation": "Recordation numbers", "gtin": "GTIN"}
    message = str(error["msg"])
    if error["type"] == "string_pattern_mismatch":
        message = "must be printable text (no control characters)"
    return f"{names.get(field, field)}: {message}."


def _organization(
    request: Request,
    admin: users.SignedIn,
    organization_id: int,
    status_code: int = 200,
    template: str = "admin_org.html",
    **context: Any,
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        try:
            state = organizations.state(session, organization_id)
        except BorderLedgerError:
            return _missing(request, admin, organization_id)
        writes = organizations.writes_about(session, state.org)
        bindings = organizations.bindings(session, state.org, writes)
        prefixes = organizations.prefix_bindings(session, state.org, writes)
        grant_all, granted = False, list[int]()
        holders: list[Organization] = []
        if state.org.role == Role.AUDITOR:
            grant_all, granted = grants.grants(session, organization_id)
            holders = list(
                session.exec(
                    select(Organization)
                    .where(Organization.role == Role.RIGHTS_HOLDER)
                    .order_by(col(Organization.name))
                    .limit(500)
                ).all()
            )
    return page(
        request,
        admin,
        template,
        status_code,
        state=state,
        org=state.org,
        kinds=KINDS,
        writes=writes,
        pending=any(w.status in (WriteStatus.QUEUED, WriteStatus.SENT) for w in writes),
        bindings=bindings,
        prefixes=prefixes,
        grant_all=grant_all,
        granted=set(granted),
        holders=holders,
        **context,
    )


@router.get("/admin/organizations/{raw_id}", response_class=HTMLResponse)
def organization_page(request: Request, raw_id: str) -> Response:
    found = _admin_and_org(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id = found
    return _organization(request, admin, organization_id)


@router.get("/admin/organizations/{raw_id}/writes", response_class=HTMLResponse)
def organization_writes(request: Request, raw_id: str) -> Response:
    """The write list alone (htmx polls it while a write is queued or sent)."""
    found = _admin_and_org(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id = found
    return _organization(request, admin, organization_id, template="_admin_org_writes.html")


@router.post("/admin/organizations/{raw_id}/bindings", response_class=HTMLResponse)
async def bind(request: Request, raw_id: str) -> Response:
    """Bind a GTIN to the rights holder on chain (GS1-checked; a GTIN of another holder
    moves only when "reassign" is ticked)."""
    found = await _admin_org_form(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id, form = found
    gtin = form.get("gtin", "").strip()[:40]
    gateway = gateway_of(request)
    try:
        if not gtin:
            raise BorderLedgerError("Enter the GTIN to bind (8, 12, 13 or 14 digits).")
        with Session(gateway.engine, expire_on_commit=False) as session:
            rights.bind_gtin(
                session,
                gateway,
                admin.principal,
                gtin,
                organization_id,
                form.get("reassign") == "yes",
            )
    except BorderLedgerError as exc:
        return _organization(
            request, admin, organization_id, 422, bind_error=str(exc), gtin_value=gtin
        )
    return RedirectResponse(f"/admin/organizations/{organization_id}#bindings", status_code=303)


@router.post("/admin/organizations/{raw_id}/prefixes", response_class=HTMLResponse)
async def bind_prefix(request: Request, raw_id: str) -> Response:
    """Bind a company prefix to the rights holder: the prefix is checked (GS1 rule) and a
    confirmation says what the binding does; its button (`confirm=yes`) sends the write."""
    found = await _admin_org_form(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id, form = found
    prefix = form.get("prefix", "").strip()[:40]
    gateway = gateway_of(request)
    try:
        if not prefix:
            raise BorderLedgerError("Enter the company prefix to bind (6 to 12 digits).")
        prefix = validate_company_prefix(prefix)
        if form.get("confirm") != "yes":
            with Session(gateway.engine) as session:
                rights.holder_of(session, organization_id)
            return _organization(
                request,
                admin,
                organization_id,
                template="admin_prefix.html",
                act="bind",
                prefix=prefix,
            )
        with Session(gateway.engine, expire_on_commit=False) as session:
            rights.bind_prefix(session, gateway, admin.principal, prefix, organization_id)
    except BorderLedgerError as exc:
        return _organization(
            request, admin, organization_id, 422, prefix_error=str(exc), prefix_value=prefix
        )
    return RedirectResponse(f"/admin/organizations/{organization_id}#prefixes", status_code=303)


@router.get("/admin/organizations/{raw_id}/prefixes/{prefix}/unbind", response_class=HTMLResponse)
def confirm_unbind_prefix(request: Request, raw_id: str, prefix: str) -> Response:
    """The confirmation: which prefix, which holder, and what unbinding it does."""
    found = _admin_and_org(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id = found
    try:
        prefix = validate_company_prefix(prefix[:40])
    except BorderLedgerError as exc:
        return error_page(request, admin.user.language, 404, "No such company prefix", str(exc))
    return _organization(
        request, admin, organization_id, template="admin_prefix.html", act="unbind", prefix=prefix
    )


@router.post("/admin/organizations/{raw_id}/prefixes/{prefix}/unbind", response_class=HTMLResponse)
async def unbind_prefix(request: Request, raw_id: str, prefix: str) -> Response:
    """Unbind the holder's company prefix on chain (idempotent: a retry finds the same
    write); another holder's prefix is refused, named."""
    found = await _admin_org_form(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id, form = found
    prefix = prefix[:40]
    gateway = gateway_of(request)
    try:
        if form.get("confirm") != "yes":
            raise BorderLedgerError("Confirm the unbinding with its button.")
        with Session(gateway.engine, expire_on_commit=False) as session:
            rights.unbind_prefix(session, gateway, admin.principal, prefix, organization_id)
    except BorderLedgerError as exc:
        return _organization(request, admin, organization_id, 422, prefix_error=str(exc))
    return RedirectResponse(f"/admin/organizations/{organization_id}#prefixes", status_code=303)


@router.get("/admin/organizations/{raw_id}/suspend", response_class=HTMLResponse)
def confirm_suspension(request: Request, raw_id: str) -> Response:
    """The confirmation: which organization, and what its revocation does on chain."""
    found = _admin_and_org(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id = found
    return _organization(request, admin, organization_id, template="admin_suspend.html")


@router.post("/admin/organizations/{raw_id}/suspend", response_class=HTMLResponse)
async def suspend(request: Request, raw_id: str) -> Response:
    """Revoke the rights holder's accreditation on chain (idempotent: a retry finds the
    same write)."""
    found = await _admin_org_form(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id, form = found
    if form.get("confirm") != "yes":
        return _organization(
            request,
            admin,
            organization_id,
            422,
            template="admin_suspend.html",
            error="Confirm the suspension with its button.",
        )
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            rights.revoke_holder(session, gateway, admin.principal, organization_id)
    except BorderLedgerError as exc:
        return _organization(request, admin, organization_id, 422, error=str(exc))
    return RedirectResponse(f"/admin/organizations/{organization_id}", status_code=303)


@router.post("/admin/organizations/{raw_id}/grants", response_class=HTMLResponse)
async def put_grants(request: Request, raw_id: str) -> Response:
    """Replace what the auditor reads: every holder, the holders ticked, or nothing."""
    found = await _admin_org_form(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id, form = found
    raw_form = await request.form()
    scope = form.get("scope", "")
    chosen = [str(v) for v in raw_form.getlist("holder")]
    gateway = gateway_of(request)
    try:
        if scope not in ("all", "chosen", "none"):
            raise BorderLedgerError("Choose what the auditor may read.")
        if not all(v.isdigit() and 0 < int(v) < 2**31 for v in chosen):
            raise BorderLedgerError("Choose rights holders from the list.")
        holders = [int(v) for v in chosen] if scope == "chosen" else []
        if scope == "chosen" and not holders:
            raise BorderLedgerError("Tick at least one rights holder, or choose another option.")
        with Session(gateway.engine, expire_on_commit=False) as session:
            grants.auditor_of(session, admin.principal, organization_id)
            grants.put_grants(session, organization_id, scope == "all", holders)
    except BorderLedgerError as exc:
        return _organization(request, admin, organization_id, 422, grant_error=str(exc))
    return RedirectResponse(f"/admin/organizations/{organization_id}#grants", status_code=303)


@router.post("/admin/organizations/{raw_id}/invite", response_class=HTMLResponse)
async def invite_admin(request: Request, raw_id: str) -> Response:
    """Invite the organization's first admin (the link is shown once)."""
    found = await _admin_org_form(request, raw_id)
    if isinstance(found, Response):
        return found
    admin, organization_id, form = found
    email, name = form.get("email", "").strip()[:254], form.get("name", "").strip()[:254]
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            invited, token = users.invite(
                session,
                gateway.settings,
                admin.principal,
                email,
                name,
                UserRole.ADMIN,
                organization_id=organization_id,
            )
    except BorderLedgerError as exc:
        return _organization(request, admin, organization_id, 422, invite_error=str(exc))
    link = str(request.url_for("invitation_page")) + f"?token={token}"
    return _organization(
        request, admin, organization_id, invited={"email": invited.email, "link": link}
    )
