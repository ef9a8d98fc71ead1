"""A rights holder's alerts on its own products, for the pages (api/pages/product_alerts.py):
filtered by rule, port, severity and a date range, one page at a time, each alert with its
evidence (the border scans of the product that raised it: place, time, verdict) and the
route policy of the batch it broke.

The alerts are exactly those GET /v1/alerts lists for the caller (`api.services.alerts`,
scoped by `api.scoping.alert_clause`); the evidence is read only for alerts in that view, and
only scans of the alert's own product (a holder reads its products' journeys, not an agency's
other work), without the officer's name (an agency's staff are not the holder's to know)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from api.models import Alert, GatewayBatch, ScanEvent
from api.principal import Principal
from api.services import alerts
from ledger.errors import InvalidInput

PORT = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")
RULE = re.compile(r"^[A-Za-z_]{1,40}$")
SEVERITIES = ("low", "medium", "high", "critical")
#: The oldest date a filter accepts: earlier ones are typing mistakes, not alerts.
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Filters:
    """Checked filters: port (UN/LOCODE), rule (class or reason code), severity, and the
    first and last day (UTC, both included) the alerts were raised on."""

    port: str | None = None
    rule: str | None = None
    severity: str | None = None
    since: date | None = None
    until: date | None = None

    def query(self) -> dict[str, str]:
        """The filters as the page's query string (for the pager's links)."""
        out = {"port": self.port, "rule": self.rule, "severity": self.severity}
        out["from"] = self.since.isoformat() if self.since else None
        out["to"] = self.until.isoformat() if self.until else None
        return {k: v for k, v in out.items() if v}


def _day(raw: str, name: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw[:10]) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(f"{name} date {raw[:20]!r} is not a date (YYYY-MM-DD)")
    if day < EARLIEST or day.year > 9998:
        raise InvalidInput(f"{name} date {raw[:20]!r} is out of range")
    return day


def filters(port: str, rule: str, severity: str, since: str, until: str) -> Filters:
    """The filters from a query string, or InvalidInput naming the bad one."""
    port, rule, severity = port.strip().upper(), rule.strip(), severity.strip()
    if port and not PORT.match(port):
        raise InvalidInput(f"port {port[:20]!r} is not a UN/LOCODE (five letters, e.g. NLRTM)")
    if rule and not RULE.match(rule):
        raise InvalidInput(
            f"rule {rule[:40]!r} is not a rule (diversion, clone, ...) or a reason code"
        )
    if severity and severity not in SEVERITIES:
        raise InvalidInput(f"severity {severity[:20]!r} is not one of {', '.join(SEVERITIES)}")
    first, last = _day(since, "from"), _day(until, "to")
    if first and last and first > last:
        raise InvalidInput(f"the from date {first} is after the to date {last}")
    return Filters(port or None, rule or None, severity or None, first, last)


@dataclass(frozen=True)
class Sighting:
    """One evidence entry: a scan of the product (place, time, verdict), or a reference the
    holder reads no more of (a status report, another product's scan)."""

    ref: str
    scan: ScanEvent | None


@dataclass(frozen=True)
class ProductAlert:
    alert: Alert
    evidence: list[Sighting]
    #: The batch's route policy the alert broke (markets, nodes), when the batch has one.
    policy: dict[str, Any] | None


@dataclass(frozen=True)
class AlertPage:
    items: list[ProductAlert]
    has_more: bool


def product_alerts(
    session: Session, principal: Principal, wanted: Filters, page: int, per_page: int
) -> AlertPage:
    """Page `page` (from 0) of the caller's alerts, newest first, as GET /v1/alerts lists
    them, each with its evidence and its batch's route policy."""
    since = datetime.combine(wanted.since, time.min, UTC) if wanted.since else None
    until = (
        datetime.combine(wanted.until + timedelta(days=1), time.min, UTC)
        - timedelta(microseconds=1)
        if wanted.until
        else None
    )
    rows = alerts.list_alerts(
        session,
        principal,
        None,
        None,
        wanted.port,
        wanted.rule,
        wanted.severity,
        None,
        since,
        until,
        per_page + 1,
        offset=page * per_page,
    )
    shown = rows[:per_page]
    return AlertPage(_with_evidence(session, shown), len(rows) > per_page)


def _with_evidence(session: Session, rows: list[Alert]) -> list[ProductAlert]:
    refs = sorted({ref for row in rows for ref in row.evidence if not ref.startswith("status:")})
    scans = (
        {
            s.scan_id: s
            for s in session.exec(select(ScanEvent).where(col(ScanEvent.scan_id).in_(refs)))
        }
        if refs
        else {}
    )
    batch_ids = sorted({row.batch_id for row in rows if row.batch_id})
    policies = (
        {
            b.batch_id: b.route_policy
            for b in session.exec(
                select(GatewayBatch).where(col(GatewayBatch.batch_id).in_(batch_ids))
            )
        }
        if batch_ids
        else {}
    )
    out = []
    for row in rows:
        evidence = []
        for ref in row.evidence:
            scan = scans.get(ref)
            # Only scans of the alert's own product: the view admits the alert, hence its item.
            own = (
                scan is not None
                and scan.gtin == row.gtin
                and (row.serial is None or scan.serial == row.serial)
            )
            evidence.append(Sighting(ref, scan if own else None))
        policy = policies.get(row.batch_id) if row.batch_id else None
        # A batch's policy is the holder's own record; the alert is in its view, so is the batch
        # (an alert's organization is its batch's holder).
        out.append(ProductAlert(row, evidence, dict(policy) if policy else None))
    return out
