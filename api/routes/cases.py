"""Customs cases (docs/cases.md): open, list by next deadline, read as the stage discloses,
act (seizure and destruction with a second officer's approval), the parties' single-use
links, and the seizure statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from api import statistics_report
from api.case_models import CaseAction, CaseAttachment
from api.deps import OfficerDep, ReaderDep, SessionDep, VerifierDep, role_rule
from api.errors import PayloadTooLarge
from api.models import Role
from api.openapi import DEFAULT_PAGE, PageLimit, errors
from api.principal import Principal
from api.schemas import (
    CaseActionPublic,
    CaseActionRequest,
    CaseApprovalRequest,
    CaseAttachmentPublic,
    CaseCreate,
    CaseNoticePublic,
    CasePartyAnswer,
    CasePublic,
    DateTime,
    StatisticsResponse,
)
from api.services import case_attachments, case_epcis, cases, statistics
from api.services.cases import utc
from cases.profiles import all_profiles
from cases.simulate import fiscal_year
from ledger.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["cases"])
CaseId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="the case's id")]
Token = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$", description="link token")]
#: A case answers 404 to a caller it is not visible to (docs/cases.md, "Who reads a case"),
#: 403 to a role that may not act, 409 when its state does not allow the action.
ERRORS = errors(401, 403, 404, 409, 422)
StatisticsDep = Annotated[Principal, Depends(role_rule(Role.CUSTOMS, Role.ADMIN, Role.AUDITOR))]


def _case(data: dict[str, Any]) -> JSONResponse:
    body = CasePublic.model_validate(data).model_dump(mode="json", exclude_unset=True)
    return JSONResponse(body)


def _action(row: CaseAction, replayed: bool, link: str | None = None) -> CaseActionPublic:
    return CaseActionPublic(
        actionId=row.action_id,
        action=row.action,
        status=row.status,
        by=row.by,
        actor=row.actor,
        stateBefore=row.state_before,
        stateAfter=row.state_after,
        stageAfter=row.stage_after,
        approvedBy=row.approved_by,
        logIndex=row.log_index,
        createdAt=utc(row.created_at),
        appliedAt=utc(row.applied_at) if row.applied_at else None,
        replayed=replayed,
        partyLink=link,
    )


def _answer(row: CaseAction, replayed: bool, link: str | None = None) -> JSONResponse:
    status = 200 if replayed else (202 if row.status == cases.PENDING else 201)
    return JSONResponse(_action(row, replayed, link).model_dump(mode="json"), status_code=status)


@router.get("/case-profiles", response_model=list[dict[str, Any]], responses=errors(401, 422))
def list_profiles(principal: ReaderDep, limit: PageLimit = DEFAULT_PAGE) -> list[dict[str, Any]]:
    """The jurisdiction profiles: states, actions, clocks, stages and documents (data)."""
    profiles = list(all_profiles().values())[:limit]
    return [
        {
            "id": p.id,
            "title": p.title,
            "jurisdiction": p.jurisdiction,
            "right": p.right,
            "procedure": p.procedure,
            "states": list(p.states),
            "stages": list(p.stages),
            "actions": {name: list(rule.sources) for name, rule in p.actions.items()},
            "clocks": {
                name: {"days": c.days, "unit": c.unit.value, "starts": c.starts}
                for name, c in p.clocks.items()
            },
            "documents": p.documents(),
        }
        for p in profiles
    ]


def _stored_scans(request: Request) -> None:
    """Wait until the scans this process has answered are stored: a verification is answered
    before its row's group commit (api/scans.py), and an officer opens a case from the scan
    (or adds it to one) a moment later. Runs in the route's worker thread, off the loop."""
    request.app.state.gateway.scans.flush()


@router.post("/cases", response_model=CasePublic, status_code=201, responses=ERRORS)
def open_case(
    request: Request, body: CaseCreate, principal: OfficerDep, session: SessionDep
) -> JSONResponse:
    """Open a case for a shipment (from a scan, an alert or by hand); its clocks start."""
    if body.source == "scan":
        _stored_scans(request)
    case = cases.open_case(session, principal, body)
    response = _case(cases.get_case(session, principal, case.case_id))
    response.status_code = 201
    return response


