"""Detector alerts: list them (officers, auditors, rights holders for their own batches) and
work through them (customs and admins acknowledge, then resolve, with a note)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlmodel import col, select

from api.deps import CurrentOrg, SessionDep, require
from api.models import Alert, AlertStatus, Role
from api.schemas import AlertAction, AlertOut, ErrorOut
from ledger.errors import Conflict, InvalidInput, NotFound

router = APIRouter(prefix="/v1", tags=["alerts"])
AlertId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="the alert's alertId")]
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)
}


def _out(row: Alert) -> AlertOut:
    return AlertOut(
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


def _utc(when: datetime, name: str) -> datetime:
    """A time without offset is taken as UTC; one without a UTC equivalent is refused."""
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{name} is out of range once converted to UTC") from None


@router.get("/alerts", response_model=list[AlertOut], responses=ERRORS)
def list_alerts(
    org: CurrentOrg,
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
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Newest first. Rights holders see only alerts on their own batches."""
    require(org, Role.CUSTOMS, Role.ADMIN, Role.AUDITOR, Role.RIGHTS_HOLDER)
    query = select(Alert)
    if org.role == Role.RIGHTS_HOLDER:
        if rights_holder is not None and rights_holder != org.id:
            return []
        rights_holder = org.id
    if rights_holder is not None:
        query = query.where(Alert.organization_id == rights_holder)
    if batch is not None:
        query = query.where(Alert.batch_id == batch)
    if port is not None:
        query = query.where(Alert.location == port)
    if rule is not None:
        query = query.where((Alert.rule == rule) | (Alert.reason_code == rule))
    if severity is not None:
        query = query.where(Alert.severity == severity)
    if status is not None:
        query = query.where(Alert.status == status)
    if since is not None:
        query = query.where(Alert.created_at >= _utc(since, "since"))
    if until is not None:
        query = query.where(Alert.created_at <= _utc(until, "until"))
    rows = session.exec(query.order_by(col(Alert.id).desc()).limit(limit)).all()
    return [_out(row) for row in rows]


def _transition(session: SessionDep, alert_id: str, to: AlertStatus, note: str | None) -> AlertOut:
    row = session.exec(select(Alert).where(Alert.alert_id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    allowed = {
        AlertStatus.ACKNOWLEDGED: {AlertStatus.OPEN.value},
        AlertStatus.RESOLVED: {AlertStatus.OPEN.value, AlertStatus.ACKNOWLEDGED.value},
    }[to]
    if row.status not in allowed:
        raise Conflict(f"alert {alert_id} is {row.status}; cannot mark it {to.value}")
    row.status = to.value
    if note is not None:
        row.note = note
    row.updated_at = datetime.now(UTC)
    session.add(row)
    session.commit()
    session.refresh(row)
    return _out(row)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=ERRORS)
def acknowledge_alert(
    alert_id: AlertId, body: AlertAction, org: CurrentOrg, session: SessionDep
) -> AlertOut:
    """An officer takes the alert up (customs, admin); the note is optional."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    return _transition(session, alert_id, AlertStatus.ACKNOWLEDGED, body.note)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses=ERRORS)
def resolve_alert(
    alert_id: AlertId, body: AlertAction, org: CurrentOrg, session: SessionDep
) -> AlertOut:
    """Close the alert with a note saying what was found (customs, admin)."""
    require(org, Role.CUSTOMS, Role.ADMIN)
    if not body.note or not body.note.strip():
        raise InvalidInput("resolving an alert needs a note saying what was found")
    return _transition(session, alert_id, AlertStatus.RESOLVED, body.note)
