"""The officer's History (their own scans) and the agency's Alerts inbox: filter by port and
rule, acknowledge, resolve with a note (htmx swaps the one alert), evidence shown. Officers
only (customs agencies and the registry admin's people); a rights holder's users get the
403 page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.models import AlertStatus
from api.pages.kit import VERDICT_WORDS, checked_form, gateway_of, page, require_officer
from api.schemas import AlertResolve, AlertUpdate
from api.services import alerts, inbox
from ledger.errors import BorderLedgerError, InvalidInput

router = APIRouter(include_in_schema=False)
PER_PAGE = 25
ALERTS_SHOWN = 100


def _page_number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 6:
        raise InvalidInput("page must be a whole number from 1")
    number = int(raw)
    if number < 1:
        raise InvalidInput("page must be a whole number from 1")
    return number


def _verdict(code: str) -> tuple[str, str]:
    return VERDICT_WORDS.get(code, (code, "neutral"))


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, port: str = "", rule: str = "") -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    context: dict[str, Any] = {"form": {"port": port[:20], "rule": rule[:40]}, "rules": inbox.RULES}
    try:
        wanted = inbox.filters(port, rule)
        number = _page_number(request.query_params.get("page", "1"))
        assert officer.user.id is not None
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            result = inbox.history(
                session, officer.principal, officer.user.id, wanted, number - 1, PER_PAGE
            )
    except BorderLedgerError as exc:
        return page(request, officer, "history.html", 422, error=str(exc), rows=[], **context)
    rows = [
        {
            "scan": row,
            "word": _verdict(row.verdict)[0],
            "tone": _verdict(row.verdict)[1],
            # Another change adds a shipment reference to scans: shown when the column exists.
            "shipment": getattr(row, "shipment", None),
            "alerts": result.alerts.get(row.scan_id, []),
        }
        for row in result.rows
    ]
    query = wanted.query()
    return page(
        request,
        officer,
        "history.html",
        rows=rows,
        number=number,
        previous={**query, "page": number - 1} if number > 1 else None,
        next={**query, "page": number + 1} if result.has_more else None,
        **context,
    )


def _inbox(request: Request, officer: Any, status_code: int = 200, **context: Any) -> Response:
    return page(
        request,
        officer,
        "alerts.html",
        status_code,
        rules=inbox.RULES,
        states=inbox.STATES,
        verdict=_verdict,
        **context,
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, port: str = "", rule: str = "", status: str = "") -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    form = {"port": port[:20], "rule": rule[:40], "status": status[:20]}
    try:
        wanted = inbox.filters(port, rule, status)
        with Session(gateway_of(request).engine, expire_on_commit=False) as session:
            items = inbox.inbox(session, officer.principal, wanted, ALERTS_SHOWN)
    except BorderLedgerError as exc:
        return _inbox(request, officer, 422, form=form, items=[], error=str(exc))
    return _inbox(request, officer, form=form, items=items)


def _note_problem(exc: ValidationError) -> str:
    kind = exc.errors()[0].get("type", "")
    if kind == "string_too_long":
        return "The note is too long (at most 2000 characters)."
    if kind in ("string_too_short", "string_pattern_mismatch", "missing"):
        return "Resolving an alert needs a note saying what was found."
    return "The note cannot be used: " + str(exc.errors()[0].get("msg", "invalid"))


@router.post("/alerts/{alert_id}/{action}", response_class=HTMLResponse)
async def act_on_alert(request: Request, alert_id: str, action: str) -> Response:
    """Acknowledge or resolve through the alert service (the audit trail names the user);
    htmx gets the alert's fragment back (with the message when refused), a plain form post
    the inbox again."""
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    form = await checked_form(request, officer)
    if isinstance(form, Response):
        return form
    if action not in ("acknowledge", "resolve") or len(alert_id) > 36:
        return Response("not found", status_code=404, media_type="text/plain")
    partial = request.headers.get("hx-request") == "true"
    error: str | None = None
    note = form.get("note", "")
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        try:
            if action == "acknowledge":
                body = AlertUpdate(note=note.strip() or None)
                alerts.transition(
                    session, officer.principal, alert_id, AlertStatus.ACKNOWLEDGED, body.note
                )
            else:
                resolved = AlertResolve(note=note.strip())
                alerts.transition(
                    session, officer.principal, alert_id, AlertStatus.RESOLVED, resolved.note
                )
        except ValidationError as exc:
            error = _note_problem(exc)
        except BorderLedgerError as exc:
            session.rollback()
            error = str(exc)
        if not partial:
            if error is None:
                return RedirectResponse("/alerts", status_code=303)
            items = inbox.inbox(session, officer.principal, inbox.Filters(), ALERTS_SHOWN)
            return _inbox(request, officer, 422, form={}, items=items, failed=error)
        try:
            item = inbox.one(session, officer.principal, alert_id)
        except BorderLedgerError as exc:
            return page(request, officer, "_flash.html", error=str(exc))
    # htmx swaps 2xx answers only: the fragment carries the message when refused.
    return page(
        request, officer, "_alert.html", item=item, error=error, note=note, verdict=_verdict
    )
