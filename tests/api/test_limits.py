"""Limits per caller (OWASP API4): rate limits per API key and per client address by route
class, 429 with Retry-After and a JSON body, in memory or shared through Redis; page sizes
capped on every list route."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from api.openapi import MAX_PAGE
from api.ratelimit import route_class
from chain.node import LocalNode
from ledger.config import ROUTE_CLASSES, Settings
from tests.stack import GTIN, TEST_LIMITS, Stack, api_error, other_gateway, running_stack

REDIS_URL = os.environ.get("BORDERLEDGER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    try:
        return (
            subprocess.run(
                ["redis-cli", "-u", REDIS_URL, "ping"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            == "PONG"
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The machine's Redis (`.ci/run` starts it), or else one started here from the
    `redis-server` on PATH; never a skip, so the shared-counter test always runs."""
    if _redis_up():
        yield REDIS_URL
        return
    import shutil
    import socket
    import time

    server = shutil.which("redis-server")
    if server is None:
        pytest.fail(f"no Redis at {REDIS_URL} and no redis-server to start one")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _limited(**limits: str) -> dict[str, str]:
    return {**TEST_LIMITS, **limits}


@pytest.fixture
def limited(anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[Stack]:
    """A stack with small limits: 3 verifications a day per key, 5 per address; 4 reads a
    day per address. Day windows, not minutes: the sliding-window counter weighs the previous
    window down as the new one goes on, so a test that crossed a minute's edge saw its count
    fall under the limit and its refusal let through."""
    with running_stack(
        anvil,
        database,
        tmp_path,
        rate_limits=_limited(verify="3/day"),
        rate_limits_per_address=_limited(verify="5/day", reads="4/day"),
    ) as stack:
        yield stack


def _verify(stack: Stack, key: str) -> Any:
    body = {"gtin": GTIN, "serial": "SN0001"}
    return stack.client.post("/v1/verify", json=body, headers=stack.headers(key))


def _refused(r: Any, route_class: str, counted_on: str) -> None:
    body = api_error(r, 429, "rate_limited", route_class, counted_on, "retry after")
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 86_400, retry
    assert body["error"]["retryAfter"] == retry
    assert body["error"]["routeClass"] == route_class


def test_per_key_limit_answers_429_with_retry_after(limited: Stack) -> None:
    officer = limited.org("Customs", "customs")["apiKey"]
    other = limited.org("Customs 2", "customs")["apiKey"]
    for _ in range(3):
        assert _verify(limited, officer).status_code == 200
    _refused(_verify(limited, officer), "verify", "API key")
    # another key has its own budget; the address's (5) is what both share, and a request
    # refused for its key still counted there (3 + 1 + 1)
    assert _verify(limited, other).status_code == 200
    _refused(_verify(limited, other), "verify", "client address")
    # other route classes are counted apart
    r = limited.client.get("/v1/organizations/me", headers=limited.headers(officer))
    assert r.status_code == 200, r.text


def test_per_address_limit_counts_callers_without_a_key(limited: Stack) -> None:
    """Unauthenticated (or wrong-key) requests spend the address's budget: key guessing is
    limited too."""
    for _ in range(4):
        r = limited.client.get("/v1/organizations/me", headers={"Authorization": "Bearer nope"})
        api_error(r, 401, "unauthenticated")
    _refused(limited.client.get("/v1/organizations/me"), "reads", "client address")


def test_every_fastapi_route_and_the_lean_front_are_limited(limited: Stack) -> None:
    """The FastAPI route (a body the lean front leaves to FastAPI) counts with the front."""
    officer = limited.org("Customs", "customs")["apiKey"]
    assert _verify(limited, officer).status_code == 200
    bad = limited.client.post("/v1/verify", json={"gtin": "1"}, headers=limited.headers(officer))
    assert bad.status_code == 422
    assert _verify(limited, officer).status_code == 200
    _refused(_verify(limited, officer), "verify", "API key")


def test_memory_counters_are_per_process(limited: Stack, database: tuple[str, str | None]) -> None:
    """Without Redis each gateway process counts on its own (the documented default)."""
    officer = limited.org("Customs", "customs")["apiKey"]
    for _ in range(3):
        assert _verify(limited, officer).status_code == 200
    _refused(_verify(limited, officer), "verify", "API key")
    with other_gateway(limited, database) as second:
        r = second.post(
            "/v1/verify", json={"gtin": GTIN, "serial": "X"}, headers=limited.headers(officer)
        )
        assert r.status_code == 200, r.text


def test_redis_shares_the_limit_between_gateway_processes(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path, redis_url: str
) -> None:
    with running_stack(
        anvil,
        database,
        tmp_path,
        redis_url=redis_url,
        redis_key_prefix=f"test-{uuid.uuid4().hex}",  # anvil deploys at the same address
        rate_limits=_limited(verify="4/day"),
    ) as stack:
        officer = stack.org("Customs", "customs")["apiKey"]
        headers = stack.headers(officer)
        body = {"gtin": GTIN, "serial": "SN1"}
        with other_gateway(stack, database) as second:
            assert stack.client.post("/v1/verify", json=body, headers=headers).status_code == 200
            assert second.post("/v1/verify", json=body, headers=headers).status_code == 200
            assert stack.client.post("/v1/verify", json=body, headers=headers).status_code == 200
            assert second.post("/v1/verify", json=body, headers=headers).status_code == 200
            _refused(second.post("/v1/verify", json=body, headers=headers), "verify", "API key")
            _refused(
                stack.client.post("/v1/verify", json=body, headers=headers), "verify", "API key"
            )


def test_unreachable_redis_lets_requests_through(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    """A broken counter store must not stop verification at a border post."""
    with running_stack(
        anvil,
        database,
        tmp_path,
        redis_url="redis://127.0.0.1:9/0",
        rate_limits=_limited(verify="1/day"),
    ) as stack:
        officer = stack.org("Customs", "customs")["apiKey"]
        for _ in range(3):
            assert _verify(stack, officer).status_code == 200


def test_route_classes() -> None:
    assert route_class("POST", "/v1/verify") == "verify"
    assert route_class("GET", "/v1/gs1/verify/gtin/1/lot/2/ser/3") == "verify"
    assert route_class("POST", "/v1/batches") == "enroll"
    assert route_class("POST", "/v1/batches/0xab/status") == "enroll"
    assert route_class("POST", "/v1/epcis/capture") == "capture"
    assert route_class("POST", "/v1/scans/sync") == "sync"
    assert route_class("GET", "/v1/batches/0xab/tags") == "reads"
    assert route_class("PUT", "/v1/webhook") == "writes"
    # customs cases: reading (and the statistics) are reads, every action a write
    assert route_class("GET", "/v1/cases") == "reads"
    assert route_class("GET", "/v1/statistics/seizures") == "reads"
    assert route_class("GET", "/v1/case-links/abc") == "reads"
    assert route_class("POST", "/v1/cases") == "writes"
    assert route_class("POST", "/v1/cases/c/actions/a/approve") == "writes"
    assert route_class("POST", "/v1/case-links/abc/answer") == "writes"
    assert route_class("DELETE", "/v1/cases/c/parties/importer") == "writes"


def test_limit_settings_are_checked_at_startup() -> None:
    with pytest.raises(ValidationError, match="unknown route classes"):
        Settings(rate_limits={"verfiy": "1/second"})
    with pytest.raises(ValidationError, match="not like"):
        Settings(rate_limits={"verify": "lots"})
    partial = Settings(rate_limits={"verify": "7/second"})
    assert partial.rate_limits["verify"] == "7/second"
    assert set(partial.rate_limits) == set(ROUTE_CLASSES)  # the rest keep their defaults


def test_openapi_declares_429_with_retry_after(stack: Stack) -> None:
    document = stack.client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"].get("429")
            assert answer and "Retry-After" in answer["headers"], (method, path)


def test_every_list_route_caps_its_page(stack: Stack) -> None:
    """Every GET answering a JSON array takes `limit` with a maximum; over it is a 422."""
    document = stack.client.get("/openapi.json").json()
    lists = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        if not operation:
            continue
        schema = (
            operation["responses"]["200"]
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
        )
        if schema.get("type") != "array":
            continue
        lists.append(path)
        limit = next((p for p in operation.get("parameters", []) if p["name"] == "limit"), None)
        assert limit is not None, path
        assert limit["schema"]["maximum"] == MAX_PAGE, path
    assert {
        "/v1/alerts",
        "/v1/jobs",
        "/v1/devices",
        "/v1/locations",
        "/v1/webhook-deliveries",
        "/v1/cases",
        "/v1/case-notices",
        "/v1/case-profiles",
    } <= set(lists)
    officer = stack.org("Customs", "customs")["apiKey"]
    for path in ("/v1/alerts", "/v1/jobs", "/v1/devices", "/v1/locations", "/v1/cases"):
        r = stack.client.get(path, params={"limit": MAX_PAGE + 1}, headers=stack.headers(officer))
        api_error(r, 422, "invalid_input", "limit")


def test_405_says_which_methods_are_allowed(stack: Stack) -> None:
    r = stack.client.delete("/v1/verify", headers=stack.headers(stack.admin_key))
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["error"]["code"] == "http_error"
    # a path whose methods are routes of their own: all of them, not the first one's
    r = stack.client.options("/v1/organizations/2/webhook", headers=stack.headers(stack.admin_key))
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, PUT"
