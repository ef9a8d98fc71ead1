"""EPCIS capture: validate a document, store its new events, log each one, feed the detector.

Rules (docs/custody.md):
- The whole document is validated first (schema, identifiers); a bad document stores nothing.
- An event already stored (same event id and the same error-declaration flag) is a no-op
  answered `duplicate` with the index it was logged at; repeats inside one document likewise.
- Identifiers the registry does not know (a GTIN no batch is enrolled under, an SSCC, a GIAI,
  a `urn:uuid:`) are accepted and kept: partners name things before (or without) enrolling
  them. The answer lists the GTINs of items not enrolled (`unknownGtins`) for the caller.
- Each new event is one log entry, appended in the transaction that stores it; every item and
  container it names gets a `custody_items` row (and a link in its log chain).
- After commit, events with a place known as a UN/LOCODE go to the detector, one sighting per
  item proven in an enrolled batch (an error declaration retracts, so it is not a sighting).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.engine import Engine

from api.catalog import Catalog
from api.custody import store
from api.custody.locations import LocationBook
from api.detection import GatewayDetector
from api.models import CustodyEvent as EventRow
from api.models import CustodyItem
from api.verification import Scanned, verify
from custody import entries
from detector import Scan
from epcis import CustodyEvent, items_of, parse_document
from epcis.events import legacy_event_id
from ledger.errors import InvalidEpcisDocument
from ledger.verdicts import Reason

log = logging.getLogger("borderledger.custody")
MAX_KEY = 500
_EVENTS = EventRow.__table__  # type: ignore[attr-defined]
_ITEMS = CustodyItem.__table__  # type: ignore[attr-defined]


@dataclass
class Captured:
    event_id: str
    error_declaration: bool
    status: str  # "stored" | "duplicate"
    log_index: int
    location: str | None


def roles_of(event: CustodyEvent) -> list[tuple[str, Any]]:
    """(role, identifier) for everything the event names."""
    named: list[tuple[str, Any]] = [("epc", i) for i in event.epcs]
    if event.parent is not None:
        named.append(("parent", event.parent))
    named += [("child", i) for i in event.children]
    named += [("input", i) for i in event.inputs]
    named += [("output", i) for i in event.outputs]
    return named


def _check_keys(events: list[CustodyEvent]) -> None:
    for n, event in enumerate(events):
        for _, identifier in roles_of(event):
            if len(identifier.key) > MAX_KEY:
                raise InvalidEpcisDocument(
                    f"$.epcisBody.eventList[{n}]: identifier longer than {MAX_KEY} characters",
                    [f"$.epcisBody.eventList[{n}]: identifier {identifier.key[:60]!r}… too long"],
                )
        if len(event.event_id) > MAX_KEY:
            raise InvalidEpcisDocument(
                f"$.epcisBody.eventList[{n}].eventID: longer than {MAX_KEY} characters",
                [f"$.epcisBody.eventList[{n}].eventID: longer than {MAX_KEY} characters"],
            )


def _ref(event_id: str, declaration: bool) -> str:
    return hashlib.sha256(f"{int(declaration)}:{event_id}".encode()).hexdigest()


def capture(
    engine: Engine,
    document: dict[str, Any],
    organization_id: int | None,
    locations: LocationBook,
) -> tuple[list[Captured], list[CustodyEvent]]:
    """Store and log the new events of `document`; returns the per-event answer and the
    events newly stored (for the detector)."""
    events = parse_document(document)
    _check_keys(events)
    unique: dict[tuple[str, bool], CustodyEvent] = {}
    for event in events:
        unique.setdefault((event.event_id, event.is_error_declaration), event)
    captured_at = datetime.now(UTC)
    answer: dict[tuple[str, bool], Captured] = {}
    new: list[CustodyEvent] = []
    with engine.begin() as connection:
        store.lock(connection)  # first statement: captures take turns, so dedupe is exact
        # An event without eventID captured before RFC 8785 is stored under its legacy
        # derived id: look for that one too, so sending it again stays a duplicate.
        legacy: dict[tuple[str, bool], tuple[str, bool]] = {}
        for key, event in unique.items():
            if event.event_id_derived and (old := legacy_event_id(event.raw)) is not None:
                legacy[(old, key[1])] = key
        wanted = [*unique, *legacy]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = connection.execute(
                select(
                    _EVENTS.c.event_id, _EVENTS.c.is_error_declaration, _EVENTS.c.log_index
                ).where(tuple_(_EVENTS.c.event_id, _EVENTS.c.is_error_declaration).in_(chunk))
            ).all()
            for event_id, declaration, index in rows:
                found = (str(event_id), bool(declaration))
                key = legacy.get(found, found)
                answer[key] = Captured(found[0], found[1], "duplicate", int(index), None)
        new = [e for k, e in unique.items() if k not in answer]
        pending = []
        for event in new:
            # `raw` is the caller's object: the record copies it (serialised as is).
            record = entries.epcis_record(
                event.raw,
                event.event_id,
                event.is_error_declaration,
                organization_id,
                captured_at,
            )
            keys = [identifier.key for _, identifier in roles_of(event)]
            pending.append(
                store.Pending(
                    entries.EPCIS,
                    _ref(event.event_id, event.is_error_declaration),
                    record,
                    keys,
                )
            )
        indexes = store.append(connection, pending)
        event_rows = []
        places: list[str | None] = []
        for event, index in zip(new, indexes, strict=True):
            place = locations.resolve(event.read_point) or locations.resolve(event.biz_location)
            places.append(place)
            context = event.context
            event_rows.append(
                {
                    "event_id": event.event_id,
                    "is_error_declaration": event.is_error_declaration,
                    "event_id_derived": event.event_id_derived,
                    "type": event.type,
                    "action": event.action,
                    "event_time": event.event_time,
                    "biz_step": (event.biz_step or "")[:500] or None,
                    "disposition": (event.disposition or "")[:500] or None,
                    "read_point": (event.read_point or "")[:500] or None,
                    "biz_location": (event.biz_location or "")[:500] or None,
                    "location": place,
                    "raw": event.raw,
                    "context": None
                    if context is None
                    else (context if isinstance(context, list) else [context]),
                    "captured_by": organization_id,
                    "captured_at": captured_at,
                    "log_index": index,
                }
            )
        if event_rows:
            connection.execute(insert(_EVENTS), event_rows)
            ids: dict[int, int] = dict(
                connection.execute(
                    select(_EVENTS.c.log_index, _EVENTS.c.id).where(
                        _EVENTS.c.log_index.in_(indexes)
                    )
                ).all()
            )
            item_rows = []
            for event, index in zip(new, indexes, strict=True):
                seen: set[tuple[str, str]] = set()
                for role, identifier in roles_of(event):
                    if (identifier.key, role) in seen:
                        continue
                    seen.add((identifier.key, role))
                    item = identifier.item
                    item_rows.append(
                        {
                            "event_row": ids[index],
                            "key": identifier.key,
                            "role": role,
                            "gtin": item[0] if item else identifier.gtin,
                            "serial": item[1] if item else None,
                            "event_time": event.event_time,
                        }
                    )
            if item_rows:
                connection.execute(insert(_ITEMS), item_rows)
        for event, index, place in zip(new, indexes, places, strict=True):
            key = (event.event_id, event.is_error_declaration)
            answer[key] = Captured(key[0], key[1], "stored", index, place)
    ordered = [answer[(e.event_id, e.is_error_declaration)] for e in events]
    return ordered, new


def feed_detector(
    detection: GatewayDetector,
    catalog: Catalog,
    locations: LocationBook,
    events: list[CustodyEvent],
    captured_by: int | None = None,
) -> list[dict[str, Any]]:
    """Sightings of custody events for the detector; returns the findings raised (each
    alert marked as raised by `captured_by`, the capturing organization)."""
    findings: list[dict[str, Any]] = []
    for event in events:
        if event.is_error_declaration:
            continue
        place = locations.resolve(event.read_point) or locations.resolve(event.biz_location)
        if place is None:
            continue
        for gtin, serial in sorted(items_of(event)):
            try:
                judgement = verify(catalog, Scanned.from_fields(gtin, serial), stale_after=1e12)
            except ValueError:
                continue
            if Reason.SERIAL_IN_BATCH not in judgement.reasons:
                continue  # only items proven in a batch are sightings of that batch
            scan_id = "epcis:" + hashlib.sha256(f"{event.event_id}|{serial}".encode()).hexdigest()
            found = detection.ingest(
                catalog.snapshot(),
                Scan(
                    scan_id[:36],
                    gtin,
                    serial,
                    place,
                    event.event_time.timestamp(),
                    judgement.batch_id,
                ),
                captured_by,
            )
            findings += [f.to_dict() for f in found]
    return findings


def unknown_gtins(catalog: Catalog, events: list[CustodyEvent]) -> list[str]:
    """GTINs of items named in `events` under which no batch is enrolled."""
    snap = catalog.snapshot()
    gtins = {gtin for event in events for gtin, _ in items_of(event)}
    return sorted(g for g in gtins if g not in snap.batches_by_gtin)
