"""The database store: state shared between detectors (processes) on one database, no lost
sighting under concurrent writers, batched ingest equal to one-by-one, late batch statuses."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection, Engine

from api.db import make_engine
from api.detection import STATE_TABLES
from detector.dbstore import DbStore
from detector.engine import Detector, DetectorConfig
from detector.events import Scan, StatusReport
from detector.rules import AlertReason
from detector.store import ItemState, MemoryStore, Statuses
from tests.detector.test_rules import GTIN, LEGIT, SEQUENCE, T0, D, H, _final, make, reasons, scan


def _twin(engine: Engine) -> DbStore:
    """A second process: its own engine (connection pool) on the same database."""
    url = engine.url.render_as_string(hide_password=False)
    schema = None
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.exec_driver_sql("SHOW search_path").scalar()
    return DbStore(make_engine(url, schema), STATE_TABLES)


def test_two_detectors_on_one_database_compare_their_sightings(db_store: DbStore) -> None:
    a, b = make(db_store), make(_twin(db_store.engine))
    assert a.ingest(scan("i", "NLRTM", 30 * D)) == []
    # the same tag in Shanghai two hours later, handled by the other process
    alerts = b.ingest(scan("x", "CNSHA", 30 * D + 2 * H))
    assert {(al.reason, al.evidence) for al in alerts} == {
        (AlertReason.CLONE_IMPOSSIBLE_TRAVEL, ("i", "x")),
        (AlertReason.SEQUENCE_BEFORE_ORIGIN, ("i", "x")),
        (AlertReason.SEQUENCE_ROUTE_ORDER, ("i", "x")),
    }
    # and a restart (a third detector) still knows both sightings
    c = make(_twin(db_store.engine))
    assert AlertReason.CLONE_IMPOSSIBLE_TRAVEL in reasons(
        c.ingest(scan("y", "USLAX", 30 * D + 3 * H))
    )
    assert c.ingest(scan("x", "CNSHA", 30 * D + 2 * H)) == []  # a re-delivery stays ignored


def test_volume_is_counted_across_detectors(db_store: DbStore) -> None:
    a, b = make(db_store, released={"NL": 2}), make(_twin(db_store.engine), released={"NL": 2})
    assert a.ingest(scan("v0", "NLRTM", 30 * D, serial="S0")) == []
    assert b.ingest(scan("v1", "NLRTM", 30 * D, serial="S1")) == []
    assert b.ingest(scan("w1", "NLAMS", 31 * D, serial="S1")) == []  # same item: counted once
    [over] = a.ingest(scan("v2", "NLAMS", 31 * D, serial="S2"))
    assert over.reason is AlertReason.VOLUME_EXCEEDED and over.evidence == ("v2",)
    assert db_store.volume("B1", "NL") == 3


def test_concurrent_writers_lose_no_sighting(db_store: DbStore) -> None:
    """Two writers (own engines, own threads) hammer one item and count distinct items of
    one batch: every sighting ends in the item's history, every item is counted once."""
    cfg = DetectorConfig(history=64)
    stores = [db_store, _twin(db_store.engine)]
    dets = [make(s) for s in stores]
    for det in dets:
        det.config = cfg
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            for n in range(20):
                dets[w].ingest(scan(f"w{w}-{n}", "NLRTM", 30 * D + n * 60 + w))
                dets[w].ingest(scan(f"u{w}-{n}", "NLRTM", 30 * D, serial=f"U{w}-{n}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = db_store.get_item("09506000134352/S1")
    assert state is not None
    assert sorted(s[2] for s in state.sightings) == sorted(
        f"w{w}-{n}" for w in range(2) for n in range(20)
    )
    assert db_store.volume("B1", "NL") == 41  # S1 + 40 distinct U items


def test_batched_ingest_gives_the_same_alerts_as_one_by_one(db_store: DbStore) -> None:
    ordered = sorted(SEQUENCE, key=lambda s: s.at)
    single = make()
    one_by_one = _final([a for s in ordered for a in single.ingest(s)])
    det = make(db_store)
    det.config = DetectorConfig(chunk=3)
    assert _final(det.ingest_many(ordered)) == one_by_one
    assert det.ingest_many(ordered) == []  # re-ingest of the same scans: nothing new


def _late_recall(det: Detector) -> None:
    det.ingest_many(
        [
            scan("a1", "NLRTM", 30 * D, serial="S1"),
            scan("a2", "NLAMS", 40 * D, serial="S1"),
            scan("b1", "NLRTM", 31 * D, serial="S2"),
            scan("c1", "NLRTM", 45 * D, serial="S3"),
        ]
    )


def _status_alerts(alerts: list[Any]) -> set[tuple[str | None, tuple[str, ...]]]:
    return {(a.serial, a.evidence) for a in alerts if a.reason is AlertReason.RECALLED_SEEN}


def test_late_batch_status_rejudges_earlier_sightings_once(db_store: DbStore) -> None:
    for store in (MemoryStore(), db_store):
        det = make(store)
        _late_recall(det)
        alerts = det.report_batch_status("B1", "recalled", 35 * D + 1_700_000_000.0, "R")
        assert _status_alerts(alerts) == {("S1", ("R", "a2")), ("S3", ("R", "c1"))}
        assert len(alerts) == 2
        # the same status again, the same scans again, a later time: nothing new
        assert det.report_batch_status("B1", "recalled", 35 * D + 1_700_000_000.0, "R") == []
        assert det.report_batch_status("B1", "recalled", 50 * D + 1_700_000_000.0, "R2") == []
        _late_recall(det)
        assert det.ingest(scan("a2", "NLAMS", 40 * D, serial="S1")) == []
        # an earlier time for the same status: only the sightings between the two times
        alerts = det.report_batch_status("B1", "recalled", 30.5 * D + 1_700_000_000.0, "R0")
        assert _status_alerts(alerts) == {("S2", ("R0", "b1"))}
        # a new scan after the recall is judged at once
        assert _status_alerts(det.ingest(scan("d1", "NLRTM", 46 * D, serial="S4"))) == {
            ("S4", ("R0", "d1"))
        }


def test_batch_status_seen_by_another_process_is_not_alerted_twice(db_store: DbStore) -> None:
    a, b = make(db_store), make(_twin(db_store.engine))
    _late_recall(a)
    first = a.report_batch_status("B1", "recalled", 35 * D + 1_700_000_000.0, "R")
    assert len(_status_alerts(first)) == 2
    # the other process learns the same status from the index: already known, nothing new
    assert b.report_batch_status("B1", "recalled", 35 * D + 1_700_000_000.0, "R") == []


class _RacingStore(DbStore):
    """Records a batch status from 'another process' right after this process read the
    statuses for a chunk and before it committed: the chunk's scans must still be alerted."""

    other: DbStore
    fired = False

    def _read_both(
        self, conn: Any, keys: list[str], batch_ids: list[str]
    ) -> tuple[dict[str, ItemState], dict[str, int], dict[str, Statuses]]:
        seen = super()._read_both(conn, keys, batch_ids)
        if not self.fired and batch_ids:
            self.fired = True
            other = make(self.other)
            other.report_batch_status("B1", "recalled", 35 * D + 1_700_000_000.0, "R")
        return seen


def test_status_recorded_during_a_chunk_is_applied_after_it(db_store: DbStore) -> None:
    racing = _RacingStore(db_store.engine, STATE_TABLES)
    racing.other = _twin(db_store.engine)
    det = make(racing)
    alerts = det.ingest_many(
        [scan("a1", "NLRTM", 30 * D, serial="S1"), scan("a2", "NLAMS", 40 * D, serial="S1")]
    )
    assert _status_alerts(alerts) == {("S1", ("R", "a2"))}
    assert det.report_batch_status("B1", "recalled", 35 * D + 1_700_000_000.0, "R") == []
    assert det.ingest(scan("a2", "NLAMS", 40 * D)) == []


def test_legit_flow_with_db_store(db_store: DbStore) -> None:
    assert make(db_store).ingest_many(LEGIT) == []


def test_probing_is_counted_across_detectors(db_store: DbStore) -> None:
    """Unknown serials of one GTIN read at one port through two processes count together."""
    a, b = make(db_store), make(_twin(db_store.engine))
    out = []
    for k in range(20):
        det = a if k % 2 else b
        out += det.ingest(Scan(f"p{k}", GTIN, f"G{k}", "NLRTM", T0 + k * 60.0))
    probe = [al for al in out if al.reason is AlertReason.PROBING_UNKNOWN_SERIALS]
    assert len(probe) == 1 and len(probe[0].evidence) == 20
    assert a.ingest(Scan("p19", GTIN, "G19", "NLRTM", T0 + 19 * 60.0)) == []  # re-delivery


def test_set_batch_status_says_whether_it_changed_anything(db_store: DbStore) -> None:
    assert db_store.set_batch_status("B1", "recalled", 100.0, "r1") is True
    assert db_store.set_batch_status("B1", "recalled", 100.0, "r1") is False
    assert db_store.set_batch_status("B1", "recalled", 150.0, "r2") is False
    assert db_store.set_batch_status("B1", "recalled", 50.0, "r3") is True
    assert db_store.set_batch_status("B1", "stolen", 70.0, "r4") is True
    assert db_store.batch_statuses(["B1", "B2"]) == {
        "B1": {"recalled": (50.0, "r3"), "stolen": (70.0, "r4")}
    }


def test_volume_over_several_markets_in_one_chunk_matches_memory(db_store: DbStore) -> None:
    scans = [
        scan(f"v{n}", port, 30 * D + n, serial=f"S{n % 7}")
        for n, port in enumerate(["NLRTM", "DEHAM", "NLAMS", "DEBRV"] * 6)
    ]
    policy_markets = {"NL": 2, "DE": 3}

    def volume(det: Detector) -> list[tuple[str, ...]]:
        alerts = det.ingest_many(scans)
        return sorted(a.evidence for a in alerts if a.reason is AlertReason.VOLUME_EXCEEDED)

    batched = make(db_store, released=policy_markets)
    expected = volume(make(released=policy_markets))
    assert expected and volume(batched) == expected
    assert db_store.volume("B1", "NL") + db_store.volume("B1", "DE") == 14


def _sink_log(engine: Engine) -> Table:
    """A table the test sink writes its alerts into (stands for the gateway's alert rows)."""
    table = Table(
        "test_sink_log",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("reason", String(40), nullable=False),
        Column("evidence", String(200), nullable=False),
    )
    table.create(engine, checkfirst=True)
    return table


def _logging_detector(store: DbStore, log: Table) -> Detector:
    det = make(store)

    def sink(tx: Connection, alerts: list[Any]) -> None:
        tx.execute(
            log.insert(),
            [{"reason": a.reason.value, "evidence": ",".join(a.evidence)} for a in alerts],
        )

    det.sink = sink
    return det


def test_alerts_written_by_the_sink_share_the_state_transaction(db_store: DbStore) -> None:
    """The sink runs inside the state transaction: if it fails, the sighting is not stored
    either (so a scan is never judged without its alerts being kept), and the retry stores
    both."""
    log = _sink_log(db_store.engine)
    det = _logging_detector(db_store, log)
    assert det.ingest(scan("i", "NLRTM", 30 * D)) == []
    failing = make(db_store)

    def broken(tx: Connection, alerts: list[Any]) -> None:
        raise RuntimeError("alert table unavailable")

    failing.sink = broken
    with pytest.raises(RuntimeError):
        failing.ingest(scan("x", "CNSHA", 30 * D + 2 * H))  # raises alerts: the sink fails
    state = db_store.get_item(f"{GTIN}/S1")
    assert state is not None and [s[2] for s in state.sightings] == ["i"]
    alerts = det.ingest(scan("x", "CNSHA", 30 * D + 2 * H))
    assert AlertReason.CLONE_IMPOSSIBLE_TRAVEL in reasons(alerts)
    with db_store.engine.connect() as conn:
        stored = sorted((r.reason, r.evidence) for r in conn.execute(select(log)))
    assert stored == sorted((a.reason.value, ",".join(a.evidence)) for a in alerts)


def test_concurrent_writers_store_each_alert_once(db_store: DbStore) -> None:
    """Two writers (own engines, own threads) scan one item at places far apart, so most
    scans raise alerts written by the sink in the state transaction; transactions redone on
    a version conflict must not leave their alert rows behind: the stored rows are exactly
    the alerts the calls returned, and no sighting is lost."""
    log = _sink_log(db_store.engine)
    stores = [db_store, _twin(db_store.engine)]
    dets = [_logging_detector(s, log) for s in stores]
    for det in dets:
        det.config = DetectorConfig(history=64)
    returned: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(w: int) -> None:
        try:
            for n in range(15):
                port = ("NLRTM", "CNSHA", "USLAX")[(n + w) % 3]
                got = dets[w].ingest(scan(f"w{w}-{n}", port, 30 * D + n * 600 + w))
                with lock:
                    returned.extend((a.reason.value, ",".join(a.evidence)) for a in got)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db_store.engine.connect() as conn:
        stored = sorted((r.reason, r.evidence) for r in conn.execute(select(log)))
    assert returned and stored == sorted(returned)
    assert len(set(stored)) == len(stored)  # every alert once
    state = db_store.get_item(f"{GTIN}/S1")
    assert state is not None
    assert sorted(s[2] for s in state.sightings) == sorted(
        f"w{w}-{n}" for w in range(2) for n in range(15)
    )


def test_only_alert_free_transactions_commit_relaxed(db_store: DbStore) -> None:
    """On PostgreSQL a transaction that raised no alert commits without waiting for the WAL
    flush; one that raised alerts waits. SQLite (WAL, synchronous=NORMAL) never relaxes."""
    det = make(db_store)
    pg = db_store.engine.dialect.name == "postgresql"
    assert det.ingest(scan("i", "NLRTM", 30 * D)) == []
    assert db_store.relaxed == (1 if pg else 0)
    assert det.ingest(scan("x", "CNSHA", 30 * D + 2 * H)) != []
    assert db_store.relaxed == (1 if pg else 0)
    strict = DbStore(db_store.engine, STATE_TABLES, relaxed_commit=False)
    assert make(strict).ingest(scan("j", "NLRTM", 31 * D, serial="S2")) == []
    assert strict.relaxed == 0


def test_item_status_reports_commit_durably(db_store: DbStore) -> None:
    """An item status is not derived from scans (it cannot be replayed from them), so its
    transaction is never relaxed, even when it raises nothing."""
    det = make(db_store)
    before = db_store.relaxed
    assert det.report_status(StatusReport(GTIN, "S9", "stolen", T0 + D)) == []
    assert db_store.relaxed == before
    state = db_store.get_item(f"{GTIN}/S9")
    assert state is not None and "stolen" in state.status


def _per_scan(alerts: list[list[Any]]) -> list[set[tuple[str, tuple[str, ...]]]]:
    return [_final(a) for a in alerts]


def test_a_group_of_scans_names_each_scans_alerts_as_one_by_one(db_store: DbStore) -> None:
    """`ingest_each` (the gateway's group commit) judges a group in one transaction and
    gives each scan the alerts `ingest` one by one gives it: pairwise alerts between scans
    of the same group, volume over the released quantity, an unknown serial (probe)."""
    group = [
        *sorted(SEQUENCE, key=lambda s: s.at),
        scan("v2", "NLRTM", 31 * D, serial="S2"),
        scan("v3", "NLRTM", 31 * D, serial="S3"),  # the third item in NL: 2 released
        Scan("p1", GTIN, "UNKNOWN1", "NLRTM", T0 + 31 * D),
        scan("x", "USLAX", 30 * D + 2 * H),  # the same scan twice in one group: ignored
    ]
    single = make(released={"NL": 2})
    one_by_one = [single.ingest(s) for s in group]
    assert {r for alerts in _per_scan(one_by_one) for r, _ in alerts} >= {
        "CLONE_IMPOSSIBLE_TRAVEL",
        "DIVERSION_MARKET",
        "VOLUME_EXCEEDED",
    }
    for store in (MemoryStore(), db_store):
        det = make(store, released={"NL": 2})
        grouped = det.ingest_each(group[:4]) + det.ingest_each(group[4:])
        assert _per_scan(grouped) == _per_scan(one_by_one)
        assert det.ingest_each(group) == [[] for _ in group]  # the same scans again: nothing
