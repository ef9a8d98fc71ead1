"""Product identification guide pages (docs/guides.md): a rights holder writes and edits a
guide with photos and submits it; a customs reviewer reviews and publishes it; officers
search the published guides. The same service as /v1/guides, so the same rules and errors
(shown on the page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import UploadFile

from api import users
from api.models import Role
from api.pages.kit import checked_form, error_page, gateway_of, page, refused_csrf, require
from api.services import guides
from guides.imports import describe
from guides.model import CATEGORIES, GuideContent
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)
READERS = (Role.RIGHTS_HOLDER, Role.CUSTOMS)
REFUSAL = "Guides are for rights holders and customs agencies."
FEATURE_KINDS = ("packaging", "label", "hologram", "font", "serial_format", "other")
_BLANK = {
    "gtin": "",
    "brand": "",
    "name": "",
    "category": "",
    "msrp": "",
    "currency": "USD",
    "features": "",
    "markets": "",
    "routes": "",
    "importers": "",
    "contact_name": "",
    "contact_email": "",
    "recordation": "",
    "expires": "",
}


def _signed_in(request: Request, *kinds: Role) -> users.SignedIn | Response:
    return require(request, kinds=kinds or READERS, refusal=REFUSAL)


def _content(form: dict[str, str]) -> GuideContent:
    """The guide from the page's form: one feature per line (`kind: description`), lists
    separated by commas."""
    features = []
    for line in form.get("features", "").splitlines():
        if line.strip():
            kind, _, text = line.partition(":")
            kind = kind.strip().lower().replace(" ", "_")
            if kind not in FEATURE_KINDS or not text.strip():
                kind, text = "other", line
            features.append({"kind": kind, "description": text.strip()})
    listed = {
        k: [v.strip() for v in form.get(k, "").split(",") if v.strip()]
        for k in ("markets", "routes")
    }
    importers = []
    for entry in form.get("importers", "").split(","):
        if entry.strip():
            name, _, country = entry.strip().rpartition(" ")
            importers.append(
                {"name": name or entry.strip(), "country": country, "role": "importer"}
            )
    data: dict[str, Any] = {
        "gtin": form.get("gtin", "").strip(),
        "brand": form.get("brand", ""),
        "name": form.get("name", ""),
        "category": form.get("category", ""),
        "currency": form.get("currency", "USD") or "USD",
        "features": features,
        "importers": importers,
        **listed,
    }
    msrp = form.get("msrp", "").strip()
    if msrp:
        try:
            data["msrpCents"] = round(float(msrp) * 100)
        except ValueError:
            data["msrpCents"] = msrp  # the model names the problem
    if form.get("contact_email", "").strip():
        data["contacts"] = [
            {
                "kind": "legal",
                "name": form.get("contact_name", "") or "Legal",
                "email": form["contact_email"].strip(),
            }
        ]
    if form.get("recordation", "").strip():
        data["recordations"] = [
            {
                "kind": "cbp_recordation",
                "number": form["recordation"],
                "expires": form.get("expires", ""),
            }
        ]
    return GuideContent.model_validate(data)


def _form_of(content: dict[str, Any]) -> dict[str, str]:
    """The form's fields from a stored guide (to edit it)."""
    contacts = content.get("contacts") or [{}]
    recordations = content.get("recordations") or [{}]
    msrp = content.get("msrpCents")
    return {
        "gtin": content.get("gtin") or "",
        "brand": content.get("brand", ""),
        "name": content.get("name", ""),
        "category": content.get("category", ""),
        "msrp": "" if msrp is None else f"{msrp / 100:.2f}",
        "currency": content.get("currency", "USD"),
        "features": "\n".join(
            f"{f['kind']}: {f['description']}" for f in content.get("features", [])
        ),
        "markets": ", ".join(content.get("markets", [])),
        "routes": ", ".join(content.get("routes", [])),
        "importers": ", ".join(f"{i['name']} {i['country']}" for i in content.get("importers", [])),
        "contact_name": contacts[0].get("name", ""),
        "contact_email": contacts[0].get("email", ""),
        "recordation": recordations[0].get("number", ""),
        "expires": recordations[0].get("expires", ""),
    }


@router.get("/guides", response_class=HTMLResponse)
def guides_page(request: Request, q: str = "", gtin: str = "") -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    q, gtin = q.strip()[:100], gtin.strip()[:14]
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        principal = who.principal
        error = None
        if gtin and not (gtin.isdigit() and len(gtin) == 14):
            error, gtin = "A GTIN is 14 digits.", ""
        found = guides.search(session, principal, q=q or None, gtin=gtin or None, limit=50)
        queue = []
        if principal.role == Role.CUSTOMS:
            for state in ("submitted", "reviewed"):
                queue += guides.search(session, principal, state=state, limit=50)
        shaped = [guides.shape(session, principal, g, photos=False) for g in found]
        waiting = [guides.shape(session, principal, g, photos=False) for g in queue]
    return page(
        request,
        who,
        "guides.html",
        400 if error else 200,
        found=shaped,
        queue=waiting,
        q=q,
        gtin=gtin,
        error=error,
        holder=principal.role == Role.RIGHTS_HOLDER,
        categories=CATEGORIES,
    )


