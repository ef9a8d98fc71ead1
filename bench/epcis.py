"""EPCIS capture speed: validating and reading a 1,000-event document.

The document mixes GS1's example events (ObjectEvents with EPC URNs and Digital Links,
AggregationEvents, a TransformationEvent), renumbered so every event is distinct. Measured:
schema validation alone (jsonschema-rs), the full `parse_document` (validation + typed
events + identifier parsing), the pure-Python `jsonschema` validator for comparison, and
the rejection of a document with one bad eventTime (what a 422 costs).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from epcis.events import parse_document
from epcis.export import object_event, to_document
from epcis.schema import problems, validate, validator
from ledger.errors import InvalidEpcisDocument
from ledger.gs1 import gtin_check_digit


def build_document(events: int) -> dict[str, Any]:
    """A valid EPCISDocument with `events` events, a third of each kind."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 1, 1, tzinfo=UTC)
    body13 = "1061414107346"
    gtin = body13 + str(gtin_check_digit(body13))
    made: list[dict[str, Any]] = []
    for i in range(events):
        when = start + timedelta(minutes=i)
        if i % 3 == 0:
            made.append(
                object_event(
                    [
                        f"https://id.gs1.org/01/{gtin}/21/S{i}",
                        f"urn:epc:id:sgtin:0614141.107346.T{i}",
                    ],
                    when,
                    "urn:un:locode:NLRTM",
                )
            )
        elif i % 3 == 1:
            made.append(
                {
                    "type": "AggregationEvent",
                    "eventTime": when.isoformat().replace("+00:00", "Z"),
                    "eventTimeZoneOffset": "+00:00",
                    "eventID": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
                    "parentID": "urn:epc:id:sscc:0614141.1234567890",
                    "childEPCs": [f"urn:epc:id:sgtin:0614141.107346.C{i}.{k}" for k in range(4)],
                    "action": "ADD",
                    "bizStep": "packing",
                    "disposition": "in_progress",
                    "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
                }
            )
        else:
            made.append(
                {
                    "type": "TransactionEvent",
                    "eventTime": when.isoformat().replace("+00:00", "Z"),
                    "eventTimeZoneOffset": "+01:00",
                    "bizTransactionList": [
                        {"type": "po", "bizTransaction": f"urn:epcglobal:cbv:bt:0614141073467:{i}"}
                    ],
                    "epcList": [f"https://id.gs1.org/01/{gtin}/21/S{i}"],
                    "action": "ADD",
                    "bizStep": "shipping",
                    "readPoint": {"id": "urn:epc:id:sgln:0614141.00777.0"},
                }
            )
    return to_document(made)


def _rate(action: Callable[[], object], repeats: int) -> float:
    action()  # warm (validators are built once, on first use)
    started = time.perf_counter()
    for _ in range(repeats):
        action()
    return repeats / (time.perf_counter() - started)


def run_epcis_bench(events: int = 1000, repeats: int = 20) -> dict[str, Any]:
    document = build_document(events)
    bad = copy.deepcopy(document)
    bad["epcisBody"]["eventList"][events // 2]["eventTime"] = "2026-13-01T00:00:00Z"

    def reject() -> None:
        try:
            validate(bad)
        except InvalidEpcisDocument:
            return
        raise AssertionError("the bad document was accepted")

    assert problems(document) == []
    validate_rate = _rate(lambda: validate(document), repeats)
    parse_rate = _rate(lambda: parse_document(document), repeats)
    python_rate = _rate(lambda: validator().is_valid(document), max(1, repeats // 10))
    reject_rate = _rate(reject, max(1, repeats // 10))
    return {
        "events_per_document": events,
        "validate_documents_per_second": round(validate_rate, 2),
        "validate_events_per_second": round(validate_rate * events),
        "parse_documents_per_second": round(parse_rate, 2),
        "parse_events_per_second": round(parse_rate * events),
        "python_jsonschema_events_per_second": round(python_rate * events),
        "reject_documents_per_second": round(reject_rate, 2),
    }
