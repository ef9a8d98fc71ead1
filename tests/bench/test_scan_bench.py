"""`borderledger bench scan`: a tiny run, checking the shape of the JSON (no timing asserts)."""

from __future__ import annotations

from scanner.damage import DAMAGE_TYPES, LEVELS
from scanner.decode import PACE_RANGE
from tests.bench.run import bench_json


def test_tiny_scan_bench_prints_one_json_object_last() -> None:
    # photos cycle through the damage types, then the levels: one of each type at each level
    images = len(DAMAGE_TYPES) * len(LEVELS)
    result = bench_json("scan", "--images", str(images))
    assert result["images"] == images
    assert set(result["decode_rate"]) == set(DAMAGE_TYPES)
    assert all(0 <= rate <= 1 for rate in result["decode_rate"].values())
    for level in ("mild", "moderate", "severe"):
        assert 0 <= result[f"decode_rate_{level}"] <= 1
    assert result["images_per_second"] > 0
    assert result["misreads"] == 0
    # The photos missed, by index: as many as the failures counted, each of its type and
    # level, and as many as the overall rate leaves.
    failed = result["failed_images"]
    assert {
        damage: {level: len(indices) for level, indices in levels.items()}
        for damage, levels in failed.items()
    } == result["failures"]
    for damage, levels in failed.items():
        for level, indices in levels.items():
            assert indices == sorted(set(indices))
            for i in indices:
                assert DAMAGE_TYPES[i % len(DAMAGE_TYPES)] == damage
                assert LEVELS[(i // len(DAMAGE_TYPES)) % len(LEVELS)] == level
    missed = sum(len(indices) for levels in failed.values() for indices in levels.values())
    assert missed == images - round(result["decode_rate_overall"] * images)
    low, high = PACE_RANGE
    assert isinstance(result["machine_pace"], float) and low <= result["machine_pace"] <= high
    assert result["wrong_verdicts"] == []
    assert set(result["verdicts"]) <= {"GENUINE", "GENUINE_UNSIGNED"}
    assert {"end_to_end_s", "decode_cpu_s", "verify_s", "generate_s"} <= set(result["time"])
    assert result["workers"] >= 1 and "loadavg_after" in result
    # The real command over a folder of the same photos, against the same gateway.
    cli = result["cli"]
    assert result["cli_images_per_s"] == cli["images_per_s"] > 0
    assert cli["images"] == images and cli["judged"] > 0 and cli["exit_code"] in (0, 1)
    assert set(cli["verdicts"]) <= {"GENUINE", "GENUINE_UNSIGNED"}
    # The second, independent set of photos (bench/scenes.py).
    independent = result["independent"]
    assert independent["images"] == 8 and independent["misreads"] == 0
    assert set(independent["decode_rate_by_level"]) == {"moderate", "severe"}
