"""GS1 verification requests for the routes: the assessment of a parsed request, recorded
as a scan like every other verification (`api.gs1` judges and shapes)."""

from __future__ import annotations

import uuid
from datetime import datetime

from api.gateway import Gateway
from api.gs1 import Assessment, Gs1Request, assess
from api.models import ScanEvent
from api.principal import Principal
from api.scoping import may_verify


def assess_and_record(
    gateway: Gateway, principal: Principal, request: Gs1Request, now: datetime
) -> Assessment:
    """Judge the request and record it as a scan of the caller's organization. A rights
    holder asks about its own products only (`NotFound` for another brand's GTIN)."""
    may_verify(gateway.engine, principal, request.scanned.gtin)
    assessment = assess(
        gateway.catalog,
        request,
        stale_after=gateway.settings.stale_after_seconds,
        now=now,
        registrations=gateway.registrations,
    )
    judgement = assessment.judgement
    scanned = request.scanned
    gateway.scans.record(
        ScanEvent(
            scan_id=str(uuid.uuid4()),
            organization_id=principal.organization_id,
            gtin=scanned.gtin,
            lot=scanned.lot,
            serial=scanned.serial,
            batch_id=judgement.batch_id,
            input_kind="gs1",
            scanned_at=now,
            verdict=assessment.verdict.value,
            reasons=[r.value for r in judgement.reasons],
            index_block=judgement.index["block"],
        )
    )
    return assessment
