"""The gateway fixtures of tests/api, plus the same gateway served over real HTTP (uvicorn in
a thread), for `borderledger scan` run as a subprocess."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from tests.api.conftest import Stack, anvil, database, stack

__all__ = ["anvil", "database", "stack"]

SERIALS = [f"SN{i:04d}" for i in range(6)]


@dataclass
class Served:
    """A gateway on http://127.0.0.1:<port> with Acme's batch L1 (SERIALS, expiry 281231)
    enrolled and indexed, an officer's key, and Acme's signed tags by serial."""

    stack: Stack
    url: str
    officer_key: str
    tags: dict[str, str]
    batch: dict[str, Any]
    holder_key: str = ""


@pytest.fixture
def served(stack: Stack) -> Iterator[Served]:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    officer = stack.org("NL Customs", "customs")
    batch = stack.enroll(holder["apiKey"], serials=SERIALS, expiry="281231")
    stack.sync()
    tags = {t["serial"]: t["uri"] for t in stack.tags(holder["apiKey"], str(batch["batchId"]))}

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(stack.client.app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn-scan", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Served(
            stack, f"http://127.0.0.1:{port}", officer["apiKey"], tags, batch, holder["apiKey"]
        )
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
