"""The auditor's "find an item" page (`/audit`) and an item's PDF audit report.

An auditor (or the registry admin) finds an item by typing its GTIN and serial, or by
reading its label with the camera or a photo: the scan page's zxing-wasm reader
(`web/lib/barcode.js`) decodes the GS1 Digital Link in the browser and sends it in the form's
`tag` field. The form is a plain POST with a CSRF token, so it works without script. A good
item goes to its timeline (`/audit/items/{gtin}/{serial}`); a bad GTIN (check digit), a bad
serial, an item outside the auditor's grants or one nothing is recorded about is a message
on this page.

`/audit/items/{gtin}/{serial}/report.pdf` is the timeline audited against the chain as a PDF
(`api.services.audit_report`: the checks of `borderledger audit`). Who reads what follows the
custody API (`api.scoping`): an auditor the items of the holders it was granted, the admin
any item; other kinds of organization are refused these pages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from api import users
from api.models import Role
from api.pages.kit import checked_form, error_page, gateway_of, page, require
from api.services import audit_report, custody
from api.verification import Scanned
from epcis import IdentifierKind, parse_identifier
from ledger.errors import BorderLedgerError, ChainError, InvalidEpcIdentifier, NotFound

router = APIRouter(include_in_schema=False)
AUDITORS = (Role.AUDITOR, Role.ADMIN)
REFUSAL = "This page is for auditors and the registry admin."
#: The page's messages, whole (each a msgid of the catalogs).
NOT_A_TAG = "This code is not a product tag (GS1 Digital Link with /01/ and /21/)."
NOTHING_RECORDED = "Nothing is recorded about item {gtin} / {serial}: check the GTIN and serial."
NOT_YOURS = "Item {gtin} / {serial} is not among the products you may audit."
NOT_YOURS_PLAIN = "This item is not among the products you may audit."
TYPE_BOTH = "Type the GTIN and the serial, or scan the item's label."


def require_auditor(request: Request) -> users.SignedIn | Response:
    return require(request, kinds=AUDITORS, refusal=REFUSAL)


def timeline_url(gtin: str, serial: str) -> str:
    return f"/audit/items/{gtin}/{quote(serial, safe='')}"


@router.get("/audit", response_class=HTMLResponse)
def find_page(request: Request) -> Response:
    auditor = require_auditor(request)
    if isinstance(auditor, Response):
        return auditor
    return page(request, auditor, "audit_find.html", form={"gtin": "", "serial": ""})


def _item_of(form: dict[str, str]) -> tuple[str, str]:
    """(GTIN, serial) from the decoded tag or the typed fields; `InvalidInput` says why not."""
    tag = form.get("tag", "").strip()
    if tag:
        try:
            identifier = parse_identifier(tag)
        except InvalidEpcIdentifier:
            raise ValueError(NOT_A_TAG) from None
        if identifier.kind is not IdentifierKind.SGTIN or identifier.item is None:
            raise ValueError(NOT_A_TAG)
        gtin, serial = identifier.item
    else:
        gtin, serial = form.get("gtin", "").strip(), form.get("serial", "").strip()
        if not gtin or not serial:
            raise ValueError(TYPE_BOTH)
    scanned = Scanned.from_fields(gtin, serial)  # GS1 check digit, CSET 82 serial: 422
    return scanned.gtin, scanned.serial


def _known(request: Request, signed_in: users.SignedIn, gtin: str, serial: str) -> str | None:
    """None when the auditor may read the item and something is recorded about it; else the
    message saying which is not the case."""
    gateway = gateway_of(request)
    with Session(gateway.engine) as session:
        try:
            timeline = custody.timeline(
                gateway, session, signed_in.principal, gtin, serial, epcis=False
            )
        except NotFound:
            return NOT_YOURS
    if timeline["enrollment"] or timeline["entries"] or timeline["statusChanges"]:
        return None
    return NOTHING_RECORDED


@router.post("/audit", response_class=HTMLResponse)
async def find(request: Request) -> Response:
    auditor = require_auditor(request)
    if isinstance(auditor, Response):
        return auditor
    form = await checked_form(request, auditor)
    if isinstance(form, Response):
        return form
    shown: dict[str, Any] = {"gtin": form.get("gtin", ""), "serial": form.get("serial", "")}
    status, error, values = 422, None, {}
    try:
        gtin, serial = _item_of(form)
    except (ValueError, BorderLedgerError) as exc:
        error = str(exc)
    else:
        shown = {"gtin": gtin, "serial": serial}
        message = await run_in_threadpool(_known, request, auditor, gtin, serial)
        if message is None:
            return RedirectResponse(timeline_url(gtin, serial), status_code=303)
        status, error, values = 404, message, {"gtin": gtin, "serial": serial}
    return page(
        request,
        auditor,
        "audit_find.html",
        status_code=status,
        form=shown,
        error=error,
        error_values=values,
    )


@router.get("/audit/items/{gtin}/{serial}/report.pdf")
def report_pdf(request: Request, gtin: str, serial: str) -> Response:
    auditor = require_auditor(request)
    if isinstance(auditor, Response):
        return auditor
    language = auditor.user.language
    gateway = gateway_of(request)
    try:
        with Session(gateway.engine) as session:
            timeline, report = audit_report.build(gateway, session, auditor.principal, gtin, serial)
    except NotFound:
        return error_page(request, language, 404, "Item not found", NOT_YOURS_PLAIN)
    except ChainError as exc:
        return error_page(request, language, 503, "Chain unavailable", str(exc))
    except BorderLedgerError as exc:
        return error_page(request, language, 422, "Not an item", str(exc))
    body = audit_report.render(gateway, timeline, report)
    name = "".join(c if c.isalnum() or c in "-._" else "_" for c in f"{gtin}-{serial}")
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="audit-{name}.pdf"'},
    )
