"""The API enrollment benchmark runs end to end above SYNC_ENROLL_LIMIT (no timing asserts)."""

from __future__ import annotations

from tests.bench.run import bench_json


def test_bench_enroll_api_goes_through_a_background_job() -> None:
    items = 20_001  # one above the default SYNC_ENROLL_LIMIT: 202 + job
    result = bench_json(
        "enroll-api",
        "--items",
        str(items),
        "--samples",
        "3",
        "--poll",
        "0.2",
        "--labels",
        "60",
        timeout=600,
    )
    assert result["benchmark"] == "enroll-api" and result["items"] == items
    [run] = result["runs"]
    assert run["database"] == "sqlite" and run["registration"] == "done"
    assert run["job_polls"] >= 1 and run["enroll_seconds"] > 0
    seconds = run["enroll_seconds"]  # rounded to 0.1 s; the rate is from the exact time
    assert items / (seconds + 0.05) - 1 <= run["items_per_second"] <= items / (seconds - 0.05) + 1
    assert run["upload_bytes"] == len(b"serial\n") + items * len(b"S000000000\n")
    tags = run["tags"]
    assert tags["complete"] and tags["lines"] == items
    # The first, the last and one in between, each verified as GENUINE.
    assert tags["sample_verdicts"] == {"GENUINE": 3}
    peaks = run["peak_rss_mb"]
    assert set(peaks) == {"start", "enroll", "tags"}
    [worker] = peaks["start"]
    assert peaks["tags"][worker] >= peaks["enroll"][worker] >= peaks["start"][worker] > 0
    # label files as jobs: both formats complete, a rate from each job's own run time
    labels = run["labels"]
    assert labels["labels"] == 60
    for fmt in ("pdf", "zip"):
        section = labels[fmt]
        assert section["complete"] and section["bytes"] > 60 * 100, (fmt, section)
        assert section["labels_per_second"] > 0 and section["job_seconds"] > 0
