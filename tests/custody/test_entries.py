"""Log entries: canonical bytes that survive a database round trip and change with any edit."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody import entries
from custody.log import leaf_hash
from epcis import parse_identifier
from ledger.errors import InvalidInput

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)  # JCS numbers are doubles: exact up to 2^53
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _scan(**changes: Any) -> dict[str, Any]:
    scan = {
        "scan_id": "7f1c3f0e-0000-4000-8000-000000000001",
        "organization_id": 3,
        "gtin": "09506000134352",
        "lot": "L1",
        "serial": "SN/1 é",
        "batch_id": "0x" + "ab" * 32,
        "input_kind": "tag",
        "location": "NLRTM",
        "latitude": 51.95,
        "longitude": 4.14,
        "scanned_at": datetime(2026, 11, 24, 19, 0, 1, 123456, tzinfo=UTC),
        "recorded_at": datetime(2026, 11, 24, 19, 0, 2, tzinfo=UTC),
        "verdict": "GENUINE",
        "reasons": ["SERIAL_IN_BATCH"],
        "index_block": 17,
    }
    scan.update(changes)
    return scan


@given(json_values)
def test_canonical_json_ignores_key_order_and_parses_back(value: Any) -> None:
    encoded = entries.canonical_json(value)
    # JSON numbers are doubles: 5.975614011395975e16 is written 59756140113959750, the same
    # double, which Python alone would read as a different (exact) int.
    assert json.loads(encoded, parse_int=float) == value
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert entries.canonical_json(reordered) == encoded


def test_canonical_json_refuses_what_is_not_json() -> None:
    with pytest.raises(InvalidInput):
        entries.canonical_json({"x": float("nan")})
    with pytest.raises(InvalidInput):
        entries.canonical_json({"x": object()})


def test_scan_record_reads_the_same_after_a_round_trip() -> None:
    scan = _scan()
    stored = _scan(scanned_at=scan["scanned_at"].replace(tzinfo=None))  # SQLite: naive UTC
    shifted = _scan(scanned_at=scan["scanned_at"].astimezone(timezone(timedelta(hours=2))))
    record = entries.scan_record(scan)
    assert record == entries.scan_record(stored) == entries.scan_record(shifted)
    assert record["scanned_at"] == "2026-11-24T19:00:01.123456Z"
    assert "recorded_at" not in record  # when the writer stored it is not evidence
    as_json = json.loads(json.dumps(record))
    assert entries.entry_leaf("scan", as_json, {}) == entries.entry_leaf("scan", record, {})


@pytest.mark.parametrize(
    "change",
    [
        {"verdict": "COUNTERFEIT_SUSPECT"},
        {"reasons": []},
        {"location": "DEHAM"},
        {"serial": "SN/2"},
        {"scanned_at": datetime(2026, 11, 24, 19, 0, 1, 123457, tzinfo=UTC)},
        {"latitude": 51.9500001},
    ],
)
def test_any_edit_of_a_scan_changes_its_leaf(change: dict[str, Any]) -> None:
    links = {entries.item_key("09506000134352", "SN/1 é"): 4}
    before = entries.entry_leaf("scan", entries.scan_record(_scan()), links)
    after = entries.entry_leaf("scan", entries.scan_record(_scan(**change)), links)
    assert before != after


def test_links_are_part_of_the_entry() -> None:
    record = entries.scan_record(_scan())
    key = entries.item_key("09506000134352", "SN/1 é")
    leaves = {entries.entry_leaf("scan", record, {key: p}) for p in (None, 0, 1)}
    assert len(leaves) == 3
    assert entries.entry_leaf("scan", record, {}) == leaf_hash(
        entries.entry_bytes("scan", record, {})
    )


def test_the_entry_format_is_pinned() -> None:
    """The format is public (auditors recompute it): a change here is a breaking change.
    Version 1 stays readable for the entries already in logs."""
    record = entries.epcis_record(
        {"type": "ObjectEvent", "eventID": "urn:uuid:1"},
        "urn:uuid:1",
        False,
        7,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    data = entries.entry_bytes(
        "epcis", record, {"https://id.gs1.org/00/106141412345678908": None}, version=1
    )
    assert data == (
        b'{"kind":"epcis","previous":{"https://id.gs1.org/00/106141412345678908":null},'
        b'"record":{"captured_at":"2026-01-02T03:04:05.000000Z","captured_by":7,'
        b'"error_declaration":false,"event":{"eventID":"urn:uuid:1","type":"ObjectEvent"},'
        b'"event_id":"urn:uuid:1"},"v":1}'
    )
    with pytest.raises(InvalidInput):
        entries.entry_bytes("other", record, {})


@given(st.text(alphabet="ABCxyz019!\"%&'()*+,-./:;<=>?_", min_size=1, max_size=20))
def test_item_key_is_the_epcis_canonical_key(serial: str) -> None:
    uri = f"https://example.com/01/09506000134352/21/{entries.quote(serial, safe='')}"
    assert parse_identifier(uri).key == entries.item_key("09506000134352", serial)


def test_version_2_is_jcs_and_pinned() -> None:
    record = entries.epcis_record(
        {"type": "ObjectEvent", "eventID": "urn:uuid:1", "ex:t": 10.0, "ex:\ue000": 1, "ex:😀": 2},
        "urn:uuid:1",
        False,
        7,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    data = entries.entry_bytes("epcis", record, {"https://id.gs1.org/00/106141412345678908": None})
    assert entries.ENTRY_VERSION == 2
    assert data == (
        b'{"kind":"epcis","previous":{"https://id.gs1.org/00/106141412345678908":null},'
        b'"record":{"captured_at":"2026-01-02T03:04:05.000000Z","captured_by":7,'
        b'"error_declaration":false,"event":{"eventID":"urn:uuid:1",'
        + '"ex:t":10,"ex:😀":2,"ex:\ue000":1,'.encode()  # UTF-16 order: D83D before E000
        + b'"type":"ObjectEvent"},"event_id":"urn:uuid:1"},"v":2}'
    )
    with pytest.raises(InvalidInput, match="unknown log entry version 3"):
        entries.entry_bytes("epcis", record, {}, version=3)
    with pytest.raises(InvalidInput, match=r"plain JSON.*beyond"):
        entries.entry_bytes("epcis", {**record, "event": {"n": 2**60}}, {})


OLD_ENTRIES = json.loads((Path(__file__).parent / "fixtures" / "entries_v1.json").read_text())


@pytest.mark.parametrize("old", OLD_ENTRIES, ids=lambda o: str(o["kind"]))
def test_entries_logged_by_the_old_code_still_recompute(old: dict[str, Any]) -> None:
    """Bytes and leaves the gateway wrote before JCS (committed as written) are what version 1
    gives today, and `version_of` finds version 1 from the stored leaf."""
    data = base64.b64decode(old["bytes"])
    leaf = bytes.fromhex(old["leaf"])
    args = (old["kind"], old["record"], old["previous"])
    assert entries.entry_bytes(*args, version=1) == data
    assert entries.entry_leaf(*args, version=1) == leaf == leaf_hash(data)
    assert entries.entry_leaf(*args) != leaf  # these records are ones JCS writes differently
    assert entries.version_of(leaf, *args) == 1
    assert entries.version_of(entries.entry_leaf(*args), *args) == 2
