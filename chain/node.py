"""Local EVM nodes (Anvil, Hardhat) started on a free port and stopped cleanly.

Used by the CLI (`borderledger node`, `borderledger demo`) and by the test fixtures, which
run the same integration suite against both nodes.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from ledger.config import PROJECT_ROOT
from ledger.errors import BorderLedgerError

NodeKind = Literal["anvil", "hardhat"]

#: The well-known development mnemonic; Anvil and Hardhat fund its first accounts.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 31337
#: Past block states Anvil may keep on disk (see `LocalNode.cache_dir`).
MAX_PERSISTED_STATES = 64


class NodeError(BorderLedgerError):
    pass


@functools.cache
def dev_private_key(index: int) -> bytes:
    """Private key of development account `index` (funded with 10,000 ETH on local nodes)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return bytes(account.key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_request(
    url: str, method: str, params: list[object] | None = None, timeout: float = 5
) -> object:
    """One JSON-RPC call with the standard library (no web3), for probes and test cheats."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise NodeError(f"{method} failed: {reply['error']}")
    return reply.get("result")


@dataclass
class LocalNode:
    """A node process. Use as a context manager, or call `start()` and `stop()`."""

    kind: NodeKind = "anvil"
    port: int = 0
    block_time: float | None = None
    bin_dir: Path = PROJECT_ROOT / "node_modules" / ".bin"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    #: Anvil's on-disk cache of past block states: this node's own directory, removed when it
    #: stops. Left to itself Anvil writes every state it evicts from memory under
    #: ~/.foundry/anvil/tmp and keeps it after a hard kill: a day of test runs filled 74 GB.
    cache_dir: Path | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "anvil":
            cmd = [str(self.bin_dir / "anvil"), "--host", "127.0.0.1", "--port", str(self.port)]
            cmd += ["--chain-id", str(CHAIN_ID), "--silent", "--hardfork", "cancun"]
            if self.block_time:
                cmd += ["--block-time", str(self.block_time)]
            # Bounded history on disk: nothing here reads state older than a few blocks back
            # (reorg tests go a handful deep), and an unbounded cache grows by GBs an hour.
            cmd += ["--max-persisted-states", str(MAX_PERSISTED_STATES)]
            if self.cache_dir is not None:
                cmd += ["--cache-path", str(self.cache_dir)]
            return cmd
        if self.kind == "hardhat":
            cmd = [str(self.bin_dir / "hardhat"), "node", "--hostname", "127.0.0.1"]
            return [*cmd, "--port", str(self.port)]
        raise NodeError(f"unknown node kind {self.kind!r}: choose anvil or hardhat")

    def start(self, timeout: float = 60) -> LocalNode:
        if self.port == 0:
            self.port = free_port()
        if self.kind == "anvil" and self.cache_dir is None:
            self.cache_dir = Path(tempfile.mkdtemp(prefix="borderledger-anvil-"))
        executable = Path(self.command()[0])
        if not executable.exists():
            raise NodeError(f"{executable} not found: run `make setup` to install the node tools")
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise NodeError(f"{self.kind} exited with {self.process.returncode}: {err[-2000:]}")
            try:
                rpc_request(self.url, "eth_chainId", timeout=1)
                return self
            except (OSError, urllib.error.URLError, NodeError):
                time.sleep(0.1)
        self.stop()
        raise NodeError(f"{self.kind} did not answer on {self.url} within {timeout:.0f} s")

    def stop(self, timeout: float = 10) -> None:
        """SIGINT first (both nodes shut down cleanly on it), SIGKILL if they hang; then the
        node's state cache goes."""
        process, self.process = self.process, None
        try:
            if process is None or process.poll() is not None:
                return
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stderr:
                process.stderr.close()
        finally:
            cache, self.cache_dir = self.cache_dir, None
            if cache is not None:
                shutil.rmtree(cache, ignore_errors=True)

    def __enter__(self) -> LocalNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
