"""Customs cases for people (docs/cases.md, "Pages"): the officer's case list (next deadline
first, overdue on top), the case page (parties, lines, timeline, clocks, the actions its
state allows as forms, second-officer approvals, documents), the rights holder's view of the
cases on its products (only what the stage discloses: the service's redacted view, never
re-cut here) with its answers, and the importer's / declarant's single-use link page.

Every form carries an idempotency key made when the page is rendered, so a double submit
(or a reload of the answer) applies the action once. Refusals of the service (403, 404,
409 naming the state, 422) are messages on the page, with the service's sentence."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api import users
from api.errors import status_for
from api.models import Role
from api.pages.kit import (
    PRE_CSRF_COOKIE,
    checked_form,
    checked_pre_form,
    error_page,
    gateway_of,
    page,
    pre_csrf,
    render,
    require,
    set_cookie,
)
from api.schemas import CaseActionRequest, CasePartyAnswer
from api.services import case_attachments, case_documents, cases
from cases.profiles import all_profiles, get_profile
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)
#: Who has a case page: officers (their agency's cases), rights holders (cases on their
#: products, redacted), the registry admin and auditors (read only).
READERS = (Role.CUSTOMS, Role.ADMIN, Role.RIGHTS_HOLDER, Role.AUDITOR)
PER_PAGE = 20
#: Parameters an action's form asks for beyond the profile's `requires` (by action).
EXTRA_PARAMS = {"note": ("text",), "extend": ("days",), "answer": ("text",), "confirm": ("text",)}
#: Parameters that are whole numbers.
INTEGER_PARAMS = {"days"}
#: What each answer through a party's link means, in the party's words.
ANSWER_LABELS = {
    "answer": "The goods are genuine: I explain why below",
    "abandon": "I abandon the goods",
    "consent": "I consent to their destruction",
    "object": "I object to their destruction",
}
#: Buttons that say more than the action's name.
ACTION_LABELS = {
    "confirm": "Confirm infringement and consent to destruction",
    "confirm_infringement": "Confirm the goods infringe",
    "consent_destruction": "Consent to destruction",
    "post_bond": "Post a bond",
}
#: Actions on a sample sent to the rights holder (offered only while one is out).
SAMPLE_ACTIONS = {"return_sample", "certify_sample_lost"}
#: Actions that close a case for good: the button says so.
GRAVE = {"seize", "destroy", "release", "abandon", "forfeit"}


def _reader(request: Request) -> users.SignedIn | Response:
    return require(
        request,
        kinds=READERS,
        refusal="Cases are for customs officers and rights holders.",
    )


def _key() -> str:
    """A fresh idempotency key for one rendered form."""
    return "page-" + secrets.token_urlsafe(16)


def _next_clock(item: dict[str, Any]) -> dict[str, Any] | None:
    running = [c for c in item.get("clocks", []) if c["status"] == "running"]
    overdue = [c for c in running if c["overdue"]]
    pool = overdue or running
    return min(pool, key=lambda c: c["dueAt"]) if pool else None


@router.get("/cases", response_class=HTMLResponse)
def case_list(
    request: Request,
    state: str = "",
    open_only: Annotated[str, Query(alias="open")] = "",
    page_no: str = "1",
) -> Response:
    """The reader's cases, next deadline first (overdue on top), filtered and paged."""
    signed_in = _reader(request)
    if isinstance(signed_in, Response):
        return signed_in
    state = state.strip()[:32]
    number = max(1, min(int(page_no), 10_000)) if page_no.isdigit() else 1
    error = None
    rows: list[dict[str, Any]] = []
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            rows = cases.list_cases(
                session,
                signed_in.principal,
                state or None,
                open_only == "1",
                PER_PAGE + 1,
                (number - 1) * PER_PAGE,
            )
    except BorderLedgerError as exc:
        error = str(exc)
    more = len(rows) > PER_PAGE
    items = [{**row, "next": _next_clock(row)} for row in rows[:PER_PAGE]]
    states = sorted({s for p in all_profiles().values() for s in p.states})
    return page(
        request,
        signed_in,
        "cases.html",
        422 if error else 200,
        items=items,
        state=state,
        states=states,
        open_only=open_only == "1",
        page_no=number,
        more=more,
        error=error,
        holder=signed_in.principal.role == Role.RIGHTS_HOLDER,
    )


