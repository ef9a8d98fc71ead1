from __future__ import annotations

from detector.events import Scan, StatusReport
from detector.simulator import SimConfig, simulate


def test_deterministic_and_consistent() -> None:
    cfg = SimConfig(seed=3, batches=20)
    a, b = simulate(cfg), simulate(cfg)
    assert [type(e).__name__ + repr(e) for e in a.events] == [
        type(e).__name__ + repr(e) for e in b.events
    ]
    scans = [e for e in a.events if isinstance(e, Scan)]
    items = {s.item for s in scans if s.batch_id is not None}
    assert items <= set(a.truth)
    kinds = {t.kind for t in a.truth.values()}
    assert kinds == {"legit", "diversion", "clone"}
    assert all(t.scenario for t in a.truth.values() if t.kind != "legit")
    assert not any(t.detectable for t in a.truth.values() if t.kind == "legit")
    # every scan is at a known location and the batches' policies name known nodes
    assert all(s.location in a.registry for s in scans)
    for batch in a.batches:
        assert batch.policy is not None and all(n in a.registry for n in batch.policy.nodes)
    # a decommissioned item is never read genuinely afterwards unless it is a clone
    sold = {(e.gtin + "/" + e.serial): e.at for e in a.events if isinstance(e, StatusReport)}
    for s in scans:
        if s.item in sold and s.at >= sold[s.item]:
            assert a.truth[s.item].kind == "clone"


def test_read_rate_controls_scans() -> None:
    full = simulate(SimConfig(seed=1, batches=10, read_rate=1.0))
    half = simulate(SimConfig(seed=1, batches=10, read_rate=0.5))
    n_full = sum(isinstance(e, Scan) for e in full.events)
    n_half = sum(isinstance(e, Scan) for e in half.events)
    assert n_half < 0.7 * n_full
    # with every read present, every injected anomaly that leaves a trace is detectable
    assert all(t.detectable for t in full.truth.values() if t.kind == "diversion")
