"""The officer's Scan page: a label read by the camera or from a photo (zxing-wasm in the
browser, `web/scan.js`, sends the tag), or GTIN + serial typed → the verify service → the
verdict's big word, colour, sentence, reasons, the detector's findings with their evidence,
product, holder and proof; and one tap to open a detention case from that scan.

The port and the shipment reference are fields of the same form: the browser keeps them for
the session and sends them with every scan, so the scans of one consignment group together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api import users
from api.case_models import Case
from api.models import Role, ScanEvent
from api.pages.kit import VERDICT_WORDS, checked_form, gateway_of, page, require_officer
from api.schemas import CaseCreate, VerifyRequest
from api.services import cases
from api.services.verify import answer_scan
from cases.calendar import get_calendar
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)

FIELDS = ("gtin", "serial", "lot", "port", "shipment", "tag")


@router.get("/scan", response_class=HTMLResponse)
def scan_page(request: Request) -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    return page(request, officer, "scan.html", form=dict.fromkeys(FIELDS, ""))


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "location") or "form"
    return f"{field}: {first.get('msg', 'invalid')}".replace("Value error, ", "")


def _seen_before(
    gateway_engine: Any, answer: dict[str, Any], organization_id: int | None
) -> dict[str, dict[str, str]]:
    """Where and when each scan behind a finding was made (the evidence, by scan id): the
    officer reads "seen at CNSHA on 2 May", not a list of ids. Status reports and scans not
    stored yet are left out (the finding's own detail still names them). Port and time are
    what the finding itself says; another agency's shipment reference is not shown."""
    ids = {e for f in answer.get("findings", []) for e in f["evidence"]} - {answer["scanId"]}
    if not ids:
        return {}
    with Session(gateway_engine) as session:
        rows = session.exec(select(ScanEvent).where(col(ScanEvent.scan_id).in_(ids))).all()
    return {
        r.scan_id: {
            "port": r.location or "?",
            "when": r.scanned_at.replace(tzinfo=r.scanned_at.tzinfo or UTC).strftime(
                "%Y-%m-%d %H:%M UTC"
            ),
            "shipment": (r.shipment or "") if r.organization_id == organization_id else "",
        }
        for r in rows
    }


@router.post("/scan", response_class=HTMLResponse)
async def scan(request: Request) -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    form = await checked_form(request, officer)
    if isinstance(form, Response):
        return form
    fields = {k: form.get(k, "").strip() for k in FIELDS}
    error = result = None
    try:
        tag = fields["tag"] or None
        body = VerifyRequest(
            tag=tag,
            gtin=None if tag else fields["gtin"] or None,
            serial=None if tag else fields["serial"] or None,
            lot=None if tag else fields["lot"] or None,
            location={"unlocode": fields["port"].upper()} if fields["port"] else None,
            shipment=fields["shipment"] or None,
        )
        gateway = gateway_of(request)
        answer = orjson.loads(await answer_scan(gateway, officer.principal, body))
        word, tone = VERDICT_WORDS.get(answer["verdict"], (answer["verdict"], "neutral"))
        seen: dict[str, dict[str, str]] = {}
        if answer.get("findings"):
            gateway.scans.flush()  # the earlier sightings may still be queued
            seen = await run_in_threadpool(
                _seen_before, gateway.engine, answer, officer.principal.organization_id
            )
        result = {**answer, "word": word, "tone": tone, "seen": seen}
    except ValidationError as exc:
        error = _problem(exc)
    except BorderLedgerError as exc:
        error = str(exc)
    partial = request.headers.get("hx-request") == "true"
    return page(
        request,
        officer,
        "_verdict.html" if partial else "scan.html",
        # htmx swaps 2xx answers only: the fragment's message says what went wrong.
        status_code=200 if error is None or partial else 422,
        form={**fields, "tag": ""},
        result=result,
        error=error,
    )


#: The detention profile a port's country takes when an officer flags a scan: the EU standard
#: procedure in a member state with a working-day calendar, US trademark in the US.
def _profile_for(port: str) -> tuple[str, str | None]:
    country = port[:2]
    if country == "US":
        return "us-trademark", None
    try:
        get_calendar(country)
    except BorderLedgerError:
        raise FlagRefused(
            f"No detention profile for port {port}: cases open at US ports and at EU ports "
            "with a case calendar (DE, NL, BE, FR, IT, ES, PL)."
        ) from None
    return "eu-standard", country


class FlagRefused(Exception):
    """Why a scan cannot become a case from this page (shown as the message)."""


def _flag(signed_in: users.SignedIn, scan_id: str, engine: Any) -> Case:
    """Open a detention case from the scan (once: flagging the same scan again shows the
    case it opened). The case's port, shipment reference and rights holder come from it."""
    principal = signed_in.principal
    with Session(engine, expire_on_commit=False) as session:
        existing = session.exec(
            select(Case).where(
                Case.source == "scan",
                Case.source_ref == scan_id,
                Case.agency_id == principal.organization_id,
            )
        ).first()
        if existing is not None:
            return existing
        scan_row = session.exec(select(ScanEvent).where(ScanEvent.scan_id == scan_id)).first()
        if scan_row is None or (
            scan_row.organization_id != principal.organization_id and principal.role != Role.ADMIN
        ):
            raise FlagRefused("This scan is not one of your agency's.")
        if not scan_row.location:
            raise FlagRefused("Set the port before scanning: a case needs the port.")
        profile, member_state = _profile_for(scan_row.location)
        body = CaseCreate(
            profile=profile,
            memberState=member_state,
            source="scan",
            scanId=scan_id,
            reference=scan_row.shipment or "",
            mode="cargo",
            presentedAt=datetime.now(UTC),
            description="Flagged from the scan page",
        )
        return cases.open_case(session, principal, body)


@router.post("/scan/flag", response_class=HTMLResponse)
async def flag(request: Request) -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    form = await checked_form(request, officer)
    if isinstance(form, Response):
        return form
    scan_id = form.get("scan_id", "").strip()
    case = error = None
    if len(scan_id) != 36:
        error = "No scan to flag: scan a label first."
    else:
        gateway = gateway_of(request)
        await run_in_threadpool(
            gateway.scans.flush
        )  # the scan may still be queued for its group commit
        try:
            case = await run_in_threadpool(_flag, officer, scan_id, gateway.engine)
        except FlagRefused as exc:
            error = str(exc)
        except BorderLedgerError as exc:
            error = str(exc)
    # Without JavaScript the form posts a whole page; htmx swaps in the fragment.
    partial = request.headers.get("hx-request") == "true"
    return page(
        request,
        officer,
        "_flagged.html" if partial else "flagged.html",
        status_code=200 if error is None or partial else 422,
        case=case,
        error=error,
    )
