"""Verification of a scan: the verdict, the detector's findings, the record of the scan and
the answer's JSON, for both fronts of POST /v1/verify (`api.routes.verify`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from starlette.concurrency import run_in_threadpool

from api import audit
from api.gateway import Gateway
from api.models import Role
from api.principal import Principal
from api.schemas import VerifyRequest
from api.scoping import may_verify
from api.services import guides
from api.verification import Scanned, verify
from detector import Scan
from detector.findings import finding_facts
from ledger.verdicts import FindingFacts, Reason, finding_reasons


async def answer_scan(gateway: Gateway, principal: Principal, body: VerifyRequest) -> bytes:
    """The verification of one request, as the JSON bytes of the answer (both fronts of
    POST /v1/verify, which check the caller's role first).

    Everything that can refuse the request (unknown port, malformed tag, a rights holder's
    scan of another brand's product: 404) is checked before anything is recorded."""
    location = body.location
    locode = location.unlocode if location else None
    if locode is not None:
        gateway.detection.check_location(locode)  # unknown port: 422, nothing recorded
    if body.tag is not None:
        scanned = Scanned.from_tag(body.tag)
    else:
        assert body.gtin is not None and body.serial is not None
        scanned = Scanned.from_fields(body.gtin, body.serial, body.lot)
    if principal.role == Role.RIGHTS_HOLDER:  # its own products only (a database look-up)
        await run_in_threadpool(may_verify, gateway.engine, principal, scanned.gtin)
    judgement = verify(
        gateway.catalog,
        scanned,
        stale_after=gateway.settings.stale_after_seconds,
        registrations=gateway.registrations,
    )
    scanned_at = body.scanned_at or datetime.now(UTC)
    if scanned_at.tzinfo is None:
        scanned_at = scanned_at.replace(tzinfo=UTC)  # a time without offset is taken as UTC
    scan_id = str(uuid.uuid4())
    reasons = [r.value for r in judgement.reasons]
    findings = []
    facts: list[FindingFacts] = []
    if locode is not None:
        # The detector judges the scan against the item's route policy and earlier sightings.
        # Only a serial proven in its batch is attributed to the batch; any other read is an
        # unknown serial of the GTIN (input to the probing rule).
        # Its state is in the database: judged off the event loop by the detector's
        # group-commit thread, with the scans of concurrent requests (one transaction each
        # group, `GatewayDetector.judge`).
        in_batch = Reason.SERIAL_IN_BATCH in judgement.reasons
        found = await gateway.detection.judge(
            gateway.catalog.snapshot(),
            Scan(
                scan_id,
                scanned.gtin,
                scanned.serial,
                locode,
                scanned_at.timestamp(),
                judgement.batch_id if in_batch else None,
            ),
            principal.organization_id,
        )
        findings = [f.to_dict() for f in found]
        reasons += finding_reasons(reasons, (f.alert.alert_class for f in found))
        facts = finding_facts((f.alert for f in found), gateway.detection.registry)
    # What the officer reads first never says plain "genuine" against a finding of this scan.
    verdict, summary = judgement.conclude(facts) if facts else (judgement.verdict, None)
    gateway.scans.record(
        {
            "scan_id": scan_id,
            "organization_id": principal.organization_id,
            "gtin": scanned.gtin,
            "lot": scanned.lot,
            "serial": scanned.serial,
            "batch_id": judgement.batch_id,
            "input_kind": scanned.kind,
            "location": locode,
            "latitude": location.latitude if location else None,
            "longitude": location.longitude if location else None,
            "shipment": body.shipment,
            "scanned_at": scanned_at,
            "recorded_at": datetime.now(UTC),
            "verdict": verdict.value,
            "reasons": reasons,
            "index_block": judgement.index["block"],
            **audit.scan_actor(principal),
        }
    )
    answer = {
        "verdict": verdict.value,
        "summary": summary or judgement.summary,
        "reasons": reasons,
        "item": {"gtin": scanned.gtin, "lot": scanned.lot, "serial": scanned.serial},
        "product": judgement.product,
        "batchId": judgement.batch_id,
        "proof": judgement.proof,
        "index": judgement.index,
        "scanId": scan_id,
        "scannedAt": scanned_at.isoformat(),
        "location": location.model_dump() if location else None,
        "shipment": body.shipment,
        "findings": findings,
    }
    if principal.role == Role.CUSTOMS:
        # An officer reads the product's published guide with the verdict (docs/guides.md),
        # cached per process (guides change rarely): most verifications make no query for it.
        fresh, guide = guides.cached_essentials(gateway.engine, scanned.gtin)
        if not fresh:
            guide = await run_in_threadpool(guides.load_essentials, gateway.engine, scanned.gtin)
        answer["guide"] = guide
    return orjson.dumps(answer)
