"""The FastAPI application: wiring only (routes validate, call domain code, shape answers)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api import errors, openapi, ratelimit
from api.gateway import Gateway
from api.ratelimit import RateLimiter
from api.routes import ROUTERS
from api.routes.verify import PATH as VERIFY_PATH
from api.routes.verify import VerifyFastPath
from ledger.config import Settings

DESCRIPTION = """
Verification gateway of BorderLedger. Officers verify scanned tags and typed serials and get a
verdict with reasons and a proof they can check against the chain; rights holders enroll
batches and manage statuses; auditors read. Authenticate with `Authorization: Bearer <API key>`.
Errors are JSON: `{"error": {"code", "message"}}`.
"""


#: Deep enough for any legitimate request; shallow enough that the C JSON parser raises
#: RecursionError (FastAPI's 400) long before it overflows a thread's 8 MB C stack.
RECURSION_LIMIT = 10_000


def cap_recursion_limit() -> None:
    """Undo py_ecc's import-time `sys.setrecursionlimit(100000)` (web3 imports it): with that
    limit, `json.loads` of a 200 kB body of nested brackets, which FastAPI parses for every
    JSON route before authentication, overflowed the C stack and killed the gateway process
    (segmentation fault) instead of answering 400. py_ecc is imported first, so a later first
    import cannot raise the limit again."""
    with contextlib.suppress(ImportError):
        importlib.import_module("py_ecc")
    sys.setrecursionlimit(min(sys.getrecursionlimit(), RECURSION_LIMIT))


class GatewayApp(FastAPI):
    """The FastAPI app with a lean front for its hot path: POST /v1/verify goes to
    `VerifyFastPath` (api/routes/verify.py), which answers well-formed verifications without
    FastAPI's per-request machinery and passes anything else to FastAPI. `fast_verify =
    False` sends every request through FastAPI (the reference the tests compare against)."""

    fast_verify = True
    #: Set by `create_app`: the per-caller limits every HTTP request passes first.
    limiter: RateLimiter | None = None

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._verify = VerifyFastPath(self, partial(FastAPI.__call__, self))

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document plus the answers every operation shares (`api.openapi`)."""
        if self.openapi_schema is None:
            self.openapi_schema = openapi.complete(super().openapi())
        return self.openapi_schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.limiter is not None
            and await ratelimit.refused(
                self.limiter, self.state.gateway, self.state.key_cache, scope, receive, send
            )
        ):
            return
        if (
            scope["type"] == "http"
            and scope["path"] == VERIFY_PATH
            and scope["method"] == "POST"
            and self.fast_verify
        ):
            await self._verify(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    gateway: Gateway | None = None,
    settings: Settings | None = None,
    background: bool = True,
    stop_gateway: bool | None = None,
) -> FastAPI:
    """Build the app around a gateway (made from settings when not given). The app stops
    the gateway at shutdown when `stop_gateway` (default: when it made the gateway)."""
    cap_recursion_limit()
    owned = gateway is None if stop_gateway is None else stop_gateway
    gw = gateway or Gateway.from_settings(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw.start(background=background)
        try:
            yield
        finally:
            if owned:
                gw.stop()

    app = GatewayApp(
        title="BorderLedger gateway", version="1.0.0", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.gateway = gw
    app.state.key_cache = {}
    # A gateway stand-in (the OpenAPI document alone, tests/api/test_fuzz.py) has no settings.
    app.limiter = RateLimiter(getattr(gw, "settings", None) or settings or Settings())
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
