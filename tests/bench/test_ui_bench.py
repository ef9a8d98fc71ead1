"""`bench ui` end to end on a few labels: the fake camera's scan → verdict times, sign-in →
scan page ready, the offline section over the same labels (bench/ui_offline.py), and the
auditor's timeline page over a short history (bench/ui_timeline.py)."""

from __future__ import annotations

from tests.bench.run import bench_json


def test_ui_bench_measures_camera_sign_in_and_offline_verdicts() -> None:
    # a subprocess, as a user runs it: its Playwright session is its own, whatever browser
    # tests ran before in this process
    result = bench_json("ui", "--labels", "3", "--timeline-entries", "12")
    assert result["labels"] == 3
    assert 0 < result["scan_to_verdict_ms"]["p50"] <= result["scan_to_verdict_ms"]["p95"]
    assert result["sign_in_to_scan_ready_ms"] > 0
    offline = result["offline"]
    # every label of the run (the camera's warm-up label too), judged from the bundle
    assert offline["offline_verdict_ms"]["n"] == 4
    assert offline["offline_verdicts"] == {"GENUINE": 4}
    timeline = result["timeline"]
    # every entry of the item verified in the browser, on each of the 10 counted loads
    assert timeline["entries"] == 12 and timeline["loads"] == 10
    assert 0 < timeline["first_paint_ms"]["p50"] <= timeline["first_paint_ms"]["p95"]
    # twelve proofs check within a frame or two of the paint: their order is the machine's
    assert timeline["proofs_checked_ms"]["p50"] > 0
    assert set(result["met"]) == {
        "scan_to_verdict_p95",
        "sign_in_to_scan_ready",
        "offline_verdict_p95",
        "timeline_first_paint_and_proofs_p95",
    }
