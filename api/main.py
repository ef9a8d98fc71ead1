"""The FastAPI application: wiring only (routes validate, call domain code, shape answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.gateway import Gateway
from api.routes import ROUTERS
from ledger.config import Settings

DESCRIPTION = """
Verification gateway of BorderLedger. Officers verify scanned tags and typed serials and get a
verdict with reasons and a proof they can check against the chain; rights holders enroll
batches and manage statuses; auditors read. Authenticate with `Authorization: Bearer <API key>`.
Errors are JSON: `{"error": {"code", "message"}}`.
"""


def create_app(
    gateway: Gateway | None = None, settings: Settings | None = None, background: bool = True
) -> FastAPI:
    """Build the app around a gateway (made from settings when not given)."""
    owned = gateway is None
    gw = gateway or Gateway.from_settings(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw.start(background=background)
        try:
            yield
        finally:
            if owned:
                gw.stop()

    app = FastAPI(
        title="BorderLedger gateway", version="1.0.0", description=DESCRIPTION, lifespan=lifespan
    )
    app.state.gateway = gw
    app.state.key_cache = {}
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
