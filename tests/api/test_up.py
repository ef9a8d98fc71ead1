"""`borderledger up`: the whole stack as a real process, used over HTTP, stopped by a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain.node import NodeError, rpc_request
from ledger.trustbundle import verify_bundle


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    home: Path
    stdout: Path
    stderr: Path

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()

    def wait_for_dev_json(self, timeout: float = 180) -> dict[str, Any]:
        path = self.home / "dev.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.process.poll() is not None:
                out, err = self.output()
                pytest.fail(f"`up` exited with {self.process.returncode}:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {path} after {timeout:.0f} s:\n{self.output()[1]}")
            time.sleep(0.2)
        data: dict[str, Any] = json.loads(path.read_text())
        return data


def _start(tmp_path: Path, *args: str) -> Up:
    home = tmp_path / "home"
    env = {**os.environ, "BORDERLEDGER_HOME": str(home), "COLUMNS": "120"}
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "borderledger", "up", *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )
    return Up(process, home, stdout, stderr)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = _start(tmp_path, "--port", "0", "--rpc-port", "0", "--items", "20")
    yield running
    if running.process.poll() is None:  # the test failed before stopping it
        running.process.send_signal(signal.SIGINT)
        try:
            running.process.wait(30)
        except subprocess.TimeoutExpired:
            running.process.kill()


def _rpc_answers(url: str) -> bool:
    try:
        rpc_request(url, "eth_chainId", timeout=1)
        return True
    except (OSError, urllib.error.URLError, NodeError):
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_the_demo_stack_and_stops_cleanly(up: Up, signum: signal.Signals) -> None:
    dev = up.wait_for_dev_json()
    assert dev["chain_id"] == 31337
    assert set(dev["api_keys"]) >= {"admin", "rights_holder", "officer", "auditor"}
    assert dev["database_url"] == f"sqlite:///{up.home.resolve() / 'gateway.db'}"
    assert dev["demo_batch"]["count"] == 20
    assert _rpc_answers(dev["rpc_url"])
    keys = dev["api_keys"]

    with httpx.Client(base_url=dev["gateway_url"], timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        r = client.post(
            "/v1/verify",
            json={"tag": dev["sample_tag"]},
            headers={"Authorization": f"Bearer {keys['officer']}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["verdict"] == "GENUINE"
        assert r.json()["batchId"] == dev["demo_batch"]["batch_id"]
        assert r.json()["guide"]["name"] == "Demo product"  # the demo guide, published
        r = client.post(
            "/v1/verify",
            json={"tag": dev["sample_tag"]},
            headers={"Authorization": f"Bearer {keys['auditor']}"},
        )
        assert r.status_code == 403, r.text
        r = client.get(
            f"/v1/batches/{dev['demo_batch']['batch_id']}",
            headers={"Authorization": f"Bearer {keys['auditor']}"},
        )
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
        # the key trust bundles are signed with, as published, and a bundle it verifies
        assert client.get("/v1/trust-bundle/key").json() == dev["gateway_key"]
        r = client.get("/v1/trust-bundle", headers={"Authorization": f"Bearer {keys['officer']}"})
        assert r.status_code == 200, r.text
        bundle = verify_bundle(r.json(), dev["gateway_key"]["publicKey"]).payload
        assert bundle["batches"][0]["batchId"] == dev["demo_batch"]["batch_id"]
        # one demo person per role, who can sign in at login_url
        assert set(dev["users"]) == {"officer", "rights_holder", "auditor", "admin"}
        assert dev["login_url"] == dev["gateway_url"] + "/login"
        officer = dev["users"]["officer"]
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        r = client.post(
            "/login",
            data={**officer, "csrf_token": csrf.group(1)},
            cookies=page.cookies,
        )
        assert r.status_code == 303 and r.headers["location"] == "/", r.text

    out, _ = up.output()
    assert dev["gateway_url"] in out and "/v1/verify" in out and keys["officer"] in out
    assert dev["login_url"] in out and dev["users"]["officer"]["password"] in out
    assert str(up.home.resolve() / "dev.json") in out.replace("\n", "")

    started = time.monotonic()
    up.process.send_signal(signum)
    try:
        code = up.process.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`up` still running 20 s after {signum.name}")
    out, err = up.output()
    assert code == 0, err
    assert "Traceback" not in err + out
    assert time.monotonic() - started < 20
    assert not _rpc_answers(dev["rpc_url"]), "Anvil still answers"
    with pytest.raises(httpx.TransportError):
        httpx.get(dev["gateway_url"] + "/healthz", timeout=2)
    assert not (up.home / "dev.json").exists(), "dev.json describes a stack that is gone"


def test_up_on_a_busy_port_fails_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        running = _start(tmp_path, "--port", str(port), "--rpc-port", "0", "--items", "1")
        try:
            code = running.process.wait(60)
        except subprocess.TimeoutExpired:
            running.process.kill()
            pytest.fail("`up` did not give up on a busy port")
    _, err = running.output()
    assert code != 0
    assert f"port {port}" in err and "already in use" in err and "--port" in err, err
    assert "Traceback" not in err
    assert not (running.home / "dev.json").exists()
