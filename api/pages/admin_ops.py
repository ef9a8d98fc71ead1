"""The registry admin's operations pages (docs/admin-ops.md): the location registry and the
route policies in force, the chain-writes queue with retry, and background jobs (a rights
holder or any organization sees its own at /jobs). Routes only: the same services as
/v1/locations, /v1/chain-writes and /v1/jobs, so the same rules and errors, shown on the
page."""

from __future__ import annotations

import math
import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api import jobs, users
from api import principal as roles
from api.label_jobs import LABEL_JOB
from api.models import CustodyLocation, Role
from api.pages.kit import checked_form, error_page, gateway_of, page, require
from api.schemas import LocationCreate
from api.services import chain_writes, custody, route_policies
from api.services import jobs as job_service
from guides.imports import describe
from ledger.errors import BorderLedgerError, Conflict, NotFound

router = APIRouter(include_in_schema=False)
REFUSAL = "This page is for the registry admin."
LOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
KINDS = ("seaport", "airport", "agency")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
_BLANK = {"unlocode": "", "name": "", "country": "", "latitude": "", "longitude": "", "glns": ""}


def _admin(request: Request) -> users.SignedIn | Response:
    """An admin of the registry admin organization; everyone else a 403 page."""
    return require(request, kinds=roles.ADMINS, title="Registry admin only", refusal=REFUSAL)


# ------------------------------------------------------------------------------ locations


def _location_form(form: dict[str, str]) -> tuple[LocationCreate | None, list[str]]:
    """The location from the form, or every problem in words an admin can act on."""
    fields = {k: form.get(k, "").strip()[:300] for k in _BLANK}
    problems: list[str] = []
    code = fields["unlocode"].upper()
    country = fields["country"].upper() or code[:2]
    if not LOCODE.fullmatch(code):
        problems.append(
            f"“{fields['unlocode']}” is not a UN/LOCODE: 5 characters, the 2-letter country "
            "then 3 letters or digits 2-9 (e.g. NLRTM)."
        )
    elif code[:2] != country:
        problems.append(f"The UN/LOCODE {code} does not start with its country {country}.")
    coordinates: dict[str, float] = {}
    for name, bound in (("latitude", 90), ("longitude", 180)):
        try:
            value = float(fields[name])
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and -bound <= value <= bound):
            problems.append(
                f"{name.title()} must be a number between -{bound} and {bound} (decimal degrees)."
            )
        coordinates[name] = value
    glns = [g for g in re.split(r"[\s,]+", fields["glns"]) if g]
    if problems:
        return None, problems
    try:
        body = LocationCreate(
            unlocode=code,
            name=fields["name"],
            country=country,
            latitude=coordinates["latitude"],
            longitude=coordinates["longitude"],
            glns=glns,
        )
    except ValidationError as exc:
        return None, describe(exc)
    return body, []


def _locations_page(
    request: Request,
    who: users.SignedIn,
    q: str = "",
    country: str = "",
    kind: str = "",
    form: dict[str, str] | None = None,
    problems: list[str] | None = None,
    saved: str = "",
    status: int = 200,
) -> HTMLResponse:
    gateway = gateway_of(request)
    registered = {row.locode: row for row in gateway.custody.locations.all()}
    needle, country = q.strip().upper()[:60], country.strip().upper()[:2]
    #: a whole list only for a search; otherwise a glimpse (the registry holds ~8,000 places)
    shown_max = 50 if (needle or country or kind) else 12
    found = []
    for loc in gateway.custody.locations.registry:
        if country and loc.country != country:
            continue
        if kind and kind not in loc.kinds:
            continue
        if needle and needle not in loc.locode and needle not in loc.name.upper():
            continue
        found.append(loc)
        if len(found) >= shown_max:
            break
    return page(
        request,
        who,
        "admin_locations.html",
        status,
        q=q.strip()[:60],
        country=country,
        kind=kind,
        kinds=KINDS,
        found=found,
        shown_max=shown_max,
        registered=registered,
        agency_rows=sorted(registered.values(), key=lambda r: r.locode),
        form=form or dict(_BLANK),
        problems=problems or [],
        saved=saved,
        editing=bool(form and form.get("unlocode") in registered),
    )


@router.get("/admin/locations", response_class=HTMLResponse)
def locations_page(
    request: Request, q: str = "", country: str = "", kind: str = "", saved: str = ""
) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    kind = kind if kind in KINDS else ""
    return _locations_page(request, who, q, country, kind, saved=saved[:5])


@router.get("/admin/locations/{locode}/edit", response_class=HTMLResponse)
def edit_location(request: Request, locode: str) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    with Session(gateway_of(request).engine) as session:
        row = session.get(CustodyLocation, locode.upper()[:5])
    if row is None:
        return error_page(
            request,
            who.user.language,
            404,
            "No such location",
            "Only locations agencies registered are edited here; bundled ports are not.",
        )
    form = {
        "unlocode": row.locode,
        "name": row.name,
        "country": row.country,
        "latitude": str(row.latitude),
        "longitude": str(row.longitude),
        "glns": ", ".join(row.glns),
    }
    return _locations_page(request, who, q=row.locode, form=form)


