"""Detector state in the gateway database: several gateway processes (and restarts) see the
same sightings; batch statuses learnt late re-judge earlier-ingested sightings, once."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.db import make_engine
from api.gateway import Gateway
from api.models import Alert as AlertRow
from detector import Scan
from tests.stack import GTIN, Stack, other_gateway

POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"], "released": {"NL": 1}}


@pytest.fixture
def world(stack: Stack) -> dict[str, Any]:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    officer = stack.org("NL Customs", "customs")
    batch = stack.enroll(holder["apiKey"], route_policy=POLICY)
    stack.sync()
    return {"holder": holder, "officer": officer, **batch}


def _verify(client: TestClient, key: str, serial: str, port: str, when: datetime) -> Any:
    r = client.post(
        "/v1/verify",
        json={
            "gtin": GTIN,
            "serial": serial,
            "location": {"unlocode": port},
            "scanned_at": when.isoformat(),
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _alerts(stack: Stack, key: str, **params: Any) -> list[dict[str, Any]]:
    r = stack.client.get("/v1/alerts", params=params, headers=stack.headers(key))
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_sightings_handled_by_two_gateways_are_compared(
    stack: Stack, world: Any, database: tuple[str, str | None]
) -> None:
    officer = world["officer"]["apiKey"]
    t0 = datetime.now(UTC) - timedelta(hours=2)
    first = _verify(stack.client, officer, "SN0001", "NLRTM", t0)
    assert first["findings"] == []
    with other_gateway(stack, database) as second:
        answer = _verify(second, officer, "SN0001", "CNSHA", t0 + timedelta(minutes=10))
        codes = {f["reasonCode"]: f for f in answer["findings"]}
        travel = codes["CLONE_IMPOSSIBLE_TRAVEL"]
        assert travel["evidence"] == sorted([first["scanId"], answer["scanId"]])
        assert "CLONE_SUSPECT" in answer["reasons"]
        # volume: SN0001 was counted in NL by the first gateway; SN0002 by the second is over
        over = _verify(second, officer, "SN0002", "NLRTM", t0 + timedelta(hours=1))
        assert [f["reasonCode"] for f in over["findings"]] == ["VOLUME_EXCEEDED"]
    # a restart: a new gateway process still remembers both sightings of SN0001
    with other_gateway(stack, database) as restarted:
        again = _verify(restarted, officer, "SN0001", "USLAX", t0 + timedelta(minutes=20))
        assert "CLONE_IMPOSSIBLE_TRAVEL" in {f["reasonCode"] for f in again["findings"]}
    listed = _alerts(stack, officer, rule="CLONE_IMPOSSIBLE_TRAVEL")
    assert len(listed) == 1 + len(
        [f for f in again["findings"] if f["reasonCode"] == "CLONE_IMPOSSIBLE_TRAVEL"]
    )


def test_late_batch_recall_rejudges_earlier_sightings_once(
    stack: Stack, world: Any, database: tuple[str, str | None]
) -> None:
    officer = world["officer"]["apiKey"]
    r = stack.client.post(
        f"/v1/batches/{world['batchId']}/status",
        json={"status": "recalled"},
        headers=stack.headers(world["holder"]["apiKey"]),
    )
    assert r.status_code == 202 and r.json()["status"] == "done", r.text
    # the recall is on chain but not indexed yet: scans after it are judged without it
    later = datetime.now(UTC) + timedelta(seconds=30)
    seen = [
        _verify(stack.client, officer, serial, "NLRTM", later) for serial in ("SN0003", "SN0004")
    ]
    assert [f["reasonCode"] for s in seen for f in s["findings"]] == ["VOLUME_EXCEEDED"]
    assert _alerts(stack, officer, rule="RECALLED_SEEN") == []

    stack.sync()  # indexed: the detector learns the recall and re-judges those sightings
    recalled = _alerts(stack, officer, rule="RECALLED_SEEN")
    assert sorted(a["serial"] for a in recalled) == ["SN0003", "SN0004"]
    for a in recalled:
        assert a["batchId"] == world["batchId"] and a["organizationId"] == world["holder"]["id"]
        assert {s["scanId"] for s in seen} & set(a["evidence"])

    # nothing twice: another sync, another gateway process syncing, a scan of the item again
    stack.sync()
    with other_gateway(stack, database) as second:
        answer = _verify(second, officer, "SN0003", "NLRTM", later + timedelta(seconds=1))
        [finding] = answer["findings"]  # SN0003 was already counted in NL: no volume finding
        assert finding["reasonCode"] == "RECALLED_SEEN" and answer["scanId"] in finding["evidence"]
    assert len(_alerts(stack, officer, rule="RECALLED_SEEN")) == 3


def test_two_gateways_scanning_one_item_store_each_finding_once(
    stack: Stack, world: Any, database: tuple[str, str | None]
) -> None:
    """Two gateway processes judge scans of one item at the same time, far apart, so most
    raise findings; each finding is stored (with its id) in the detector's own transaction,
    so conflicts redone under concurrency leave exactly the findings returned, and no
    sighting is lost."""
    url, schema = database
    engine = make_engine(url, schema)
    second = Gateway.from_settings(stack.gateway.settings, engine)
    try:
        detections = [stack.gateway.detection, second.detection]
        snap = stack.gateway.catalog.snapshot()
        t0 = (datetime.now(UTC) - timedelta(hours=3)).timestamp()
        found: list[Any] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def run(w: int) -> None:
            try:
                for n in range(8):
                    port = ("NLRTM", "CNSHA", "USLAX")[(n + w) % 3]
                    scan = Scan(
                        f"g{w}-{n}", GTIN, "SN0001", port, t0 + n * 60 + w, world["batchId"]
                    )
                    got = detections[w].ingest(snap, scan)
                    with lock:
                        found.extend(got)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with Session(stack.gateway.engine) as session:
            rows = session.exec(select(AlertRow).where(AlertRow.serial == "SN0001")).all()
        assert found and sorted(r.alert_id for r in rows) == sorted(f.alert_id for f in found)
        by_id = {r.alert_id: r for r in rows}
        for f in found:
            assert by_id[f.alert_id].reason_code == f.alert.reason.value
            assert by_id[f.alert_id].evidence == list(f.alert.evidence)
        state = stack.gateway.detection.store.get_item(f"{GTIN}/SN0001")
        assert state is not None
        assert sorted(s[2] for s in state.sightings) == sorted(
            f"g{w}-{n}" for w in range(2) for n in range(8)
        )
    finally:
        second.stop()
        engine.dispose()


def test_concurrent_located_scans_are_judged_in_groups_each_with_its_own_findings(
    stack: Stack, world: Any, database: tuple[str, str | None]
) -> None:
    """Concurrent requests' scans are judged in groups, one transaction each (the gateway's
    group commit, `GatewayDetector.judge`), by two gateway processes at once: every pair of
    sightings too far apart is alerted exactly once (whichever process judged the second
    one), each finding goes to the scan that raised it and is stored once, and a scan the
    detector cannot judge (a time in the future) loses only its own findings."""
    url, schema = database
    engine = make_engine(url, schema)
    second = Gateway.from_settings(stack.gateway.settings, engine)
    try:
        detections = [stack.gateway.detection, second.detection]
        sizes: list[int] = []
        for detection in detections:
            judge_group = detection.detector.ingest_each

            def counted(scans: list[Scan], judge_group: Any = judge_group) -> Any:
                sizes.append(len(scans))
                return judge_group(scans)

            detection.detector.ingest_each = counted  # type: ignore[method-assign]
        snap = stack.gateway.catalog.snapshot()
        t0 = (datetime.now(UTC) - timedelta(hours=3)).timestamp()
        ports = ("NLRTM", "CNSHA", "USLAX")
        scans = [
            Scan(f"c{n}", GTIN, "SN0001", ports[n % 3], t0 + n * 60, world["batchId"])
            for n in range(12)
        ]
        future = Scan("late", GTIN, "SN0002", "NLRTM", time.time() + 40 * 86400, world["batchId"])

        async def judge_all() -> list[Any]:
            return await asyncio.gather(
                *(detections[n % 2].judge(snap, s) for n, s in enumerate(scans)),
                detections[0].judge(snap, future),
            )

        *found, late = asyncio.run(judge_all())
        assert late == []
        assert max(sizes) > 1  # judged in groups, not one by one
        for scan, findings in zip(scans, found, strict=True):
            assert all(scan.scan_id in f.alert.evidence for f in findings)
        travel = sorted(
            f.alert.evidence
            for findings in found
            for f in findings
            if f.alert.reason.value == "CLONE_IMPOSSIBLE_TRAVEL"
        )
        assert travel == sorted(
            tuple(sorted((a.scan_id, b.scan_id)))
            for i, a in enumerate(scans)
            for b in scans[i + 1 :]
            if a.location != b.location
        )
        with Session(stack.gateway.engine) as session:
            rows = session.exec(select(AlertRow)).all()
        assert sorted(r.alert_id for r in rows) == sorted(
            f.alert_id for findings in found for f in findings
        )
        state = stack.gateway.detection.store.get_item(f"{GTIN}/SN0001")
        assert state is not None
        assert sorted(s[2] for s in state.sightings) == sorted(s.scan_id for s in scans)
    finally:
        second.stop()
        engine.dispose()


def test_a_return_to_the_origin_is_not_a_clone_unless_the_policy_forbids_it(
    stack: Stack, world: Any
) -> None:
    """Exported, seen in the market, then back in the origin country weeks later (a repair, a
    recall): no clone finding. With `returns: false` in the policy it is a diversion."""
    officer = world["officer"]["apiKey"]
    holder = world["holder"]["apiKey"]
    t0 = datetime.now(UTC) - timedelta(days=60)
    trip = [("CNSHA", t0), ("NLRTM", t0 + timedelta(days=30))]
    back = ("CNCAN", t0 + timedelta(days=55))
    for port, when in trip:
        assert _verify(stack.client, officer, "SN0003", port, when)["findings"] == []
    returned = _verify(stack.client, officer, "SN0003", *back)
    assert returned["findings"] == [] and "CLONE_SUSPECT" not in returned["reasons"]

    stack.enroll(
        holder, lot="STRICT", serials=["ST1", "ST2"], route_policy={**POLICY, "returns": False}
    )
    stack.sync()
    for port, when in trip:
        assert _verify(stack.client, officer, "ST1", port, when)["findings"] == []
    diverted = _verify(stack.client, officer, "ST1", *back)
    assert [f["reasonCode"] for f in diverted["findings"]] == ["DIVERSION_RETURN"]
    assert "CLONE_SUSPECT" not in diverted["reasons"]
