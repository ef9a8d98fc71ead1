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
    }


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
