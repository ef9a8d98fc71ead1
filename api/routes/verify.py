"""POST /v1/verify: what an officer scanned → a verdict, reasons and a checkable proof.

The gateway's hot path. It is one FastAPI route (`verify_scan`: what the OpenAPI document
shows and schemathesis fuzzes) with a lean ASGI front (`VerifyFastPath`, put before FastAPI by
`api.main.GatewayApp`) that answers well-formed verifications itself and hands every other
request to FastAPI:

- FastAPI's per-request machinery (five middleware layers, dependency injection, its body and
  header handling, two exit stacks, the Response object) cost ~0.4 ms of CPU per
  verification, more than the verification itself (tag parsing, signature recovery, Merkle
  proof: ~0.15 ms). The front costs a few microseconds.
- The front reads the body, validates it with the route's own model (`VerifyRequest`), takes
  the API key from the same headers, authenticates with the same function
  (`api.deps.authenticate`), applies the same role rule (`require_role` with `VERIFIERS`, the
  rule of the route's `VerifierDep`) and calls the same service
  (`api.services.verify.answer_scan`): auth, role checks, verdicts and answers are the
  route's by construction; domain errors go through the same mapping
  (`api.errors.domain_error`).
- It serves a request only when FastAPI would accept its body as it stands (a JSON content
  type, a JSON object that validates). For anything else, such as a malformed, non-JSON or
  invalid body, FastAPI answers, so each of those error statuses and bodies stays FastAPI's
  (the JSON decode error before authentication, and so on).

tests/api/test_verify.py sends a corpus of good and bad requests through both and compares.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SESSION_COOKIE, GatewayDep, VerifierDep, authenticate
from api.errors import domain_error, unexpected_error
from api.principal import VERIFIERS, require_role
from api.ratelimit import RateLimiter, client_address
from api.schemas import (
    ErrorResponse,
    VerifyBatchRequest,
    VerifyBatchResponse,
    VerifyRequest,
    VerifyResponse,
)
from api.services.verify import answer_batch, answer_scan
from ledger.errors import BorderLedgerError

router = APIRouter(prefix="/v1", tags=["verification"])

PATH = "/v1/verify"


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse, "description": "a rights holder's scan of another brand"},
        422: {"model": ErrorResponse},
    },
)
async def verify_scan(body: VerifyRequest, principal: VerifierDep, gateway: GatewayDep) -> Response:
    """Verify a scanned tag, or a GTIN + serial typed from a label. Every call is recorded.

    `async` on purpose: verification is CPU-only (no I/O: the index snapshot is in memory and
    the scan record goes to a writer thread), so a threadpool hop per request would only add
    latency; only the detector step (database I/O) hops to the threadpool. The answer is
    serialised once, without re-validating the response model.

    A scan with a UN/LOCODE also goes to the diversion/clone detector (state in the database,
    one short transaction; plus the alerts a scan raises): `findings` are the alerts this scan
    raised."""
    return Response(await answer_scan(gateway, principal, body), media_type="application/json")


@router.post(
    "/verify/batch",
    response_model=VerifyBatchResponse,
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
async def verify_batch(
    body: VerifyBatchRequest, principal: VerifierDep, gateway: GatewayDep, request: Request
) -> Response:
    """Verify up to 100 scans in one request (a folder of photos, `borderledger scan`): one
    answer per item, in order, each what POST /v1/verify answers that item alone (`status`
    and `answer`, or `status` and `error`: a bad item does not stop the others). Same roles,
    scan records and detector as POST /v1/verify; the rate limit counts each item (items
    over it are answered 429 with `retryAfter`, nothing recorded)."""
    limiter: RateLimiter | None = getattr(request.app, "limiter", None)
    allowed, refusal = len(body.items), None
    if limiter is not None:  # the request itself counted the first item
        taken, refusal = await limiter.take(
            "verify", principal, client_address(request.scope), len(body.items) - 1
        )
        allowed = 1 + taken
    answer = await answer_batch(
        gateway,
        principal,
        body.items,
        allowed,
        orjson.dumps(refusal.error()) if refusal is not None else None,
    )
    return Response(answer, media_type="application/json")


# ------------------------------------------------------------------------- the fast path

_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})


class VerifyFastPath:
    """POST /v1/verify in front of the FastAPI app: well-formed requests answered here, the
    rest (whatever FastAPI might judge differently) passed on to the app (`fallback`)."""

    def __init__(self, app: FastAPI, fallback: ASGIApp) -> None:
        self.app = app
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: FastAPI's way
                await self.fallback(scope, _replay(b"".join(chunks), receive, message), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        body = _parse(scope, raw)
        if body is None:
            await self.fallback(scope, _replay(raw, receive), send)
            return
        authorization = x_api_key = None
        session_cookie = False
        for name, value in scope["headers"]:  # the first of each, as FastAPI's Header() takes
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"x-api-key" and x_api_key is None:
                x_api_key = value.decode("latin-1")
            elif name == b"cookie" and SESSION_COOKIE.encode() + b"=" in value:
                session_cookie = True
        if authorization is None and x_api_key is None and session_cookie:
            # A person signed in (no key): FastAPI's dependencies check the session and CSRF.
            await self.fallback(scope, _replay(raw, receive), send)
            return
        state = self.app.state
        try:
            principal = authenticate(state.gateway, state.key_cache, authorization, x_api_key)
            require_role(principal, *VERIFIERS)  # the rule of the route's `VerifierDep`
            answer = await answer_scan(state.gateway, principal, body)
        except BorderLedgerError as exc:
            await domain_error(exc)(scope, receive, send)
            return
        except Exception:
            await unexpected_error("POST", PATH)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(answer)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def _parse(scope: Scope, raw: bytes) -> VerifyRequest | None:
    """The request body as FastAPI would validate it, or None wherever FastAPI is to decide
    (another content type, an empty or malformed body, a body that does not validate)."""
    content_type = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.lower()
            break
    if content_type not in _JSON_TYPES or not raw:
        return None
    try:
        # orjson parses what it accepts exactly as json.loads (FastAPI's parser) does; what it
        # refuses (NaN, UTF-16, huge integers, deep nesting, …) FastAPI parses and judges.
        data: Any = orjson.loads(raw)
        if not isinstance(data, dict):
            return None
        return VerifyRequest.model_validate(data)
    except Exception:  # orjson.JSONDecodeError, ValidationError: FastAPI answers, its way
        return None


def _replay(raw: bytes, receive: Receive, first: Message | None = None) -> Receive:
    """`receive` as it was before the body was read: the body once, then the connection."""
    pending: list[Message] = [{"type": "http.request", "body": raw, "more_body": False}]
    if first is not None:
        pending.append(first)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
