"""`borderledger bench detector`: quality and throughput of the diversion and clone detector.

1. Quality: the supply-chain simulator (detector.simulator) generates legitimate flows plus
   injected diversions and clones, with ground truth; every event goes through the real
   detector (SQLite-backed store) in delivery order (a few scans late). Per class (clone,
   diversion), over items: recall = detectable injected items that got an alert of that class /
   detectable injected items; precision = items alerted with that class whose truth is that
   class / items alerted with that class, not counting items injected with the *other* anomaly
   (reported as `cross_class`). false_alert_rate = legitimate items with any item alert /
   legitimate items. Probing attacks are reported separately.
2. Throughput: a stream of scans drawn over an id space of `enrolled` items (10,000,000 by
   default: 10,000 batches of 1,000, all registered; items are not materialised, the detector
   keeps state only for items it sees), each item following a lane's route with reads missing
   at the read rate, time-ordered. Timed: ingest of every scan, one process, SQLite-backed
   store with a bounded cache (state written to the database file), plus the final flush.
   RSS is the process's peak resident set.

The last line of stdout is one JSON object.
"""

from __future__ import annotations

import os
import random
import resource
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from detector.engine import Detector, DetectorConfig
from detector.events import Batch, Scan
from detector.locations import LocationRegistry
from detector.policy import RoutePolicy
from detector.rules import AlertClass
from detector.simulator import DAY, MARKETS, ORIGINS, SimConfig, SimResult, simulate
from detector.store import SqliteStore


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
    for ev in sim.events:
        alerts = detector.ingest(ev) if isinstance(ev, Scan) else detector.report_status(ev)
        for a in alerts:
            reasons[a.reason.value] += 1
            if a.item is not None:
                classes[a.item].add(a.alert_class.value)
            if a.alert_class is AlertClass.PROBING:
                probes_found.add((a.gtin, a.location))
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


def throughput(
    events: int, enrolled: int, read_rate: float, cache_items: int, seed: int, workdir: Path
) -> dict[str, Any]:
    rng = random.Random(seed)
    reg = LocationRegistry.default()
    lanes = _lanes(reg, rng, 60)
    batch_size = 1000
    n_batches = max(1, enrolled // batch_size)
    start = 1_700_000_000.0
    batch_lane = [rng.randrange(len(lanes)) for _ in range(n_batches)]
    batch_t0 = [start + rng.uniform(0, 90 * DAY) for _ in range(n_batches)]
    stream: list[Scan] = []
    n = 0
    while len(stream) < events:
        b = rng.randrange(n_batches)
        serial = f"{b:06d}{rng.randrange(batch_size):04d}"
        policy, places, offsets = lanes[batch_lane[b]]
        for loc, off in zip(places, offsets, strict=True):
            if rng.random() < read_rate:
                n += 1
                cons = "IMP-" + next(iter(policy.markets)) if off > 4 * DAY else None
                t = batch_t0[b] + off + rng.uniform(0, 6 * 3600)
                stream.append(Scan(f"s{n}", "09506000134352", serial, loc, t, f"B{b}", cons))
    del stream[events:]
    stream.sort(key=lambda s: s.at)
    end = stream[-1].at
    store = SqliteStore(workdir / "detector.sqlite3", cache_items=cache_items)
    det = Detector(reg, store, DetectorConfig(), clock=lambda: end)
    gtin = "09506000134352"
    for b in range(n_batches):
        det.register_batch(Batch(f"B{b}", gtin, lanes[batch_lane[b]][0], {}, None))
    rss_before = _rss_mb()
    alerts = 0
    t0 = time.perf_counter()
    for s in stream:
        alerts += len(det.ingest(s))
    det.flush()
    elapsed = time.perf_counter() - t0
    result = {
        "events": len(stream),
        "enrolled_items": n_batches * batch_size,
        "distinct_items_seen": len({s.serial for s in stream}),
        "seconds": round(elapsed, 3),
        "events_per_second": round(len(stream) / elapsed, 1),
        "store": "sqlite",
        "cache_items": cache_items,
        "db_reads": store.reads,
        "db_writes": store.writes,
        "items_in_db": store.stored_items(),
        "db_mb": round((workdir / "detector.sqlite3").stat().st_size / 2**20, 1),
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(_rss_mb(), 1),
        "alerts": alerts,
    }
    store.close()
    return result


def run_detector_bench(
    *,
    batches: int = 400,
    read_rate: float = 0.8,
    seed: int = 7,
    events: int = 400_000,
    enrolled: int = 10_000_000,
    cache_items: int = 50_000,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bl-detector-") as tmp:
        work = Path(tmp)
        cfg = SimConfig(seed=seed, batches=batches, read_rate=read_rate)
        t0 = time.perf_counter()
        sim = simulate(cfg)
        store = SqliteStore(work / "quality.sqlite3", cache_items=cache_items)
        det = Detector(sim.registry, store, DetectorConfig(), clock=lambda: sim.end)
        quality = evaluate(sim, det)
        store.close()
        quality_s = time.perf_counter() - t0
        tp = throughput(events, enrolled, read_rate, cache_items, seed, work)
    return {
        "clone": quality["clone"],
        "diversion": quality["diversion"],
        "false_alert_rate": quality["false_alert_rate"],
        "events_per_second": tp["events_per_second"],
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
        "throughput": tp,
        "loadavg": list(os.getloadavg()),
    }
