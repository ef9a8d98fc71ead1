"""Verification of a scan: the verdict, the detector's findings, the record of the scan and
the answer's JSON, for both fronts of POST /v1/verify (`api.routes.verify`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import audit
from api.errors import domain_error, status_for, validation_error
from api.gateway import Gateway
from api.models import Role
from api.principal import Principal
from api.schemas import VerifyRequest
from api.scoping import may_verify
from api.services import guides
from api.verification import Scanned, verify
from detector import Scan
from detector.findings import finding_facts
from ledger.errors import BorderLedgerError
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


async def answer_batch(
    gateway: Gateway,
    principal: Principal,
    items: list[dict[str, Any]],
    allowed: int,
    refusal: bytes | None = None,
) -> bytes:
    """POST /v1/verify/batch: each item answered as POST /v1/verify answers it alone, in
    order, as the JSON bytes of `{"answers": [...]}`.

    Why a batch: a folder's scan (`borderledger scan`) verifies hundreds of codes; one
    request each spent more of the gateway's CPU on HTTP than on verifying. Items run
    concurrently so that located scans share one detector transaction (its group commit),
    and they reach the detector in the batch's order (a clone within one batch is seen).

    A bad item (does not validate, unknown port, another brand's product) gets its own
    status and error; the others are verified. The first `allowed` items are within the
    caller's rate limit; each one after it is answered 429 with `refusal` (the limit's error
    object) and nothing recorded, for the client to send again after its `retryAfter`."""

    async def one(index: int, item: dict[str, Any]) -> bytes:
        if index >= allowed:
            return b'{"status":429,"error":' + (refusal or b"{}") + b"}"
        try:
            body = VerifyRequest.model_validate(item)
        except ValidationError as exc:
            error = validation_error(exc.errors(), ("items", index))
            return orjson.dumps({"status": 422, "error": error})
        try:
            answer = await answer_scan(gateway, principal, body)
        except BorderLedgerError as exc:
            status, _ = status_for(exc)
            return b'{"status":%d,"error":' % status + _error_object(exc) + b"}"
        return b'{"status":200,"answer":' + answer + b"}"

    parts = await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    return b'{"answers":[' + b",".join(parts) + b"]}"


def _error_object(exc: BorderLedgerError) -> bytes:
    """The `error` object of the domain error's answer (api.errors, the one mapping)."""
    body: dict[str, Any] = orjson.loads(domain_error(exc).body)
    return orjson.dumps(body["error"])
