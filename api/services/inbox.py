"""The officer's history (their own scans) and the agency's alerts inbox, for the pages
(api/pages/inbox.py). Alerts are scoped exactly as GET /v1/alerts scopes them
(`api.services.alerts.list_alerts`, `api.scoping.alert_clause`); a scan links to the alerts
in that view that name it as evidence."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from api.models import Alert, AlertStatus, ScanEvent
from api.principal import Principal
from api.scoping import alert_clause, view_of
from api.services import alerts
from ledger.errors import InvalidInput, NotFound

PORT = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
RULE = re.compile(r"^[A-Za-z_]{1,40}$")
#: Detector rules offered in the filters (a reason code such as DIVERSION_MARKET works too).
RULES = ("diversion", "clone", "status", "volume", "probing")
STATES = tuple(s.value for s in AlertStatus)
#: Alerts read to find which scans a rule filter matches: the newest ones (a bound, so one
#: filter cannot read a whole table; older findings are reached through the alerts inbox).
RULE_ALERT_SCAN = 5000


@dataclass(frozen=True)
class Filters:
    """Checked page filters: port (UN/LOCODE), rule (class or reason code), alert state."""

    port: str | None = None
    rule: str | None = None
    status: str | None = None

    def query(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def filters(port: str, rule: str, status: str = "") -> Filters:
    """The filters from a query string, or InvalidInput naming the bad one."""
    port, rule, status = port.strip().upper(), rule.strip(), status.strip()
    if port and not PORT.match(port):
        raise InvalidInput(f"port {port[:20]!r} is not a UN/LOCODE (five letters, e.g. NLRTM)")
    if rule and not RULE.match(rule):
        raise InvalidInput(
            f"rule {rule[:40]!r} is not a rule (diversion, clone, ...) or a reason code"
        )
    if status and status not in STATES:
        raise InvalidInput(f"state {status[:20]!r} is not one of {', '.join(STATES)}")
    return Filters(port or None, rule or None, status or None)


@dataclass
class HistoryPage:
    rows: list[ScanEvent]
    #: scan id -> the alerts (in the reader's view) naming that scan as evidence
    alerts: dict[str, list[Alert]] = field(default_factory=dict)
    has_more: bool = False


def _in_view(session: Session, principal: Principal) -> Any:
    query = select(Alert)
    clause = alert_clause(session, view_of(session, principal))
    return query if clause is None else query.where(clause)


def history(
    session: Session,
    principal: Principal,
    user_id: int,
    wanted: Filters,
    page: int,
    per_page: int,
) -> HistoryPage:
    """The user's own scans, newest first, one page; with `wanted.rule`, only scans that
    raised (or were evidence of) an alert of that rule or reason code."""
    query = select(ScanEvent).where(ScanEvent.actor_kind == "user", ScanEvent.actor_id == user_id)
    if wanted.port:
        query = query.where(ScanEvent.location == wanted.port)
    if wanted.rule:
        matching = session.exec(
            _in_view(session, principal)
            .where((Alert.rule == wanted.rule) | (Alert.reason_code == wanted.rule))
            .order_by(col(Alert.id).desc())
            .limit(RULE_ALERT_SCAN)
        ).all()
        scan_ids = sorted({s for a in matching for s in a.evidence if not s.startswith("status:")})
        if not scan_ids:
            return HistoryPage([])
        query = query.where(col(ScanEvent.scan_id).in_(scan_ids))
    rows = list(
        session.exec(
            query.order_by(col(ScanEvent.id).desc()).offset(page * per_page).limit(per_page + 1)
        ).all()
    )
    result = HistoryPage(rows[:per_page], has_more=len(rows) > per_page)
    result.alerts = alerts_of(session, principal, result.rows)
    return result


def alerts_of(
    session: Session, principal: Principal, rows: list[ScanEvent]
) -> dict[str, list[Alert]]:
    """For each scan, the alerts in the reader's view that name it as evidence (matched on
    the scans' items, then on the evidence list)."""
    items = {(r.gtin, r.serial) for r in rows if r.gtin}
    if not items:
        return {}
    found = session.exec(
        _in_view(session, principal).where(
            col(Alert.gtin).in_(sorted({g for g, _ in items if g})),
            # the items' own alerts, and GTIN-level ones (probing) that have no serial
            or_(
                col(Alert.serial).in_(sorted({s for _, s in items if s})),
                col(Alert.serial).is_(None),
            ),
        )
    ).all()
    wanted = {r.scan_id for r in rows}
    by_scan: dict[str, list[Alert]] = {}
    for alert in found:
        for scan_id in alert.evidence:
            if scan_id in wanted:
                by_scan.setdefault(scan_id, []).append(alert)
    return by_scan


@dataclass(frozen=True)
class Evidence:
    """One evidence entry of an alert: the scan (when the reader's agency made it) or its id."""

    ref: str
    scan: ScanEvent | None


def inbox(
    session: Session, principal: Principal, wanted: Filters, limit: int
) -> list[tuple[Alert, list[Evidence]]]:
    """The agency's alerts as GET /v1/alerts lists them, each with its evidence: the
    agency's own scans in full (time, port, verdict), other sightings by id only."""
    rows = alerts.list_alerts(
        session,
        principal,
        None,
        None,
        wanted.port,
        wanted.rule,
        None,
        wanted.status,
        None,
        None,
        limit,
    )
    return [(row, evidence(session, principal, row)) for row in rows]


def evidence(session: Session, principal: Principal, row: Alert) -> list[Evidence]:
    refs = list(row.evidence)
    scans = {
        s.scan_id: s
        for s in session.exec(
            select(ScanEvent).where(
                col(ScanEvent.scan_id).in_(refs),
                ScanEvent.organization_id == principal.organization_id,
            )
        ).all()
    }
    return [Evidence(ref, scans.get(ref)) for ref in refs]


def one(session: Session, principal: Principal, alert_id: str) -> tuple[Alert, list[Evidence]]:
    """One alert in the reader's view (after an acknowledge or resolve), with its evidence."""
    row = session.exec(_in_view(session, principal).where(Alert.alert_id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert {alert_id!r}")
    return row, evidence(session, principal, row)
