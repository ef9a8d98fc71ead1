"""Chain of custody: EPCIS capture, per-item timelines with proofs, the log's checkpoints,
and the places agencies register. Thin: parse, call `api.services.custody`, shape
(docs/custody.md).

The timeline and the capture answer are sent as built (`JSONResponse`): their models
document them, and the bytes stay exactly what `api.custody` produced (an auditor re-hashes
the logged records) whichever format, JSON or EPCIS, was asked for."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import GatewayDep, OfficerDep, ReaderDep, SessionDep, VerifierDep
from api.models import CustodyLocation
from api.openapi import DEFAULT_PAGE, PageLimit
from api.schemas import (
    CSET82_20,
    GTIN_DIGITS,
    CaptureResponse,
    CheckpointListPublic,
    ConsistencyProofPublic,
    CustodyTimelinePublic,
    ErrorResponse,
    LocationCreate,
    LocationPublic,
)
from api.services import custody
from api.uploads import read_body

router = APIRouter(prefix="/v1", tags=["custody"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 413, 422)
}
#: The envelope of an EPCIS 2.0 document (what every capture must have); the events inside
#: are checked against GS1's full EPCIS 2.0 JSON schema by `epcis`, which this document does
#: not inline (schemathesis.toml says so for the capture operation).
_EPCIS_ENVELOPE = {
    "type": "object",
    "description": "an EPCIS 2.0 EPCISDocument (GS1's EPCIS-JSON-Schema.json)",
    "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
    "properties": {
        "@context": {"oneOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}]},
        "type": {"enum": ["EPCISDocument"]},
        "schemaVersion": {"enum": ["2.0"]},
        "creationDate": {"type": "string", "format": "date-time"},
        "epcisBody": {
            "type": "object",
            "required": ["eventList"],
            "properties": {"eventList": {"type": "array", "items": {"type": "object"}}},
        },
    },
}
_CAPTURE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _EPCIS_ENVELOPE},
            "application/ld+json": {"schema": _EPCIS_ENVELOPE},
        },
    }
}
_EPCIS_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/ld+json": {
                "schema": {"type": "object", "description": "with format=epcis: EPCIS 2.0"}
            }
        }
    }
}


def _file_name(gtin: str, serial: str) -> str:
    """A download's name: a serial's `"`, `/` or `%` (CSET 82 allows them) never reach the
    header."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{gtin}-{serial}-epcis.jsonld")


def _location_out(row: CustodyLocation) -> LocationPublic:
    return LocationPublic(
        unlocode=row.locode,
        name=row.name,
        country=row.country,
        latitude=row.latitude,
        longitude=row.longitude,
        glns=list(row.glns),
    )


@router.post(
    "/epcis/capture",
    response_model=CaptureResponse,
    responses=ERRORS,
    openapi_extra=_CAPTURE_DOC,
)
async def capture(request: Request, principal: VerifierDep, gateway: GatewayDep) -> JSONResponse:
    """Capture an EPCIS 2.0 document (JSON or JSON-LD): rights holders, customs and admins.

    The document is validated against GS1's schema first (422 with the problems, nothing
    stored). Each event is stored once: an event already captured (same eventID, or the
    same content when it has none) is answered `duplicate`. Each stored event is appended
    to the custody log (`logIndex`). Identifiers no batch is enrolled under are accepted;
    their GTINs are listed in `unknownGtins`."""
    raw = await read_body(request, gateway.settings.max_upload_bytes)
    answer = await run_in_threadpool(custody.capture, gateway, principal, raw)
    return JSONResponse(answer)


