"""`borderledger bench detector`: quality and throughput of the diversion and clone detector.

1. Quality: the supply-chain simulator (detector.simulator) generates legitimate flows plus
   injected diversions, clones and volume diversions, with ground truth; every event goes
   through the real detector on the database store (SQLite) in delivery order (a few scans
   late; runs of scans between two status reports go through `ingest_many`). Per item class
   (clone, diversion), over items: recall = detectable injected items that got an alert of that
   class / detectable injected items; precision = items alerted with that class whose truth is
   that class / items alerted with that class, not counting items injected with the *other*
   anomaly (reported as `cross_class`). Volume, over batches: recall = detectable volume
   diversions (more distinct items read in the market than released) with a VOLUME_EXCEEDED
   alert / detectable ones; precision = alerted batches that were volume-diverted / alerted
   batches. false_alert_rate = legitimate items with any item alert / legitimate items.
   Returns (items that went back to their origin country after reaching their market) are in
   these figures: a lawful return is a legitimate item (any alert on it is a false alert), a
   return the batch's policy forbids is a diversion; `returns` breaks them out (how many lawful
   returns were alerted, as clones in particular; forbidden returns detected as diversions).
   Probing attacks are reported separately.
2. Throughput: a stream of scans drawn over an id space of `enrolled` items (10,000,000 by
   default: 10,000 batches of 1,000, all registered; items are not materialised, the detector
   keeps state only for items it sees; every batch declares its release, so volume counters are
   updated too), each item following a lane's route with reads missing at the read rate,
   time-ordered. Timed on each database store (detector.dbstore.DbStore, the
   gateway's tables; SQLite file, and PostgreSQL when a PostgreSQL URL is given — DATABASE_URL
   or --database-url — in a schema of its own, dropped afterwards), one process, one core:
   `batched` = `ingest_many` (`chunk` scans per transaction: bulk feeds such as EPCIS capture),
   `single` = `ingest` per scan (one transaction each: the verify path), on the scans that
   follow. Before timing, `prefilled` (1,000,000) items of another GTIN are stored as seen
   earlier, so the runs work on a table of realistic size, not only on the items they touch.
   RSS is the process's resident set before and after each run (the stream itself is in
   memory before timing starts).

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import gc
import os
import random
import resource
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api.db import make_engine
from api.detection import STATE_TABLES
from detector.dbstore import DbStore
from detector.engine import Detector, DetectorConfig
from detector.events import BatchProfile, Scan, StatusReport
from detector.locations import LocationRegistry
from detector.policy import RoutePolicy
from detector.rules import AlertClass, AlertReason
from detector.simulator import DAY, MARKETS, ORIGINS, SimConfig, SimResult, simulate
from detector.store import ItemState


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evaluate(sim: SimResult, detector: Detector) -> dict[str, Any]:
    for b in sim.batches:
        detector.register_batch(b)
    classes: dict[str, set[str]] = defaultdict(set)
    reasons: Counter[str] = Counter()
    probes_found: set[tuple[str, str]] = set()
    volume_flagged: set[str] = set()
    pending: list[Scan] = []

    def take(alerts: list[Any]) -> None:
        for a in alerts:
            reasons[a.reason.value] += 1
            if a.item is not None:
                classes[a.item].add(a.alert_class.value)
            if a.alert_class is AlertClass.PROBING:
                probes_found.add((a.gtin, a.location))
            if a.reason is AlertReason.VOLUME_EXCEEDED and a.batch_id is not None:
                volume_flagged.add(a.batch_id)

    for ev in sim.events:
        if isinstance(ev, Scan):
            pending.append(ev)
            continue
        take(detector.ingest_many(pending))
        pending = []
        assert isinstance(ev, StatusReport)
        take(detector.report_status(ev))
    take(detector.ingest_many(pending))
    detector.flush()
    out: dict[str, Any] = {}
    for cls, other in (("clone", "diversion"), ("diversion", "clone")):
        detectable = [k for k, t in sim.truth.items() if t.kind == cls and t.detectable]
        injected = sum(1 for t in sim.truth.values() if t.kind == cls)
        found = sum(1 for k in detectable if cls in classes.get(k, ()))
        flagged = [k for k, c in classes.items() if cls in c]
        tp = sum(1 for k in flagged if sim.truth[k].kind == cls)
        cross = sum(1 for k in flagged if sim.truth[k].kind == other)
        fp = len(flagged) - tp - cross
        out[cls] = {
            "precision": round(tp / (tp + fp), 6) if tp + fp else 1.0,
            "recall": round(found / len(detectable), 6) if detectable else 1.0,
            "injected": injected,
            "detectable": len(detectable),
            "detected": found,
            "false_positives": fp,
            "cross_class": cross,
        }
    diverted = {b for b, v in sim.volume.items() if v.leaked}
    visible = {b for b in diverted if sim.volume[b].detectable}
    tp_batches = volume_flagged & diverted
    out["volume"] = {
        "precision": round(len(tp_batches) / len(volume_flagged), 6) if volume_flagged else 1.0,
        "recall": round(len(visible & volume_flagged) / len(visible), 6) if visible else 1.0,
        "unit": "batch",
        "injected": len(diverted),
        "detectable": len(visible),
        "detected": len(visible & volume_flagged),
        "false_positives": len(volume_flagged - diverted),
        "held_back_batches": sum(1 for v in sim.volume.values() if v.held and not v.leaked),
    }
    returned = [k for k, t in sim.truth.items() if t.scenario == "return"]
    lawful = [k for k in returned if sim.truth[k].kind == "legit"]
    forbidden = [k for k in returned if sim.truth[k].kind == "diversion"]
    shown = [k for k in forbidden if sim.truth[k].detectable]
    out["returns"] = {
        "items": len(returned),
        "lawful": len(lawful),
        "lawful_alerted": sum(1 for k in lawful if classes.get(k)),
        "lawful_alerted_as_clone": sum(1 for k in lawful if "clone" in classes.get(k, ())),
        "forbidden": len(forbidden),
        "forbidden_detectable": len(shown),
        "forbidden_detected": sum(1 for k in shown if "diversion" in classes.get(k, ())),
        "forbidden_alerted_as_clone": sum(1 for k in forbidden if "clone" in classes.get(k, ())),
    }
    legit = [k for k, t in sim.truth.items() if t.kind == "legit"]
    alerted = sum(1 for k in legit if classes.get(k))
    out["false_alert_rate"] = round(alerted / len(legit), 6) if legit else 0.0
    out["legit_items"] = len(legit)
    out["legit_alerted"] = alerted
    probes = set(sim.probes)
    out["probing"] = {
        "injected": len(probes),
        "detected": len(probes & probes_found),
        "false_positives": len(probes_found - probes),
    }
    out["alerts_by_reason"] = dict(sorted(reasons.items()))
    return out


def _create_tables(engine: Engine) -> None:
    tables = [STATE_TABLES.items, STATE_TABLES.volume, STATE_TABLES.batch_status]
    SQLModel.metadata.create_all(engine, tables=tables)


@contextmanager
def sqlite_state(workdir: Path, name: str) -> Iterator[Engine]:
    """A fresh SQLite database file with the detector tables (WAL, as the gateway has it)."""
    engine = make_engine(f"sqlite:///{workdir / name}")
    _create_tables(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_state(url: str) -> Iterator[Engine]:
    """The detector tables in a schema of their own on `url`, dropped afterwards."""
    schema = f"bench_detector_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, schema)
    try:
        _create_tables(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _lanes(
    reg: LocationRegistry, rng: random.Random, n: int
) -> list[tuple[RoutePolicy, list[str], list[float]]]:
    lanes = []
    for _ in range(n):
        origin, market = rng.choice(list(ORIGINS)), rng.choice(list(MARKETS))
        air = rng.random() < 0.25
        nodes = [rng.choice(ORIGINS[origin][int(air)]), rng.choice(MARKETS[market][int(air)])]
        policy = RoutePolicy.create(
            reg, markets=[market], nodes=nodes, consignees=[f"IMP-{market}"]
        )
        d = reg.distance_km(nodes[0], nodes[1])
        transit = (d / 800 + 24) * 3600 if air else (d * 1.3 / 28 + 72) * 3600
        offsets = [0.0, 2 * DAY, 2 * DAY + transit, 5 * DAY + transit]
        places = [nodes[0], nodes[0], nodes[1], nodes[1]]  # factory ~ export, dc ~ import
        lanes.append((policy, places, offsets))
    return lanes


def _stream(
    reg: LocationRegistry, events: int, enrolled: int, read_rate: float, seed: int
) -> tuple[list[Scan], list[BatchProfile]]:
    rng = random.Random(seed)
    lanes = _lanes(reg, rng, 60)
    batch_size = 1000
    n_batches = max(1, enrolled // batch_size)
    start = 1_700_000_000.0
    batch_lane = [rng.randrange(len(lanes)) for _ in range(n_batches)]
    batch_t0 = [start + rng.uniform(0, 90 * DAY) for _ in range(n_batches)]
    stream: list[Scan] = []
    n = 0
    gtin = "09506000134352"
    while len(stream) < events:
        b = rng.randrange(n_batches)
        serial = f"{b:06d}{rng.randrange(batch_size):04d}"
        policy, places, offsets = lanes[batch_lane[b]]
        for loc, off in zip(places, offsets, strict=True):
            if rng.random() < read_rate:
                n += 1
                cons = "IMP-" + next(iter(policy.markets)) if off > 4 * DAY else None
                t = batch_t0[b] + off + rng.uniform(0, 6 * 3600)
                stream.append(Scan(f"s{n}", gtin, serial, loc, t, f"B{b}", cons))
    del stream[events:]
    stream.sort(key=lambda s: s.at)
    batches = []
    for b in range(n_batches):
        policy = lanes[batch_lane[b]][0]
        # every batch declares its release, so the volume counters are exercised too
        released = {m: batch_size for m in policy.markets}
        batches.append(BatchProfile(f"B{b}", gtin, policy, released, None))
    return stream, batches


def _timed(det: Detector, store: DbStore, scans: list[Scan], batched: bool) -> dict[str, Any]:
    reads, writes, conflicts = store.reads, store.writes, store.conflicts
    gc.collect()
    gc.freeze()  # the input stream is not the detector's: keep the collector off its objects
    rss_before = _rss_mb()
    alerts = 0
    t0, c0 = time.perf_counter(), time.process_time()
    if batched:
        alerts = len(det.ingest_many(scans))
    else:
        for s in scans:
            alerts += len(det.ingest(s))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    gc.unfreeze()
    return {
        "events": len(scans),
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu, 3),
        "events_per_second": round(len(scans) / elapsed, 1),
        "events_per_cpu_second": round(len(scans) / cpu, 1) if cpu > 0 else None,
        "db_item_reads": store.reads - reads,
        "db_item_writes": store.writes - writes,
        "transactions_redone": store.conflicts - conflicts,
        "alerts": alerts,
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(_rss_mb(), 1),
    }


def prefill(store: DbStore, n: int, start: float) -> float:
    """Store `n` items seen before (another GTIN, 3 sightings each, 1,000 per batch), so the
    timed runs work on a table of realistic size rather than only the items they touch.
    Returns the seconds it took (not part of any timing)."""
    t0 = time.perf_counter()
    st = ItemState(None)
    st.sightings = [(start - 30 * DAY, "CNSHA", "x1"), (start - 20 * DAY, "NLRTM", "x2")]
    st.sightings.append((start - 10 * DAY, "NLAMS", "x3"))
    st.places = {"CNSHA": "x1", "NLRTM": "x2", "NLAMS": "x3"}
    page = 20_000
    for lo in range(0, n, page):
        pairs = []
        for i in range(lo, min(n, lo + page)):
            item = ItemState(f"P{i // 1000}")
            item.sightings, item.places = st.sightings, st.places
            pairs.append((f"09506000134369/{i:012d}", item))
        store.insert_states(pairs)
    return time.perf_counter() - t0


def throughput_on(
    engine: Engine,
    reg: LocationRegistry,
    batched_scans: list[Scan],
    single_scans: list[Scan],
    batches: list[BatchProfile],
    chunk: int,
    prefilled: int = 0,
) -> dict[str, Any]:
    """Batched then single-scan ingest on the database store behind `engine`."""
    store = DbStore(engine, STATE_TABLES)
    prefill_s = prefill(store, prefilled, min(s.at for s in batched_scans)) if prefilled else 0.0
    end = max(s.at for s in batched_scans + single_scans)
    det = Detector(reg, store, DetectorConfig(chunk=chunk), clock=lambda: end)
    for b in batches:
        det.register_batch(b)
    batched = _timed(det, store, batched_scans, batched=True)
    single = _timed(det, store, single_scans, batched=False)
    return {
        "store": store.name,
        "batched": {**batched, "chunk": chunk},
        "single": single,
        "items_in_db": store.stored_items(),
        "prefilled_items": prefilled,
        "prefill_seconds": round(prefill_s, 1),
    }


def postgres_url(explicit: str | None) -> str | None:
    """The PostgreSQL URL to measure on: --database-url, else DATABASE_URL if PostgreSQL."""
    from ledger.config import Settings

    url = explicit or os.environ.get("DATABASE_URL") or os.environ.get("BORDERLEDGER_DATABASE_URL")
    if not url or not url.startswith(("postgresql", "postgres:")):
        return None
    return Settings(database_url=url).sqlalchemy_url


def run_detector_bench(
    *,
    batches: int = 400,
    read_rate: float = 0.8,
    seed: int = 7,
    events: int = 400_000,
    single_events: int = 5_000,
    enrolled: int = 10_000_000,
    chunk: int = 2_000,
    database_url: str | None = None,
    prefilled: int = 1_000_000,
) -> dict[str, Any]:
    pg = postgres_url(database_url)
    with tempfile.TemporaryDirectory(prefix="bl-detector-") as tmp:
        work = Path(tmp)
        cfg = SimConfig(seed=seed, batches=batches, read_rate=read_rate)
        t0 = time.perf_counter()
        sim = simulate(cfg)
        with sqlite_state(work, "quality.db") as engine:
            store = DbStore(engine, STATE_TABLES)
            det = Detector(sim.registry, store, DetectorConfig(chunk=chunk), clock=lambda: sim.end)
            quality = evaluate(sim, det)
        quality_s = time.perf_counter() - t0
        reg = LocationRegistry.default()
        stream, registered = _stream(reg, events + single_events, enrolled, read_rate, seed)
        head, tail = stream[:events], stream[events:]
        del stream
        stores: dict[str, Any] = {}
        with sqlite_state(work, "throughput.db") as engine:
            stores["sqlite"] = throughput_on(engine, reg, head, tail, registered, chunk, prefilled)
            stores["sqlite"]["db_mb"] = round((work / "throughput.db").stat().st_size / 2**20, 1)
        if pg is not None:
            with postgres_state(pg) as engine:
                stores["postgresql"] = throughput_on(
                    engine, reg, head, tail, registered, chunk, prefilled
                )
        else:
            stores["postgresql"] = {"skipped": "no PostgreSQL URL (DATABASE_URL/--database-url)"}
    return {
        "clone": quality["clone"],
        "diversion": quality["diversion"],
        "volume": quality["volume"],
        "returns": quality["returns"],
        "false_alert_rate": quality["false_alert_rate"],
        "events_per_second": stores["sqlite"]["batched"]["events_per_second"],
        "events_per_second_by_store": {
            name: {
                "batched": r["batched"]["events_per_second"],
                "single": r["single"]["events_per_second"],
            }
            for name, r in stores.items()
            if "batched" in r
        },
        "store": stores["sqlite"]["store"],
        "read_rate": read_rate,
        "legit_items": quality["legit_items"],
        "legit_alerted": quality["legit_alerted"],
        "probing": quality["probing"],
        "alerts_by_reason": quality["alerts_by_reason"],
        "simulated": {
            "batches": batches,
            "items": len(sim.truth),
            "events": len(sim.events),
            "seconds": round(quality_s, 2),
        },
        "throughput": {
            "enrolled_items": len(registered) * 1000,
            "distinct_items_seen": len({s.serial for s in head + tail}),
            "stores": stores,
            "rss_mb_peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
        "loadavg": list(os.getloadavg()),
    }
