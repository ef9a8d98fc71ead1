"""Typed dependencies, so a route's signature says what it needs (FastAPI template style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from api.errors import Unauthenticated
from api.gateway import Gateway
from api.models import Organization, Role
from api.orgs import organization_for_key
from ledger.errors import PermissionDenied


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def get_session(gateway: GatewayDep) -> Iterator[Session]:
    with Session(gateway.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def current_organization(
    request: Request,
    gateway: GatewayDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="API key (alternative header)")] = None,
) -> Organization:
    key = x_api_key
    if key is None and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            key = value.strip()
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    cache: dict[str, Organization] = request.app.state.key_cache
    org = cache.get(key)
    if org is None:
        with Session(gateway.engine, expire_on_commit=False) as session:
            org = organization_for_key(session, key)
        if org is None:
            raise Unauthenticated("unknown or revoked API key")
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = org
    return org


CurrentOrg = Annotated[Organization, Depends(current_organization)]


def require(org: Organization, *roles: Role) -> Organization:
    if org.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(
            f"organization {org.name!r} is a {org.role.value}; this needs: {allowed}"
        )
    return org
