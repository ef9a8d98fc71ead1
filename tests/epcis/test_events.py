from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from epcis.events import (
    DERIVED_ID_PREFIX,
    containers_of,
    derived_event_id,
    items_of,
    parse_document,
)
from epcis.identifiers import IdentifierKind
from ledger.errors import InvalidEpcIdentifier, InvalidEpcisDocument
from tests.epcis.conftest import load

ITEM_2017 = ("10614141073464", "2017")
ITEM_2018 = ("10614141073464", "2018")


def test_every_example_parses_with_its_raw_events(example: dict[str, Any]) -> None:
    events = parse_document(example)
    assert [e.raw for e in events] == example["epcisBody"]["eventList"]
    assert all(e.context == example["@context"] for e in events)
    assert all(e.event_time.tzinfo is UTC for e in events)


def test_object_events_urn_and_digital_link_mean_the_same() -> None:
    for name, gtin in (
        ("Example_9.6.1-ObjectEvent.jsonld", "10614141073464"),
        ("Example_9.6.1-ObjectEventWithDigitalLink.jsonld", "70614141123451"),
    ):
        shipping, receiving = parse_document(load(name))
        assert (shipping.type, shipping.action, shipping.biz_step, shipping.disposition) == (
            "ObjectEvent",
            "OBSERVE",
            "shipping",
            "in_transit",
        )
        # 20:33:31.116 at -06:00 is 02:33:31.116 UTC the next day
        assert shipping.event_time == datetime(2005, 4, 4, 2, 33, 31, 116000, tzinfo=UTC)
        assert shipping.event_time_zone_offset == "-06:00"
        assert items_of(shipping) == {(gtin, "2017"), (gtin, "2018")}
        assert items_of(receiving) == {(gtin, "2018")}
        assert shipping.read_point == "urn:epc:id:sgln:0614141.07346.1234"
        assert receiving.biz_location == "urn:epc:id:sgln:0012345.11111.0"
        assert [(t.type, t.id) for t in receiving.biz_transactions] == [
            ("po", "http://transaction.acme.com/po/12345678"),
            ("desadv", "urn:epcglobal:cbv:bt:0614141073467:1152"),
        ]
        assert receiving.raw["example:myField"] == "Example of a vendor/user extension"
        assert not shipping.event_id_derived and shipping.event_id.startswith("ni:///sha-256;")


def test_quantity_object_event() -> None:
    (event,) = parse_document(load("Example_9.6.2-ObjectEvent.jsonld"))
    assert event.epcs == () and items_of(event) == set()
    (quantity,) = event.quantities
    assert (quantity.epc_class.kind, quantity.epc_class.gtin, quantity.epc_class.lot) == (
        IdentifierKind.LGTIN,
        "04012345123456",
        "998877",
    )
    assert (quantity.quantity, quantity.uom) == (200, "KGM")
    assert [(s.type, s.id) for s in event.sources] == [
        ("possessing_party", "urn:epc:id:sgln:4012345.00001.0"),
        ("location", "urn:epc:id:sgln:4012345.00225.0"),
    ]
    assert [d.type for d in event.destinations] == ["owning_party", "location"]
    assert event.event_time == datetime(2013, 6, 8, 14, 58, 56, 591000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "gtin"),
    [
        ("Example_9.6.3-AggregationEvent.jsonld", "10614141073464"),
        ("Example_9.6.3-AggregationEventWithDigitalLink.jsonld", "70614141123451"),
    ],
)
def test_aggregation_packs_items_into_a_pallet(name: str, gtin: str) -> None:
    (event,) = parse_document(load(name))
    assert (event.type, event.action, event.biz_step) == (
        "AggregationEvent",
        "OBSERVE",
        "receiving",
    )
    assert event.parent is not None
    assert (event.parent.kind, event.parent.sscc) == (IdentifierKind.SSCC, "106141412345678908")
    assert [c.item for c in event.children] == [(gtin, "2017"), (gtin, "2018")]
    assert containers_of(event) == {event.parent}
    assert items_of(event) == {(gtin, "2017"), (gtin, "2018")}
    keys = [(q.epc_class.kind, q.epc_class.key, q.quantity, q.uom) for q in event.quantities]
    assert keys == [
        (IdentifierKind.GTIN, "https://id.gs1.org/01/04012345987652", 10, None),
        (IdentifierKind.LGTIN, "https://id.gs1.org/01/04012345123456/10/998877", 200.5, "KGM"),
    ]


def test_transformation_keeps_inputs_and_outputs() -> None:
    (event,) = parse_document(load("Example_9.6.4-TransformationEvent.jsonld"))
    assert (event.type, event.action, event.biz_step) == (
        "TransformationEvent",
        None,
        "commissioning",
    )
    assert [i.item for i in event.inputs] == [
        ("04012345111224", "25"),
        ("04000001654321", "99886655"),
    ]
    assert [o.serial for o in event.outputs] == ["25", "26", "27", "28"]
    assert {o.gtin for o in event.outputs} == {"04012345778892"}
    assert [q.quantity for q in event.input_quantities] == [10, 30, 220]
    assert event.raw["ilmd"] == {"example:bestBeforeDate": "2014-12-10", "example:batch": "XYZ"}


