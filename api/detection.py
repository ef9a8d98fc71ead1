"""The gateway's diversion/clone detector: one `Detector` per gateway process.

Verification feeds it every scan that names a location (`GatewayDetector.ingest`). Batches are
registered lazily, the first time a scan of them arrives, from the gateway's own record of the
batch (route policy, released quantities, expiry). Statuses come from the index snapshot at
ingest time: when the snapshot shows an item or its batch recalled / stolen / destroyed /
decommissioned and the detector has not been told yet, the time of the change is read once
from the index's status history and reported to the detector.

State is in the gateway's own database (`DbStore` on the `detector_*` tables, migration 0004):
every gateway process on the database sees every sighting, and a restart forgets nothing. The
process keeps only bounded caches that cannot make an answer wrong: batches (their policy is
fixed at enrollment), their rights holders, and which statuses it has already passed on.
Batch status changes indexed from the chain are passed on as soon as they are indexed
(`sync_statuses`), so sightings later than a recall are alerted even if the batch is never
scanned again. Alerts are stored in the `alerts` table (api.models.Alert) for officers, with
their webhook deliveries, inside the detector's own state transaction (`_store_alerts`, the
detector's sink): one durable commit per scan that raised alerts, none lost in between.
"""

from __future__ import annotations

import calendar
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from api.catalog import Snapshot
from api.models import Alert as AlertRow
from api.models import (
    AlertStatus,
    DetectorBatchStatus,
    DetectorItem,
    DetectorVolume,
    GatewayBatch,
    IndexedStatusChange,
)
from api.webhook_delivery import enqueue_alert_deliveries
from detector import (
    BatchProfile,
    Detector,
    DetectorError,
    LocationRegistry,
    PolicyError,
    RoutePolicy,
    Scan,
    StatusReport,
)
from detector.dbstore import DbStore, StateTables
from detector.locations import COUNTRIES
from detector.rules import Alert
from detector.store import Lru
from ledger.batch import item_key_of
from ledger.errors import InvalidInput
from ledger.models import Status

log = logging.getLogger("borderledger.detection")
POLICY_KEYS = {
    "markets",
    "nodes",
    "consignees",
    "valid_from",
    "valid_until",
    "released",
    "returns",
}
STATUS_KIND = {
    Status.RECALLED: "recalled",
    Status.STOLEN: "stolen",
    Status.DESTROYED: "destroyed",
    Status.DECOMMISSIONED: "decommissioned",
}
#: The detector state tables (api.models, migration 0004) for `detector.dbstore.DbStore`.
STATE_TABLES = StateTables(
    DetectorItem.__table__,  # type: ignore[attr-defined]
    DetectorVolume.__table__,  # type: ignore[attr-defined]
    DetectorBatchStatus.__table__,  # type: ignore[attr-defined]
)
CACHE_ENTRIES = 100_000  # per bounded cache of this module


def _strings(policy: dict[str, Any], name: str, problems: list[str]) -> list[str]:
    value = policy.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{name} must be a list of strings")
        return []
    return value


def _time(policy: dict[str, Any], name: str, problems: list[str]) -> float | None:
    value = policy.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{name} must be UTC epoch seconds")
        return None
    return float(value)


def parse_policy(
    registry: LocationRegistry, policy: dict[str, Any]
) -> tuple[RoutePolicy, dict[str, int]]:
    """A route policy as given at enrollment → (RoutePolicy, released quantities per market).

    Accepted keys: markets (ISO 3166-1 alpha-2), nodes (UN/LOCODEs in route order), consignees,
    valid_from / valid_until (UTC epoch seconds), released ({market: quantity}), returns (may
    the item come back to its origin country after reaching a market; default true). Every
    problem is reported at once as `InvalidInput` (422)."""
    problems: list[str] = []
    unknown = sorted(set(policy) - POLICY_KEYS)
    if unknown:
        problems.append(
            f"unknown route policy field(s) {', '.join(unknown)}; "
            f"expected {', '.join(sorted(POLICY_KEYS))}"
        )
    markets = _strings(policy, "markets", problems)
    nodes = _strings(policy, "nodes", problems)
    consignees = _strings(policy, "consignees", problems)
    valid_from = _time(policy, "valid_from", problems)
    valid_until = _time(policy, "valid_until", problems)
    returns = policy.get("returns", True)
    if not isinstance(returns, bool):
        problems.append("returns must be true or false")
        returns = True
    released: dict[str, int] = {}
    raw_released = policy.get("released", {})
    if not isinstance(raw_released, dict):
        problems.append("released must map markets to quantities")
    else:
        for market, qty in raw_released.items():
            code = market.strip().upper() if isinstance(market, str) else market
            if not isinstance(code, str) or code not in COUNTRIES:
                problems.append(f"unknown country {market!r} in released")
            elif isinstance(qty, bool) or not isinstance(qty, int) or qty < 0:
                problems.append(f"released quantity for {market!r} must be an integer >= 0")
            else:
                released[code] = qty
    try:
        route = RoutePolicy.create(
            registry,
            markets=markets,
            nodes=nodes,
            consignees=consignees,
            valid_from=valid_from,
            valid_until=valid_until,
            returns=returns,
        )
    except PolicyError as exc:
        problems.extend(exc.problems)
        route = None
    if problems or route is None:
        raise InvalidInput("invalid route policy: " + "; ".join(problems))
    return route, released


