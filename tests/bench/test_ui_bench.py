"""`bench ui` end to end on a few labels: the fake camera's scan → verdict times, sign-in →
scan page ready, and the offline section over the same labels (bench/ui_offline.py)."""

from __future__ import annotations

from bench.ui import run_ui_bench


def test_ui_bench_measures_camera_sign_in_and_offline_verdicts() -> None:
    result = run_ui_bench(labels=3)
    assert result["labels"] == 3
    assert 0 < result["scan_to_verdict_ms"]["p50"] <= result["scan_to_verdict_ms"]["p95"]
    assert result["sign_in_to_scan_ready_ms"] > 0
    offline = result["offline"]
    # every label of the run (the camera's warm-up label too), judged from the bundle
    assert offline["offline_verdict_ms"]["n"] == 4
    assert offline["offline_verdicts"] == {"GENUINE": 4}
    assert set(result["met"]) == {
        "scan_to_verdict_p95",
        "sign_in_to_scan_ready",
        "offline_verdict_p95",
    }
