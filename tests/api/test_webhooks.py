"""Alert webhooks end to end: a real gateway, real alerts from real scans, a real HTTP receiver
that checks every signature with `ledger.webhooks.verify_signature`, as a rights holder would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from api.db import make_engine
from api.gateway import Gateway
from api.models import Alert, WebhookDelivery
from api.webhook_delivery import WebhookSender, WebhookThread
from chain.node import LocalNode
from ledger.webhooks import verify_signature
from tests.stack import GTIN, Stack, running_stack, scratch_database

GTIN_B = "08712345000004"  # another company prefix: a GTIN belongs to one rights holder
POLICY = {"markets": ["NL", "DE"], "nodes": ["CNSHA", "NLRTM"]}
FAST = {
    # The receiver listens on loopback: allowed explicitly (deliveries go to public addresses
    # only otherwise).
    "webhook_allowed_hosts": "127.0.0.1/32",
    "webhook_timeout": 2.0,
    "webhook_backoff_base": 0.05,
    "webhook_backoff_cap": 0.2,
    "webhook_poll_interval": 0.05,
}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A rights holder's webhook receiver on a fixed local port; it can be down (not started),
    answer scripted status codes, and be slow."""

    port: int = field(default_factory=lambda: _free_port())
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/borderledger"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests.append(Received(dict(self.headers.items()), body))
                    code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [r.headers["BorderLedger-Delivery"] for r in self.requests]

    def alert_ids(self, secret: str) -> list[str]:
        """Alert ids of the requests, each signature checked as a receiver must."""
        out = []
        for r in self.requests:
            verify_signature(secret, r.headers["BorderLedger-Signature"], r.body)
            import json

            payload = json.loads(r.body)
            assert payload["id"] == r.headers["BorderLedger-Delivery"]
            assert payload["type"] == r.headers["BorderLedger-Event"]
            if payload["type"] == "alert.created":
                out.append(payload["data"]["alertId"])
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def hooked(anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[Stack]:
    with running_stack(anvil, database, tmp_path, **FAST) as running:
        yield running


def run_sender(stack: Stack) -> WebhookThread:
    """Start the gateway's delivery thread (the test stack runs without background threads);
    the gateway stops it with itself."""
    thread = WebhookThread(stack.gateway.webhooks, stack.gateway.settings.webhook_poll_interval)
    stack.gateway.webhook_thread = thread
    thread.start()
    return thread


def holder_with_batch(
    stack: Stack, name: str, prefix: str = "SN", gtin: str = GTIN
) -> tuple[dict[str, Any], dict[str, Any]]:
    holder = stack.org(name, "rights_holder", f"TMK {name}")
    batch = stack.enroll(
        holder["apiKey"],
        lot=prefix,
        serials=[f"{prefix}{i:04d}" for i in range(20)],
        route_policy=POLICY,
        gtin=gtin,
    )
    stack.sync()
    return holder, batch


def register(stack: Stack, key: str, org_id: int, url: str, **extra: Any) -> dict[str, Any]:
    r = stack.client.put(
        f"/v1/organizations/{org_id}/webhook",
        json={"url": url, **extra},
        headers=stack.headers(key),
    )
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


def divert(stack: Stack, officer: str, serial: str, gtin: str = GTIN) -> str:
    """A scan in Los Angeles of goods released for NL/DE: one high-severity diversion alert."""
    answer = stack.verify(
        officer,
        gtin=gtin,
        serial=serial,
        location={"unlocode": "USLAX"},
        scanned_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    )
    [finding] = answer["findings"]
    alert_id: str = finding["alertId"]
    return alert_id


def deliveries(stack: Stack, key: str, **params: Any) -> list[dict[str, Any]]:
    r = stack.client.get("/v1/webhook-deliveries", params=params, headers=stack.headers(key))
    assert r.status_code == 200, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def test_receiver_down_then_up_gets_the_alert_once_with_a_valid_signature(
    hooked: Stack, receiver: Receiver
) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    created = register(stack, holder["apiKey"], holder["id"], receiver.url)
    secret = created["secret"]
    assert secret.startswith("whsec_")

    alert_id = divert(stack, officer, "SN0001")  # receiver is down
    # the delivery was written with the alert, before anything tried to send it
    with Session(stack.gateway.engine) as session:
        row = session.exec(select(WebhookDelivery)).one()
    assert row.alert_id == alert_id and row.status == "pending"

    assert stack.gateway.webhooks.process() == 1
    [failing] = deliveries(stack, holder["apiKey"])
    assert failing["status"] == "failing" and failing["attempts"] == 1
    assert failing["lastStatusCode"] is None and "Connect" in failing["lastError"]
    assert failing["nextAttemptAt"] is not None

    receiver.start()
    run_sender(stack)
    wait_until(lambda: deliveries(stack, holder["apiKey"])[0]["status"] == "delivered")
    time.sleep(0.3)  # further passes of the thread must not send it again
    assert receiver.alert_ids(secret) == [alert_id]
    [request] = receiver.requests
    assert request.headers["BorderLedger-Delivery"] == failing["deliveryId"]
    assert request.headers["BorderLedger-Event"] == "alert.created"
    assert request.headers["BorderLedger-Attempt"] == "2"
    assert request.headers["Content-Type"] == "application/json"
    [done] = deliveries(stack, holder["apiKey"], status="delivered")
    assert done["attempts"] == 2 and done["lastStatusCode"] == 200 and done["lastError"] is None
    assert done["deliveredAt"] is not None and done["nextAttemptAt"] is None
    assert done["payload"]["data"]["reasonCode"] == "DIVERSION_MARKET"
    endpoint = stack.client.get(
        f"/v1/organizations/{holder['id']}/webhook", headers=stack.headers(holder["apiKey"])
    ).json()
    assert endpoint["secret"] is None and endpoint["backlog"] == {}


def test_server_errors_are_retried_with_backoff_then_delivered(
    hooked: Stack, receiver: Receiver
) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    secret = register(stack, holder["apiKey"], holder["id"], receiver.url)["secret"]
    receiver.answers = [500, 503, 429]
    receiver.start()
    run_sender(stack)
    alert_id = divert(stack, officer, "SN0002")
    wait_until(lambda: deliveries(stack, holder["apiKey"])[0]["status"] == "delivered")
    assert receiver.alert_ids(secret) == [alert_id] * 4
    assert len(set(receiver.ids())) == 1  # one delivery, four attempts
    assert [r.headers["BorderLedger-Attempt"] for r in receiver.requests] == ["1", "2", "3", "4"]
    [done] = deliveries(stack, holder["apiKey"])
    assert done["attempts"] == 4 and done["lastStatusCode"] == 200


def test_a_failing_delivery_records_the_answer_and_waits_for_its_backoff(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path, receiver: Receiver
) -> None:
    slow = {**FAST, "webhook_backoff_base": 30.0, "webhook_backoff_cap": 60.0}
    with running_stack(anvil, database, tmp_path, **slow) as stack:
        holder, _ = holder_with_batch(stack, "Acme Pharma")
        officer = stack.org("NL Customs", "customs")["apiKey"]
        register(stack, holder["apiKey"], holder["id"], receiver.url)
        receiver.answers = [500]
        receiver.start()
        divert(stack, officer, "SN0003")
        assert stack.gateway.webhooks.process() == 1
        [failing] = deliveries(stack, holder["apiKey"])
        assert failing["status"] == "failing" and failing["lastStatusCode"] == 500
        assert failing["lastError"] == "HTTP 500: ok"
        wait = datetime.fromisoformat(failing["nextAttemptAt"]) - datetime.now(UTC)
        assert timedelta(seconds=13) < wait <= timedelta(seconds=30)
        assert stack.gateway.webhooks.process() == 0  # not due yet
        assert len(receiver.requests) == 1


def test_pending_deliveries_survive_a_gateway_restart(
    hooked: Stack, receiver: Receiver, database: tuple[str, str | None]
) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    secret = register(stack, holder["apiKey"], holder["id"], receiver.url)["secret"]
    alerts = [divert(stack, officer, f"SN00{n}") for n in (10, 11, 12)]
    stack.gateway.webhooks.process()  # receiver down: all failing
    stack.gateway.stop()

    receiver.start()
    url, schema = database
    engine = make_engine(url, schema)  # a new process: its own engine, sender and thread
    restarted = Gateway.from_settings(stack.gateway.settings, engine)
    try:
        restarted.start(background=False)
        thread = WebhookThread(restarted.webhooks, 0.05)
        restarted.webhook_thread = thread
        thread.start()
        wait_until(lambda: len(receiver.requests) == 3)
        time.sleep(0.3)
    finally:
        restarted.stop()
        engine.dispose()
    assert sorted(receiver.alert_ids(secret)) == sorted(alerts)
    assert len(set(receiver.ids())) == 3
    assert {d["status"] for d in deliveries(stack, holder["apiKey"])} == {"delivered"}


def test_a_sender_that_dies_mid_delivery_is_taken_over_under_the_same_delivery_id(
    hooked: Stack, receiver: Receiver, database: tuple[str, str | None]
) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    secret = register(stack, holder["apiKey"], holder["id"], receiver.url)["secret"]
    receiver.start()
    alert_id = divert(stack, officer, "SN0004")

    crashed = stack.gateway.webhooks
    [claimed] = crashed.claim(10)
    crashed.post(claimed)  # the receiver has it; the sender dies before recording
    other = WebhookSender(stack.gateway.engine, stack.gateway.settings)
    try:
        assert other.claim(10) == []  # leased: a live sender is never raced
        wait_until(lambda: other.process() == 1, timeout=other.lease.total_seconds() + 5)
    finally:
        other.close()
    assert receiver.alert_ids(secret) == [alert_id, alert_id]
    assert receiver.ids() == [claimed.delivery_id] * 2  # at-least-once, dedupable
    assert not crashed.record(claimed, _ok())  # the dead sender's lease is void
    [done] = deliveries(stack, holder["apiKey"])
    assert done["status"] == "delivered" and done["attempts"] == 1


def _ok() -> Any:
    from api.webhook_delivery import Outcome

    return Outcome(True, 200, None)


def test_two_gateways_on_one_database_deliver_each_alert_once(
    hooked: Stack, receiver: Receiver, database: tuple[str, str | None]
) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    secret = register(stack, holder["apiKey"], holder["id"], receiver.url)["secret"]
    alerts = [divert(stack, officer, f"SN{n:04d}") for n in range(20)]
    receiver.delay = 0.02
    receiver.start()
    url, schema = database
    engine = make_engine(url, schema)
    settings = stack.gateway.settings.model_copy(update={"webhook_batch_size": 3})
    senders = [WebhookSender(stack.gateway.engine, settings), WebhookSender(engine, settings)]
    threads = [WebhookThread(s, 0.01) for s in senders]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(deliveries(stack, holder["apiKey"], status="delivered")) == 20)
        time.sleep(0.3)
    finally:
        for t, s in zip(threads, senders, strict=True):
            t.stop()
            s.close()
        engine.dispose()
    assert sorted(receiver.alert_ids(secret)) == sorted(alerts)
    assert len(receiver.ids()) == len(set(receiver.ids())) == 20


