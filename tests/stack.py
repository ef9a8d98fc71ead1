"""The test stack: a real node, a real database and the real gateway app, shared by every
test that needs a gateway (tests/api, tests/scanner, tests/ledger, tests/detector…) through
the fixtures of tests/conftest.py.

The database is SQLite (a file per test) by default; with DATABASE_URL set (CI sets it to
the local PostgreSQL) every test gets its own PostgreSQL schema, dropped afterwards. Tests
drive the indexer explicitly (`stack.sync()`), so they never race a background thread.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_account import Account
from fastapi.testclient import TestClient

from api.db import make_engine
from api.gateway import Gateway
from api.main import create_app
from api.orgs import create_dev_admin
from chain.contract import RegistryClient, connect
from chain.node import LocalNode, dev_private_key
from chain.tx import TransactionSender
from ledger.config import ROUTE_CLASSES, Settings
from ledger.models import ZERO_ADDRESS

GTIN = "09506000134352"

#: Limits of the test stack: on, as in production, so every test goes through the limiter,
#: but far above what one test sends (tests/api/test_limits.py sets its own).
TEST_LIMITS = dict.fromkeys(ROUTE_CLASSES, "100000/second")


@contextmanager
def scratch_database(directory: Path, name: str, prefix: str) -> Iterator[tuple[str, str | None]]:
    """(SQLAlchemy URL, schema) of an empty database: an SQLite file `name` in `directory`
    by default, a fresh PostgreSQL schema (`prefix` + random) with DATABASE_URL, dropped
    afterwards."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield f"sqlite:///{directory / name}", None
        return
    url = Settings(database_url=url).sqlalchemy_url
    schema = f"{prefix}{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def api_error(r: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    """The JSON error body of response `r`, checked: its status, its code, a message (holding
    each of `words`, case aside)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code, body
    message = body["error"]["message"].lower()
    assert message
    for word in words:
        assert word.lower() in message, (word, message)
    return body


