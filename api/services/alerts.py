"""Detector alerts for the routes: listing them within the caller's view
(`api.scoping.alert_clause`), and moving them through their states."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from api import audit
from api.models import Alert, AlertStatus
from api.principal import Principal
from api.scoping import alert_clause, view_of
from ledger.errors import Conflict, InvalidInput, NotFound


def list_alerts(
    session: Session,
    principal: Principal,
    rights_holder: int | None,
    batch: str | None,
    port: str | None,
    rule: str | None,
    severity: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int = 0,
) -> list[Alert]:
    """Newest first, filtered, within the caller's view: a rights holder's on its own
    products, an auditor's on the holders it was granted, a customs agency's raised by its
    scans or on items it scanned. `offset` skips that many (the pages' paging)."""
    view = view_of(session, principal)
    if rights_holder is not None and view.holders and not view.reads_holder(rights_holder):
        return []
    query = select(Alert)
    clause = alert_clause(session, view)
    if clause is not None:
        query = query.where(clause)
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
    rows = session.exec(query.order_by(col(Alert.id).desc()).offset(offset).limit(limit)).all()
    return list(rows)


def transition(
    session: Session, principal: Principal, alert_id: str, to: AlertStatus, note: str | None
) -> Alert:
    """Move an alert on (open → acknowledged → resolved); 409 from any other state. An alert
    outside the caller's view is not found, as an unknown one is. The audit trail records
    who did it, in the same transaction."""
    query = select(Alert).where(Alert.alert_id == alert_id)
    clause = alert_clause(session, view_of(session, principal))
    if clause is not None:
        query = query.where(clause)
    row = session.exec(query).first()
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
    audit.record(session, principal, f"alert.{to.value}", alert_id, {"note": note})
    session.commit()
    session.refresh(row)
    return row


def _utc(when: datetime, name: str) -> datetime:
    """A time without offset is taken as UTC; one without a UTC equivalent is refused."""
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{name} is out of range once converted to UTC") from None