def test_transaction_events_keep_other_identifiers() -> None:
    first, second = parse_document(load("Example-TransactionEvents-2020_07_03y.jsonld"))
    assert (first.type, first.action) == ("TransactionEvent", "ADD")
    assert first.biz_step == "http://epcis.example.org/hc/bizstep/summarising_discharge"
    assert [e.kind for e in first.epcs] == [IdentifierKind.OTHER]
    assert first.epcs[0].uri == "urn:epc:id:gsrn:95252084.000000001"
    assert first.event_id_derived  # no eventID in this example
    assert first.event_id == derived_event_id(first.raw)
    assert first.event_id.startswith(DERIVED_ID_PREFIX) and first.event_id != second.event_id
    assert (second.biz_step, second.disposition) == ("transporting", "in_transit")
    assert second.biz_transactions[0].type == "urn:gs1:epcisapp:rail:btt:passage"
    assert second.raw["rail:trainAxleCount"] == "12"
    assert second.event_time == datetime(2014, 12, 12, 10, 0, tzinfo=UTC)


def test_derived_id_is_deterministic_and_key_order_free() -> None:
    doc = load("Example-TransactionEvents-2020_07_03y.jsonld")
    first = parse_document(doc)[0]
    shuffled = dict(reversed(list(first.raw.items())))
    assert derived_event_id(shuffled) == first.event_id
    changed = copy.deepcopy(first.raw)
    changed["action"] = "DELETE"
    assert derived_event_id(changed) != first.event_id
    assert len(first.event_id) == len(DERIVED_ID_PREFIX) + 64


def test_error_declaration_and_corrective_event() -> None:
    erroneous, corrective = parse_document(load("ErrorDeclarationAndCorrectiveEvent.jsonld"))
    assert erroneous.is_error_declaration and not corrective.is_error_declaration
    declaration = erroneous.error_declaration
    assert declaration is not None
    assert declaration.reason == "incorrect_data"
    assert declaration.declaration_time == datetime(2020, 1, 14, 23, 0, tzinfo=UTC)
    assert declaration.corrective_event_ids == (corrective.event_id,)
    assert erroneous.output_quantities[0].quantity == 452
    assert corrective.output_quantities[0].quantity == 500
    assert erroneous.read_point == "urn:epc:id:sgln:0614141.07346.1234"


def test_persistent_disposition_and_all_fields() -> None:
    received, inspected = parse_document(load("PersistentDisposition-example.jsonld"))
    assert len(items_of(received)) == 10
    assert ("09520001123467", "10000001001") in items_of(received)
    assert inspected.biz_step == "inspecting"
    assert inspected.raw["persistentDisposition"]["set"] == ["completeness_verified"]
    (event,) = parse_document(load("object_event_all_possible_fields.jsonld"))
    assert event.has_sensor_data and not received.has_sensor_data
    assert items_of(event) == {ITEM_2018}
    assert (
        event.error_declaration is not None and event.error_declaration.reason == "incorrect_data"
    )
    assert event.event_time == datetime(2005, 4, 5, 2, 33, 31, 116000, tzinfo=UTC)
    assert event.raw["ilmd"]["cbvmda:lotNumber"] == "ABC123"


def test_malformed_identifier_names_the_event() -> None:
    doc = load("Example_9.6.3-AggregationEvent.jsonld")
    doc["epcisBody"]["eventList"][0]["childEPCs"][1] = "urn:epc:id:sgtin:0614141.10734.2018"
    with pytest.raises(InvalidEpcIdentifier, match=r"eventList\[0\].*0614141\.10734\.2018"):
        parse_document(doc)


def test_cbv_uris_are_read_as_bare_vocabulary() -> None:
    doc = load("Example_9.6.1-ObjectEvent.jsonld")
    event = doc["epcisBody"]["eventList"][0]
    event["bizStep"] = "https://ref.gs1.org/cbv/BizStep-shipping"
    event["disposition"] = "https://ref.gs1.org/cbv/Disp-in_transit"
    parsed = parse_document(doc)[0]
    assert (parsed.biz_step, parsed.disposition) == ("shipping", "in_transit")
    assert parsed.raw["bizStep"] == "https://ref.gs1.org/cbv/BizStep-shipping"


def test_invalid_documents_are_rejected_before_reading() -> None:
    with pytest.raises(InvalidEpcisDocument):
        parse_document(json.loads('{"type": "EPCISDocument"}'))


def test_query_document_events_are_read() -> None:
    source = load("Example_9.6.3-AggregationEvent.jsonld")
    query = {
        "@context": source["@context"],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-24T10:00:00Z",
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": source["epcisBody"]["eventList"]},
            }
        },
    }
    (event,) = parse_document(query)
    assert event.type == "AggregationEvent" and items_of(event) == {ITEM_2017, ITEM_2018}
