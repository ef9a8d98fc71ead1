"""The gateway stack (tests/stack.py) served over real HTTP (uvicorn in a thread), for
`borderledger scan` run as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from api.threaded import serve_in_thread
from tests.stack import Stack

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

    with serve_in_thread(stack.client.app, "uvicorn-scan") as url:
        yield Served(stack, url, officer["apiKey"], tags, batch, holder["apiKey"])
