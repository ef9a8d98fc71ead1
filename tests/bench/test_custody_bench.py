"""`borderledger bench custody`: a tiny run, checking the JSON's shape and its consistency."""

from __future__ import annotations

import math

from tests.bench.run import bench_json


def test_tiny_custody_bench_prints_one_json_object_last() -> None:
    result = bench_json(
        "custody", "--entries", "300", "--item-events", "10", "--requests", "5", timeout=600
    )
    assert result["entries"] == 300 and result["anchored_on_chain"] is True
    assert result["gas_per_entry"] == round(result["anchor_gas"] / 300, 6)
    assert 0 < result["proof_bytes"] <= 32 * math.ceil(math.log2(300))
    for key in ("entries_per_second", "proof_verify_us", "timeline_p99_ms", "timeline_p50_ms"):
        assert result[key] > 0
    assert result["timeline_p99_ms"] >= result["timeline_p50_ms"]