@dataclass
class Stack:
    """A deployed registry, a gateway on it, and a client with an admin API key."""

    node: LocalNode
    registry: RegistryClient
    gateway: Gateway
    client: TestClient
    admin_key: str

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def sync(self) -> None:
        """Index everything mined so far and flush recorded scans."""
        self.gateway.sync_index()
        self.gateway.scans.flush()

    def org(
        self, name: str, role: str, recordation: str = "", gtins: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Create an organization. A rights holder gets `gtins` bound to it on chain; by
        default `GTIN`, if no other holder of this stack has it yet (the first holder of a
        test owns the shared GTIN, as most tests want)."""
        r = self.client.post(
            "/v1/organizations",
            json={"name": name, "role": role, "recordation": recordation},
            headers=self.headers(self.admin_key),
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        if role == "rights_holder":
            if gtins is None:
                unbound = self.registry.gtin_holder(GTIN) == ZERO_ADDRESS
                gtins = (GTIN,) if unbound else ()
            for gtin in gtins:
                self.bind(body, gtin)
        return body

    def bind(self, holder: dict[str, Any], gtin: str, reassign: bool = False) -> dict[str, Any]:
        """Bind `gtin` to the rights holder `holder` on chain, as the registry admin."""
        r = self.client.post(
            "/v1/gtin-bindings",
            json={"gtin": gtin, "organizationId": holder["id"], "reassign": reassign},
            headers=self.headers(self.admin_key),
        )
        assert r.status_code == 202 and r.json()["write"]["status"] == "done", r.text
        body: dict[str, Any] = r.json()
        return body

    def grant(self, auditor: dict[str, Any], holders: list[int] | None = None) -> None:
        """The registry admin lets `auditor` read every rights holder's records, or those of
        the `holders` named (organization ids)."""
        body: dict[str, Any] = {"all": True} if holders is None else {"holders": holders}
        r = self.client.put(
            f"/v1/organizations/{auditor['id']}/grants",
            json=body,
            headers=self.headers(self.admin_key),
        )
        assert r.status_code == 200, r.text

    def enroll(
        self, key: str, lot: str = "L1", serials: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {
            "gtin": GTIN,
            "lot": lot,
            "serials": serials or [f"SN{i:04d}" for i in range(20)],
            **extra,
        }
        gtin = str(body["gtin"]).zfill(14)
        if len(gtin) == 14 and self.registry.resolve_gtin_holder(gtin)[0] == ZERO_ADDRESS:
            # a GTIN nobody holds yet (on its own or by its company prefix): the admin binds
            # it to the enrolling holder first
            me = self.client.get("/v1/organizations/me", headers=self.headers(key)).json()
            if me.get("role") == "rights_holder":
                self.bind(me, gtin)
        r = self.client.post("/v1/batches", json=body, headers=self.headers(key))
        assert r.status_code in (200, 201), r.text
        data: dict[str, Any] = r.json()
        return data

    def tags(self, key: str, batch_id: str) -> list[dict[str, str]]:
        r = self.client.get(f"/v1/batches/{batch_id}/tags", headers=self.headers(key))
        assert r.status_code == 200, r.text
        lines = r.text.splitlines()
        header = lines[0].split(",")
        return [dict(zip(header, row, strict=True)) for row in csv.reader(lines[1:])]

    def verify(self, key: str, **body: Any) -> dict[str, Any]:
        r = self.client.post("/v1/verify", json=body, headers=self.headers(key))
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data


@contextmanager
def running_stack(
    node: LocalNode,
    database: tuple[str, str | None],
    home: Path,
    rpc_url: str | None = None,
    **overrides: Any,
) -> Iterator[Stack]:
    """Deploy a registry on `node` and run a gateway on it; the gateway reaches the chain at
    `rpc_url` (default: the node itself; tests put a breakable proxy there)."""
    url, schema = database
    w3 = connect(node.url)
    admin = Account.from_key(dev_private_key(0))
    sender = TransactionSender(w3, admin, lambda d: None, backoff=0.05)  # type: ignore[arg-type,return-value]
    registry = RegistryClient.deploy(sender)
    options: dict[str, Any] = {
        "rpc_url": rpc_url or node.url,
        "registry": registry.address,
        "home": home,
        "database_url": url,
        "secret_key": "test-secret-key",
        "index_start_block": int(w3.eth.block_number),
        "stale_after_seconds": 3600,
        "rate_limits": TEST_LIMITS,
        "rate_limits_per_address": TEST_LIMITS,
        # the whole suite signs in from one address; the throttle's own test sets it low
        "login_attempts_per_address": "100000/second",
        **overrides,
    }
    settings = Settings(**options)
    engine = make_engine(settings.sqlalchemy_url, schema)
    gateway = Gateway.from_settings(settings, engine)
    admin_key = create_dev_admin(engine, settings.secret_key)
    try:
        with TestClient(create_app(gateway, background=False)) as client:
            yield Stack(node, registry, gateway, client, admin_key)
    finally:
        gateway.stop()
        engine.dispose()


@contextmanager
def other_gateway(stack: Stack, database: tuple[str, str | None]) -> Iterator[TestClient]:
    """A second gateway process on the stack's database: its own engine, catalog, detector
    and caches, no background threads."""
    url, schema = database
    engine = make_engine(url, schema)
    gateway = Gateway.from_settings(stack.gateway.settings, engine)
    try:
        with TestClient(create_app(gateway, background=False)) as client:
            yield client
    finally:
        gateway.stop()
        engine.dispose()


def borderledger(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`borderledger ARGS` as a user runs it, with its own home and none of the gateway,
    key or registry settings of the environment the tests run in."""
    env = {**os.environ, "BORDERLEDGER_HOME": str(home), "COLUMNS": "200"}
    for name in ("BORDERLEDGER_GATEWAY_URL", "BORDERLEDGER_API_KEY", "BORDERLEDGER_REGISTRY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "borderledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