@router.get(
    "/items/{gtin}/{serial}/custody",
    response_model=CustodyTimelinePublic,
    responses={**ERRORS, **_EPCIS_ANSWER},
)
def item_custody(
    principal: ReaderDep,
    gateway: GatewayDep,
    session: SessionDep,
    gtin: Annotated[str, Path(min_length=8, max_length=14, pattern=GTIN_DIGITS)],
    serial: Annotated[str, Path(min_length=1, max_length=20, pattern=CSET82_20)],
    format: Annotated[Literal["json", "epcis"], Query(description="epcis: EPCIS 2.0")] = "json",
) -> JSONResponse:
    """An item's chain of custody, within the caller's view: admins any item's; rights
    holders their own products' and auditors those of the holders they were granted (any
    other item: 404); customs agencies any item's, with the entries other parties recorded
    withheld (leaf hash and proof only) until the agency has scanned the item. Enrollment,
    custody events (and those of containers it was packed in), border scans, status changes
    and alerts, each log-backed step with an inclusion proof to an anchored checkpoint. `?format=epcis` gives the same history as an EPCIS 2.0 document
    (scans as ObjectEvents, bizStep inspecting)."""
    answer = custody.timeline(gateway, session, principal, gtin, serial, format == "epcis")
    media = "application/ld+json" if format == "epcis" else "application/json"
    return JSONResponse(answer, media_type=media)


@router.get(
    "/items/{gtin}/{serial}/custody/epcis",
    responses={**ERRORS, **_EPCIS_ANSWER},
)
def item_custody_epcis(
    principal: ReaderDep,
    gateway: GatewayDep,
    session: SessionDep,
    gtin: Annotated[str, Path(min_length=8, max_length=14, pattern=GTIN_DIGITS)],
    serial: Annotated[str, Path(min_length=1, max_length=20, pattern=CSET82_20)],
) -> JSONResponse:
    """An item's whole history as one EPCIS 2.0 document, validated against GS1's schema:
    its enrollment as a commissioning event, custody events as captured, border scans as
    ObjectEvents (bizStep inspecting, the port as readPoint and bizLocation) and status
    changes with their CBV disposition, in time order. Who may read it: as the timeline
    (entries another party recorded that the caller may not read are left out)."""
    answer = custody.item_epcis(gateway, session, principal, gtin, serial)
    return JSONResponse(
        answer,
        media_type="application/ld+json",
        headers={"Content-Disposition": f'attachment; filename="{_file_name(gtin, serial)}"'},
    )


@router.get("/log/checkpoints", response_model=CheckpointListPublic, responses=ERRORS)
def checkpoints(
    principal: ReaderDep,
    session: SessionDep,
    gateway: GatewayDep,
    status: Annotated[Literal["queued", "anchored", "failed"] | None, Query()] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> dict[str, Any]:
    """The custody log's size and the checkpoints of the anchoring agency, newest first.
    `matchesLog` is false for a root the agency anchored that is not this log's at that size
    (never used in proofs). Every role: the log is what each party checks the others by."""
    return custody.checkpoints(gateway, session, status, limit)


@router.get("/log/consistency", response_model=ConsistencyProofPublic, responses=ERRORS)
def consistency(
    principal: ReaderDep,
    gateway: GatewayDep,
    from_size: Annotated[int, Query(alias="from", ge=0, le=2**63)],
    to_size: Annotated[int, Query(alias="to", ge=0, le=2**63)],
) -> dict[str, Any]:
    """An RFC 9162 consistency proof between two sizes of the custody log, with both roots
    (every role)."""
    return custody.consistency(gateway, from_size, to_size)


@router.post("/locations", status_code=201, response_model=LocationPublic, responses=ERRORS)
def add_location(
    body: LocationCreate, principal: OfficerDep, gateway: GatewayDep
) -> LocationPublic:
    """Register a place (customs, admins): UN/LOCODE, name, country, coordinates and the GLNs
    naming it in EPCIS read points, so custody events there feed the detector. Repeating it
    updates the place (idempotent)."""
    return _location_out(custody.add_location(gateway, principal, body))


@router.get("/locations", response_model=list[LocationPublic], responses=ERRORS)
def list_locations(
    principal: ReaderDep, gateway: GatewayDep, limit: PageLimit = DEFAULT_PAGE
) -> list[LocationPublic]:
    """The places agencies registered (every role), at most `limit`."""
    return [_location_out(r) for r in gateway.custody.locations.all()[:limit]]
