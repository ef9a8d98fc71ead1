from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from epcis.events import items_of, parse_document
from epcis.export import (
    STANDARD_CONTEXT,
    document_of,
    locode_uri,
    merge_contexts,
    object_event,
    to_document,
)
from epcis.schema import problems
from ledger.errors import InvalidEpcisDocument
from tests.epcis.conftest import EXAMPLES, load


def test_reexport_of_every_example_is_valid_and_equal(example: dict[str, Any]) -> None:
    events = parse_document(example)
    exported = document_of(events, sender="urn:epc:id:sgln:0614141.00001.0")
    assert problems(exported) == []
    assert exported["schemaVersion"] == "2.0" and exported["type"] == "EPCISDocument"
    assert exported["@context"][0] == STANDARD_CONTEXT
    assert exported["epcisBody"]["eventList"] == example["epcisBody"]["eventList"]
    again = parse_document(exported)
    assert [(e.event_id, e.event_time, items_of(e)) for e in again] == [
        (e.event_id, e.event_time, items_of(e)) for e in events
    ]


def test_history_from_several_documents() -> None:
    events = [e for name in EXAMPLES for e in parse_document(load(name))]
    exported = document_of(events, creation_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert exported["creationDate"] == "2026-01-02T03:04:05.000Z"
    assert len(exported["epcisBody"]["eventList"]) == len(events) == 15
    # the example prefixes stay defined; GS1's versioned context is not repeated
    assert {"example": "http://ns.example.com/epcis/"} in exported["@context"]
    assert not any("2.0.0" in str(c) for c in exported["@context"])


def test_merge_contexts() -> None:
    assert merge_contexts(None) == [STANDARD_CONTEXT]
    assert merge_contexts({"a": "urn:a:"}, [STANDARD_CONTEXT, {"a": "urn:a:"}, "https://x/c"]) == [
        STANDARD_CONTEXT,
        {"a": "urn:a:"},
        "https://x/c",
    ]


def test_border_scan_event() -> None:
    scanned = datetime(2026, 11, 24, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    event = object_event(
        ["https://id.gs1.org/01/10614141073464/21/2017"],
        scanned,
        locode_uri("NL RTM"),
        event_id="urn:uuid:0b5bb4a2-5f2e-4c1c-9b61-1a2f0c0e1d11",
    )
    assert event["eventTime"] == "2026-11-24T09:30:00.000Z"
    assert event["eventTimeZoneOffset"] == "+01:00"
    assert event["readPoint"] == {"id": "urn:un:locode:NLRTM"}
    (parsed,) = parse_document(to_document([event]))
    assert parsed.biz_step == "inspecting" and parsed.disposition == "in_progress"
    assert items_of(parsed) == {("10614141073464", "2017")}
    assert parsed.event_time == datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    gln_event = object_event(
        ["urn:epc:id:sgtin:0614141.107346.2017"],
        scanned,
        "urn:epc:id:sgln:0614141.00777.0",
        disposition=None,
        action="ADD",
    )
    assert "disposition" not in gln_event
    assert parse_document(to_document([gln_event]))[0].event_id_derived


def test_export_refuses_invalid_events() -> None:
    with pytest.raises(InvalidEpcisDocument, match=r"eventList\[0\]"):
        to_document([{"type": "ObjectEvent", "eventTime": "now"}])
    with pytest.raises(InvalidEpcisDocument, match="no timezone"):
        object_event([], datetime(2026, 1, 1), "urn:un:locode:NLRTM")
    with pytest.raises(InvalidEpcisDocument, match="UN/LOCODE"):
        locode_uri("NL-RT")
