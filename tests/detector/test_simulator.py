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


def test_volume_diversions_have_ground_truth() -> None:
    sim = simulate(SimConfig(seed=5, batches=60, volume_rate=0.2, held_rate=0.2))
    by_id = {b.batch_id: b for b in sim.batches}
    leaking = [v for v in sim.volume.values() if v.leaked]
    holding = [v for v in sim.volume.values() if v.held and not v.leaked]
    assert leaking and holding
    for batch_id, v in sim.volume.items():
        assert by_id[batch_id].released == {v.market: v.released}
        assert 0 <= v.leaked <= v.held
        # detectable exactly when more distinct items were read in the market than released
        assert v.detectable == (v.seen > v.released)
    # stock held back without a leak never shows more items than released
    assert not any(v.detectable for v in holding)
    assert any(v.detectable for v in leaking)
    # the held-back items that were not leaked are read at most at the factory
    scans = [e for e in sim.events if isinstance(e, Scan) and e.batch_id is not None]
    places: dict[str, set[str]] = {}
    for s in scans:
        places.setdefault(s.item, set()).add(s.location)
    for b in sim.batches:
        v = sim.volume[b.batch_id]
        n_items = v.released + v.held
        for i in range(v.released + v.leaked, n_items):
            key = f"{b.gtin}/{b.batch_id[1:]}{i:05d}"
            assert len(places.get(key, set())) <= 1


def test_returns_are_legitimate_or_diversions_by_policy() -> None:
    sim = simulate(SimConfig(seed=4, batches=40, return_rate=0.2))
    policy = {b.batch_id: b.policy for b in sim.batches}
    returned = {k: t for k, t in sim.truth.items() if t.scenario == "return"}
    assert {t.kind for t in returned.values()} == {"legit", "diversion"}
    scans = [e for e in sim.events if isinstance(e, Scan) and e.batch_id is not None]
    batch_of = {s.item: s.batch_id for s in scans}
    for key, t in returned.items():
        p = policy[batch_of[key]]
        assert p is not None and p.returns == (t.kind == "legit")
        assert not t.detectable or t.kind == "diversion"
        # read back in the origin country after a read in the market
        reads = sorted((s for s in scans if s.item == key), key=lambda s: s.at)
        countries = [sim.registry.get(s.location).country for s in reads]
        if t.detectable:
            first_market = next(i for i, c in enumerate(countries) if c in p.markets)
            assert p.origin_country in countries[first_market:]
