"""An OpenAPI document that tells the truth: schemathesis with every check (`--checks all`)
and its examples, coverage and fuzzing phases, over the live document of a running gateway
(`borderledger up`), once with each role's key (admin, rights holder, customs, auditor).

The rules no schema can express are in the committed schemathesis.toml, each with its
reason. This is the short profile (`make test`): few examples per operation, the four roles
in parallel. The longer run (`ST_MAX_EXAMPLES=20`, figures in docs/limits.md) is the same
test with more examples.

The gateway runs under the load-test limits (bench/limits.py): schemathesis sends hundreds
of requests a second with one key, and a 429 would hide whatever the request was about.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.limits import bench_limit_env
from ledger.config import PROJECT_ROOT
from tests.api.test_up import Up, _start

ROLES = ("admin", "rights_holder", "officer", "auditor")
MAX_EXAMPLES = os.environ.get("ST_MAX_EXAMPLES", "2")


def _schemathesis(url: str, key: str, report: Path) -> tuple[int, str]:
    args = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "--config-file",
        str(PROJECT_ROOT / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        MAX_EXAMPLES,
        "--generation-deterministic",
        "--request-timeout",
        "30",
        "-H",
        f"Authorization: Bearer {key}",
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    report.write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr


def test_every_role_every_check_no_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in bench_limit_env().items():  # `_start` passes the environment on
        monkeypatch.setenv(name, value)
    up: Up = _start(tmp_path, "--port", "0", "--rpc-port", "0", "--items", "20")
    try:
        dev = up.wait_for_dev_json()
        with ThreadPoolExecutor(len(ROLES)) as pool:
            runs = dict(
                zip(
                    ROLES,
                    pool.map(
                        lambda role: _schemathesis(
                            dev["gateway_url"], dev["api_keys"][role], tmp_path / f"{role}.txt"
                        ),
                        ROLES,
                    ),
                    strict=True,
                )
            )
    finally:
        up.process.terminate()
        up.process.wait(60)
    failed = {}
    for role, (code, output) in runs.items():
        summary = re.findall(r"^=+ (.*) in [0-9.]+s =+$", output, re.MULTILINE)
        if code != 0:
            failed[role] = output[-6000:]
        assert summary, output[-3000:]
        cases = re.findall(r"^\s*([0-9]+) generated.*$", output, re.MULTILINE)
        print(f"schemathesis {role}: {summary[-1]}; {cases[-1] if cases else '?'} test cases")
    assert not failed, "\n\n".join(f"--- {role}\n{out}" for role, out in failed.items())