def _editor(
    request: Request,
    who: users.SignedIn,
    form: dict[str, str],
    guide_id: str | None,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    return page(
        request,
        who,
        "guide_form.html",
        status,
        form=form,
        guide_id=guide_id,
        error=error,
        categories=CATEGORIES,
    )


@router.get("/guides/new", response_class=HTMLResponse)
def new_guide(request: Request) -> Response:
    who = _signed_in(request, Role.RIGHTS_HOLDER)
    if isinstance(who, Response):
        return who
    return _editor(request, who, dict(_BLANK), None)


@router.get("/guides/{guide_id}/edit", response_class=HTMLResponse)
def edit_guide(request: Request, guide_id: str) -> Response:
    who = _signed_in(request, Role.RIGHTS_HOLDER)
    if isinstance(who, Response):
        return who
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        try:
            guide = guides.readable(session, who.principal, guide_id)
        except BorderLedgerError:
            return _missing(request, who)
    return _editor(request, who, _form_of(guide.content), guide_id)


@router.post("/guides/save", response_class=HTMLResponse)
async def save_guide(request: Request) -> Response:
    who = _signed_in(request, Role.RIGHTS_HOLDER)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    fields = {k: form.get(k, "")[:4000] for k in _BLANK}
    guide_id = form.get("guide_id") or None
    gateway = gateway_of(request)
    try:
        content = _content(fields)
        with Session(gateway.engine, expire_on_commit=False) as session:
            registry = gateway.detection.registry
            if guide_id:
                written = guides.update(session, who.principal, guide_id, content, registry)
            else:
                written = guides.create(session, who.principal, content, registry)
            target = written.guide.guide_id
    except BorderLedgerError as exc:
        return _editor(request, who, fields, guide_id, 422, str(exc))
    except ValidationError as exc:  # the model's checks, one line each
        return _editor(request, who, fields, guide_id, 422, "; ".join(describe(exc)))
    return RedirectResponse(f"/guides/{target}", status_code=303)


def _missing(request: Request, who: users.SignedIn) -> HTMLResponse:
    return error_page(
        request,
        who.user.language,
        404,
        "No such guide",
        "This guide does not exist or is not yours to read.",
    )


def _detail(
    request: Request,
    who: users.SignedIn,
    guide_id: str,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        try:
            guide = guides.readable(session, who.principal, guide_id)
        except BorderLedgerError:
            return _missing(request, who)
        shown = guides.shape(session, who.principal, guide)
        history = guides.history(session, who.principal, guide_id)
    content = shown["content"] or {}
    return page(
        request,
        who,
        "guide.html",
        status,
        guide=shown,
        content=content,
        history=history[-10:],
        error=error,
        holder=who.principal.role == Role.RIGHTS_HOLDER,
        category=CATEGORIES.get(content.get("category", ""), ("", "")),
    )


@router.get("/guides/{guide_id}", response_class=HTMLResponse)
def guide_page(request: Request, guide_id: str) -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    return _detail(request, who, guide_id)


@router.post("/guides/{guide_id}/step", response_class=HTMLResponse)
async def guide_step(request: Request, guide_id: str) -> Response:
    who = _signed_in(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    step = form.get("step", "")
    if step not in ("submit", "review", "reject", "publish"):
        return _detail(request, who, guide_id, 422, "Unknown step.")
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            guides.step(session, who.principal, guide_id, step, form.get("note", "")[:2000])
    except BorderLedgerError as exc:
        return _detail(
            request, who, guide_id, 422 if not isinstance(exc, LookupError) else 404, str(exc)
        )
    return RedirectResponse(f"/guides/{guide_id}", status_code=303)


@router.post("/guides/{guide_id}/photos", response_class=HTMLResponse)
async def guide_photo(request: Request, guide_id: str) -> Response:
    who = _signed_in(request, Role.RIGHTS_HOLDER)
    if isinstance(who, Response):
        return who
    settings = gateway_of(request).settings
    async with request.form(
        max_files=1, max_fields=10, max_part_size=settings.guide_photo_bytes + 1
    ) as form:
        if not users.csrf_matches(who.csrf_token, str(form.get("csrf_token") or "")):
            return refused_csrf(request, who.user.language)
        upload = form.get("photo")
        kind = "fake" if form.get("kind") == "fake" else "genuine"
        caption = str(form.get("caption") or "")[:200]
        if not isinstance(upload, UploadFile):
            return _detail(request, who, guide_id, 422, "Choose a photo to upload.")
        raw = await upload.read(settings.guide_photo_bytes + 1)
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            guides.add_photo(
                session,
                who.principal,
                guide_id,
                kind,
                caption,
                raw,
                max_bytes=settings.guide_photo_bytes,
                directory=settings.guide_photo_dir,
            )
    except BorderLedgerError as exc:
        return _detail(request, who, guide_id, 422, str(exc))
    return RedirectResponse(f"/guides/{guide_id}", status_code=303)
