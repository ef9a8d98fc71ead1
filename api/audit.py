"""The audit trail: who did what in an organization (EU FMD keeps "who did what" for every
operation on an identifier).

Scans name their actor in their own row (`scan_events.actor_*`, written by the scan writer
with no extra insert per verification); every other action — a status change, an
enrollment, an alert acknowledged or resolved, a user invited, disabled or re-enabled, an API
key created, rotated or revoked — adds an `AuditEvent` in the transaction that does it, so the
action and its record commit together or not at all. `trail` reads both back as one list.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import AuditEvent, ScanEvent
from api.principal import Principal

#: Columns of the CSV export, in order (the JSON export has the same keys).
COLUMNS = ("at", "actor", "actorKind", "actorId", "action", "subject", "detail")


def record(
    session: Session,
    principal: Principal,
    action: str,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add the record of `action` by `principal` to the session (committed with the action)."""
    session.add(
        AuditEvent(
            organization_id=principal.organization_id,
            actor_kind=principal.actor.kind,
            actor_id=principal.actor.id,
            actor_name=principal.actor.name,
            action=action,
            subject=subject,
            detail=detail,
        )
    )


def record_now(
    engine: Engine,
    principal: Principal,
    action: str,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record an action that committed its own work elsewhere (an enrollment, done by the
    enrollment pipeline and its job): one transaction of its own, right after."""
    with Session(engine) as session:
        record(session, principal, action, subject, detail)
        session.commit()


def scan_actor(principal: Principal) -> dict[str, Any]:
    """The actor columns of a scan row made by `principal`."""
    return {
        "actor_kind": principal.actor.kind,
        "actor_id": principal.actor.id,
        "actor_name": principal.actor.name,
    }


def trail(
    session: Session,
    organization_id: int,
    since: datetime | None = None,
    action: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The organization's audit trail, newest first: its audit events and its scans."""
    events = select(AuditEvent).where(AuditEvent.organization_id == organization_id)
    scans = select(ScanEvent).where(ScanEvent.organization_id == organization_id)
    if since is not None:
        events = events.where(AuditEvent.at >= since)
        scans = scans.where(ScanEvent.recorded_at >= since)
    if action is not None:
        events = events.where(AuditEvent.action == action)
    rows: list[dict[str, Any]] = [
        {
            "at": e.at.isoformat(),
            "actor": f"{e.actor_kind}:{e.actor_name}",
            "actorKind": e.actor_kind,
            "actorId": e.actor_id,
            "action": e.action,
            "subject": e.subject,
            "detail": e.detail,
        }
        for e in session.exec(events.order_by(col(AuditEvent.id).desc()).limit(limit)).all()
    ]
    if action in (None, "scan"):
        rows += [
            {
                "at": s.recorded_at.isoformat(),
                "actor": f"{s.actor_kind}:{s.actor_name}" if s.actor_kind else None,
                "actorKind": s.actor_kind,
                "actorId": s.actor_id,
                "action": "scan",
                "subject": f"{s.gtin}/{s.serial}" if s.gtin else s.scan_id,
                "detail": {
                    "scanId": s.scan_id,
                    "verdict": s.verdict,
                    "location": s.location,
                    "origin": s.origin,
                    "deviceId": s.device_id,
                },
            }
            for s in session.exec(scans.order_by(col(ScanEvent.id).desc()).limit(limit)).all()
        ]
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows[:limit]


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a leading `= + - @` (a serial may start with
    one) would make it a formula, so such text gets a leading apostrophe (OWASP)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The trail as CSV (RFC 4180), `detail` as compact JSON text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        detail = row["detail"]
        writer.writerow(
            [
                *(_cell(row[c]) for c in COLUMNS[:-1]),
                "" if detail is None else json.dumps(detail, separators=(",", ":"), sort_keys=True),
            ]
        )
    return out.getvalue()