@router.get("/cases", response_model=list[CasePublic], responses=ERRORS)
def list_cases(
    principal: ReaderDep,
    session: SessionDep,
    state: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    open_only: Annotated[bool, Query(alias="open")] = False,
    limit: PageLimit = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JSONResponse:
    """Next deadline first, overdue on top; each case as the caller may read it."""
    rows = cases.list_cases(session, principal, state, open_only, limit, offset)
    return JSONResponse(
        [CasePublic.model_validate(r).model_dump(mode="json", exclude_unset=True) for r in rows]
    )


@router.get("/case-notices", response_model=list[CaseNoticePublic], responses=ERRORS)
def list_notices(
    principal: OfficerDep,
    session: SessionDep,
    kind: Literal["reminder", "expired"] | None = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[CaseNoticePublic]:
    """The officer's inbox: clock reminders and expiries of the agency's cases, newest first."""
    return [
        CaseNoticePublic.model_validate(n)
        for n in cases.list_notices(session, principal, kind, limit)
    ]


@router.get("/cases/{case_id}", response_model=CasePublic, responses=ERRORS)
def get_case(case_id: CaseId, principal: ReaderDep, session: SessionDep) -> JSONResponse:
    """The case, redacted to what its disclosure stage lets the caller read."""
    return _case(cases.get_case(session, principal, case_id))


@router.post(
    "/cases/{case_id}/actions",
    response_model=CaseActionPublic,
    status_code=201,
    responses={**ERRORS, 200: {"model": CaseActionPublic}, 202: {"model": CaseActionPublic}},
)
def apply_action(
    request: Request,
    case_id: CaseId,
    body: CaseActionRequest,
    principal: VerifierDep,
    session: SessionDep,
) -> JSONResponse:
    """Apply an action (201), or request one that needs a second officer (202); a replayed
    idempotency key answers the stored action (200). Not allowed in the case's state: 409."""
    if body.action == "add_item":
        _stored_scans(request)
    row, replayed, link = cases.apply_action(session, principal, case_id, body)
    return _answer(row, replayed, link)


@router.post(
    "/cases/{case_id}/actions/{action_id}/approve",
    response_model=CaseActionPublic,
    status_code=201,
    responses=ERRORS,
)
def approve_action(
    case_id: CaseId,
    action_id: CaseId,
    body: CaseApprovalRequest,
    principal: OfficerDep,
    session: SessionDep,
) -> JSONResponse:
    """A second officer (another actor than the requester) approves a seizure or destruction."""
    row, replayed = cases.approve(session, principal, case_id, action_id, body.idempotencyKey)
    return _answer(row, replayed)


def _attachment(row: CaseAttachment, replayed: bool) -> CaseAttachmentPublic:
    return CaseAttachmentPublic(
        attachmentId=row.attachment_id,
        sha256=row.sha256,
        mediaType=row.media_type,
        fileName=row.file_name,
        size=row.size,
        actionId=row.action_id,
        actor=row.actor,
        kind=row.kind,
        createdAt=utc(row.created_at),
        replayed=replayed,
    )


#: Multipart overhead allowed on top of the file itself before the body is refused unread.
_MULTIPART_SLACK = 64 * 1024


@router.post(
    "/cases/{case_id}/attachments",
    response_model=CaseAttachmentPublic,
    status_code=201,
    responses={**errors(401, 403, 404, 409, 413, 422), 200: {"model": CaseAttachmentPublic}},
)
async def add_attachment(
    request: Request,
    case_id: CaseId,
    principal: OfficerDep,
    session: SessionDep,
    file: Annotated[
        UploadFile, File(description="JPEG, PNG, WebP or PDF; its type is read from its bytes")
    ],
    kind: Annotated[
        Literal["image_redacted", "image_unredacted", "document"],
        Form(description="what the file is: the rights holder reads images as its stage allows"),
    ] = "document",
) -> JSONResponse:
    """Add a photo or document to a case (its agency). The bytes must be what the declared
    content type and the file name say (422 naming the disagreement); the same bytes again
    answer the stored attachment (200). Recorded as a `note` action in the custody log."""
    limit = request.app.state.gateway.settings.case_attachment_max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _MULTIPART_SLACK:
        raise PayloadTooLarge(f"upload is {declared} bytes; an attachment is at most {limit}")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the attachment exceeds the limit of {limit} bytes")
    row, replayed = case_attachments.attach(
        session, principal, case_id, data, file.content_type, file.filename, limit, kind
    )
    return JSONResponse(
        _attachment(row, replayed).model_dump(mode="json"), status_code=200 if replayed else 201
    )


@router.get(
    "/cases/{case_id}/attachments", response_model=list[CaseAttachmentPublic], responses=ERRORS
)
def list_attachments(
    case_id: CaseId, principal: ReaderDep, session: SessionDep, limit: PageLimit = DEFAULT_PAGE
) -> list[CaseAttachmentPublic]:
    """The case's attachments (name, type, size, hash, kind), oldest first: all for its
    agency, the images the disclosure stage allows for its rights holder."""
    rows = case_attachments.list_attachments(session, principal, case_id, limit)
    return [_attachment(row, False) for row in rows]


@router.get(
    "/cases/{case_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={
        **ERRORS,
        200: {
            "content": {t: {} for t in ("image/jpeg", "image/png", "image/webp", "application/pdf")}
        },
    },
)
def download_attachment(
    case_id: CaseId, attachment_id: CaseId, principal: ReaderDep, session: SessionDep
) -> Response:
    """The attachment's bytes, if the caller may read it at the case's stage (404 if not)."""
    row = case_attachments.get_attachment(session, principal, case_id, attachment_id)
    return Response(
        row.data,
        media_type=row.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{row.sha256[:16]}{_ext(row.file_name)}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def _ext(name: str) -> str:
    """The file name's extension (checked on upload), for the download's name: the stored
    name itself may hold characters a header cannot."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


@router.get(
    "/cases/{case_id}/epcis",
    responses={
        **ERRORS,
        200: {"content": {"application/ld+json": {"schema": {"type": "object"}}}},
    },
)
def export_epcis(case_id: CaseId, principal: OfficerDep, session: SessionDep) -> Response:
    """The case's applied actions as an EPCIS 2.0 document: one ObjectEvent per action over
    the case's items, CBV steps and dispositions where they exist, the documented extension
    vocabulary where not (docs/epcis.md). Validated against GS1's schema before it is sent."""
    document = case_epcis.export(session, principal, case_id)
    return JSONResponse(document, media_type="application/ld+json")


@router.delete("/cases/{case_id}/parties/{role}", status_code=204, responses=ERRORS)
def erase_party(
    case_id: CaseId,
    role: Literal["importer", "declarant", "exporter", "manufacturer", "consignee"],
    principal: OfficerDep,
    session: SessionDep,
) -> Response:
    """Erase a party's personal data; the custody log's commitment (and its proofs) stay."""
    cases.erase_party(session, principal, case_id, role)
    return Response(status_code=204)


@router.get("/case-links/{token}", response_model=CasePublic, responses=ERRORS)
def read_by_link(token: Token, session: SessionDep) -> JSONResponse:
    """The importer's / declarant's view through the link sent with the notice (no account)."""
    return _case(cases.link_view(session, token))


@router.post(
    "/case-links/{token}/answer",
    response_model=CaseActionPublic,
    status_code=201,
    responses=ERRORS,
)
def answer_by_link(token: Token, body: CasePartyAnswer, session: SessionDep) -> JSONResponse:
    """The party's answer (answer, consent, object, abandon): once; the link is spent."""
    return _answer(cases.link_answer(session, token, body), False)


@router.get(
    "/statistics/seizures",
    response_model=StatisticsResponse,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
)
def seizure_statistics(
    principal: StatisticsDep,
    session: SessionDep,
    by: Annotated[str, Query(max_length=200, description="comma list of dimensions")] = "",
    start: Annotated[DateTime | None, Query(alias="from")] = None,
    end: Annotated[DateTime | None, Query(alias="to")] = None,
    period: Literal["month", "quarter", "year", "fiscal_year"] = "month",
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Seizures, lines, quantity and MSRP value by category, origin, mode, right, outcome,
    port and period (of the first outcome), in [from, to)."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"'{name}' needs a time zone (e.g. 2023-01-01T00:00:00Z)")
    answer = statistics.seizures(
        session.connection(), principal, statistics.parse_by(by), start, end, period
    )
    if format == "csv":
        return Response(statistics.to_csv(answer), media_type="text/csv")
    return JSONResponse(StatisticsResponse.model_validate(answer).model_dump(mode="json"))


@router.get(
    "/statistics/seizures/report",
    response_class=Response,
    responses={**errors(401, 403, 422), 200: {"content": {"application/pdf": {}}}},
)
def seizure_report(
    principal: StatisticsDep,
    session: SessionDep,
    year: Annotated[int, Query(ge=2000, le=2100, description="the (fiscal) year")],
    basis: Literal["fiscal", "calendar"] = "fiscal",
) -> Response:
    """The year's seizure statistics as a PDF laid out like the agencies' tables (CBP's
    fiscal-year IPR statistics by category, origin and mode; the EU report's right and
    outcome), scoped like the JSON: an agency reads its own seizures."""
    start, end = (
        fiscal_year(year)
        if basis == "fiscal"
        else (datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
    )
    connection = session.connection()

    def of(by: list[str]) -> dict[str, Any]:
        return statistics.seizures(connection, principal, by, start, end)

    name = f"FY{year}" if basis == "fiscal" else str(year)
    scope = (
        principal.organization.name if principal.role == Role.CUSTOMS else "All customs agencies"
    )
    pdf = statistics_report.build(
        of, f"Intellectual property rights seizure statistics, {name}", scope, start, end
    )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="seizures-{name}.pdf"'},
    )
