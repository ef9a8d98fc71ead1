"""Alert webhook delivery: the outbox the detector fills and the thread that sends it.
Endpoints (what a rights holder registers) are managed by `api.services.webhook_endpoints`.

Life of a delivery (docs/webhooks.md has the receiver's side):

1. The detector stores an alert; in the same transaction `enqueue_alert_deliveries` adds a
   `WebhookDelivery` for the batch's rights holder when its endpoint's filter accepts the
   alert. Either both rows exist or neither: an alert cannot be stored and its delivery lost.
2. `WebhookSender.process` (run by `WebhookThread` in every gateway process) claims due rows
   with a lease — ``SELECT … FOR UPDATE SKIP LOCKED`` then a conditional UPDATE on
   PostgreSQL, the conditional UPDATE alone on SQLite (whose writers are serialised) — so two
   gateways on one database never send the same row at the same time.
3. It POSTs the stored JSON, signed (`ledger.webhooks`), and records the outcome under its
   claim token: 2xx delivered; anything else, a timeout or a refused connection → retried
   with capped, jittered exponential backoff, until `webhook_max_attempts` (then `failed`,
   still redeliverable by API). 410 Gone disables the endpoint: its deliveries wait, not
   dropped, until the holder enables it again.
4. A sender that dies after posting but before recording loses its lease; the row is sent
   again under the same delivery id (at-least-once; receivers dedupe on the id).

Where it connects (server-side request forgery): an endpoint's host is resolved when a
delivery is sent, every address it resolves to is checked (`ledger.webhooks.refused_address`:
loopback, private, link-local, cloud metadata, unspecified, multicast, reserved), and the
connection goes to the address checked — the transport's network backend resolves once and
connects to that IP (`GuardedBackend`), so a name that resolves to a public address for the
check and to an internal one for the connection (DNS rebinding) cannot slip through. TLS
still verifies the certificate against the host name. `BORDERLEDGER_WEBHOOK_ALLOWED_HOSTS`
lists networks and host names allowed all the same (development, tests). A refused address
is a failed attempt whose `last_error` says why, retried like any other.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.crypto import unseal
from api.models import Alert as AlertRow
from api.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, utcnow
from detector.rules import AlertClass, AlertReason, Severity
from ledger.canonical import canonical_json
from ledger.config import Settings
from ledger.webhooks import (
    SIGNATURE_HEADER,
    backoff_delay,
    parse_allowlist,
    refused_address,
    signature_header,
)

log = logging.getLogger("borderledger.webhooks")

EVENT_ALERT = "alert.created"
EVENT_TEST = "webhook.test"
SEVERITY_RANK = {s.value: rank for rank, s in enumerate(Severity)}
RULE_NAMES = {c.value for c in AlertClass} | {r.value for r in AlertReason}
DUE = (DeliveryStatus.PENDING.value, DeliveryStatus.FAILING.value)
USER_AGENT = "BorderLedger-Webhooks/1"


# ------------------------------------------------------------------- the outbox (by detector)


def alert_data(row: AlertRow) -> dict[str, Any]:
    """An alert as the webhook carries it: the same fields as `GET /v1/alerts`."""
    return {
        "alertId": row.alert_id,
        "rule": row.rule,
        "reasonCode": row.reason_code,
        "severity": row.severity,
        "batchId": row.batch_id,
        "gtin": row.gtin,
        "serial": row.serial,
        "location": row.location,
        "evidence": list(row.evidence),
        "detail": row.detail,
        "status": row.status,
        "organizationId": row.organization_id,
        "createdAt": _iso(row.created_at),
    }


def accepts(endpoint: WebhookEndpoint, row: AlertRow) -> bool:
    """Whether the endpoint's filter lets this alert through."""
    if SEVERITY_RANK.get(row.severity, 0) < SEVERITY_RANK.get(endpoint.min_severity, 0):
        return False
    return not endpoint.rules or row.rule in endpoint.rules or row.reason_code in endpoint.rules


