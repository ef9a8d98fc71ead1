"""Per-caller rate limits (OWASP API4): per API key and per client address, by route class.

Every HTTP request is put in one route class (`route_class`): `verify` (POST /v1/verify and
the GS1 verification routes), `enroll` (POST /v1/batches and batch status changes), `capture`
(POST /v1/epcis/capture), `sync` (POST /v1/scans/sync), `reads` (every other GET or HEAD) and
`writes` (every other change). Each class has two limits in the one settings class
(`ledger.config.Settings.rate_limits` and `.rate_limits_per_address`): one counted per
caller (`caller_key`: today the API key that authenticated, later a signed-in person; the
function takes the principal, so nothing here changes when another actor kind is added),
one per client address (which also bounds what a client without a valid key may try). A
request over either limit is answered `429` with `Retry-After` (whole seconds) and the
usual JSON error body, before any route code runs.

Counting is the `limits` library's sliding-window counter (constant memory per key and
window; no burst of twice the limit at a window edge, unlike a fixed window). Storage is
in-process memory by default, so each gateway process counts on its own; with
`BORDERLEDGER_REDIS_URL` every process (and host) shares the counters in Redis. A Redis that
cannot be reached does not stop the gateway: the request is let through and the failure
logged (at most once a minute), because refusing every verification at a border post for a
broken counter store is worse than a minute without limits.

It runs in front of everything, the lean /v1/verify front included (`api.main.GatewayApp`),
as plain ASGI: no middleware layer of FastAPI's on the hot path. docs/limits.md lists the
defaults and why they fit officers, devices, partners and the benchmarks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import Receive, Scope, Send

from api.deps import authenticate
from api.gateway import Gateway
from api.principal import Principal
from ledger.config import ROUTE_CLASSES, Settings
from ledger.errors import BorderLedgerError

log = logging.getLogger("borderledger.api.ratelimit")

#: Seconds between two log lines about an unreachable counter store.
STORAGE_WARNING_EVERY = 60.0


def route_class(method: str, path: str) -> str:
    """The class a request is limited under (one of `ledger.config.ROUTE_CLASSES`)."""
    if method == "POST":
        if path in ("/v1/verify", "/v1/verify/batch"):
            return "verify"
        if path == "/v1/batches" or (path.startswith("/v1/batches/") and path.endswith("/status")):
            return "enroll"
        if path == "/v1/epcis/capture":
            return "capture"
        if path == "/v1/scans/sync":
            return "sync"
    if method in ("GET", "HEAD"):
        return "verify" if path.startswith("/v1/gs1/verify/") else "reads"
    return "writes"


def caller_key(principal: Principal) -> str:
    """Whose budget a request spends: the actor that authenticated (an API key today, a
    person later), not the organization, so one leaked or runaway key cannot exhaust its
    organization's other keys."""
    return f"{principal.actor.kind}:{principal.actor.id}"


@dataclass(frozen=True)
class Refusal:
    """A request over a limit: which limit, counted on what, and when to come back."""

    route_class: str
    counted_on: str  # "API key" or "client address"
    limit: RateLimitItem
    retry_after: int

    def body(self) -> bytes:
        return orjson.dumps({"error": self.error()})

    def error(self) -> dict[str, object]:
        """The `error` object of the 429 answer (also a batch item's, api.routes.verify)."""
        what = (
            "sign-in attempts" if self.route_class == "sign_in" else f"{self.route_class} requests"
        )
        message = (
            f"too many {what} for this {self.counted_on}: "
            f"the limit is {self.limit}; retry after {self.retry_after} s"
        )
        return {
            "code": "rate_limited",
            "message": message,
            "routeClass": self.route_class,
            "limit": str(self.limit),
            "retryAfter": self.retry_after,
        }


