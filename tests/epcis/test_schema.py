from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from epcis.schema import LICENSE_FILE, MAX_PROBLEMS, SCHEMA_FILE, problems, schema_bytes, validate
from ledger.errors import InvalidEpcisDocument, InvalidInput
from tests.epcis.conftest import EXAMPLES, FIXTURES, load

SHARED = Path(os.environ.get("BORDERLEDGER_EPCIS_SHARED", "/work/shared/epcis"))
EXPECTED_EXAMPLES = {
    "ErrorDeclarationAndCorrectiveEvent.jsonld",
    "Example-TransactionEvents-2020_07_03y.jsonld",
    "Example_9.6.1-ObjectEvent.jsonld",
    "Example_9.6.1-ObjectEventWithDigitalLink.jsonld",
    "Example_9.6.2-ObjectEvent.jsonld",
    "Example_9.6.3-AggregationEvent.jsonld",
    "Example_9.6.3-AggregationEventWithDigitalLink.jsonld",
    "Example_9.6.4-TransformationEvent.jsonld",
    "PersistentDisposition-example.jsonld",
    "object_event_all_possible_fields.jsonld",
}


def test_bundled_files_are_present() -> None:
    # Fails loudly in a checkout or install that lost the package data or the fixtures.
    schema = json.loads(schema_bytes())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "ObjectEvent" in schema["definitions"]
    assert b"GS1" in schema_bytes(LICENSE_FILE)
    assert set(EXAMPLES) == EXPECTED_EXAMPLES


def test_bundled_copies_equal_the_shared_originals() -> None:
    if not SHARED.is_dir():  # a clean CI checkout has only the bundled copies
        return
    assert schema_bytes(SCHEMA_FILE) == (SHARED / SCHEMA_FILE).read_bytes()
    assert schema_bytes(LICENSE_FILE) == (SHARED / LICENSE_FILE).read_bytes()
    shared = sorted(p.name for p in (SHARED / "examples").glob("*.jsonld"))
    assert shared == EXAMPLES
    for name in shared:
        assert (FIXTURES / name).read_bytes() == (SHARED / "examples" / name).read_bytes(), name


def test_every_example_validates(example: dict[str, Any]) -> None:
    assert problems(example) == []
    validate(example)


def _first_event(doc: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = doc["epcisBody"]["eventList"][0]
    return event


def _rejected(doc: Any) -> InvalidEpcisDocument:
    with pytest.raises(InvalidEpcisDocument) as caught:
        validate(doc)
    assert isinstance(caught.value, InvalidInput)  # the gateway answers 422
    return caught.value


def test_missing_event_type_names_the_event() -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    del _first_event(doc)["type"]
    error = _rejected(doc)
    assert error.problems == ["$.epcisBody.eventList[0]: 'type' is a required property"]
    assert "$.epcisBody.eventList[0]" in str(error)


@pytest.mark.parametrize(
    "bad_time", ["2005-13-03T20:33:31Z", "2005-04-03 20:33:31Z", "2005-04-03T20:33:31", "yesterday"]
)
def test_bad_event_time(bad_time: str) -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    _first_event(doc)["eventTime"] = bad_time
    error = _rejected(doc)
    assert (
        f"$.epcisBody.eventList[0].eventTime: {bad_time!r} is not a 'date-time'" in error.problems
    )


def test_wrong_enum_values() -> None:
    doc = load("Example_9.6.3-AggregationEvent.jsonld")
    _first_event(doc)["action"] = "PACK"
    error = _rejected(doc)
    assert any(p.startswith("$.epcisBody.eventList[0].action: 'PACK'") for p in error.problems)
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    _first_event(doc)["bizStep"] = "shipping2"
    error = _rejected(doc)
    assert any(
        p.startswith("$.epcisBody.eventList[0].bizStep: 'shipping2'") for p in error.problems
    )


def test_misspelt_field_is_not_taken_as_an_extension() -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    _first_event(doc)["bizstep"] = "shipping"
    error = _rejected(doc)
    assert any("'bizstep' is neither an EPCIS field" in p for p in error.problems)


@pytest.mark.parametrize("not_object", [[], "EPCISDocument", 3, None])
def test_not_a_json_object(not_object: Any) -> None:
    error = _rejected(not_object)
    assert error.problems[0].startswith("$: expected an object")


def test_document_type_must_be_a_document() -> None:
    error = _rejected({"type": "Foo"})
    assert error.problems == ["$.type: 'Foo' is not 'EPCISDocument' or 'EPCISQueryDocument'"]
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    del doc["schemaVersion"]
    assert "$: 'schemaVersion' is a required property" in _rejected(doc).problems


def test_problem_count_is_bounded() -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    event = _first_event(doc)
    event["eventTime"] = "nope"
    doc["epcisBody"]["eventList"] = [copy.deepcopy(event) for _ in range(100)]
    error = _rejected(doc)
    assert len(error.problems) == MAX_PROBLEMS
    assert "(first ones)" in str(error)
    assert error.problems[9].startswith("$.epcisBody.eventList[9].eventTime")


def test_validation_speed_1000_events() -> None:
    doc = load("PersistentDisposition-example.jsonld")
    events = doc["epcisBody"]["eventList"]
    doc["epcisBody"]["eventList"] = [copy.deepcopy(events[i % 2]) for i in range(1000)]
    validate(doc)  # warm
    started = time.perf_counter()
    validate(doc)
    elapsed = time.perf_counter() - started
    print(json.dumps({"events": 1000, "seconds": round(elapsed, 3)}))
    assert elapsed < 10


def test_problems_in_a_large_document_name_the_right_events() -> None:
    doc = load("PersistentDisposition-example.jsonld")
    events = doc["epcisBody"]["eventList"]
    doc["epcisBody"]["eventList"] = [copy.deepcopy(events[i % 2]) for i in range(1000)]
    doc["creationDate"] = "2020-06-28"
    doc["epcisBody"]["eventList"][500]["action"] = "PACK"
    del doc["epcisBody"]["eventList"][700]["type"]
    found = _rejected(doc).problems
    assert found[0] == "$.creationDate: '2020-06-28' is not a 'date-time'"
    assert found[1].startswith("$.epcisBody.eventList[500].action: 'PACK'")
    assert found[-1] == "$.epcisBody.eventList[700]: 'type' is a required property"
    assert {f.split(":")[0] for f in found} == {
        "$.creationDate",
        "$.epcisBody.eventList[500].action",
        "$.epcisBody.eventList[700]",
    }


def test_query_documents_are_validated_too() -> None:
    events = load("Example_9.6.1-ObjectEvent.jsonld")["epcisBody"]["eventList"]
    query: dict[str, Any] = {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-24T10:00:00Z",
        "epcisBody": {
            "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": {"eventList": events}}
        },
    }
    validate(query)
    query["epcisBody"]["queryResults"]["resultsBody"]["eventList"][1]["eventTime"] = "x"
    assert _rejected(query).problems == [
        "$.epcisBody.queryResults.resultsBody.eventList[1].eventTime: 'x' is not a 'date-time'"
    ]
