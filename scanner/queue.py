"""The device's offline queue: signed scan records kept in SQLite until the gateway has them.

Each scan made without a gateway verdict (`borderledger scan --queue`, or automatically when
the gateway cannot be reached) is appended as one row: the record's canonical JSON text
exactly as signed (`ledger.scan_record`), its Ed25519 signature, and its sync state:

    pending → accepted | duplicate    (the gateway has it: never sent again)
            → rejected                (the gateway refused it, with a reason: kept for review)

A row is marked only after the gateway answered for it, so an interrupted sync is simply run
again; scans the gateway already stored come back `duplicate`. SQLite commits each append
before `scan` reports it queued, so a crash or a flat battery loses nothing acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.errors import KeystoreError
from ledger.scan_record import build_record, format_time
from scanner.device import DeviceKey
from scanner.payload import Payload

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    signature TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'accepted', 'duplicate', 'rejected')),
    synced_at TEXT,
    result TEXT
);
CREATE INDEX IF NOT EXISTS scans_status ON scans (status, seq);
"""
FINAL = ("accepted", "duplicate", "rejected")


@dataclass(frozen=True)
class QueuedScan:
    seq: int
    scan_id: str
    record: str
    signature: str
    status: str
    result: dict[str, Any] | None

    @property
    def fields(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.record)
        return parsed


class ScanQueue:
    """One SQLite file per device (`<device dir>/queue.db`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise KeystoreError(f"cannot open the scan queue {path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ScanQueue:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(
        self,
        device: DeviceKey,
        payload: Payload,
        location: str | None,
        scanned_at: datetime | None = None,
        offline_verdict: dict[str, Any] | None = None,
        shipment: str | None = None,
    ) -> QueuedScan:
        """Sign and queue one checkable code (`payload.checkable`) read at `location`, for the
        `shipment` reference when one is set (scans group by it, as online)."""
        record = build_record(
            device_id=device.device_id,
            payload=payload.raw,
            kind=payload.kind,
            tag=payload.tag,
            gtin=payload.gtin,
            serial=payload.serial,
            lot=payload.lot,
            location=location,
            scanned_at=scanned_at or datetime.now(UTC),
            offline_verdict=offline_verdict,
            shipment=shipment,
        )
        signature = device.sign(record)
        scan_id = str(json.loads(record)["scanId"])
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO scans (scan_id, record, signature, queued_at) VALUES (?, ?, ?, ?)",
                (scan_id, record, signature, format_time(datetime.now(UTC))),
            )
        assert cursor.lastrowid is not None
        return QueuedScan(cursor.lastrowid, scan_id, record, signature, "pending", None)

    def pending(self, limit: int = 100, after: int = 0) -> list[QueuedScan]:
        """The oldest unsynced scans (after sequence number `after`)."""
        rows = self.db.execute(
            "SELECT seq, scan_id, record, signature, status, result FROM scans "
            "WHERE status = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def entries(self, status: str | None = None) -> list[QueuedScan]:
        query = "SELECT seq, scan_id, record, signature, status, result FROM scans"
        rows = (
            self.db.execute(query + " WHERE status = ? ORDER BY seq", (status,)).fetchall()
            if status
            else self.db.execute(query + " ORDER BY seq").fetchall()
        )
        return [_row(r) for r in rows]

    def mark(self, scan_id: str, status: str, result: dict[str, Any]) -> None:
        """Record the gateway's answer for a scan; only a pending scan changes."""
        if status not in FINAL:
            raise ValueError(f"status {status!r}: one of {', '.join(FINAL)}")
        with self.db:
            self.db.execute(
                "UPDATE scans SET status = ?, synced_at = ?, result = ? "
                "WHERE scan_id = ? AND status = 'pending'",
                (status, format_time(datetime.now(UTC)), json.dumps(result), scan_id),
            )

    def counts(self) -> dict[str, int]:
        found = dict(self.db.execute("SELECT status, COUNT(*) FROM scans GROUP BY status"))
        return {s: int(found.get(s, 0)) for s in ("pending", *FINAL)}


def _row(row: tuple[Any, ...]) -> QueuedScan:
    seq, scan_id, record, signature, status, result = row
    return QueuedScan(
        int(seq),
        str(scan_id),
        str(record),
        str(signature),
        str(status),
        json.loads(result) if result else None,
    )