class RateLimiter:
    """The limits of one gateway process, with its storage (memory or Redis)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        self.redis_url = settings.redis_url
        # One Redis may serve several deployments: counters are named by the registry too.
        self.namespace = f"{settings.redis_key_prefix}:{(settings.registry or 'none').lower()}"
        self.per_key = {c: parse_many(settings.rate_limits[c]) for c in ROUTE_CLASSES}
        self.per_address = {
            c: parse_many(settings.rate_limits_per_address[c]) for c in ROUTE_CLASSES
        }
        #: Sign-in attempts per client address, across accounts (`check_sign_in`).
        self.sign_in = (
            parse_many(settings.login_attempts_per_address)
            if settings.login_attempts_per_address.strip()
            else []
        )
        self._storage: Storage | None = None
        self._strategy: SlidingWindowCounterRateLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_warning = -math.inf

    def _limiter(self) -> SlidingWindowCounterRateLimiter:
        # Async storages belong to the event loop that made them (Redis connections, memory
        # expiry tasks): made on first use, and again if the app is served by another loop.
        loop = asyncio.get_running_loop()
        if self._strategy is None or self._loop is not loop:
            if self.redis_url:
                # redis-py's asyncio client (the `redis` dependency); keys prefixed per app.
                self._storage = RedisStorage(
                    self.redis_url.removeprefix("async+"),
                    implementation="redispy",
                    key_prefix=self.namespace,
                )
            else:
                self._storage = MemoryStorage()
            self._strategy = SlidingWindowCounterRateLimiter(self._storage)
            self._loop = loop
        return self._strategy

    async def check_address(self, cls: str, address: str) -> Refusal | None:
        """Count one request against its client address (before authentication, so a flood
        of wrong keys is refused without a key lookup each)."""
        return await self._hit(cls, "client address", self.per_address[cls], f"ip:{address}")

    async def check_sign_in(self, address: str) -> Refusal | None:
        """Count one sign-in attempt against its client address, whichever account it names:
        a guesser spreading passwords over many accounts (each under its own lock-out) is
        stopped here. Called before the password is looked at, so a refused attempt costs
        no Argon2 hash. Applies even with the route-class limits off (a security control,
        not a fair-share one); an empty setting turns it off."""
        return await self._hit("sign_in", "client address", self.sign_in, f"ip:{address}")

    async def check_caller(self, cls: str, principal: Principal) -> Refusal | None:
        """Count one request against the caller that authenticated it."""
        return await self._hit(cls, "API key", self.per_key[cls], caller_key(principal))

    async def take(
        self, cls: str, principal: Principal, address: str, wanted: int
    ) -> tuple[int, Refusal | None]:
        """Count up to `wanted` more requests of `cls` against the caller and its address,
        one at a time until a limit refuses: (how many were counted, that refusal). A batch
        of scans (POST /v1/verify/batch) spends one per item, as many requests would: the
        first item was counted with the request (`refused`), the rest here."""
        if not self.enabled:
            return wanted, None
        for taken in range(wanted):
            refusal = await self._hit(
                cls, "client address", self.per_address[cls], f"ip:{address}"
            ) or await self.check_caller(cls, principal)
            if refusal is not None:
                return taken, refusal
        return wanted, None

    async def _hit(
        self, cls: str, counted_on: str, items: Sequence[RateLimitItem], who: str
    ) -> Refusal | None:
        """Count a request on each of `items`; a `Refusal` for the first one over its limit."""
        try:
            limiter = self._limiter()
            for item in items:
                if not await limiter.hit(item, cls, who):
                    stats = await limiter.get_window_stats(item, cls, who)
                    retry = max(1, math.ceil(stats.reset_time - time.time()))
                    return Refusal(cls, counted_on, item, min(retry, item.get_expiry()))
        except Exception as exc:  # the counter store is down: serve, and say so in the log
            now = time.monotonic()
            if now - self._last_warning > STORAGE_WARNING_EVERY:
                self._last_warning = now
                log.warning("rate limits not applied: storage %s failed: %r", self.redis_url, exc)
        return None

    async def reset(self) -> None:
        """Forget every count (tests)."""
        if self._storage is not None:
            await self._storage.reset()


def client_address(scope: Scope) -> str:
    """The client's address as the server saw it (behind a proxy: run uvicorn with
    `--proxy-headers --forwarded-allow-ips` so this is the forwarded one)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    authorization = x_api_key = None
    for name, value in scope["headers"]:  # the first of each, as FastAPI's Header() takes
        if name == b"authorization":
            if authorization is None:
                authorization = value.decode("latin-1")
        elif name == b"x-api-key" and x_api_key is None:
            x_api_key = value.decode("latin-1")
    return authorization, x_api_key


async def refused(
    limiter: RateLimiter,
    gateway: Gateway,
    cache: dict[str, tuple[float, Principal]],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> bool:
    """Apply the limits to one HTTP request; True when it was answered 429 here."""
    if not limiter.enabled:
        return False
    cls = route_class(scope["method"], scope["path"])
    refusal = await limiter.check_address(cls, client_address(scope))
    if refusal is None:
        authorization, x_api_key = _headers(scope)
        if authorization is None and x_api_key is None:
            return False  # the route answers 401
        try:  # the same function and per-process cache the routes use
            principal = authenticate(gateway, cache, authorization, x_api_key)
        except BorderLedgerError:
            return False  # the route answers 401; the address limit counted it
        refusal = await limiter.check_caller(cls, principal)
        if refusal is None:
            return False
    body = refusal.body()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
                (b"retry-after", str(refusal.retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return True
