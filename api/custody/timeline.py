"""An item's chain of custody, each step with the evidence an auditor can check alone.

`timeline` gathers, for one (GTIN, serial):
- enrollment: the batch the serial is proven in (Merkle proof, registration tx and block);
- custody events naming the item, and events on containers while the item was packed in them
  (AggregationEvent ADD … DELETE, nested containers followed);
- border scans of the item;
- status changes (chain index) and detector alerts;
and for every log-backed step (scans, custody events): its log index, the record the entry is
computed from, the `previous` links, and an inclusion proof to the earliest anchored
checkpoint covering it ("pending" when none covers it yet). The anchored checkpoints involved,
plus the latest one, come with consistency proofs between consecutive ones.

Every log-backed step's data comes from its source row (scan_events, custody_events), never
from a stored copy of the entry: a row edited in the database no longer hashes to its leaf.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import true
from sqlmodel import Session, col, select

from api.catalog import Catalog
from api.custody.store import LogMirror
from api.models import (
    Alert,
    Checkpoint,
    CheckpointStatus,
    CustodyItem,
    IndexedStatusChange,
    LogEntry,
    LogLink,
    ScanEvent,
)
from api.models import CustodyEvent as EventRow
from api.verification import Scanned, verify
from custody import entries
from custody.log import proof_to_hex
from epcis import locode_uri, merge_contexts, object_event, parse_identifier, to_document
from ledger.batch import item_key_of
from ledger.models import Status
from ledger.verdicts import Reason

log = logging.getLogger("borderledger.custody")
#: Containers inside containers followed at most this deep.
MAX_NESTING = 4
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
BORDERLEDGER_CONTEXT = {"borderledger": "https://borderledger.example/epcis/"}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class Window:
    key: str
    start: datetime
    end: datetime
    via: tuple[str, ...]


def _events_of(session: Session, keys: Iterable[str]) -> list[tuple[CustodyItem, EventRow]]:
    wanted = list(set(keys))
    if not wanted:
        return []
    rows = session.exec(
        select(CustodyItem, EventRow)
        .join(EventRow, col(EventRow.id) == col(CustodyItem.event_row))
        .where(col(CustodyItem.key).in_(wanted))
    ).all()
    return [(i, e) for i, e in rows]


def _parent_key(event: EventRow) -> str | None:
    parent = event.raw.get("parentID")
    return parse_identifier(parent).key if isinstance(parent, str) and parent else None


def container_windows(session: Session, key: str) -> list[Window]:
    """When the thing `key` was packed in which container (and containers of those).

    ADD (or a first OBSERVE) of the thing into a parent opens a window; DELETE naming it, or
    a DELETE of the parent without children (unpack everything), closes it."""
    out: list[Window] = []
    frontier = [Window(key, datetime.min.replace(tzinfo=UTC), FAR_FUTURE, ())]
    for _ in range(MAX_NESTING):
        found: list[Window] = []
        for inner in frontier:
            moves: dict[str, list[tuple[datetime, str]]] = {}
            for item, event in _events_of(session, [inner.key]):
                parent = _parent_key(event)
                if (
                    item.role == "child"
                    and event.type == "AggregationEvent"
                    and not event.is_error_declaration
                    and parent is not None
                ):
                    moves.setdefault(parent, []).append(
                        (_utc(event.event_time), event.action or "")
                    )
            for item, event in _events_of(session, list(moves)):
                if (
                    item.role == "parent"
                    and event.type == "AggregationEvent"
                    and event.action == "DELETE"
                    and not event.raw.get("childEPCs")
                    and not event.is_error_declaration
                ):
                    moves[item.key].append((_utc(event.event_time), "DELETE"))
            for parent, steps in moves.items():
                if parent == inner.key or parent in inner.via:
                    continue
                opened: datetime | None = None
                for when, action in sorted(steps):
                    if action in ("ADD", "OBSERVE") and opened is None:
                        opened = when
                    elif action == "DELETE" and opened is not None:
                        found.append(_clip(parent, opened, when, inner))
                        opened = None
                if opened is not None:
                    found.append(_clip(parent, opened, FAR_FUTURE, inner))
        found = [w for w in found if w.start <= w.end]
        out += found
        frontier = found
        if not frontier:
            break
    return out


def _clip(parent: str, start: datetime, end: datetime, inner: Window) -> Window:
    return Window(parent, max(start, inner.start), min(end, inner.end), (*inner.via, inner.key))


def matches_log(mirror: LogMirror, checkpoint: Checkpoint) -> bool:
    """Whether `checkpoint` is a checkpoint of this log (its root is the log's at its size)."""
    if not 0 < checkpoint.size <= mirror.size:
        return False
    if "0x" + mirror.log.root(checkpoint.size).hex() == checkpoint.root.lower():
        return True
    log.error(
        "checkpoint %s/%d anchors root %s, not this log's: ignored",
        checkpoint.agency,
        checkpoint.size,
        checkpoint.root,
    )
    return False


@dataclass
class LogStep:
    index: int
    kind: str
    time: datetime
    record: dict[str, Any]
    via: str | None
    title: str
    #: the organization that made the scan or captured the event (None: unknown)
    recorded_by: int | None = None


@dataclass(frozen=True)
class Reader:
    """What of a timeline its reader may read in full (`api.scoping` decides): entries
    recorded by `only_recorded_by` (None: every entry), and alerts meeting `alerts` (None:
    every alert of the item). An entry it may not read is shown as its leaf hash only."""

    only_recorded_by: int | None = None
    alerts: Any = None

    def reads(self, step: LogStep) -> bool:
        return self.only_recorded_by is None or step.recorded_by == self.only_recorded_by


class TimelineBuilder:
    def __init__(
        self,
        session: Session,
        catalog: Catalog,
        mirror: LogMirror,
        agency: str | None,
    ) -> None:
        self.session = session
        self.catalog = catalog
        self.mirror = mirror
        self.agency = agency

    def build(
        self, gtin: str, serial: str, epcis: bool = False, reader: Reader | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(timeline answer, EPCIS event objects of its log-backed steps if `epcis`). Steps
        `reader` may not read are withheld: their leaf hash and proof only, so every proof
        still verifies, and they are left out of the EPCIS export."""
        reader = reader or Reader()
        scanned = Scanned.from_fields(gtin, serial)  # 422 on a bad GTIN or serial
        gtin, serial = scanned.gtin, scanned.serial
        key = entries.item_key(gtin, serial)
        judgement = verify(self.catalog, scanned, stale_after=1e12)
        snap = self.catalog.snapshot()
        enrollment = None
        if Reason.SERIAL_IN_BATCH in judgement.reasons and judgement.proof is not None:
            batch = snap.batches.get(judgement.batch_id or "")
            enrollment = {
                **judgement.proof,
                "gtin": gtin,
                "serial": serial,
                "lot": batch.lot if batch else None,
                "holder": batch.holder if batch else None,
                "registeredAt": batch.registered_at if batch else None,
            }
        steps = self._steps(key)
        answer = self._prove(steps, reader, key)
        status_changes = self._status_changes(judgement.batch_id, gtin, serial)
        # Columns, not ORM objects: an item can have hundreds of alerts (an impossible-travel
        # one per pair of far-apart scans), and building each Alert cost more than its row.
        alerts = [
            {
                "alertId": alert_id,
                "rule": rule,
                "reasonCode": reason_code,
                "severity": severity,
                "location": location,
                "evidence": list(evidence or []),
                "status": status,
                "createdAt": _utc(created_at).isoformat(),
            }
            for alert_id, rule, reason_code, severity, location, evidence, status, created_at in (
                self.session.execute(
                    sa_select(
                        col(Alert.alert_id),
                        col(Alert.rule),
                        col(Alert.reason_code),
                        col(Alert.severity),
                        col(Alert.location),
                        col(Alert.evidence),
                        col(Alert.status),
                        col(Alert.created_at),
                    )
                    .where(col(Alert.gtin) == gtin, col(Alert.serial) == serial)
                    .where(true() if reader.alerts is None else reader.alerts)
                    .order_by(col(Alert.created_at))
                )
            )
        ]
        timeline = {
            "item": {"gtin": gtin, "serial": serial, "key": key},
            "log": {
                "agency": self.agency,
                "registry": snap.registry,
                "previousRegistries": snap.previous_registries,
                "chainId": snap.chain_id,
                "size": self.mirror.size,
            },
            "enrollment": enrollment,
            "entries": answer["entries"],
            "statusChanges": status_changes,
            "alerts": alerts,
            "checkpoints": answer["checkpoints"],
            "consistency": answer["consistency"],
        }
        exported = [self._epcis_of(s) for s in steps if reader.reads(s)] if epcis else []
        return timeline, exported

    # ------------------------------------------------------------------ gathering

    def _steps(self, key: str) -> list[LogStep]:
        session = self.session
        steps: dict[int, LogStep] = {}
        links = session.exec(select(LogLink).where(LogLink.key == key)).all()
        scan_refs = {}
        if links:
            for entry in session.exec(
                select(LogEntry).where(
                    col(LogEntry.idx).in_([link.idx for link in links]), LogEntry.kind == "scan"
                )
            ):
                scan_refs[entry.ref] = entry.idx
        if scan_refs:
            for scan in session.exec(
                select(ScanEvent).where(col(ScanEvent.scan_id).in_(list(scan_refs)))
            ):
                record = entries.scan_record(scan.model_dump())
                steps[scan_refs[scan.scan_id]] = LogStep(
                    scan_refs[scan.scan_id],
                    entries.SCAN,
                    _utc(scan.scanned_at),
                    record,
                    None,
                    f"border scan at {scan.location or 'an unnamed place'}: {scan.verdict}",
                    scan.organization_id,
                )
        direct = [e for _, e in _events_of(session, [key])]
        for event in direct:
            steps[event.log_index] = self._event_step(event, None)
        for window in container_windows(session, key):
            for item, event in _events_of(session, [window.key]):
                del item
                when = _utc(event.event_time)
                if window.start <= when <= window.end and event.log_index not in steps:
                    steps[event.log_index] = self._event_step(event, window.key)
        return sorted(steps.values(), key=lambda s: (s.time, s.index))

    def _event_step(self, event: EventRow, via: str | None) -> LogStep:
        record = entries.epcis_record(
            event.raw,
            event.event_id,
            event.is_error_declaration,
            event.captured_by,
            event.captured_at,
        )
        what = event.type + (f" {event.action}" if event.action else "")
        if event.biz_step:
            what += f" ({event.biz_step})"
        if event.is_error_declaration:
            what = "error declaration: " + what
        if via:
            what += f" of container {via}"
        return LogStep(
            event.log_index,
            entries.EPCIS,
            _utc(event.event_time),
            record,
            via,
            what,
            event.captured_by,
        )

    def _status_changes(self, batch_id: str | None, gtin: str, serial: str) -> list[dict[str, Any]]:
        if batch_id is None:
            return []
        item_key = "0x" + item_key_of(gtin, serial).hex()
        rows = self.session.exec(
            select(IndexedStatusChange)
            .where(IndexedStatusChange.batch_id == batch_id)
            .order_by(col(IndexedStatusChange.block_number), col(IndexedStatusChange.id))
        ).all()
        return [
            {
                "level": "item" if r.item_key else "batch",
                "previous": Status(r.previous).name.lower(),
                "status": Status(r.status).name.lower(),
                "by": r.by,
                "txHash": r.tx_hash,
                "blockNumber": r.block_number,
                "time": datetime.fromtimestamp(r.block_timestamp, UTC).isoformat(),
            }
            for r in rows
            if r.item_key is None or r.item_key == item_key
        ]

    # ------------------------------------------------------------------ proofs

    def _prove(self, steps: list[LogStep], reader: Reader, key: str) -> dict[str, Any]:
        mirror = self.mirror
        size = mirror.catch_up()
        indexes = [s.index for s in steps]
        previous: dict[int, dict[str, int | None]] = {i: {} for i in indexes}
        if indexes:
            for link in self.session.exec(select(LogLink).where(col(LogLink.idx).in_(indexes))):
                previous[link.idx][link.key] = link.prev
        checkpoints: list[Checkpoint] = []
        if self.agency:
            checkpoints = list(
                self.session.exec(
                    select(Checkpoint)
                    .where(
                        Checkpoint.agency == self.agency,
                        Checkpoint.status == CheckpointStatus.ANCHORED.value,
                        col(Checkpoint.size) <= size,
                    )
                    .order_by(col(Checkpoint.size))
                )
            )
        # Only checkpoints of this log: the agency's key may have anchored other roots.
        checkpoints = [c for c in checkpoints if matches_log(mirror, c)]
        used: dict[int, Checkpoint] = {}
        out_entries = []
        for step in steps:
            covering = next((c for c in checkpoints if c.size > step.index), None)
            links = previous.get(step.index, {})
            leaf = mirror.log.leaf(step.index) if step.index < size else None
            item: dict[str, Any] = {
                "logIndex": step.index,
                "kind": step.kind,
                # The entry format version the log holds it in (part of the hashed bytes).
                "v": entries.version_of(leaf, step.kind, step.record, links)
                if leaf is not None
                else entries.ENTRY_VERSION,
                "time": step.time.isoformat(),
                "summary": step.title,
                "via": step.via,
                "record": step.record,
                "previous": links,
                "leafHash": "0x" + leaf.hex() if leaf is not None else None,
                "withheld": False,
            }
            if not reader.reads(step):
                # Recorded by a party whose records the reader may not read: the leaf hash
                # proves the entry is there (and unchanged); the item's own link is kept so
                # its chain of entries still shows nothing missing between.
                item.update(
                    {
                        "kind": "withheld",
                        "v": None,
                        "time": None,
                        "summary": "recorded by another party",
                        "via": None,
                        "record": None,
                        "previous": {key: links[key]} if key in links else {},
                        "withheld": True,
                    }
                )
            if covering is None or step.index >= size:
                item.update({"anchoring": "pending", "checkpointSize": None, "inclusionProof": []})
            else:
                used[covering.size] = covering
                item.update(
                    {
                        "anchoring": "anchored",
                        "checkpointSize": covering.size,
                        "inclusionProof": proof_to_hex(
                            mirror.log.inclusion_proof(step.index, covering.size)
                        ),
                    }
                )
            out_entries.append(item)
        if checkpoints:
            used[checkpoints[-1].size] = checkpoints[-1]
        chosen = [used[s] for s in sorted(used)]
        consistency = [
            {
                "from": a.size,
                "to": b.size,
                "proof": proof_to_hex(mirror.log.consistency_proof(a.size, b.size)),
            }
            for a, b in pairwise(chosen)
        ]
        return {
            "entries": out_entries,
            "checkpoints": [
                {
                    "agency": c.agency,
                    "size": c.size,
                    "root": c.root,
                    "txHash": c.tx_hash,
                    "blockNumber": c.block_number,
                }
                for c in chosen
            ],
            "consistency": consistency,
        }

    # ------------------------------------------------------------------ EPCIS export

    def _epcis_of(self, step: LogStep) -> dict[str, Any]:
        if step.kind == entries.EPCIS:
            event: dict[str, Any] = dict(step.record["event"])
            return event
        r = step.record
        epc = entries.item_key(str(r["gtin"]), str(r["serial"]))
        place = locode_uri(str(r["location"])) if r.get("location") else None
        event = object_event(
            [epc],
            step.time,
            place or "urn:borderledger:gateway",
            # the port is where the goods are as well as where they were read
            biz_location=place,
            event_id=f"urn:uuid:{r['scan_id']}",
            extensions={
                "borderledger:verdict": r["verdict"],
                "borderledger:reasons": list(r["reasons"]),
                "borderledger:logIndex": step.index,
            },
        )
        return event


def export_document(
    session: Session, exported: list[dict[str, Any]], indexes: list[int]
) -> dict[str, Any]:
    """The timeline's log-backed steps as an EPCIS 2.0 document (validated on the way out)."""
    contexts: list[Any] = [BORDERLEDGER_CONTEXT]
    if indexes:
        for row in session.exec(select(EventRow).where(col(EventRow.log_index).in_(indexes))):
            if row.context:
                contexts.append(row.context)
    return to_document(exported, context=merge_contexts(*contexts))
