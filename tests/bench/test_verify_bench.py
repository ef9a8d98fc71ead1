"""The verify benchmark runs end to end and reports consistent figures (no timing asserts)."""

from __future__ import annotations

from bench.verify import Phase, percentile
from tests.bench.run import bench_json


def test_bench_verify_prints_one_json_object_with_the_figures() -> None:
    result = bench_json(
        "verify",
        "--items",
        "200",
        "--seconds",
        "1",
        "--warmup",
        "0.5",
        "--concurrency",
        "4",
        "--rate",
        "50",
        "--database",
        "sqlite",
    )
    assert result["benchmark"] == "verify"
    assert result["items"] == 200 and result["uvicorn_workers"] == 2
    assert result["machine"]["cpus"] >= 1 and len(result["machine"]["load_average_before"]) == 3
    [run] = result["runs"]
    assert run["database"] == "sqlite"
    assert run["verify_per_second"] > 0 and run["p50_ms"] > 0
    assert run["errors"] == 0 and run["naive_errors"] == 0
    # Every answer was checked: all GENUINE, and the open loop sent exactly rate x seconds.
    assert set(run["verdicts"]) == {"GENUINE"}
    assert run["open_loop"]["completed"] == 50 and run["open_loop"]["errors"] == 0
    assert run["p99_ms_at_500_per_second"] is None  # measured at --rate 50, not 500
    assert run["p99_ms_at_open_loop_rate"] >= run["open_loop"]["p50_ms"] > 0
    assert run["naive_verify_per_second"] > 0 and run["naive"]["verdicts"] == {
        "GENUINE": run["naive"]["completed"]
    }
    assert run["naive_http_verify_per_second"] > 0
    assert run["ratio_vs_naive"] == round(
        run["verify_per_second"] / run["naive_verify_per_second"], 1
    )
    # CPU cost per verification on both sides (the naive side: its processes + the node).
    assert run["server_cpu_ms_per_verify"] > 0
    naive = run["naive"]
    assert naive["client_cpu_ms_per_verify"] > 0 and naive["node_cpu_ms_per_verify"] > 0
    assert run["naive_cpu_ms_per_verify"] == round(
        naive["client_cpu_ms_per_verify"] + naive["node_cpu_ms_per_verify"], 3
    )
    assert run["cpu_ratio_vs_naive"] == round(
        run["naive_cpu_ms_per_verify"] / run["server_cpu_ms_per_verify"], 1
    )
    assert sum(run["connections_per_worker"]) == 4  # the keep-alive connections, all served
    assert set(result["targets_met"]["sqlite"]) == {
        "verify_per_second",
        "p99_ms_at_500_per_second",
        "ratio_vs_naive",
        "stored_exactly_once",
    }
    # every answered verification stored once (counted after the server stopped)
    stored = run["stored"]
    assert stored["answered"] == stored["requests_sent"] == stored["scan_rows"] > 0
    assert stored["distinct_scan_ids"] == stored["scan_rows"] and stored["exactly_once"]
    assert "unlocated" not in run  # no --location: nothing to compare with


def test_bench_verify_with_a_location_compares_with_the_same_run_without() -> None:
    """`--location`: every scan also goes to the detector; the same server then serves the
    same tags without a location, the ratio is reported, and the rows stored (scans of both
    phases, alerts) are checked against the answers."""
    result = bench_json(
        "verify",
        "--items",
        "100",
        "--seconds",
        "1",
        "--warmup",
        "0.5",
        "--concurrency",
        "4",
        "--rate",
        "50",
        "--database",
        "sqlite",
        "--naive-seconds",
        "0.5",
        "--no-naive-http",
        "--location",
        "NLRTM",
    )
    [run] = result["runs"]
    assert run["location"] == "NLRTM" and run["errors"] == 0
    assert set(run["verdicts"]) == {"GENUINE"}
    unlocated = run["unlocated"]
    assert unlocated["verify_per_second"] > 0 and unlocated["errors"] == 0
    assert run["ratio_vs_unlocated"] == round(
        run["verify_per_second"] / unlocated["verify_per_second"], 2
    )
    stored = run["stored"]
    assert stored["answered"] == stored["scan_rows"] == stored["distinct_scan_ids"] > 0
    assert stored["alert_rows"] == stored["distinct_alerts_answered"] and stored["exactly_once"]
    assert result["summary"]["sqlite"]["ratio_vs_unlocated"] == run["ratio_vs_unlocated"]
    assert result["targets_met"]["sqlite"]["stored_exactly_once"] is True


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_phase_counts_errors_and_verdicts() -> None:
    phase = Phase(seconds=1)
    phase.ok("GENUINE", 0.001)
    phase.fail("HTTP 500", 0.002)
    other = Phase()
    other.ok("GENUINE", 0.003)
    phase.merge(other)
    assert phase.errors == 1 and phase.verdicts == {"GENUINE": 2}
    assert sorted(phase.latencies) == [0.001, 0.002, 0.003]
    assert phase.error_samples == ["HTTP 500"]
