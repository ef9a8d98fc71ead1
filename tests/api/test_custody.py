"""Chain of custody through the gateway: EPCIS capture, timelines with proofs, anchoring."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from api.models import Checkpoint, CustodyItem, LogEntry, LogLink, ScanEvent
from api.models import CustodyEvent as CustodyEventRow
from chain.node import LocalNode
from custody import entries
from custody.log import proof_from_hex, verify_consistency, verify_inclusion
from epcis import validate
from epcis.events import DERIVED_ID_PREFIX, legacy_event_id
from tests.epcis.conftest import EXAMPLES, load
from tests.stack import GTIN, Stack, running_stack

AGENCY = "NL Customs"
SSCC_URN = "urn:epc:id:sscc:0614141.1234567890"


@pytest.fixture
def custody_stack(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> Iterator[Stack]:
    with running_stack(
        anvil, database, tmp_path, anchor_organization=AGENCY, anchor_every_entries=1
    ) as running:
        yield running


@pytest.fixture
def world(custody_stack: Stack) -> dict[str, Any]:
    stack = custody_stack
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org(AGENCY, "customs")
    auditor = stack.org("Court of Audit", "auditor")
    stack.grant(auditor)
    batch = stack.enroll(holder["apiKey"])
    stack.sync()
    return {"holder": holder, "officer": officer, "auditor": auditor, **batch}


def capture(stack: Stack, key: str, document: Any, expect: int = 200) -> dict[str, Any]:
    r = stack.client.post("/v1/epcis/capture", json=document, headers=stack.headers(key))
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-24T10:00:00Z",
        "epcisBody": {"eventList": events},
    }


def t(hours: float) -> str:
    moment = datetime(2026, 11, 20, 8, tzinfo=UTC) + timedelta(hours=hours)
    return moment.isoformat().replace("+00:00", "Z")


def item_uri(serial: str) -> str:
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


def aggregation(event_id: str, action: str, when: float, children: list[str]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "AggregationEvent",
        "eventID": event_id,
        "eventTime": t(when),
        "eventTimeZoneOffset": "+00:00",
        "parentID": SSCC_URN,
        "childEPCs": children,
        "action": action,
        "bizStep": "packing" if action == "ADD" else "unpacking",
        "readPoint": {"id": "urn:un:locode:CNSHA"},
    }
    return event


def container_event(event_id: str, when: float, step: str, place: str) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventID": event_id,
        "eventTime": t(when),
        "eventTimeZoneOffset": "+00:00",
        "epcList": [SSCC_URN],
        "action": "OBSERVE",
        "bizStep": step,
        "readPoint": {"id": place},
    }


def timeline(stack: Stack, key: str, serial: str, **params: Any) -> dict[str, Any]:
    r = stack.client.get(
        f"/v1/items/{GTIN}/{serial}/custody", params=params, headers=stack.headers(key)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def anchor(stack: Stack) -> None:
    stack.gateway.scans.flush()
    stack.gateway.custody.anchorer.run_once(force=True)
    stack.sync()


# --------------------------------------------------------------------------------- capture


def test_every_gs1_example_is_captured_once(custody_stack: Stack, world: Any) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    total = 0
    for name in EXAMPLES:
        doc = load(name)
        answer = capture(stack, key, doc)
        count = len(doc["epcisBody"]["eventList"])
        assert len(answer["events"]) == count, name
        assert answer["stored"] + answer["duplicates"] == count
        assert all(e["status"] in ("stored", "duplicate") for e in answer["events"])
        total += answer["stored"]
        again = capture(stack, key, doc)
        assert again["stored"] == 0 and again["duplicates"] == count, name
        assert [e["logIndex"] for e in again["events"]] == [e["logIndex"] for e in answer["events"]]
    with Session(stack.gateway.engine) as session:
        logged = session.exec(select(LogEntry).where(LogEntry.kind == "epcis")).all()
    assert len(logged) == total > 0
    assert sorted(e.idx for e in logged) == list(range(total))  # gapless, nothing twice


def test_error_declaration_is_kept_next_to_the_event_it_retracts(
    custody_stack: Stack, world: Any
) -> None:
    answer = capture(
        custody_stack, world["officer"]["apiKey"], load("ErrorDeclarationAndCorrectiveEvent.jsonld")
    )
    ids = [(e["eventId"], e["errorDeclaration"]) for e in answer["events"]]
    assert len(set(ids)) == len(ids)
    assert any(declaration for _, declaration in ids)


def test_bad_documents_are_refused_with_the_schema_problems(
    custody_stack: Stack, world: Any
) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    bad = load("Example_9.6.1-ObjectEvent.jsonld")
    bad["epcisBody"]["eventList"][0]["eventTime"] = "2026-13-01T00:00:00Z"
    body = capture(stack, key, bad, expect=422)
    assert body["error"]["code"] == "invalid_input"
    assert any("eventTime" in p for p in body["error"]["problems"])
    r = stack.client.post(
        "/v1/epcis/capture",
        content=b"{not json",
        headers={**stack.headers(key), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "not JSON" in r.json()["error"]["message"]
    assert capture(stack, key, [1, 2], expect=422)["error"]["code"] == "invalid_input"
    wrong_urn = document([container_event("urn:uuid:1", 1, "shipping", "urn:un:locode:CNSHA")])
    wrong_urn["epcisBody"]["eventList"][0]["epcList"] = ["urn:epc:id:sgtin:0614141.10734.1"]
    assert "identifier" in capture(stack, key, wrong_urn, expect=422)["error"]["message"]
    # An auditor reads, it does not capture.
    r = stack.client.post(
        "/v1/epcis/capture",
        json=load("Example_9.6.1-ObjectEvent.jsonld"),
        headers=stack.headers(world["auditor"]["apiKey"]),
    )
    assert r.status_code == 403
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(LogEntry)).all() == []


def test_unknown_identifiers_are_kept_and_reported(custody_stack: Stack, world: Any) -> None:
    answer = capture(
        custody_stack, world["officer"]["apiKey"], load("Example_9.6.1-ObjectEvent.jsonld")
    )
    assert answer["stored"] >= 1
    assert "10614141073464" in answer["unknownGtins"]


# --------------------------------------------------------------------------------- timeline


def test_timeline_has_every_step_with_proofs_to_anchored_checkpoints(
    custody_stack: Stack, world: Any
) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    serial, other = "SN0001", "SN0002"
    when = datetime(2026, 11, 20, 20, tzinfo=UTC)
    stack.verify(key, gtin=GTIN, serial=serial, location={"unlocode": "CNSHA"},
                 scanned_at=(when - timedelta(hours=13)).isoformat())  # fmt: skip
    anchor(stack)  # first checkpoint covers the first scan only
    capture(
        stack,
        key,
        document(
            [
                aggregation("urn:uuid:pack", "ADD", 1, [item_uri(serial), item_uri(other)]),
                container_event("urn:uuid:ship", 2, "shipping", "urn:un:locode:CNSHA"),
                container_event("urn:uuid:arrive", 10, "arriving", "urn:un:locode:NLRTM"),
                aggregation("urn:uuid:unpack", "DELETE", 11, []),
                container_event("urn:uuid:later", 12, "shipping", "urn:un:locode:NLRTM"),
            ]
        ),
    )
    stack.verify(key, gtin=GTIN, serial=serial, location={"unlocode": "NLRTM"},
                 scanned_at=when.isoformat())  # fmt: skip
    stack.verify(key, gtin=GTIN, serial=other, location={"unlocode": "NLRTM"})
    anchor(stack)
    answer = timeline(stack, world["auditor"]["apiKey"], serial)

    assert answer["enrollment"]["batchId"] == world["batchId"]
    assert answer["enrollment"]["batchRegistrationTx"] == world["txHash"]
    ids = {e["record"].get("event", {}).get("eventID") for e in answer["entries"]}
    assert {"urn:uuid:pack", "urn:uuid:ship", "urn:uuid:arrive", "urn:uuid:unpack"} <= ids
    assert "urn:uuid:later" not in ids  # after the item was unpacked
    scans = [e for e in answer["entries"] if e["kind"] == "scan"]
    assert len(scans) == 2 and all(s["record"]["serial"] == serial for s in scans)
    via = {e["record"]["event"]["eventID"]: e["via"] for e in answer["entries"] if e["via"]}
    assert set(via) == {"urn:uuid:ship", "urn:uuid:arrive", "urn:uuid:unpack"}

    roots = {c["size"]: bytes.fromhex(c["root"][2:]) for c in answer["checkpoints"]}
    assert len(roots) == 2 and answer["log"]["agency"] == world["officer"]["address"]
    for entry in answer["entries"]:
        assert entry["anchoring"] == "anchored"
        leaf = entries.entry_leaf(entry["kind"], entry["record"], entry["previous"])
        assert "0x" + leaf.hex() == entry["leafHash"]
        size = entry["checkpointSize"]
        assert verify_inclusion(
            leaf, entry["logIndex"], size, proof_from_hex(entry["inclusionProof"]), roots[size]
        )
    [step] = answer["consistency"]
    assert verify_consistency(
        step["from"], step["to"], roots[step["from"]], roots[step["to"]],
        proof_from_hex(step["proof"]),
    )  # fmt: skip
    # The item's chain of entries: each points at the previous one about the item.
    item = answer["item"]["key"]
    chain = [e for e in answer["entries"] if item in e["previous"]]
    ordered = sorted(chain, key=lambda e: e["logIndex"])
    assert ordered[0]["previous"][item] is None
    for before, after in itertools.pairwise(ordered):
        assert after["previous"][item] == before["logIndex"]
    # The registry holds exactly these roots for the agency.
    for size, root in roots.items():
        assert stack.registry.checkpoint_root(world["officer"]["address"], size) == root


def test_timeline_as_epcis_validates_and_scans_are_inspections(
    custody_stack: Stack, world: Any
) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    capture(stack, key, document([aggregation("urn:uuid:a", "ADD", 1, [item_uri("SN0003")])]))
    stack.verify(key, gtin=GTIN, serial="SN0003", location={"unlocode": "NLRTM"})
    stack.gateway.scans.flush()
    r = stack.client.get(
        f"/v1/items/{GTIN}/SN0003/custody",
        params={"format": "epcis"},
        headers=stack.headers(key),
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    validate(doc)
    events = doc["epcisBody"]["eventList"]
    assert [e["type"] for e in events] == ["AggregationEvent", "ObjectEvent"]
    assert events[1]["bizStep"] == "inspecting"
    assert events[1]["readPoint"]["id"] == "urn:un:locode:NLRTM"
    assert events[1]["epcList"] == [item_uri("SN0003")]


def test_pending_entries_and_bad_items(custody_stack: Stack, world: Any) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    stack.verify(key, gtin=GTIN, serial="SN0004")
    stack.gateway.scans.flush()
    answer = timeline(stack, key, "SN0004")
    [entry] = answer["entries"]
    assert entry["anchoring"] == "pending" and entry["inclusionProof"] == []
    assert answer["checkpoints"] == []
    r = stack.client.get(f"/v1/items/{GTIN[:-1]}9/SN1/custody", headers=stack.headers(key))
    assert r.status_code == 422
    unknown = timeline(stack, key, "NOPE")
    assert unknown["enrollment"] is None and unknown["entries"] == []


def test_every_scan_is_logged_in_its_own_transaction_batch(
    custody_stack: Stack, world: Any
) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    for n in range(30):
        stack.verify(key, gtin=GTIN, serial=f"SN{n % 5:04d}")
    stack.gateway.scans.flush()
    with Session(stack.gateway.engine) as session:
        scans = session.exec(select(ScanEvent)).all()
        logged = session.exec(select(LogEntry).where(LogEntry.kind == "scan")).all()
        links = session.exec(select(LogLink)).all()
    assert len(scans) == len(logged) == 30
    assert {e.ref for e in logged} == {s.scan_id for s in scans}
    per_item: dict[str, list[LogLink]] = {}
    for link in links:
        per_item.setdefault(link.key, []).append(link)
    assert len(per_item) == 5
    for chain in per_item.values():
        chain.sort(key=lambda link: link.idx)
        assert [c.prev for c in chain] == [None] + [c.idx for c in chain[:-1]]


# --------------------------------------------------------------------------------- log


def test_checkpoints_and_consistency_routes(custody_stack: Stack, world: Any) -> None:
    stack, key = custody_stack, world["auditor"]["apiKey"]
    officer = world["officer"]["apiKey"]
    capture(stack, officer, load("Example_9.6.1-ObjectEvent.jsonld"))
    anchor(stack)
    capture(stack, officer, load("Example_9.6.2-ObjectEvent.jsonld"))
    anchor(stack)
    r = stack.client.get("/v1/log/checkpoints", headers=stack.headers(key))
    assert r.status_code == 200, r.text
    body = r.json()
    sizes = [c["size"] for c in body["checkpoints"]]
    assert len(sizes) == 2 and sizes == sorted(sizes, reverse=True)
    assert all(c["status"] == "anchored" and c["txHash"] for c in body["checkpoints"])
    new, old = body["checkpoints"]
    r = stack.client.get(
        "/v1/log/consistency",
        params={"from": old["size"], "to": new["size"]},
        headers=stack.headers(key),
    )
    proof = r.json()
    assert proof["fromRoot"] == old["root"] and proof["toRoot"] == new["root"]
    assert verify_consistency(
        old["size"], new["size"], bytes.fromhex(old["root"][2:]),
        bytes.fromhex(new["root"][2:]), proof_from_hex(proof["proof"]),
    )  # fmt: skip
    bad = stack.client.get(
        "/v1/log/consistency", params={"from": 5, "to": 2}, headers=stack.headers(key)
    )
    assert bad.status_code == 422
    # Anchoring again without new entries does nothing.
    stack.gateway.custody.anchorer.run_once(force=True)
    with Session(stack.gateway.engine) as session:
        assert len(session.exec(select(Checkpoint)).all()) == 2


def test_custody_events_at_registered_places_feed_the_detector(
    custody_stack: Stack, world: Any
) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    place = {
        "unlocode": "DEXYZ",
        "name": "Inland depot",
        "country": "DE",
        "latitude": 50.1,
        "longitude": 8.6,
        "glns": ["4012345000009"],
    }
    r = stack.client.post("/v1/locations", json=place, headers=stack.headers(key))
    assert r.status_code == 201, r.text
    assert (
        stack.client.post("/v1/locations", json=place, headers=stack.headers(key)).status_code
        == 201
    )
    r = stack.client.post(
        "/v1/locations", json=place, headers=stack.headers(world["auditor"]["apiKey"])
    )
    assert r.status_code == 403
    listed = stack.client.get("/v1/locations", headers=stack.headers(key)).json()
    assert [p["unlocode"] for p in listed] == ["DEXYZ"]
    now = datetime.now(UTC)
    events = [
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:seen-{n}",
            "eventTime": (now - timedelta(minutes=30 - n)).isoformat().replace("+00:00", "Z"),
            "eventTimeZoneOffset": "+00:00",
            "epcList": [item_uri("SN0005")],
            "action": "OBSERVE",
            "bizStep": "receiving",
            "readPoint": {"id": read_point},
        }
        for n, read_point in enumerate(["urn:epc:id:sgln:4012345.00000.0", "urn:un:locode:AUSYD"])
    ]
    answer = capture(stack, key, document(events))
    assert [e["location"] for e in answer["events"]] == ["DEXYZ", "AUSYD"]
    # Frankfurt area, then Sydney 29 minutes later: impossible travel, a clone finding.
    assert any(f["rule"] == "clone" for f in answer["findings"]), answer["findings"]
    with Session(stack.gateway.engine) as session:
        keys = {i.key for i in session.exec(select(CustodyItem)).all()}
    assert keys == {item_uri("SN0005")}


def test_capture_keeps_the_raw_event_exactly(custody_stack: Stack, world: Any) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    doc = load("object_event_all_possible_fields.jsonld")
    before = copy.deepcopy(doc)
    answer = capture(stack, key, doc)
    assert doc == before
    index = answer["events"][0]["logIndex"]
    with Session(stack.gateway.engine) as session:
        from api.models import CustodyEvent

        row = session.exec(select(CustodyEvent).where(CustodyEvent.log_index == index)).one()
    assert json.dumps(row.raw, sort_keys=True) == json.dumps(
        before["epcisBody"]["eventList"][0], sort_keys=True
    )


def test_concurrent_appenders_on_one_database_take_distinct_gapless_indexes(
    database: tuple[str, str | None],
) -> None:
    """Two engines (as two gateway processes would have), two threads each, appending at once."""
    import threading

    from api.custody import store
    from api.db import make_engine
    from api.migrate import upgrade

    url, schema = database
    engines = [make_engine(url, schema) for _ in range(2)]
    upgrade(engines[0])
    store.ensure_state(engines[0])
    keys = [f"https://id.gs1.org/01/{GTIN}/21/K{n}" for n in range(5)]
    errors: list[BaseException] = []

    def work(engine: Any, worker: int) -> None:
        try:
            for batch in range(15):
                pending = [
                    store.Pending(
                        "scan",
                        f"w{worker}-{batch}-{n}",
                        {"scan_id": f"w{worker}-{batch}-{n}"},
                        [keys[(worker + n) % 5]],
                    )
                    for n in range(10)
                ]
                with engine.begin() as connection:
                    store.append(connection, pending)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(engines[w % 2], w)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with Session(engines[1]) as session:
        logged = session.exec(select(LogEntry)).all()
        links = session.exec(select(LogLink)).all()
    assert sorted(e.idx for e in logged) == list(range(4 * 15 * 10))
    for key in keys:
        chain = sorted((link for link in links if link.key == key), key=lambda link: link.idx)
        assert [c.prev for c in chain] == [None] + [c.idx for c in chain[:-1]]
    mirror = store.LogMirror(engines[0])
    assert mirror.catch_up() == 600
    for engine in engines:
        engine.dispose()


def test_a_refused_anchor_is_marked_failed_and_anchoring_moves_on(
    custody_stack: Stack, world: Any
) -> None:
    from eth_account import Account

    from api.crypto import unseal
    from api.models import Organization
    from chain.tx import TransactionSender

    stack, gateway = custody_stack, custody_stack.gateway
    agency = world["officer"]["address"]
    with Session(gateway.engine) as session:
        org = session.exec(select(Organization).where(Organization.name == AGENCY)).one()
    assert org.key_encrypted is not None
    account = Account.from_key(unseal("test-secret-key", org.key_encrypted))
    registry = stack.registry
    own = registry.with_sender(
        TransactionSender(registry.w3, account, registry.decode_revert, backoff=0.05)
    )
    own.anchor_checkpoint(3, b"\x01" * 32)  # the agency's key used outside the gateway
    capture(stack, world["officer"]["apiKey"], load("Example_9.6.1-ObjectEvent.jsonld"))
    size = gateway.custody.mirror.catch_up()
    assert 0 < size < 3
    gateway.custody.anchorer.run_once(force=True)
    gateway.custody.anchorer.settle(agency)
    with Session(gateway.engine) as session:
        [refused] = session.exec(select(Checkpoint)).all()
    assert refused.status == "failed" and "CheckpointNotIncreasing" in (refused.error or "")
    assert gateway.custody.anchorer.run_once(force=True) is None  # not retried at once
    for name in (
        "Example_9.6.2-ObjectEvent.jsonld",
        "Example-TransactionEvents-2020_07_03y.jsonld",
    ):
        capture(stack, world["officer"]["apiKey"], load(name))
    grown = gateway.custody.mirror.catch_up()
    assert grown > 3
    anchored = gateway.custody.anchorer.run_once(force=True)
    assert anchored is not None and anchored.size == grown
    stack.sync()
    body = stack.client.get(
        "/v1/log/checkpoints",
        params={"status": "anchored"},
        headers=stack.headers(world["auditor"]["apiKey"]),
    ).json()
    # The agency's own out-of-band checkpoint is listed, but it is not this log's.
    assert [(c["size"], c["matchesLog"]) for c in body["checkpoints"]] == [
        (grown, True),
        (3, False),
    ]
    serial_free = timeline(stack, world["auditor"]["apiKey"], "SN0009")
    assert [c["size"] for c in serial_free["checkpoints"]] == [grown]
    assert registry.checkpoint_root(agency, grown) == gateway.custody.mirror.log.root(grown)


def test_a_gap_in_the_stored_log_stops_the_tree_there(database: tuple[str, str | None]) -> None:
    from sqlalchemy import delete

    from api.custody import store
    from api.db import make_engine
    from api.migrate import upgrade

    url, schema = database
    engine = make_engine(url, schema)
    upgrade(engine)
    with engine.begin() as connection:
        store.append(
            connection,
            [store.Pending("scan", f"s{n}", {"scan_id": f"s{n}"}, ["k"]) for n in range(10)],
        )
    full = store.LogMirror(engine)
    assert full.catch_up() == 10
    with engine.begin() as connection:
        connection.execute(delete(LogEntry).where(LogEntry.idx == 6))  # type: ignore[arg-type]
    fresh = store.LogMirror(engine)
    assert fresh.catch_up() == 6
    assert fresh.log.root(6) == full.log.root(6)
    assert full.catch_up() == 10  # a running process keeps what it loaded
    engine.dispose()


def test_a_reorg_that_drops_an_anchor_makes_it_pending_until_anchored_again(
    database: tuple[str, str | None], tmp_path: Path
) -> None:
    from chain.node import rpc_request

    with (
        LocalNode("anvil") as node,  # history is rewritten: a node of its own
        running_stack(node, database, tmp_path, anchor_organization=AGENCY) as stack,
    ):
        stack.org(AGENCY, "customs")
        officer = stack.org("Officer two", "customs")["apiKey"]
        stack.enroll(stack.org("Acme", "rights_holder", "TMK")["apiKey"])
        stack.sync()
        stack.verify(officer, gtin=GTIN, serial="SN0001", location={"unlocode": "NLRTM"})
        snapshot = rpc_request(node.url, "evm_snapshot")
        anchor(stack)
        assert timeline(stack, officer, "SN0001")["entries"][0]["anchoring"] == "anchored"

        assert rpc_request(node.url, "evm_revert", [snapshot]) is True
        for _ in range(3):
            rpc_request(node.url, "evm_mine")
        stack.sync()
        [entry] = timeline(stack, officer, "SN0001")["entries"]
        assert entry["anchoring"] == "pending"  # only what the chain shows counts
        anchorer = stack.gateway.custody.anchorer
        assert anchorer.run_once(force=True) is None  # landed recently: wait for the index
        anchorer.resubmit_after = 0
        again = anchorer.run_once(force=True)
        assert again is not None and again.size == 1
        stack.sync()
        [entry] = timeline(stack, officer, "SN0001")["entries"]
        assert entry["anchoring"] == "anchored"


def test_locations_refuse_bad_places_and_shared_glns(custody_stack: Stack, world: Any) -> None:
    stack, key = custody_stack, world["officer"]["apiKey"]
    good = {"unlocode": "DEXYZ", "name": "Depot", "country": "DE", "latitude": 50.1,
            "longitude": 8.6, "glns": ["4012345000009"]}  # fmt: skip
    for change, words in [
        ({"glns": ["4012345000008"]}, "check digit"),
        ({"country": "FR"}, "does not start with its country"),
        ({"latitude": 91}, "latitude"),
        ({"unlocode": "de123"}, "unlocode"),
    ]:
        r = stack.client.post("/v1/locations", json={**good, **change}, headers=stack.headers(key))
        assert r.status_code == 422 and words in r.text, (change, r.text)
    assert (
        stack.client.post("/v1/locations", json=good, headers=stack.headers(key)).status_code == 201
    )
    other = {**good, "unlocode": "DEXYY", "name": "Other depot"}
    r = stack.client.post("/v1/locations", json=other, headers=stack.headers(key))
    assert r.status_code == 422 and "already names location DEXYZ" in r.text
    # A bundled seaport keeps its coordinates; the agency only adds a GLN alias for it.
    port = {
        **good,
        "unlocode": "NLRTM",
        "name": "Rotterdam",
        "country": "NL",
        "glns": ["0614141000012"],
    }
    r = stack.client.post("/v1/locations", json=port, headers=stack.headers(key))
    assert r.status_code == 201, r.text
    book = stack.gateway.custody.locations
    assert book.resolve("urn:epc:id:sgln:0614141.00001.0") == "NLRTM"
    assert book.registry.get("NLRTM").kinds != frozenset({"agency"})
    assert book.resolve("urn:un:locode:ZZZZZ") is None and book.resolve("urn:uuid:x") is None


def test_an_event_captured_under_its_old_derived_id_stays_a_duplicate(
    custody_stack: Stack, world: Any
) -> None:
    """Events without eventID got `urn:borderledger:epcis-event:sha256:` ids (pre-RFC 8785
    hashing) from earlier gateways; sending such an event again is still a duplicate."""
    stack, key = custody_stack, world["officer"]["apiKey"]
    event = container_event("ignored", 1, "shipping", "urn:un:locode:NLRTM")
    del event["eventID"]
    event["ex:temperature"] = 10.0  # hashed as 10.0 before, as 10 by RFC 8785
    first = capture(stack, key, document([event]))["events"][0]
    assert first["eventId"].startswith(DERIVED_ID_PREFIX)
    old_id = legacy_event_id(event)
    assert old_id is not None and old_id != first["eventId"]
    # the row as an earlier gateway stored it: the same event under its legacy id
    with Session(stack.gateway.engine) as session:
        row = session.exec(
            select(CustodyEventRow).where(CustodyEventRow.event_id == first["eventId"])
        ).one()
        row.event_id = old_id
        session.add(row)
        session.commit()
    again = capture(stack, key, document([event]))["events"][0]
    assert again["status"] == "duplicate" and again["eventId"] == old_id
    assert again["logIndex"] == first["logIndex"]
