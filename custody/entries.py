"""What a custody-log entry is: the canonical bytes of what a timeline shows.

The gateway appends one entry per border scan and per captured EPCIS event; an auditor
recomputes each entry from the timeline's own data and checks it against the log. Both sides
therefore need exactly the same encoding, which is defined here (no web, no chain):

    entry = canonical_json({"v": 1, "kind": "scan" | "epcis", "record": {...},
                            "previous": {item_key: index | null, ...}})
    leaf  = custody.log.leaf_hash(entry)

- `record` is the scan record (`scan_record`) or the captured EPCIS event with its capture
  metadata (`epcis_record`), with times as ISO 8601 UTC strings (microseconds), so it reads
  the same after a round trip through either database.
- `previous` names, for every item (and container) key the entry is about, the log index of
  the previous entry about that key (null for the first). Each item's entries therefore form
  a chain inside the log: an entry deleted from the middle of an item's history leaves a
  dangling pointer an auditor notices.
- Canonical JSON: keys sorted, no whitespace, UTF-8, no NaN/Infinity (`canonical_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from custody.log import leaf_hash
from ledger.errors import InvalidInput

ENTRY_VERSION = 1
SCAN = "scan"
EPCIS = "epcis"
#: The columns of a scan that go into its entry (what a timeline shows of a border scan).
SCAN_FIELDS = (
    "scan_id",
    "organization_id",
    "gtin",
    "lot",
    "serial",
    "batch_id",
    "input_kind",
    "location",
    "latitude",
    "longitude",
    "scanned_at",
    "verdict",
    "reasons",
    "index_block",
)


#: One encoder for every entry (`json.dumps` with options builds a new one per call).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> bytes:
    """Keys sorted, no whitespace, UTF-8; NaN and infinities refused (not JSON)."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"a log entry must be plain JSON: {exc}") from None
    return text.encode("utf-8")


def iso_utc(moment: datetime | str) -> str:
    """A time as ``2026-11-24T19:00:00.123456Z`` (a naive time is taken as UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def item_key(gtin: str, serial: str) -> str:
    """The log key of a serialised item: its canonical GS1 Digital Link (the same string
    `epcis.Identifier.key` gives for an SGTIN, so scans and EPCIS events share one chain)."""
    return f"https://id.gs1.org/01/{gtin}/21/{quote(serial, safe='')}"


def scan_record(scan: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a scan row (ScanEvent columns) that is logged and shown."""
    record = {name: scan.get(name) for name in SCAN_FIELDS}
    record["scanned_at"] = iso_utc(scan["scanned_at"])
    record["reasons"] = list(scan.get("reasons") or [])
    for name in ("latitude", "longitude"):
        value = record[name]
        if value is not None:
            record[name] = float(value)
    return record


def epcis_record(
    event: Mapping[str, Any],
    event_id: str,
    error_declaration: bool,
    captured_by: int | None,
    captured_at: datetime | str,
) -> dict[str, Any]:
    """A captured EPCIS event (its JSON exactly as received) and who captured it when."""
    return {
        "event_id": event_id,
        "error_declaration": error_declaration,
        "captured_by": captured_by,
        "captured_at": iso_utc(captured_at),
        "event": dict(event),
    }


def entry(
    kind: str, record: Mapping[str, Any], previous: Mapping[str, int | None]
) -> dict[str, Any]:
    if kind not in (SCAN, EPCIS):
        raise InvalidInput(f"unknown log entry kind {kind!r}")
    return {"v": ENTRY_VERSION, "kind": kind, "record": dict(record), "previous": dict(previous)}


def entry_bytes(kind: str, record: Mapping[str, Any], previous: Mapping[str, int | None]) -> bytes:
    """The canonical bytes of an entry (what is hashed into the log)."""
    return canonical_json(entry(kind, record, previous))


def entry_leaf(kind: str, record: Mapping[str, Any], previous: Mapping[str, int | None]) -> bytes:
    """RFC 6962 leaf hash of the entry."""
    return leaf_hash(entry_bytes(kind, record, previous))