def enqueue_alert_deliveries(session: Session, rows: Sequence[AlertRow]) -> int:
    """Add, to the caller's open transaction, one delivery per alert whose rights holder has
    an endpoint accepting it. The caller commits (alerts and deliveries together).
    Alerts without a rights holder (GTIN-level probing) have nobody to deliver to."""
    owners = {r.organization_id for r in rows if r.organization_id is not None}
    if not owners:
        return 0
    endpoints = {
        e.organization_id: e
        for e in session.exec(
            select(WebhookEndpoint).where(col(WebhookEndpoint.organization_id).in_(owners))
        ).all()
    }
    added = 0
    for row in rows:
        endpoint = endpoints.get(row.organization_id) if row.organization_id else None
        if endpoint is None or not accepts(endpoint, row):
            continue
        session.add(
            new_delivery(endpoint.organization_id, EVENT_ALERT, row.alert_id, alert_data(row))
        )
        added += 1
    return added


def new_delivery(
    organization_id: int, event: str, alert_id: str | None, data: dict[str, Any]
) -> WebhookDelivery:
    """A delivery of `event`, due now, its payload in the envelope receivers get."""
    now = utcnow()
    delivery_id = str(uuid.uuid4())
    envelope: dict[str, object] = {
        "id": delivery_id,
        "type": event,
        "createdAt": _iso(now),
        "data": data,
    }
    return WebhookDelivery(
        delivery_id=delivery_id,
        organization_id=organization_id,
        event=event,
        alert_id=alert_id,
        payload=envelope,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def _iso(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def body_of(delivery: WebhookDelivery) -> bytes:
    """The exact bytes posted (and signed): RFC 8785 canonical JSON, UTF-8. The signature is
    computed over these bytes at each attempt, so a delivery queued before the encoding
    changed is signed over what it is sent as."""
    return canonical_json(delivery.payload)


# ------------------------------------------------------------- where a delivery may connect

#: host, port -> the IP addresses it resolves to (tests put their own in place).
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses, as the operating system resolves them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend with the webhook address rule: each connection resolves the
    host once, refuses it when any address is not allowed, and connects to the checked IP
    (never resolving again). Refusals are `httpcore.ConnectError`s naming the address."""

    def __init__(self, allowed: str, resolver: Callable[[], Resolver]) -> None:
        self.networks, self.hosts = parse_allowlist(allowed)
        self.resolver = resolver
        self.inner = httpcore.SyncBackend()

    def address_for(self, host: str, port: int) -> str:
        """The IP to connect to for `host`, or `httpcore.ConnectError` saying why none."""
        name = host.lower().rstrip(".")
        try:
            addresses = self.resolver()(name, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host!r} resolves to no address")
        if name not in self.hosts:
            for address in addresses:
                why = refused_address(address, self.networks)
                if why is not None:
                    raise httpcore.ConnectError(
                        f"refused to deliver to {host!r}: {why}; webhooks go to public "
                        "addresses only (BORDERLEDGER_WEBHOOK_ALLOWED_HOSTS lists exceptions)"
                    )
        return addresses[0]

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.address_for(host, port)
        return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are not delivered over unix sockets")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def guarded_transport(allowed: str, resolver: Callable[[], Resolver]) -> httpx.HTTPTransport:
    """An httpx transport whose connections go through `GuardedBackend` (no proxy: a proxy
    from the environment would connect on the gateway's behalf, unchecked)."""
    transport = httpx.HTTPTransport(trust_env=False)
    pool = transport._pool
    assert isinstance(pool, httpcore.ConnectionPool)
    pool._network_backend = GuardedBackend(allowed, resolver)
    return transport


# ----------------------------------------------------------------------------- the sender


@dataclass(frozen=True)
class Claimed:
    """A delivery this sender holds the lease on, with what it needs to send it."""

    row_id: int
    delivery_id: str
    event: str
    token: str
    attempts: int
    body: bytes
    url: str
    secrets: tuple[str, ...]
    organization_id: int


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None
    retry_after: float | None = None
    gone: bool = False


class WebhookSender:
    """Claims due deliveries and sends them; one per gateway process, any number per database."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.worker = uuid.uuid4().hex[:12]
        #: Longer than one send can take, so a live sender never loses its lease mid-send.
        self.lease = timedelta(seconds=2 * settings.webhook_timeout + 5)
        #: How endpoint hosts are resolved at delivery time (tests point it elsewhere).
        self.resolver: Resolver = system_resolver
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # one pass at a time
        self._busy_lock = threading.Lock()  # apart: a finished future may release at submit
        self._busy = 0
        #: Set when a worker finishes a delivery (the delivery thread waits on it).
        self.idle = threading.Event()

    def _ensure(self) -> tuple[httpx.Client, ThreadPoolExecutor]:
        if self._client is None or self._pool is None:
            self._client = httpx.Client(
                timeout=self.settings.webhook_timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                trust_env=False,
                transport=guarded_transport(
                    self.settings.webhook_allowed_hosts, lambda: self.resolver
                ),
            )
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.webhook_workers,
                thread_name_prefix="borderledger-webhook",
            )
        return self._client, self._pool

    def close(self) -> None:
        """Release connections and worker threads (the gateway's stop); reopened on use."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            if self._client is not None:
                self._client.close()
            self._client, self._pool = None, None

    def process(self) -> int:
        """One synchronous pass: claim up to `webhook_batch_size` due deliveries, send them
        concurrently, record the outcomes. Returns how many were claimed (0: none was due).
        Tests and `drain` use it; the delivery thread uses `pump`."""
        with self._lock:
            claimed = self.claim(self.settings.webhook_batch_size)
            if claimed:
                _, pool = self._ensure()
                list(pool.map(self.deliver, claimed))
            return len(claimed)

    def pump(self) -> int:
        """Claim as many due deliveries as there are idle workers and start sending them,
        without waiting. A slow or dead receiver thus holds one worker for at most the
        timeout, never the whole queue, and nothing is leased while it waits for a worker.
        Returns how many were started; `idle` is set whenever a worker frees up."""
        with self._lock:
            with self._busy_lock:
                free = min(
                    self.settings.webhook_workers - self._busy, self.settings.webhook_batch_size
                )
            if free <= 0:
                return 0
            claimed = self.claim(free)
            if not claimed:
                return 0
            _, pool = self._ensure()
            with self._busy_lock:
                self._busy += len(claimed)
            for item in claimed:
                pool.submit(self.deliver, item).add_done_callback(self._release)
            return len(claimed)

    def _release(self, _: object) -> None:
        with self._busy_lock:
            self._busy -= 1
        self.idle.set()

    def drain(self, passes: int = 20) -> None:
        """Process until nothing is due (tests, and the CLI-less admin path)."""
        for _ in range(passes):
            if self.process() == 0:
                return

    def claim(self, limit: int) -> list[Claimed]:
        """Take the lease on up to `limit` due deliveries of enabled endpoints."""
        now = utcnow()
        free = or_(
            col(WebhookDelivery.claimed_until).is_(None), col(WebhookDelivery.claimed_until) < now
        )
        with Session(self.engine) as session:
            query = (
                select(WebhookDelivery, WebhookEndpoint)
                .join(
                    WebhookEndpoint,
                    col(WebhookEndpoint.organization_id) == col(WebhookDelivery.organization_id),
                )
                .where(
                    col(WebhookDelivery.status).in_(DUE),
                    col(WebhookDelivery.next_attempt_at) <= now,
                    free,
                    col(WebhookEndpoint.enabled).is_(True),
                )
                .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
                .limit(limit)
            )
            if self.engine.dialect.name == "postgresql":
                # Rows another gateway is claiming right now are skipped, not waited for.
                query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
            candidates = session.exec(query).all()
            claimed: list[Claimed] = []
            until = now + self.lease
            for delivery, endpoint in candidates:
                token = str(uuid.uuid4())
                # The conditional UPDATE is the claim on SQLite (writers are serialised);
                # on PostgreSQL the row is already locked by FOR UPDATE and this just marks it.
                result = session.execute(
                    update(WebhookDelivery)
                    .where(
                        col(WebhookDelivery.id) == delivery.id,
                        col(WebhookDelivery.status).in_(DUE),
                        free,
                    )
                    .values(claim_token=token, claimed_until=until)
                )
                if getattr(result, "rowcount", 0) != 1:
                    continue
                assert delivery.id is not None
                claimed.append(
                    Claimed(
                        row_id=delivery.id,
                        delivery_id=delivery.delivery_id,
                        event=delivery.event,
                        token=token,
                        attempts=delivery.attempts,
                        body=body_of(delivery),
                        url=endpoint.url,
                        secrets=self._secrets(endpoint, now),
                        organization_id=endpoint.organization_id,
                    )
                )
            session.commit()
        return claimed

    def _secrets(self, endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
        key = self.settings.secret_key
        current = unseal(key, endpoint.secret_encrypted).decode()
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret_encrypted and expires is not None and expires > now:
            return (current, unseal(key, endpoint.previous_secret_encrypted).decode())
        return (current,)

    def post(self, claimed: Claimed) -> Outcome:
        """One HTTP attempt. Never raises: every failure becomes an `Outcome` to retry."""
        attempt = claimed.attempts + 1
        headers = {
            "Content-Type": "application/json",
            "BorderLedger-Delivery": claimed.delivery_id,
            "BorderLedger-Event": claimed.event,
            "BorderLedger-Attempt": str(attempt),
            SIGNATURE_HEADER: signature_header(claimed.secrets, claimed.body),
        }
        headers["BorderLedger-Timestamp"] = headers[SIGNATURE_HEADER].split(",")[0][2:]
        try:
            client, _ = self._ensure()
            with client.stream("POST", claimed.url, content=claimed.body, headers=headers) as r:
                code = r.status_code
                if 200 <= code < 300:
                    return Outcome(True, code, None)
                snippet = _head(r, 200)
                retry_after = _retry_after(r.headers.get("Retry-After"))
        except httpx.TimeoutException as exc:
            return Outcome(False, None, f"timed out after {self.settings.webhook_timeout}s: {exc}")
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}")
        return Outcome(
            False,
            code,
            f"HTTP {code}: {snippet}" if snippet else f"HTTP {code}",
            retry_after=retry_after,
            gone=code == 410,
        )

    def deliver(self, claimed: Claimed) -> Outcome:
        """Send one claimed delivery and record what happened, under the claim token."""
        try:
            outcome = self.post(claimed)
            self.record(claimed, outcome)
        except Exception as exc:  # a database hiccup: the lease expires and it is sent again
            log.warning("webhook delivery %s not recorded: %s", claimed.delivery_id, exc)
            return Outcome(False, None, str(exc))
        return outcome

    def record(self, claimed: Claimed, outcome: Outcome) -> bool:
        """Store the outcome; False when the lease was lost (another sender has the row)."""
        s = self.settings
        now = utcnow()
        attempts = claimed.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "claim_token": None,
            "claimed_until": None,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error[:500] if outcome.error else None,
            "last_attempt_at": now,
            "updated_at": now,
        }
        if outcome.delivered:
            values |= {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now}
        elif outcome.gone:
            # Held, not failed: the endpoint is disabled and the delivery goes when it is back.
            values |= {"status": DeliveryStatus.FAILING.value, "next_attempt_at": now}
        elif attempts >= s.webhook_max_attempts:
            values |= {"status": DeliveryStatus.FAILED.value}
        else:
            delay = backoff_delay(attempts, s.webhook_backoff_base, s.webhook_backoff_cap)
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, s.webhook_backoff_cap))
            values |= {
                "status": DeliveryStatus.FAILING.value,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
        with Session(self.engine) as session:
            result = session.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id) == claimed.row_id,
                    col(WebhookDelivery.claim_token) == claimed.token,
                )
                .values(**values)
            )
            if outcome.gone:
                session.execute(
                    update(WebhookEndpoint)
                    .where(col(WebhookEndpoint.organization_id) == claimed.organization_id)
                    .values(
                        enabled=False,
                        disabled_reason=f"receiver answered 410 Gone at {_iso(now)}",
                        updated_at=now,
                    )
                )
            session.commit()
        if getattr(result, "rowcount", 0) != 1:
            log.warning("webhook delivery %s: lease lost before recording", claimed.delivery_id)
            return False
        return True


def _head(response: httpx.Response, limit: int) -> str:
    """The first `limit` characters of an error answer, for `last_error` (a receiver's answer
    body is never read whole: only its status matters)."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= 4 * limit:
            break
    return data.decode("utf-8", "replace")[:limit].replace("\n", " ").strip()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WebhookThread(threading.Thread):
    """Feeds `WebhookSender.pump` until stopped: again at once after starting deliveries,
    else after `interval` seconds, or as soon as a worker frees up or someone wakes it."""

    def __init__(self, sender: WebhookSender, interval: float = 1.0) -> None:
        super().__init__(name="borderledger-webhooks", daemon=True)
        self.sender = sender
        self.interval = interval
        self.stopped = threading.Event()
        self.wake = sender.idle

    def run(self) -> None:
        while not self.stopped.is_set():
            started = 0
            try:
                started = self.sender.pump()
            except Exception as exc:
                log.warning("webhook pass failed: %s", exc)
            if not started:
                self.wake.wait(self.interval)
                self.wake.clear()

    def stop(self) -> None:
        """Stop claiming; deliveries already started finish (the sender's close waits)."""
        self.stopped.set()
        self.wake.set()
        self.join(timeout=60)