@router.post("/admin/locations", response_class=HTMLResponse)
async def save_location(request: Request) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    shown = {k: form.get(k, "")[:300] for k in _BLANK}
    body, problems = _location_form(form)
    if body is not None:
        try:
            custody.add_location(gateway_of(request), who.principal, body)
        except BorderLedgerError as exc:
            problems = [str(exc)]
    if body is None or problems:
        return _locations_page(request, who, form=shown, problems=problems, status=422)
    return RedirectResponse(
        f"/admin/locations?q={body.unlocode}&saved={body.unlocode}", status_code=303
    )


@router.get("/admin/route-policies", response_class=HTMLResponse)
def route_policies_page(request: Request, gtin: str = "") -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    gtin = gtin.strip()[:14]
    error = None
    if gtin and not (gtin.isdigit() and len(gtin) == 14):
        error, gtin = "A GTIN is 14 digits.", ""
    with Session(gateway_of(request).engine) as session:
        batches, defaults = route_policies.in_force(session, gtin or None)
    return page(
        request,
        who,
        "admin_route_policies.html",
        422 if error else 200,
        gtin=gtin,
        error=error,
        batches=batches,
        defaults=defaults,
    )


# --------------------------------------------------------------------------- chain writes


@router.get("/admin/chain-writes", response_class=HTMLResponse)
def chain_writes_page(
    request: Request, status: str = "", kind: str = "", before: str = "", retried: str = ""
) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    status = status if status in chain_writes.STATES else ""
    kind = kind if kind in chain_writes.KINDS else ""
    cursor = int(before) if before.isdigit() and 0 < len(before) < 18 else None
    return _writes_page(request, who, status, kind, cursor, retried=retried[:18])


def _writes_page(
    request: Request,
    who: users.SignedIn,
    status: str = "",
    kind: str = "",
    before: int | None = None,
    retried: str = "",
    error: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        rows = chain_writes.listed(session, status or None, kind or None, before, limit=51)
        counts = chain_writes.counts(session)
    more = len(rows) > 50
    return page(
        request,
        who,
        "admin_chain_writes.html",
        code,
        rows=rows[:50],
        more=more,
        next_before=rows[49].write.id if more else None,
        counts=counts,
        states=chain_writes.STATES,
        kinds=chain_writes.KINDS,
        status=status,
        kind=kind,
        retried=retried,
        error=error,
    )


@router.post("/admin/chain-writes/{write_id}/retry", response_class=HTMLResponse)
async def retry_write(request: Request, write_id: str) -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    try:
        if not (write_id.isdigit() and len(write_id) < 18):
            raise NotFound(f"no chain write {write_id[:40]}")
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            write = chain_writes.retry(session, gateway_of(request), who.principal, int(write_id))
    except (Conflict, NotFound) as exc:
        return _writes_page(
            request, who, error=str(exc), code=404 if isinstance(exc, NotFound) else 409
        )
    return RedirectResponse(
        f"/admin/chain-writes?retried={write.id}&status={write.status.value}", status_code=303
    )


# ------------------------------------------------------------------------------------ jobs


def _reader(request: Request) -> users.SignedIn | Response:
    return require(request, kinds=roles.READERS)


def _jobs_page(
    request: Request,
    who: users.SignedIn,
    base: str,
    status: str = "",
    error: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        rows = job_service.listed(session, who.principal, status or None, limit=100)
    return page(
        request,
        who,
        "admin_jobs.html",
        code,
        rows=rows,
        states=JOB_STATES,
        status=status,
        base=base,
        label_kind=LABEL_JOB,
        everyone=who.principal.role == Role.ADMIN,
        error=error,
    )


@router.get("/admin/jobs", response_class=HTMLResponse)
def admin_jobs(request: Request, status: str = "") -> Response:
    who = _admin(request)
    if isinstance(who, Response):
        return who
    return _jobs_page(request, who, "/admin/jobs", status if status in JOB_STATES else "")


@router.get("/jobs", response_class=HTMLResponse)
def own_jobs(request: Request, status: str = "") -> Response:
    who = _reader(request)
    if isinstance(who, Response):
        return who
    return _jobs_page(request, who, "/jobs", status if status in JOB_STATES else "")


@router.post("/jobs/{job_id}/{action}", response_class=HTMLResponse)
async def change_job(request: Request, job_id: str, action: str) -> Response:
    """Cancel or retry a job the person may see (the registry admin: any)."""
    who = _reader(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    base = "/admin/jobs" if form.get("back") == "/admin/jobs" else "/jobs"
    if action not in ("cancel", "retry"):
        return _jobs_page(request, who, base, error="Unknown action.", code=404)
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine, expire_on_commit=False) as session:
            job = job_service.visible(session, who.principal, job_id)
            if action == "cancel":
                jobs.cancel(session, job)
            else:
                jobs.retry(session, job)
                gateway.jobs.wake()
    except (Conflict, NotFound) as exc:
        return _jobs_page(
            request, who, base, error=str(exc), code=404 if isinstance(exc, NotFound) else 409
        )
    return RedirectResponse(base, status_code=303)
