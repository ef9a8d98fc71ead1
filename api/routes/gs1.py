"""GS1 Lightweight Messaging Standard for Verification of Product Identifiers (US DSCSA VRS):
`GET /v1/gs1/verify/gtin/{gtin}/lot/{lot}/ser/{serial}?exp=YYMMDD&…`.

Wiring only: `api.gs1` validates, judges and shapes the answer (its docstring cites the
standard and explains each choice; docs/gs1-verification.md has the mapping table).
HTTP statuses follow the GS1 US implementation guideline: 200 with the GS1 JSON message, 400
for a request that is not formatted properly, 401/403 for authentication and roles, 404 for a
GTIN this responder holds no batch of. Error bodies use the API's usual
`{"error": {"code", "message"}}` envelope.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.deps import GatewayDep, VerifierDep
from api.gateway import Gateway
from api.gs1 import (
    FailureReason,
    Gs1Request,
    VerificationData,
    VerificationResponse,
    parse_request,
    response,
)
from api.principal import Principal
from api.schemas import ErrorResponse
from api.services import gs1
from ledger.errors import InvalidInput

router = APIRouter(prefix="/v1/gs1", tags=["gs1"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "request not formatted properly (code invalid_input)",
    },
    401: {"model": ErrorResponse, "description": "missing or unknown API key"},
    403: {
        "model": ErrorResponse,
        "description": "role not allowed (customs, admin, rights_holder)",
    },
    404: {
        "model": ErrorResponse,
        "description": "no batch registered for this GTIN (gtin_not_found)",
    },
}

Exp = Annotated[
    str | None,
    Query(description="expiry date, YYMMDD (DD 00 = end of month); required", examples=["281231"]),
]
LinkType = Annotated[
    str | None, Query(alias="linkType", description="verificationService (default)")
]
Context = Annotated[
    str | None, Query(description="VRS context, e.g. dscsaSaleableReturn (default)")
]
ReqGln = Annotated[
    str | None, Query(alias="reqGLN", description="GLN of the requestor (13 digits), optional")
]
CorrUuid = Annotated[
    str | None, Query(alias="corrUUID", description="correlation UUID, echoed in the answer")
]


@router.get(
    "/verify/gtin/{gtin}/lot/{lot}/ser/{serial}",
    response_model=VerificationResponse,
    response_model_exclude_none=True,
    responses=_RESPONSES,
)
def verify_product_identifier(
    gtin: str,
    lot: str,
    serial: str,
    principal: VerifierDep,
    gateway: GatewayDep,
    exp: Exp = None,
    link_type: LinkType = None,
    context: Context = None,
    req_gln: ReqGln = None,
    corr_uuid: CorrUuid = None,
) -> VerificationResponse | JSONResponse:
    """Verify a product identifier (GTIN, lot, serial, expiry) the GS1 way: `verified`, a
    `verificationFailureReason` when false, `additionalInfo` such as `Recalled`. Every
    well-formed request is recorded as a scan."""
    return _answer(
        principal, gateway, gtin, lot, serial, exp, link_type, context, req_gln, corr_uuid
    )


@router.get(
    "/verify/gtin/{rest:path}",
    response_model=VerificationResponse,
    response_model_exclude_none=True,
    include_in_schema=False,
)
def verify_encoded_path(
    request: Request,
    rest: str,
    principal: VerifierDep,
    gateway: GatewayDep,
    exp: Exp = None,
    link_type: LinkType = None,
    context: Context = None,
    req_gln: ReqGln = None,
    corr_uuid: CorrUuid = None,
) -> VerificationResponse | JSONResponse:
    """The same request when the lot or serial holds a percent-encoded '/' (allowed in GS1
    AI 10 and 21): the decoded path then has extra segments, so split the raw path instead."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    tail = raw.decode("latin-1").split("/verify/gtin/", 1)[-1]
    parts = tail.split("/")
    if len(parts) != 5 or parts[1] != "lot" or parts[3] != "ser":
        return _error(
            400,
            "invalid_input",
            "the path must be /v1/gs1/verify/gtin/{gtin}/lot/{lot}/ser/{serial}",
        )
    try:
        gtin, lot, serial = (unquote(parts[i], errors="strict") for i in (0, 2, 4))
    except UnicodeDecodeError:
        return _error(
            400, "invalid_input", "the path holds percent-encoded bytes that are not UTF-8"
        )
    return _answer(
        principal, gateway, gtin, lot, serial, exp, link_type, context, req_gln, corr_uuid
    )


def _answer(
    principal: Principal,
    gateway: Gateway,
    gtin: str,
    lot: str,
    serial: str,
    exp: str | None,
    link_type: str | None,
    context: str | None,
    req_gln: str | None,
    corr_uuid: str | None,
) -> VerificationResponse | JSONResponse:
    try:
        request: Gs1Request = parse_request(
            gtin, lot, serial, exp, link_type, context, req_gln, corr_uuid
        )
    except InvalidInput as exc:
        return _error(400, "invalid_input", str(exc))
    now = datetime.now(UTC)
    settings = gateway.settings
    assessment = gs1.assess_and_record(gateway, principal, request, now)
    scanned = request.scanned
    if assessment.data is None:
        # HTTP 404 as the GS1 US guideline answers a GTIN the responder does not serve, with a
        # GS1 body too (verified false, GTIN_not_found) for clients that read the payload.
        body = response(
            VerificationData(
                verified=False, verification_failure_reason=FailureReason.GTIN_NOT_FOUND
            ),
            settings.responder_gln,
            request.corr_uuid,
            now,
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        body["error"] = {
            "code": "gtin_not_found",
            "message": f"no batch is registered for GTIN {scanned.gtin}",
        }
        return JSONResponse(body, status_code=404)
    return response(assessment.data, settings.responder_gln, request.corr_uuid, now)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
