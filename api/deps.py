"""Typed dependencies, so a route's signature says what it needs (FastAPI template style):
the gateway, a database session, and the calling principal with the role the route requires.

Every role dependency is `require_role` (`api.principal`) with one of the role tuples named
there; the lean `/v1/verify` front applies the same function with the same tuple.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api import principal as roles
from api import users
from api.errors import Unauthenticated
from api.gateway import Gateway
from api.models import Role
from api.orgs import principal_for_key
from api.principal import Principal, require_org_admin, require_role
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


#: The session cookie of signed-in people (api/users.py, api/pages/).
SESSION_COOKIE = "bl_session"
#: The header an unsafe request authenticated by the session cookie carries its CSRF token in
#: (htmx sends it from the page's meta tag; forms send the `csrf_token` field instead).
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# The three ways to authenticate, as OpenAPI security schemes (any one will do): clients and
# schemathesis then know them as credentials, not as header parameters to fill with data.
# `current_principal` reads the raw headers itself (`authenticate` names each problem).
BEARER = HTTPBearer(
    scheme_name="apiKeyBearer", auto_error=False, description="Authorization: Bearer <API key>"
)
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", scheme_name="apiKeyHeader", auto_error=False, description="the API key"
)
SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="session",
    auto_error=False,
    description="a person signed in on the pages; unsafe methods also need X-CSRF-Token",
)


async def current_principal(
    request: Request,
    gateway: GatewayDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    _api_key: Annotated[str | None, Security(API_KEY_HEADER)],
    _session: Annotated[str | None, Security(SESSION)],
) -> Principal:
    """The caller: an API key's principal, or, without a key, the person the session cookie
    signs in — whose unsafe requests must carry the session's CSRF token in `X-CSRF-Token`."""
    authorization = request.headers.get("authorization")
    x_api_key = request.headers.get("x-api-key")
    token = request.cookies.get(SESSION_COOKIE)
    if x_api_key is None and not authorization and token:
        return session_principal(gateway, token, request.method, request.headers.get(CSRF_HEADER))
    return authenticate(gateway, request.app.state.key_cache, authorization, x_api_key)


def session_principal(gateway: Gateway, token: str, method: str, csrf: str | None) -> Principal:
    """The principal of a session cookie, looked up on every request (a disabled user is
    signed out at once); `Unauthenticated` for an unknown or expired session, `Forbidden`
    for an unsafe request without the session's CSRF token."""
    with Session(gateway.engine, expire_on_commit=False) as session:
        signed_in = users.session_for(session, token)
    if signed_in is None:
        raise Unauthenticated("your session has ended; sign in again")
    if method not in SAFE_METHODS and not users.csrf_matches(signed_in.csrf_token, csrf):
        raise PermissionDenied("missing or wrong CSRF token (X-CSRF-Token)")
    return signed_in.principal


def authenticate(
    gateway: Gateway,
    cache: dict[str, tuple[float, Principal]],
    authorization: str | None,
    x_api_key: str | None,
) -> Principal:
    """The principal an API key authenticates, from the request's `Authorization` and
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
        principal = principal_for_key(session, key)
    if principal is None:
        cache.pop(key, None)
        raise Unauthenticated("unknown or revoked API key")
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now, principal)
    return principal


#: Any authenticated caller, whatever its role (routes that check a role take one below).
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def role_rule(*allowed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting a principal whose role is one of `allowed` (`require_role`).
    `async`: a role check is a comparison, not worth a threadpool hop."""

    async def check(principal: PrincipalDep) -> Principal:
        return require_role(principal, *allowed)

    return check


AdminDep = Annotated[Principal, Depends(role_rule(*roles.ADMINS))]
HolderDep = Annotated[Principal, Depends(role_rule(*roles.HOLDERS))]
OfficerDep = Annotated[Principal, Depends(role_rule(*roles.OFFICERS))]
HolderOrAdminDep = Annotated[Principal, Depends(role_rule(*roles.HOLDERS_AND_ADMINS))]
VerifierDep = Annotated[Principal, Depends(role_rule(*roles.VERIFIERS))]
ReaderDep = Annotated[Principal, Depends(role_rule(*roles.READERS))]


async def _org_admin(principal: ReaderDep) -> Principal:
    return require_org_admin(principal)


#: The administrator of the caller's own organization (any role): an API key, or a user whose
#: role in the organization is admin. Manages its users, keys and audit trail.
OrgAdminDep = Annotated[Principal, Depends(_org_admin)]