def _forms(view: dict[str, Any], allowed: list[str]) -> list[dict[str, Any]]:
    """A form per allowed action: its parameters and a fresh idempotency key."""
    profile = get_profile(view["profile"])
    forms = []
    for name in allowed:
        if name in SAMPLE_ACTIONS and not view.get("sample"):
            continue  # no sample is out: nothing to return or certify lost
        rule = profile.actions[name]
        params = list(dict.fromkeys([*rule.requires, *EXTRA_PARAMS.get(name, ())]))
        forms.append(
            {
                "action": name,
                "label": ACTION_LABELS.get(name, name.replace("_", " ").capitalize()),
                "params": params,
                "required": set(rule.requires),
                "approval": rule.approval,
                "grave": name in GRAVE,
                "key": _key(),
            }
        )
    return forms


def _case_page(
    request: Request,
    signed_in: users.SignedIn,
    case_id: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            view = cases.get_case(session, signed_in.principal, case_id)
            documents = case_documents.listed(session, signed_in.principal, case_id)
            # the files the reader may open now: all for the agency, the images the stage
            # discloses for the rights holder (the same rule as the API's list)
            attachments = case_attachments.list_attachments(
                session, signed_in.principal, case_id, 200
            )
            keys = [k for a in view.get("timeline", []) for k in (a["actor"], a["approvedBy"]) if k]
            names = cases.actor_names(session, signed_in.principal, keys)
            holders = cases.organization_names(session, view.get("rightsHolders", []))
    except BorderLedgerError as exc:
        code, _ = status_for(exc)
        return error_page(request, signed_in.user.language, code, "Case not shown", str(exc))
    role = signed_in.principal.role
    profile = get_profile(view["profile"])
    if role in (Role.CUSTOMS, Role.ADMIN):
        by = "officer"
        allowed = [n for n in view.get("actionsAllowed", []) if by in profile.actions[n].by]
    elif role == Role.RIGHTS_HOLDER:
        allowed = [
            n
            for n, r in profile.actions.items()
            if "holder" in r.by and r.allowed_in(view["state"])
        ]
        by = "holder"
    else:
        allowed, by = [], "reader"
    pending = [
        {**a, "key": _key()}
        for a in view.get("timeline", [])
        if a["status"] == cases.PENDING and by == "officer"
    ]
    return page(
        request,
        signed_in,
        "case.html",
        status_code,
        case=view,
        profile=profile,
        forms=_forms(view, allowed) if by != "reader" else [],
        pending=pending,
        documents=documents,
        attachments=attachments,
        names=names,
        holders=holders,
        by=by,
        **context,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: str, done: str = "") -> Response:
    signed_in = _reader(request)
    if isinstance(signed_in, Response):
        return signed_in
    message = f"Done: {done.replace('_', ' ')}." if done and done.isidentifier() else None
    return _case_page(request, signed_in, case_id[:64], done=message)


def _params(form: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in form.items():
        if not name.startswith("p_") or not value.strip():
            continue
        key = name[2:]
        text = value.strip()[:4000]
        params[key] = int(text) if key in INTEGER_PARAMS and text.isdigit() else text
    return params


@router.post("/cases/{case_id}/actions", response_class=HTMLResponse)
async def act(request: Request, case_id: str) -> Response:
    signed_in = _reader(request)
    if isinstance(signed_in, Response):
        return signed_in
    form = await checked_form(request, signed_in)
    if isinstance(form, Response):
        return form
    case_id = case_id[:64]
    try:
        body = CaseActionRequest(
            action=form.get("action", ""),
            idempotencyKey=form.get("idempotency_key", ""),
            params=_params(form),
        )
    except ValidationError:
        return _case_page(request, signed_in, case_id, 422, error="Choose an action to take.")
    if body.action == "add_item":  # the scan may still be queued for its group commit
        await run_in_threadpool(gateway_of(request).scans.flush)
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            row, _replayed, token = cases.apply_action(session, signed_in.principal, case_id, body)
    except BorderLedgerError as exc:
        code, _ = status_for(exc)
        return _case_page(request, signed_in, case_id, code, error=str(exc))
    if token is not None:
        link = str(request.url_for("party_link_page", token=token))
        return _case_page(request, signed_in, case_id, done=f"Done: {body.action}.", link=link)
    done = "pending" if row.status == cases.PENDING else body.action
    return RedirectResponse(f"/cases/{case_id}?done={done}", status_code=303)


@router.post("/cases/{case_id}/approve/{action_id}", response_class=HTMLResponse)
async def approve(request: Request, case_id: str, action_id: str) -> Response:
    signed_in = _reader(request)
    if isinstance(signed_in, Response):
        return signed_in
    form = await checked_form(request, signed_in)
    if isinstance(form, Response):
        return form
    case_id, action_id = case_id[:64], action_id[:64]
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            row, _ = cases.approve(
                session,
                signed_in.principal,
                case_id,
                action_id,
                form.get("idempotency_key", "")[:80] or _key(),
            )
    except BorderLedgerError as exc:
        code, _ = status_for(exc)
        return _case_page(request, signed_in, case_id, code, error=str(exc))
    return RedirectResponse(f"/cases/{case_id}?done=approved_{row.action}", status_code=303)


# ------------------------------------------------------------------ the party's link page


def _link_page(
    request: Request, token: str, csrf: str, status_code: int = 200, **context: Any
) -> Response:
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            view = cases.link_view(session, token)
            spent = cases.link_spent(session, token)
    except BorderLedgerError as exc:
        code, _ = status_for(exc)
        return error_page(request, "en", code, "Link not valid", str(exc))
    documents = [d for d in dict.fromkeys(x["name"] for x in view.get("documents", [])) if d]
    response = render(
        request,
        "case_link.html",
        "en",
        status_code,
        case=view,
        token=token,
        csrf_token=csrf,
        spent=spent,
        answer_labels=ANSWER_LABELS,
        documents=[d for d in documents if d in case_documents.kinds()],
        **context,
    )
    set_cookie(request, response, PRE_CSRF_COOKIE, csrf)
    return response


@router.get("/case-link/{token}", response_class=HTMLResponse, name="party_link_page")
def party_link_page(request: Request, token: str) -> Response:
    return _link_page(request, token[:100], pre_csrf(request))


@router.post("/case-link/{token}", response_class=HTMLResponse)
async def party_answer(request: Request, token: str) -> Response:
    checked = await checked_pre_form(request)
    if isinstance(checked, Response):
        return checked
    form, csrf = checked
    token = token[:100]
    try:
        body = CasePartyAnswer(action=form.get("action", ""), text=form.get("text", "")[:4000])
    except ValidationError:
        return _link_page(request, token, csrf, 422, error="Choose an answer.")
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            cases.link_answer(session, token, body)
    except BorderLedgerError as exc:
        code, _ = status_for(exc)
        return _link_page(request, token, csrf, code, error=str(exc))
    return _link_page(request, token, csrf, answered=body.action)


@router.get("/case-link/{token}/documents/{kind}")
def party_document(request: Request, token: str, kind: str) -> Response:
    try:
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            body = case_documents.pdf_by_link(session, token[:100], kind[:40])
    except BorderLedgerError as exc:
        code, _ = status_for(exc)
        return error_page(request, "en", code, "Document not available", str(exc))
    return Response(body, media_type="application/pdf")
