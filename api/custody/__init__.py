"""The gateway's chain of custody: EPCIS capture, the custody log and its anchoring,
per-item timelines with proofs. Domain rules live in `custody` and `epcis`; this package
stores, wires and shapes. See docs/custody.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.catalog import Catalog
from api.custody import store
from api.custody.anchor import Anchorer, AnchorThread
from api.custody.capture import Captured, capture, feed_detector, unknown_gtins
from api.custody.item_epcis import item_events
from api.custody.locations import LocationBook
from api.custody.store import LogMirror
from api.custody.timeline import Reader, TimelineBuilder, export_document
from api.detection import GatewayDetector
from api.outbox import ChainWriter
from ledger.config import Settings


@dataclass
class CustodyService:
    engine: Engine
    settings: Settings
    catalog: Catalog
    detection: GatewayDetector
    writer: ChainWriter
    mirror: LogMirror = field(init=False)
    locations: LocationBook = field(init=False)
    anchorer: Anchorer = field(init=False)
    thread: AnchorThread | None = None

    def __post_init__(self) -> None:
        self.mirror = LogMirror(self.engine)
        self.locations = LocationBook(self.engine, self.detection.registry)
        self.anchorer = Anchorer(
            self.mirror,
            self.writer,
            self.settings.anchor_organization,
            self.settings.anchor_every_entries,
            self.settings.anchor_interval_seconds,
        )

    def start(self, background: bool) -> None:
        store.ensure_state(self.engine)
        self.locations.load()
        self.mirror.catch_up()
        if background and self.settings.anchor_organization:
            self.thread = AnchorThread(self.anchorer)
            self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    def capture(self, document: dict[str, Any], organization_id: int | None) -> dict[str, Any]:
        results, new = capture(self.engine, document, organization_id, self.locations)
        findings = feed_detector(self.detection, self.catalog, self.locations, new, organization_id)
        return {
            "stored": sum(1 for r in results if r.status == "stored"),
            "duplicates": sum(1 for r in results if r.status == "duplicate"),
            "events": [_captured(r) for r in results],
            "unknownGtins": unknown_gtins(self.catalog, new),
            "findings": findings,
        }

    def timeline(
        self, gtin: str, serial: str, epcis: bool = False, reader: Reader | None = None
    ) -> dict[str, Any]:
        with Session(self.engine) as session:
            builder = TimelineBuilder(
                session, self.catalog, self.mirror, self.anchorer.agency_address()
            )
            answer, exported = builder.build(gtin, serial, epcis, reader)
            if not epcis:
                return answer
            indexes = [e["logIndex"] for e in answer["entries"] if not e["withheld"]]
            return export_document(session, exported, indexes)

    def item_epcis(self, gtin: str, serial: str, reader: Reader | None = None) -> dict[str, Any]:
        """The item's whole history as one EPCIS 2.0 document: its commissioning, the
        log-backed steps the reader may read and its status changes (`item_epcis`)."""
        with Session(self.engine) as session:
            builder = TimelineBuilder(
                session, self.catalog, self.mirror, self.anchorer.agency_address()
            )
            answer, exported = builder.build(gtin, serial, True, reader)
            indexes = [e["logIndex"] for e in answer["entries"] if not e["withheld"]]
            return export_document(session, item_events(answer, exported), indexes)


def _captured(result: Captured) -> dict[str, Any]:
    return {
        "eventId": result.event_id,
        "errorDeclaration": result.error_declaration,
        "status": result.status,
        "logIndex": result.log_index,
        "location": result.location,
    }


__all__ = ["CustodyService", "Reader"]
