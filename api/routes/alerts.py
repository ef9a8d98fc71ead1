"""Detector alerts: list them (officers, auditors, rights holders for their own batches) and
work through them (customs and admins acknowledge, then resolve, with a note)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import OfficerDep, ReaderDep, SessionDep
from api.models import Alert, AlertStatus
from api.openapi import DEFAULT_PAGE, PageLimit
from api.schemas import AlertPublic, AlertResolve, AlertUpdate, DateTime, ErrorResponse
from api.services import alerts
from ledger.errors import InvalidInput

router = APIRouter(prefix="/v1", tags=["alerts"])
AlertId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="the alert's alertId")]
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)
}


def _out(row: Alert) -> AlertPublic:
    return AlertPublic(
        alertId=row.alert_id,
        rule=row.rule,
        reasonCode=row.reason_code,
        severity=row.severity,
        batchId=row.batch_id,
        gtin=row.gtin,
        serial=row.serial,
        location=row.location,
        evidence=list(row.evidence),
        detail=row.detail,
        status=row.status,
        note=row.note,
        organizationId=row.organization_id,
        createdAt=row.created_at,
        updatedAt=row.updated_at,
    )


@router.get("/alerts", response_model=list[AlertPublic], responses=ERRORS)
def list_alerts(
    principal: ReaderDep,
    session: SessionDep,
    rights_holder: Annotated[
        int | None, Query(description="organization id of the rights holder")
    ] = None,
    batch: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{64}$")] = None,
    port: Annotated[str | None, Query(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")] = None,
    rule: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z_]{1,40}$", description="class (clone, diversion...) or reason code"
        ),
    ] = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    since: DateTime | None = None,
    until: DateTime | None = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[AlertPublic]:
    """Newest first, within the caller's view: rights holders their own products' alerts,
    auditors the holders they were granted, customs agencies the alerts their scans raised
    and those on items they scanned, admins every alert."""
    rows = alerts.list_alerts(
        session, principal, rights_holder, batch, port, rule, severity, status, since, until, limit
    )
    return [_out(row) for row in rows]


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertPublic, responses=ERRORS)
def acknowledge_alert(
    alert_id: AlertId, body: AlertUpdate, principal: OfficerDep, session: SessionDep
) -> AlertPublic:
    """An officer takes the alert up (customs, admin); the note is optional."""
    return _out(
        alerts.transition(session, principal, alert_id, AlertStatus.ACKNOWLEDGED, body.note)
    )


@router.post("/alerts/{alert_id}/resolve", response_model=AlertPublic, responses=ERRORS)
def resolve_alert(
    alert_id: AlertId, body: AlertResolve, principal: OfficerDep, session: SessionDep
) -> AlertPublic:
    """Close the alert with a note saying what was found (customs, admin)."""
    if not body.note or not body.note.strip():
        raise InvalidInput("resolving an alert needs a note saying what was found")
    return _out(alerts.transition(session, principal, alert_id, AlertStatus.RESOLVED, body.note))
