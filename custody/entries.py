"""What a custody-log entry is: the canonical bytes of what a timeline shows.

The gateway appends one entry per border scan and per captured EPCIS event; an auditor
recomputes each entry from the timeline's own data and checks it against the log. Both sides
therefore need exactly the same encoding, which is defined here (no web, no chain):

    entry = canonical_json({"v": 2, "kind": "scan" | "epcis", "record": {...},
                            "previous": {item_key: index | null, ...}})
    leaf  = custody.log.leaf_hash(entry)

- `record` is the scan record (`scan_record`) or the captured EPCIS event with its capture
  metadata (`epcis_record`), with times as ISO 8601 UTC strings (microseconds), so it reads
  the same after a round trip through either database.
- `previous` names, for every item (and container) key the entry is about, the log index of
  the previous entry about that key (null for the first). Each item's entries therefore form
  a chain inside the log: an entry deleted from the middle of an item's history leaves a
  dangling pointer an auditor notices.
- Canonical JSON: RFC 8785 (JCS, `ledger.canonical`), so an auditor can recompute an entry
  with any JCS implementation.

Versions (`v`, inside the hashed bytes, so a timeline cannot lie about it unnoticed):
2 is JCS, what the gateway writes; 1 is what it wrote before (Python `json.dumps` with sorted
keys, UTF-8: floats as `52.0`, names sorted by code point), kept to verify the entries already
in the log. A timeline names each entry's `v`; an entry without one is a version 1 entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from custody.log import leaf_hash
from ledger.canonical import LEGACY, canonical_json
from ledger.errors import InvalidInput

#: The version of the entries written now; `ENCODERS` holds every version that can be checked.
ENTRY_VERSION = 2
ENCODERS: dict[int, Callable[[Any], bytes]] = {1: LEGACY["python-utf8"], 2: canonical_json}
SCAN = "scan"
EPCIS = "epcis"
#: An action on a customs case (`cases`): personal data only as salted commitments.
CASE = "case"
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


def case_key(case_id: str) -> str:
    """The log key of a customs case: its actions form one chain in the log."""
    return f"urn:borderledger:case:{case_id}"


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
    kind: str,
    record: Mapping[str, Any],
    previous: Mapping[str, int | None],
    version: int | None = None,
) -> dict[str, Any]:
    if kind not in (SCAN, EPCIS, CASE):
        raise InvalidInput(f"unknown log entry kind {kind!r}")
    version = ENTRY_VERSION if version is None else version
    return {"v": version, "kind": kind, "record": dict(record), "previous": dict(previous)}


def entry_bytes(
    kind: str,
    record: Mapping[str, Any],
    previous: Mapping[str, int | None],
    version: int | None = None,
) -> bytes:
    """The canonical bytes of an entry (what is hashed into the log), in `version`'s encoding
    (the current one by default)."""
    version = ENTRY_VERSION if version is None else version
    encode = ENCODERS.get(version) if type(version) is int else None
    if encode is None:
        raise InvalidInput(
            f"unknown log entry version {version!r}; known: {', '.join(map(str, ENCODERS))}"
        )
    value = entry(kind, record, previous, version)
    try:
        return encode(value)
    except InvalidInput as exc:
        raise InvalidInput(f"a log entry must be plain JSON: {exc}") from None


def entry_leaf(
    kind: str,
    record: Mapping[str, Any],
    previous: Mapping[str, int | None],
    version: int | None = None,
) -> bytes:
    """RFC 6962 leaf hash of the entry."""
    return leaf_hash(entry_bytes(kind, record, previous, version))


def version_of(
    leaf: bytes, kind: str, record: Mapping[str, Any], previous: Mapping[str, int | None]
) -> int:
    """The version whose encoding of the entry hashes to `leaf` (the log's stored leaf), newest
    first; the current version when none does (the record changed: the audit says so)."""
    for version in sorted(ENCODERS, reverse=True):
        try:
            if entry_leaf(kind, record, previous, version) == leaf:
                return version
        except InvalidInput:
            continue
    return ENTRY_VERSION
