"""`borderledger bench detector`: a tiny run, checking the shape of the JSON (no timing asserts).
With DATABASE_URL set to PostgreSQL it measures there too (as CI does)."""

from __future__ import annotations

import os

from tests.bench.run import bench_json


def test_tiny_detector_bench_prints_one_json_object_last() -> None:
    result = bench_json(
        "detector", "--batches", "15", "--events", "2000", "--single-events", "50",
        "--enrolled", "100000", "--chunk", "300", "--prefill", "700",
    )  # fmt: skip
    for cls in ("clone", "diversion", "volume"):
        assert 0 <= result[cls]["precision"] <= 1
        assert 0 <= result[cls]["recall"] <= 1
    assert result["volume"]["unit"] == "batch"
    returns = result["returns"]
    assert returns["items"] == returns["lawful"] + returns["forbidden"] > 0
    assert 0 <= returns["lawful_alerted_as_clone"] <= returns["lawful_alerted"] <= returns["lawful"]
    assert returns["forbidden_detected"] <= returns["forbidden_detectable"]
    assert 0 <= result["false_alert_rate"] <= 1
    assert result["events_per_second"] > 0
    assert result["read_rate"] == 0.8
    assert result["store"] == "db:sqlite"
    tp = result["throughput"]
    assert tp["enrolled_items"] == 100_000
    sqlite = tp["stores"]["sqlite"]
    assert sqlite["batched"]["events"] == 2000 and sqlite["single"]["events"] == 50
    assert sqlite["batched"]["chunk"] == 300
    assert sqlite["items_in_db"] == tp["distinct_items_seen"] + 700
    assert sqlite["prefilled_items"] == 700
    assert sqlite["batched"]["rss_mb_after"] > 0
    pg = tp["stores"]["postgresql"]
    if (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        assert pg["store"] == "db:postgresql" and pg["items_in_db"] == sqlite["items_in_db"]
        assert set(result["events_per_second_by_store"]) == {"sqlite", "postgresql"}
    else:
        assert "skipped" in pg
