"""`borderledger bench detector`: a tiny run, checking the shape of the JSON (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_tiny_detector_bench_prints_one_json_object_last() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "bench", "detector", "--batches", "15",
         "--events", "2000", "--enrolled", "100000", "--cache-items", "500", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for cls in ("clone", "diversion"):
        assert 0 <= result[cls]["precision"] <= 1
        assert 0 <= result[cls]["recall"] <= 1
    assert 0 <= result["false_alert_rate"] <= 1
    assert result["events_per_second"] > 0
    assert result["read_rate"] == 0.8
    assert result["throughput"]["events"] == 2000
    assert result["throughput"]["enrolled_items"] == 100_000
