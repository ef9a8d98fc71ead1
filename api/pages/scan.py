"""The officer's Scan page: typed GTIN + serial (and port) → the verify service → the
verdict's big word, colour, sentence and reasons."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.pages.kit import VERDICT_WORDS, checked_form, gateway_of, page, require_officer
from api.schemas import VerifyRequest
from api.services.verify import answer_scan
from ledger.errors import BorderLedgerError

router = APIRouter(include_in_schema=False)


@router.get("/scan", response_class=HTMLResponse)
def scan_page(request: Request) -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    return page(
        request, officer, "scan.html", form={"gtin": "", "serial": "", "lot": "", "port": ""}
    )


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "location") or "form"
    return f"{field}: {first.get('msg', 'invalid')}".replace("Value error, ", "")


@router.post("/scan", response_class=HTMLResponse)
async def scan(request: Request) -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    form = await checked_form(request, officer)
    if isinstance(form, Response):
        return form
    fields = {k: form.get(k, "").strip() for k in ("gtin", "serial", "lot", "port")}
    error = result = None
    try:
        body = VerifyRequest(
            gtin=fields["gtin"] or None,
            serial=fields["serial"] or None,
            lot=fields["lot"] or None,
            location={"unlocode": fields["port"].upper()} if fields["port"] else None,
        )
        answer = orjson.loads(await answer_scan(gateway_of(request), officer.principal, body))
        word, tone = VERDICT_WORDS.get(answer["verdict"], (answer["verdict"], "neutral"))
        result = {**answer, "word": word, "tone": tone}
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
        form=fields,
        result=result,
        error=error,
    )
