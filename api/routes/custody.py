"""Chain of custody: EPCIS capture, per-item timelines with proofs, the log's checkpoints,
and the places agencies register. Thin: parse, call `api.custody`, shape (docs/custody.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select

from api.custody.locations import NewLocation
from api.custody.timeline import matches_log
from api.deps import CurrentOrg, GatewayDep, SessionDep, require
from api.models import Checkpoint, CustodyLocation, Role
from api.routes.batches import _read_body
from api.schemas import ErrorOut
from custody.log import proof_to_hex
from ledger.errors import InvalidEpcisDocument, InvalidInput

router = APIRouter(prefix="/v1", tags=["custody"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 413, 422)
}
_CAPTURE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "an EPCIS 2.0 EPCISDocument"}
            },
            "application/ld+json": {"schema": {"type": "object"}},
        },
    }
}


class LocationIn(BaseModel):
    unlocode: str = Field(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$", description="UN/LOCODE")
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    glns: list[Annotated[str, Field(pattern=r"^[0-9]{13}$")]] = Field(
        default_factory=list, max_length=100, description="GLNs naming this place in EPCIS"
    )


class LocationOut(BaseModel):
    unlocode: str
    name: str
    country: str
    latitude: float
    longitude: float
    glns: list[str]


def _location_out(row: CustodyLocation) -> LocationOut:
    return LocationOut(
        unlocode=row.locode,
        name=row.name,
        country=row.country,
        latitude=row.latitude,
        longitude=row.longitude,
        glns=list(row.glns),
    )


@router.post("/epcis/capture", responses=ERRORS, openapi_extra=_CAPTURE_DOC)
async def capture(request: Request, org: CurrentOrg, gateway: GatewayDep) -> JSONResponse:
    """Capture an EPCIS 2.0 document (JSON or JSON-LD): rights holders, customs and admins.

    The document is validated against GS1's schema first (422 with the problems, nothing
    stored). Each event is stored once: an event already captured (same eventID, or the
    same content when it has none) is answered `duplicate`. Each stored event is appended
    to the custody log (`logIndex`). Identifiers no batch is enrolled under are accepted;
    their GTINs are listed in `unknownGtins`."""
    require(org, Role.RIGHTS_HOLDER, Role.CUSTOMS, Role.ADMIN)
    raw = await _read_body(request, gateway.settings.max_upload_bytes)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEpcisDocument(
            f"the body is not JSON: {exc}", [f"$: not JSON: {exc}"]
        ) from None
    if not isinstance(document, dict):
        raise InvalidEpcisDocument(
            "an EPCIS document is a JSON object", ["$: an EPCIS document is a JSON object"]
        )
    answer = await run_in_threadpool(gateway.custody.capture, document, org.id)
    return JSONResponse(answer)


@router.get("/items/{gtin}/{serial}/custody", responses=ERRORS)
def item_custody(
    org: CurrentOrg,
    gateway: GatewayDep,
    gtin: Annotated[str, Path(min_length=8, max_length=14, pattern=r"^[0-9]+$")],
    serial: Annotated[str, Path(min_length=1, max_length=20)],
    format: Annotated[Literal["json", "epcis"], Query(description="epcis: EPCIS 2.0")] = "json",
) -> JSONResponse:
    """An item's chain of custody (any organization): enrollment, custody events (and those
    of containers it was packed in), border scans, status changes and alerts, each log-backed
    step with an inclusion proof to an anchored checkpoint. `?format=epcis` gives the same
    history as an EPCIS 2.0 document (scans as ObjectEvents, bizStep inspecting)."""
    del org
    answer = gateway.custody.timeline(gtin, serial, epcis=format == "epcis")
    media = "application/ld+json" if format == "epcis" else "application/json"
    return JSONResponse(answer, media_type=media)


@router.get("/log/checkpoints", responses=ERRORS)
def checkpoints(
    org: CurrentOrg,
    session: SessionDep,
    gateway: GatewayDep,
    status: Annotated[Literal["queued", "anchored", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The custody log's size and the checkpoints of the anchoring agency, newest first.
    `matchesLog` is false for a root the agency anchored that is not this log's at that size
    (never used in proofs)."""
    del org
    agency = gateway.custody.anchorer.agency_address()
    query = select(Checkpoint)
    if agency is not None:
        query = query.where(Checkpoint.agency == agency)
    if status is not None:
        query = query.where(Checkpoint.status == status)
    rows = session.exec(query.order_by(col(Checkpoint.size).desc()).limit(limit)).all()
    snap = gateway.catalog.snapshot()
    mirror = gateway.custody.mirror
    size = mirror.catch_up()
    return {
        "agency": agency,
        "registry": snap.registry,
        "chainId": snap.chain_id,
        "size": size,
        "checkpoints": [
            {
                "agency": r.agency,
                "size": r.size,
                "root": r.root,
                "status": r.status,
                "txHash": r.tx_hash,
                "blockNumber": r.block_number,
                "error": r.error,
                "matchesLog": matches_log(mirror, r),
            }
            for r in rows
        ],
    }


@router.get("/log/consistency", responses=ERRORS)
def consistency(
    org: CurrentOrg,
    gateway: GatewayDep,
    from_size: Annotated[int, Query(alias="from", ge=0, le=2**63)],
    to_size: Annotated[int, Query(alias="to", ge=0, le=2**63)],
) -> dict[str, Any]:
    """An RFC 9162 consistency proof between two sizes of the custody log, with both roots."""
    del org
    mirror = gateway.custody.mirror
    size = mirror.catch_up()
    if not 0 <= from_size <= to_size <= size:
        raise InvalidInput(
            f"sizes must satisfy 0 <= from ({from_size}) <= to ({to_size}) <= {size}"
        )
    return {
        "from": from_size,
        "to": to_size,
        "fromRoot": "0x" + mirror.log.root(from_size).hex(),
        "toRoot": "0x" + mirror.log.root(to_size).hex(),
        "proof": proof_to_hex(mirror.log.consistency_proof(from_size, to_size)),
    }


@router.post("/locations", status_code=201, response_model=LocationOut, responses=ERRORS)
def add_location(body: LocationIn, org: CurrentOrg, gateway: GatewayDep) -> LocationOut:
    """Register a place (customs, admins): UN/LOCODE, name, country, coordinates and the GLNs
    naming it in EPCIS read points, so custody events there feed the detector. Repeating it
    updates the place (idempotent)."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    row = gateway.custody.locations.add(
        NewLocation(
            body.unlocode, body.name, body.country, body.latitude, body.longitude, tuple(body.glns)
        ),
        org.id,
    )
    return _location_out(row)


@router.get("/locations", response_model=list[LocationOut], responses=ERRORS)
def list_locations(org: CurrentOrg, gateway: GatewayDep) -> list[LocationOut]:
    """The places agencies registered."""
    del org
    return [_location_out(r) for r in gateway.custody.locations.all()]
