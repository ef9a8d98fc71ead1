"""Typed dependencies, so a route's signature says what it needs (FastAPI template style)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from api.errors import Unauthenticated
from api.gateway import Gateway
from api.models import Organization, Role
from api.orgs import organization_for_key
from ledger.errors import PermissionDenied

KEY_CACHE_SECONDS = 10.0


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def get_session(gateway: GatewayDep) -> Iterator[Session]:
    with Session(gateway.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def current_organization(
    request: Request,
    gateway: GatewayDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="API key (alternative header)")] = None,
) -> Organization:
    return authenticate(gateway, request.app.state.key_cache, authorization, x_api_key)


def authenticate(
    gateway: Gateway,
    cache: dict[str, tuple[float, Organization]],
    authorization: str | None,
    x_api_key: str | None,
) -> Organization:
    """The organization an API key belongs to, from the request's `Authorization` and
    `X-API-Key` header values; `Unauthenticated` when there is none. Plain (no FastAPI), so
    the lean /v1/verify endpoint authenticates with the very same code."""
    key = x_api_key
    if key is None and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            key = value.strip()
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    # Keys are looked up once per KEY_CACHE_SECONDS per process: verification stays free of
    # per-request queries, and a revoked key stops working within that time.
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
        return hit[1]
    with Session(gateway.engine, expire_on_commit=False) as session:
        org = organization_for_key(session, key)
    if org is None:
        cache.pop(key, None)
        raise Unauthenticated("unknown or revoked API key")
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now, org)
    return org


CurrentOrg = Annotated[Organization, Depends(current_organization)]


def require(org: Organization, *roles: Role) -> Organization:
    if org.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"organization {org.name!r} is a {org.role.value}; this needs: {allowed}"
        )
    return org
