"""The enroll benchmark runs end to end and reports consistent figures (no timing asserts)."""

from __future__ import annotations

from tests.bench.run import bench_json


def test_bench_enroll_prints_one_json_object_with_the_figures() -> None:
    result = bench_json(
        "enroll", "--items", "3000", "--gas-sizes", "1,10", "--baseline-sizes", "1,5"
    )
    gas = result["gas_per_item"]
    assert set(gas) == {"1", "10", "3000"}
    # One registration per batch whatever its size: cost per item falls with the size.
    assert gas["1"] > gas["10"] > gas["3000"] > 0
    assert max(result["gas_per_batch"].values()) - min(result["gas_per_batch"].values()) < 1000
    # The admin binds the GTIN beforehand (its own transaction), so a holder's first lot of a
    # GTIN costs what a later lot of one item costs, give or take calldata bytes.
    assert abs(result["first_lot_of_new_gtin_gas"] - result["gas_per_batch"]["1"]) < 1000
    baseline = result["baseline_gas_per_item"]
    assert set(baseline) == {"1", "5"} and baseline["5"] > 40_000
    assert result["baseline_over_borderledger_gas_ratio"]["3000"] > 1000
    assert result["items_per_second"] > 0
    assert result["enroll_1m_seconds"] > 0
    assert result["tags_csv_bytes"] > 3000 * 100
    assert result["enroll_seconds_breakdown"]["sign_and_leaves"] > 0