def normalized_policy(registry: LocationRegistry, policy: dict[str, Any]) -> dict[str, Any]:
    """Validate a route policy and return it in canonical form (sorted, upper-case codes)."""
    route, released = parse_policy(registry, policy)
    out: dict[str, Any] = {"markets": sorted(route.markets), "nodes": list(route.nodes)}
    if route.consignees:
        out["consignees"] = sorted(route.consignees)
    if route.valid_from is not None:
        out["valid_from"] = route.valid_from
    if route.valid_until is not None:
        out["valid_until"] = route.valid_until
    if released:
        out["released"] = released
    if not route.returns:
        out["returns"] = False
    return out


def expiry_epoch(expiry: str | None) -> float | None:
    """GS1 expiry YYMMDD → end of that day, UTC (DD 00: end of the month)."""
    if not expiry:
        return None
    year, month, day = 2000 + int(expiry[:2]), int(expiry[2:4]), int(expiry[4:6])
    if not 1 <= month <= 12:
        return None
    last = calendar.monthrange(year, month)[1]
    day = last if day == 0 else min(day, last)
    return datetime(year, month, day, 23, 59, 59, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Finding:
    alert_id: str
    alert: Alert

    def to_dict(self) -> dict[str, Any]:
        a = self.alert
        return {
            "alertId": self.alert_id,
            "rule": a.alert_class.value,
            "reasonCode": a.reason.value,
            "severity": a.severity.value,
            "evidence": list(a.evidence),
            "detail": a.detail,
        }


class GatewayDetector:
    """The detector, fed by verification and the index, state in the database, alerts stored."""

    def __init__(self, engine: Engine, registry: LocationRegistry | None = None) -> None:
        self.engine = engine
        self.registry = registry or LocationRegistry.default()
        self.store = DbStore(engine, STATE_TABLES)
        self.detector = Detector(
            self.registry, self.store, batch_loader=self._load_batch, sink=self._store_alerts
        )
        #: per thread: id(alert) -> alert id of the rows `_store_alerts` wrote for the current
        #: call (so `ingest` can name its findings by the ids stored)
        self._ids = threading.local()
        self._owners = Lru(CACHE_ENTRIES)  # batch id -> (rights holder organization,)
        #: (batch, item key) -> status already passed on; a miss only repeats an idempotent report
        self._reported = Lru(CACHE_ENTRIES)
        self._status_checkpoint = 0  # last idx_status_changes id passed on by sync_statuses
        #: serialises `sync_statuses` (its checkpoint); `ingest` needs no lock: the caches are
        #: thread-safe LRUs and the store's version check handles concurrent writers, in this
        #: process as across processes
        self._sync_lock = threading.Lock()

    def check_location(self, locode: str) -> None:
        if locode not in self.registry:
            raise InvalidInput(
                f"unknown location {locode!r}: not a UN/LOCODE in the location registry"
            )

    def _load_batch(self, batch_id: str) -> BatchProfile | None:
        """The detector's view of a batch enrolled through this gateway (None: unknown)."""
        with Session(self.engine) as session:
            record = session.get(GatewayBatch, batch_id)
        if record is None:
            return None
        policy: RoutePolicy | None = None
        released: dict[str, int] = {}
        if record.route_policy:
            try:
                policy, released = parse_policy(self.registry, record.route_policy)
            except InvalidInput as exc:  # stored before policies were validated
                log.warning("batch %s: route policy ignored: %s", batch_id, exc)
        self._owners.put(batch_id, (record.organization_id,))
        return BatchProfile(batch_id, record.gtin, policy, released, expiry_epoch(record.expiry))

    def _owner(self, batch_id: str) -> int | None:
        cached = self._owners.get(batch_id)
        if cached is None:
            with Session(self.engine) as session:
                record = session.get(GatewayBatch, batch_id)
            cached = (record.organization_id if record is not None else None,)
            self._owners.put(batch_id, cached)
        owner: int | None = cached[0]
        return owner

    def _status_time(
        self, session: Session, batch_id: str, item_key: str | None, status: int
    ) -> float | None:
        query = select(IndexedStatusChange.block_timestamp).where(
            IndexedStatusChange.batch_id == batch_id,
            IndexedStatusChange.status == status,
            IndexedStatusChange.item_key == item_key
            if item_key is not None
            else col(IndexedStatusChange.item_key).is_(None),
        )
        found = session.exec(query.order_by(col(IndexedStatusChange.id).desc()).limit(1)).first()
        return float(found) if found is not None else None

    def _statuses(
        self, session: Session, snap: Snapshot, scan: Scan, batch_id: str, at: float
    ) -> list[Alert]:
        alerts: list[Alert] = []
        key = "0x" + item_key_of(scan.gtin, scan.serial).hex()
        indexed = snap.batches.get(batch_id)
        for item_key, status in (
            (key, snap.item_statuses.get((batch_id, key), 0)),
            (None, indexed.status if indexed is not None else 0),
        ):
            kind = STATUS_KIND.get(Status(status)) if status else None
            cache_key = f"{batch_id}/{item_key}"
            if kind is None or self._reported.get(cache_key) == status:
                continue
            since = self._status_time(session, batch_id, item_key, status) or at
            rid = f"status:{batch_id}:{item_key or 'batch'}:{kind}"
            if item_key is None:
                alerts += self.detector.report_batch_status(batch_id, kind, since, rid)
            else:
                alerts += self.detector.report_status(
                    StatusReport(scan.gtin, scan.serial, kind, since, rid)  # type: ignore[arg-type]
                )
            self._reported.put(cache_key, status)
        return alerts

    def sync_statuses(self) -> int:
        """Pass batch status changes indexed since the last call on to the detector, which
        re-judges the batch's sightings later than the change; stores the alerts. Returns how
        many alerts were raised. Idempotent across processes (the detector's store records
        each status once); item statuses reach the detector with the item's next scan (the
        index knows items only by their hashed key)."""
        with self._sync_lock, Session(self.engine) as session:
            changes = session.exec(
                select(IndexedStatusChange)
                .where(
                    col(IndexedStatusChange.id) > self._status_checkpoint,
                    col(IndexedStatusChange.item_key).is_(None),
                )
                .order_by(col(IndexedStatusChange.id))
            ).all()
            alerts: list[Alert] = []
            for change in changes:
                kind = STATUS_KIND.get(Status(change.status)) if change.status else None
                if kind is not None and self.detector.find_batch(change.batch_id) is not None:
                    rid = f"status:{change.batch_id}:batch:{kind}"
                    try:
                        alerts += self.detector.report_batch_status(
                            change.batch_id, kind, float(change.block_timestamp), rid
                        )
                    except DetectorError as exc:
                        log.warning("batch %s status not judged: %s", change.batch_id, exc)
                    self._reported.put(f"{change.batch_id}/None", change.status)
                assert change.id is not None
                self._status_checkpoint = change.id
            return len(alerts)  # stored by `_store_alerts`, in the detector's transactions

    def ingest(self, snap: Snapshot, scan: Scan, raised_by: int | None = None) -> list[Finding]:
        """Judge one scan; store and return the alerts it raised (empty when the detector
        cannot judge it, e.g. a time before 2000 or in the future: the verdict still stands).
        `raised_by`: the organization that made the scan (or captured the custody event),
        stored on the alerts so a customs agency sees the alerts its own scans raised."""
        batch_id = scan.batch_id
        if batch_id is not None and self.detector.find_batch(batch_id) is None:
            scan = Scan(scan.scan_id, scan.gtin, scan.serial, scan.location, scan.at, None)
            batch_id = None
        ids: dict[int, str] = {}
        self._ids.current = ids
        self._ids.raised_by = raised_by
        try:
            if batch_id:  # statuses learnt late: their alerts are stored, not findings
                with Session(self.engine) as session:
                    self._statuses(session, snap, scan, batch_id, scan.at)
            raised = self.detector.ingest(scan)
        except DetectorError as exc:  # cannot be judged (bad time, contention): no findings
            log.info("scan %s not judged by the detector: %s", scan.scan_id, exc)
            return []
        except SQLAlchemyError as exc:  # the verdict stands without the detector
            log.warning("detector state unavailable for scan %s: %s", scan.scan_id, exc)
            return []
        finally:
            self._ids.current = None
            self._ids.raised_by = None
        return [Finding(ids[id(a)], a) for a in raised]

    def _store_alerts(self, tx: Connection, alerts: list[Alert]) -> None:
        """The detector's sink: store the alerts a detector transaction raised, and queue
        their webhook deliveries, in that same transaction (`tx`, the store's connection), so
        state, alerts and deliveries are committed together, durably (docs/detector.md)."""
        rows = [self._row(Finding(str(uuid.uuid4()), a)) for a in alerts]
        ids: dict[int, str] | None = getattr(self._ids, "current", None)
        if ids is not None:
            for a, row in zip(alerts, rows, strict=True):
                ids[id(a)] = row.alert_id
        with Session(bind=tx) as session:  # joins the open transaction; the store commits
            session.add_all(rows)
            enqueue_alert_deliveries(session, rows)  # webhooks: same transaction
            session.flush()

    def _row(self, finding: Finding) -> AlertRow:
        a = finding.alert
        now = datetime.now(UTC)
        return AlertRow(
            alert_id=finding.alert_id,
            rule=a.alert_class.value,
            reason_code=a.reason.value,
            severity=a.severity.value,
            batch_id=a.batch_id,
            gtin=a.gtin,
            serial=a.serial,
            location=a.location,
            evidence=list(a.evidence),
            detail=a.detail[:500],
            status=AlertStatus.OPEN.value,
            organization_id=self._owner(a.batch_id) if a.batch_id else None,
            raised_by=getattr(self._ids, "raised_by", None),
            created_at=now,
            updated_at=now,
        )
