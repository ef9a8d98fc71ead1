"""`borderledger bench epcis`: a tiny run, checking the shape of the JSON (no timing asserts)."""

from __future__ import annotations

from bench.epcis import build_document
from epcis.events import items_of, parse_document
from tests.bench.run import bench_json


def test_generated_document_is_valid_and_distinct() -> None:
    events = parse_document(build_document(30))
    assert len(events) == 30 and len({e.event_id for e in events}) == 30
    assert [e.type for e in events[:3]] == ["ObjectEvent", "AggregationEvent", "TransactionEvent"]
    assert len(items_of(events[1])) == 4


def test_tiny_epcis_bench_prints_one_json_object_last() -> None:
    result = bench_json("epcis", "--events", "30", "--repeats", "2")
    assert result["events_per_document"] == 30
    for key in (
        "validate_events_per_second",
        "parse_events_per_second",
        "reject_documents_per_second",
    ):
        assert result[key] > 0
