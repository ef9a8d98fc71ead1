"""Running a `borderledger bench` command the way a user does (a subprocess) and reading the
one JSON object it prints last."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def bench_json(*args: str, timeout: float = 300) -> dict[str, Any]:
    """`borderledger bench <args> --json`'s result; fails with the end of its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "borderledger", "bench", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