def test_a_holder_never_receives_another_holders_alerts(hooked: Stack) -> None:
    stack = hooked
    a, b = Receiver(), Receiver()
    try:
        a.start()
        b.start()
        holder_a, _ = holder_with_batch(stack, "Acme Pharma", "SN")
        holder_b, _ = holder_with_batch(stack, "Brand B", "BB", GTIN_B)
        officer = stack.org("NL Customs", "customs")["apiKey"]
        secret_a = register(stack, holder_a["apiKey"], holder_a["id"], a.url)["secret"]
        secret_b = register(stack, holder_b["apiKey"], holder_b["id"], b.url)["secret"]
        alerts_a = [divert(stack, officer, s) for s in ("SN0001", "SN0002")]
        alerts_b = [divert(stack, officer, "BB0001", GTIN_B)]
        stack.gateway.webhooks.drain()
        assert sorted(a.alert_ids(secret_a)) == sorted(alerts_a)
        assert b.alert_ids(secret_b) == alerts_b
        # and each receiver's secret is its own
        with pytest.raises(ValueError, match="no v1 signature matches"):
            b.alert_ids(secret_a)
    finally:
        a.stop()
        b.stop()
    key_a, key_b = holder_a["apiKey"], holder_b["apiKey"]
    listed_a = deliveries(stack, key_a)
    assert sorted(d["alertId"] for d in listed_a) == sorted(alerts_a)
    assert deliveries(stack, key_a, organization=holder_b["id"]) == []
    assert len(deliveries(stack, stack.admin_key)) == 3
    assert len(deliveries(stack, stack.admin_key, organization=holder_b["id"])) == 1
    b_id = deliveries(stack, key_b)[0]["deliveryId"]
    for method, path in (
        ("get", f"/v1/webhook-deliveries/{b_id}"),
        ("post", f"/v1/webhook-deliveries/{b_id}/redeliver"),
    ):
        r = stack.client.request(method, path, headers=stack.headers(key_a))
        assert r.status_code == 404, r.text
    # a holder cannot read, point or remove another holder's endpoint: it is not found
    for method in ("get", "put", "delete"):
        r = stack.client.request(
            method,
            f"/v1/organizations/{holder_b['id']}/webhook",
            json={"url": "https://evil.example/"} if method == "put" else None,
            headers=stack.headers(key_a),
        )
        assert r.status_code == 404, r.text
    got = stack.client.get(
        f"/v1/organizations/{holder_b['id']}/webhook", headers=stack.headers(stack.admin_key)
    )
    assert got.status_code == 200 and got.json()["url"] == b.url


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.acme.example/"}, "scheme"),
        ({"url": "not a url"}, "spaces"),
        ({"url": "hooks.acme.example/x"}, "scheme"),
        ({"url": "https://"}, "no host"),
        ({"url": "https://u:p@hooks.acme.example/"}, "user:password"),
        ({"url": "https://bücher.example/hook"}, "ASCII"),
        ({"url": "https://hooks.acme.example:70000/"}, "not a valid URL"),
        ({"url": "https://hooks.acme.example/" + "x" * 2100}, "url"),
        ({}, "url"),
        ({"url": "https://hooks.acme.example/", "minSeverity": "urgent"}, "minSeverity"),
        ({"url": "https://hooks.acme.example/", "rules": ["teleport"]}, "teleport"),
        ({"url": "https://hooks.acme.example/", "rules": "clone"}, "rules"),
        ({"url": "https://hooks.acme.example/", "secret": "mine"}, "secret"),
    ],
)
def test_bad_endpoints_are_refused_with_422_and_nothing_stored(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    r = stack.client.put(
        f"/v1/organizations/{holder['id']}/webhook",
        json=body,
        headers=stack.headers(holder["apiKey"]),
    )
    assert r.status_code == 422, r.text
    assert field in r.text
    r = stack.client.get(
        f"/v1/organizations/{holder['id']}/webhook", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 404


def test_endpoint_roles_and_idempotent_updates(stack: Stack, receiver: Receiver) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    officer = stack.org("NL Customs", "customs")
    url = f"/v1/organizations/{holder['id']}/webhook"
    key = holder["apiKey"]
    r = stack.client.put(url, json={"url": receiver.url}, headers=stack.headers(key))
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    again = stack.client.put(url, json={"url": receiver.url}, headers=stack.headers(key))
    assert again.status_code == 200 and again.json()["secret"] is None
    assert again.json()["minSeverity"] == "low" and again.json()["rules"] == []
    r = stack.client.put(
        url,
        json={"url": receiver.url, "minSeverity": "critical", "rules": ["clone", "STOLEN_SEEN"]},
        headers=stack.headers(stack.admin_key),
    )
    assert r.status_code == 200 and r.json()["rules"] == ["STOLEN_SEEN", "clone"]
    assert stack.client.get(url, headers=stack.headers(officer["apiKey"])).status_code == 403
    r = stack.client.put(
        f"/v1/organizations/{officer['id']}/webhook",
        json={"url": receiver.url},
        headers=stack.headers(stack.admin_key),
    )
    assert r.status_code == 422 and "only rights holders" in r.json()["error"]["message"]
    r = stack.client.get("/v1/organizations/99999/webhook", headers=stack.headers(stack.admin_key))
    assert r.status_code == 404


def test_filters_decide_which_alerts_become_deliveries(hooked: Stack, receiver: Receiver) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    register(stack, holder["apiKey"], holder["id"], receiver.url, minSeverity="critical")
    divert(stack, officer, "SN0001")  # high: filtered out
    register(stack, holder["apiKey"], holder["id"], receiver.url, rules=["clone"])
    divert(stack, officer, "SN0002")  # a diversion: filtered out
    register(stack, holder["apiKey"], holder["id"], receiver.url, rules=["DIVERSION_MARKET"])
    wanted = divert(stack, officer, "SN0003")
    with Session(stack.gateway.engine) as session:
        assert len(session.exec(select(Alert)).all()) == 3
    assert [d["alertId"] for d in deliveries(stack, holder["apiKey"])] == [wanted]


def test_410_gone_disables_the_endpoint_and_holds_deliveries_until_enabled(
    hooked: Stack, receiver: Receiver
) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    officer = stack.org("NL Customs", "customs")["apiKey"]
    secret = register(stack, holder["apiKey"], holder["id"], receiver.url)["secret"]
    receiver.answers = [410]
    receiver.start()
    first = divert(stack, officer, "SN0001")
    stack.gateway.webhooks.drain()
    endpoint = stack.client.get(
        f"/v1/organizations/{holder['id']}/webhook", headers=stack.headers(holder["apiKey"])
    ).json()
    assert endpoint["enabled"] is False and "410 Gone" in endpoint["disabledReason"]
    assert endpoint["backlog"] == {"failing": 1}
    second = divert(stack, officer, "SN0002")  # still recorded while disabled
    stack.gateway.webhooks.drain()
    assert len(receiver.requests) == 1
    endpoint = stack.client.get(
        f"/v1/organizations/{holder['id']}/webhook", headers=stack.headers(holder["apiKey"])
    ).json()
    assert endpoint["backlog"] == {"failing": 1, "pending": 1}
    held = deliveries(stack, holder["apiKey"], alert=second)[0]["deliveryId"]
    r = stack.client.post(
        f"/v1/webhook-deliveries/{held}/redeliver", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 409 and "410 Gone" in r.json()["error"]["message"]
    register(stack, holder["apiKey"], holder["id"], receiver.url, enabled=True)
    stack.gateway.webhooks.drain()
    assert sorted(receiver.alert_ids(secret)) == sorted([first, first, second])
    assert {d["status"] for d in deliveries(stack, holder["apiKey"])} == {"delivered"}


def test_redelivery_rotation_test_event_and_removal(hooked: Stack, receiver: Receiver) -> None:
    stack = hooked
    holder, _ = holder_with_batch(stack, "Acme Pharma")
    key = holder["apiKey"]
    officer = stack.org("NL Customs", "customs")["apiKey"]
    old = register(stack, key, holder["id"], receiver.url)["secret"]
    receiver.start()
    alert_id = divert(stack, officer, "SN0001")
    stack.gateway.webhooks.drain()
    [done] = deliveries(stack, key)
    r = stack.client.post(
        f"/v1/webhook-deliveries/{done['deliveryId']}/redeliver", headers=stack.headers(key)
    )
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    stack.gateway.webhooks.drain()
    assert receiver.ids() == [done["deliveryId"]] * 2 and receiver.alert_ids(old) == [alert_id] * 2

    rotated = stack.client.post(
        f"/v1/organizations/{holder['id']}/webhook/rotate-secret", headers=stack.headers(key)
    ).json()
    new = rotated["secret"]
    assert new != old and rotated["previousSecretExpiresAt"] is not None
    r = stack.client.post(
        f"/v1/organizations/{holder['id']}/webhook/test", headers=stack.headers(key)
    )
    assert r.status_code == 202 and r.json()["event"] == "webhook.test"
    stack.gateway.webhooks.drain()
    last = receiver.requests[-1]
    assert last.headers["BorderLedger-Event"] == "webhook.test"
    assert last.headers["BorderLedger-Signature"].count("v1=") == 2  # both secrets, in grace
    for secret in (new, old):
        verify_signature(secret, last.headers["BorderLedger-Signature"], last.body)

    receiver.stop()
    divert(stack, officer, "SN0002")
    r = stack.client.delete(f"/v1/organizations/{holder['id']}/webhook", headers=stack.headers(key))
    assert r.status_code == 204
    [cancelled] = deliveries(stack, key, status="cancelled")
    r = stack.client.post(
        f"/v1/webhook-deliveries/{cancelled['deliveryId']}/redeliver", headers=stack.headers(key)
    )
    assert r.status_code == 409
    assert stack.gateway.webhooks.process() == 0
    r = stack.client.get(
        "/v1/webhook-deliveries/00000000-0000-0000-0000-000000000000", headers=stack.headers(key)
    )
    assert r.status_code == 404


def test_the_delivery_thread_drains_a_backlog_once_each(hooked: Stack, receiver: Receiver) -> None:
    """Many quick deliveries through the thread's pipeline (workers finishing while others
    are being handed over): all arrive, each once, and the thread stops cleanly."""
    stack = hooked
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
    key = holder["apiKey"]
    secret = register(stack, key, holder["id"], receiver.url)["secret"]
    for _ in range(60):
        r = stack.client.post(
            f"/v1/organizations/{holder['id']}/webhook/test", headers=stack.headers(key)
        )
        assert r.status_code == 202, r.text
    receiver.start()
    run_sender(stack)
    wait_until(lambda: len(deliveries(stack, key, status="delivered", limit=1000)) == 60)
    stack.gateway.stop()  # stops the thread; must not hang
    assert receiver.alert_ids(secret) == []  # test events only, all correctly signed
    assert len(receiver.ids()) == len(set(receiver.ids())) == 60


# ------------------------------------------------------------- where deliveries may connect


def _test_delivery(stack: Stack, holder: dict[str, Any]) -> dict[str, Any]:
    """Queue a webhook.test event, let the sender make one attempt, return the delivery."""
    r = stack.client.post(
        f"/v1/organizations/{holder['id']}/webhook/test", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 202, r.text
    assert stack.gateway.webhooks.process() == 1
    r = stack.client.get(
        f"/v1/webhook-deliveries/{r.json()['deliveryId']}", headers=stack.headers(holder["apiKey"])
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize(
    ("addresses", "words"),
    [
        (["127.0.0.1"], "127.0.0.1 is a loopback address"),
        (["93.184.216.34", "169.254.169.254"], "169.254.169.254 is a cloud metadata"),
        (["fd00:ec2::254"], "fd00:ec2::254 is a cloud metadata"),
        (["10.0.0.7"], "10.0.0.7 is a private address"),
        (["::ffff:127.0.0.1"], "127.0.0.1 is a loopback address"),
        (["0.0.0.0"], "unspecified"),
        (["224.0.0.251"], "multicast"),
    ],
)
def test_a_host_resolving_to_an_internal_address_is_refused_at_delivery(
    anvil: LocalNode,
    database: tuple[str, str | None],
    tmp_path: Path,
    receiver: Receiver,
    addresses: list[str],
    words: str,
) -> None:
    """A host name passes the registration check (no literal address to judge); at delivery
    it resolves (here: the sender's resolver hook) to an internal address and is refused with
    the reason recorded, nothing sent: a failed attempt, not a 500."""
    with running_stack(anvil, database, tmp_path, **{**FAST, "webhook_allowed_hosts": ""}) as stack:
        receiver.start()
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
        register(
            stack, holder["apiKey"], holder["id"], f"http://hooks.acme.example:{receiver.port}/h"
        )
        asked: list[tuple[str, int]] = []

        def resolver(host: str, port: int) -> list[str]:
            asked.append((host, port))
            return addresses

        stack.gateway.webhooks.resolver = resolver
        delivery = _test_delivery(stack, holder)
        assert delivery["status"] == "failing" and delivery["lastStatusCode"] is None
        assert words in delivery["lastError"] and "hooks.acme.example" in delivery["lastError"]
        assert asked == [("hooks.acme.example", receiver.port)]
        assert receiver.requests == []


def test_allowed_hosts_are_delivered_to_the_address_checked(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path, receiver: Receiver
) -> None:
    """With the receiver's network allowed, a name no DNS knows is delivered to the address
    the resolver gave, resolved once: the connection goes to the checked IP, so a second,
    different answer (DNS rebinding) is never asked for. A host named in the allow-list is
    delivered to whatever it resolves to."""
    with running_stack(anvil, database, tmp_path, **FAST) as stack:
        receiver.start()
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
        register(
            stack, holder["apiKey"], holder["id"], f"http://hooks.acme.example:{receiver.port}/h"
        )
        answers = [["127.0.0.1"], ["10.1.2.3"]]
        stack.gateway.webhooks.resolver = lambda host, port: answers.pop(0)
        delivery = _test_delivery(stack, holder)
        assert delivery["status"] == "delivered", delivery
        assert answers == [["10.1.2.3"]]  # resolved once
        assert receiver.requests[0].headers["Host"] == f"hooks.acme.example:{receiver.port}"
    with (
        scratch_database(tmp_path, "named.db", "webhook_named_") as other,
        running_stack(
            anvil, other, tmp_path, **{**FAST, "webhook_allowed_hosts": "hooks.acme.example"}
        ) as stack,
    ):
        holder = stack.org("Acme Pharma", "rights_holder", "TMK 1")
        register(
            stack, holder["apiKey"], holder["id"], f"http://hooks.acme.example:{receiver.port}/h"
        )
        stack.gateway.webhooks.resolver = lambda host, port: ["127.0.0.1"]
        assert _test_delivery(stack, holder)["status"] == "delivered"
