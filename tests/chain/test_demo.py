"""`make run`'s main job: the demo runs on a chain it starts itself and tells the truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "BORDERLEDGER_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "borderledger", "demo", "--items", "25"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout[proc.stdout.rindex("{") :]
    result = json.loads(last)
    assert result == {
        **result,
        "count": 25,
        "genuine": True,
        "forgedDetected": True,
        "stolenDetected": True,
    }
    summary = json.loads((tmp_path / "home" / "demo" / "summary.json").read_text())
    assert summary["checks"]["forged"]["genuine"] is False
    assert summary["checks"]["stolen"]["status"] == "stolen"
    assert len(list((tmp_path / "home" / "demo" / "batch" / "qr").glob("*.png"))) == 25
