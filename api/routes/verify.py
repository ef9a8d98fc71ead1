"""POST /v1/verify: what an officer scanned → a verdict, reasons and a checkable proof."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentOrg, GatewayDep, require
from api.detection import SUSPECT_REASON
from api.models import Role
from api.schemas import ErrorOut, VerifyRequest, VerifyResponse
from api.verification import Reason, Scanned, verify
from detector import Scan

router = APIRouter(prefix="/v1", tags=["verification"])


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def verify_scan(body: VerifyRequest, org: CurrentOrg, gateway: GatewayDep) -> Response:
    """Verify a scanned tag, or a GTIN + serial typed from a label. Every call is recorded.

    `async` on purpose: verification is CPU-only (no I/O: the index snapshot is in memory and
    the scan record goes to a writer thread), so a threadpool hop per request would only add
    latency; only the detector step (database I/O) hops to the threadpool. The answer is serialised once, without re-validating the response model.

    A scan with a UN/LOCODE also goes to the diversion/clone detector (state in the database,
    one short transaction; plus the alerts a scan raises): `findings` are the alerts this scan
    raised."""
    require(org, Role.CUSTOMS, Role.ADMIN, Role.RIGHTS_HOLDER)
    location = body.location
    locode = location.unlocode if location else None
    if locode is not None:
        gateway.detection.check_location(locode)  # unknown port: 422, nothing recorded
    if body.tag is not None:
        scanned = Scanned.from_tag(body.tag)
    else:
        assert body.gtin is not None and body.serial is not None
        scanned = Scanned.from_fields(body.gtin, body.serial, body.lot)
    judgement = verify(gateway.catalog, scanned, stale_after=gateway.settings.stale_after_seconds)
    scanned_at = body.scanned_at or datetime.now(UTC)
    if scanned_at.tzinfo is None:
        scanned_at = scanned_at.replace(tzinfo=UTC)  # a time without offset is taken as UTC
    scan_id = str(uuid.uuid4())
    reasons = [r.value for r in judgement.reasons]
    findings = []
    if locode is not None:
        # The detector judges the scan against the item's route policy and earlier sightings.
        # Only a serial proven in its batch is attributed to the batch; any other read is an
        # unknown serial of the GTIN (input to the probing rule).
        # Its state is in the database: run it in the threadpool, off the event loop.
        in_batch = Reason.SERIAL_IN_BATCH in judgement.reasons
        found = await run_in_threadpool(
            gateway.detection.ingest,
            gateway.catalog.snapshot(),
            Scan(
                scan_id,
                scanned.gtin,
                scanned.serial,
                locode,
                scanned_at.timestamp(),
                judgement.batch_id if in_batch else None,
            ),
        )
        findings = [f.to_dict() for f in found]
        for f in found:
            extra = SUSPECT_REASON.get(f.alert.alert_class)
            if extra is not None and extra not in reasons:
                reasons.append(extra)
    gateway.scans.record(
        {
            "scan_id": scan_id,
            "organization_id": org.id,
            "gtin": scanned.gtin,
            "lot": scanned.lot,
            "serial": scanned.serial,
            "batch_id": judgement.batch_id,
            "input_kind": scanned.kind,
            "location": location.unlocode if location else None,
            "latitude": location.latitude if location else None,
            "longitude": location.longitude if location else None,
            "scanned_at": scanned_at,
            "recorded_at": datetime.now(UTC),
            "verdict": judgement.verdict.value,
            "reasons": reasons,
            "index_block": judgement.index["block"],
        }
    )
    answer = {
        "verdict": judgement.verdict.value,
        "summary": judgement.summary,
        "reasons": reasons,
        "item": {"gtin": scanned.gtin, "lot": scanned.lot, "serial": scanned.serial},
        "product": judgement.product,
        "batchId": judgement.batch_id,
        "proof": judgement.proof,
        "index": judgement.index,
        "scanId": scan_id,
        "scannedAt": scanned_at.isoformat(),
        "location": location.model_dump() if location else None,
        "findings": findings,
    }
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")
