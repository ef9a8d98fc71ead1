"""An OpenAPI document that tells the truth: schemathesis with every check (`--checks all`)
and its examples, coverage and fuzzing phases, over the live document of a running gateway
(`borderledger up`), once with each role's key (admin, rights holder, customs, auditor).

The rules no schema can express are in the committed schemathesis.toml, each with its
reason. This is the short profile (`make test`): few examples per operation, the four roles
in parallel. The longer run (`ST_MAX_EXAMPLES=20`, figures in docs/limits.md) is the same
test with more examples.

The gateway runs under the load-test limits (bench/limits.py), writes and enrollment raised
too: schemathesis sends hundreds of requests a second with one key (and, to check that
credentials are required, without one from the same address), and a 429 would hide whatever
the request was about. Each run is given its key in both headers the document names
(`Authorization: Bearer` and `X-API-Key`): a header it is not given, it fills with generated
values, and a wrong `X-API-Key` is a 401 whatever `Authorization` says.

Each role runs twice. Generated ids are small integers, so a run that may revoke or rotate
API keys and disable users revokes its own key (and, for the registry admin, the others'):
every operation after that answers 401 and checks nothing. So the first pass runs every
other operation, the four roles in parallel, and must never see a 401; the second runs the
operations that end credentials, one role after another, the registry admin last.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.limits import BENCH_LIMITS
from ledger.config import PROJECT_ROOT
from tests.api.test_up import Up, _start

ROLES = ("rights_holder", "officer", "auditor", "admin")
MAX_EXAMPLES = os.environ.get("ST_MAX_EXAMPLES", "2")
#: The operations that take credentials away (schemathesis operation names).
ENDS_CREDENTIALS = (
    "DELETE /v1/api-keys/{key_id}",
    "POST /v1/api-keys/{key_id}/rotate",
    "POST /v1/users/{user_id}/disable",
)


def _schemathesis(url: str, key: str, report: Path, *select: str) -> tuple[int, str]:
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
        "-H",
        f"X-API-Key: {key}",
        *select,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    report.write_text(done.stdout + done.stderr)
    return done.returncode, done.stdout + done.stderr


def test_every_role_every_check_no_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = json.dumps({**BENCH_LIMITS, "enroll": "5000/second", "writes": "5000/second"})
    for name in ("BORDERLEDGER_RATE_LIMITS", "BORDERLEDGER_RATE_LIMITS_PER_ADDRESS"):
        monkeypatch.setenv(name, limits)  # `_start` passes the environment on
    up: Up = _start(tmp_path, "--port", "0", "--rpc-port", "0", "--items", "20")
    keeps = [arg for name in ENDS_CREDENTIALS for arg in ("--exclude-name", name)]
    ends = [arg for name in ENDS_CREDENTIALS for arg in ("--include-name", name)]
    try:
        dev = up.wait_for_dev_json()
        url, keys = dev["gateway_url"], dev["api_keys"]
        with ThreadPoolExecutor(len(ROLES)) as pool:
            first = dict(
                zip(
                    ROLES,
                    pool.map(
                        lambda role: _schemathesis(
                            url, keys[role], tmp_path / f"{role}.txt", *keeps
                        ),
                        ROLES,
                    ),
                    strict=True,
                )
            )
        second = {
            role: _schemathesis(url, keys[role], tmp_path / f"{role}-ends.txt", *ends)
            for role in ROLES
        }
    finally:
        up.process.terminate()
        up.process.wait(60)
    failed = {}
    for run, results in (("", first), (" (credentials)", second)):
        for role, (code, output) in results.items():
            summary = re.findall(r"^=+ (.*) in [0-9.]+s =+$", output, re.MULTILINE)
            assert summary, output[-3000:]
            if code != 0:
                failed[role + run] = _failures(output)
            cases = re.findall(r"^\s*([0-9]+) generated.*$", output, re.MULTILINE)
            print(f"schemathesis {role}{run}: {summary[-1]}; {cases[-1] if cases else '?'} cases")
    assert not failed, "\n\n".join(f"--- {role}\n{out}" for role, out in failed.items())
    for role, (_, output) in first.items():
        assert "401 Unauthorized (" not in output, f"{role}'s key stopped working:\n" + output


def _failures(output: str) -> str:
    """The report's FAILURES section (each failing case and its curl), else its tail."""
    found = re.search(r"^=+ FAILURES =+$(.*?)^=+ (WARNINGS|SUMMARY) =+$", output, re.M | re.S)
    return found.group(1) if found else output[-6000:]
