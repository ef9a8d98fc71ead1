"""Domain errors → HTTP answers, in one place.

| error                       | status | code              |
| --------------------------- | ------ | ----------------- |
| InvalidInput (and subclasses) | 422  | invalid_input     |
| Unauthenticated             | 401    | unauthenticated   |
| PermissionDenied            | 403    | forbidden         |
| NotFound                    | 404    | not_found         |
| Conflict                    | 409    | conflict          |
| PayloadTooLarge             | 413    | payload_too_large |
| ContractReverted            | 409    | chain_rejected    |
| ChainError (RPC down, …)    | 503    | chain_unavailable |
| KeystoreError               | 503    | key_unavailable   |
| any other BorderLedgerError | 400    | bad_request       |

Detector errors are in the same tree: bad input is an `InvalidInput` (422), contention that
outlasted the retries a `Conflict` (409).

`KeystoreError` is 503, not 500 and not 4xx: in the gateway it means one of the gateway's own
keys or sealed secrets cannot be opened (a stored secret that does not decrypt under
`BORDERLEDGER_SECRET_KEY`, a signing key that is not configured). Nothing the caller sent can
fix that, so it is no 4xx; it is a known operating condition that an operator repairs by
restoring the key, not a bug, so it is no 500; and, like an unreachable chain, the same
request succeeds once the key is back — which is what 503 says.

Every body is `{"error": {"code": …, "message": …}}`; nothing answers 500 on purpose: only a
bug (an exception outside this tree) does, through `unexpected_error`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import (
    BorderLedgerError,
    ChainError,
    Conflict,
    ContractReverted,
    InvalidEpcisDocument,
    InvalidInput,
    KeystoreError,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger("borderledger.api")


class Unauthenticated(BorderLedgerError):
    pass


class PayloadTooLarge(InvalidInput):
    pass


def _body(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def status_for(exc: BorderLedgerError) -> tuple[int, str]:
    if isinstance(exc, PayloadTooLarge):
        return 413, "payload_too_large"
    if isinstance(exc, InvalidInput):
        return 422, "invalid_input"
    if isinstance(exc, Unauthenticated):
        return 401, "unauthenticated"
    if isinstance(exc, PermissionDenied):
        return 403, "forbidden"
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, Conflict):
        return 409, "conflict"
    if isinstance(exc, ContractReverted):
        return 409, "chain_rejected"
    if isinstance(exc, ChainError):
        return 503, "chain_unavailable"
    if isinstance(exc, KeystoreError):
        return 503, "key_unavailable"
    return 400, "bad_request"


def domain_error(exc: BorderLedgerError) -> JSONResponse:
    """The answer to a domain error (FastAPI's handler and the lean /v1/verify front)."""
    status, code = status_for(exc)
    extra: dict[str, object] = {}
    if isinstance(exc, ContractReverted):
        extra = {"revert": exc.name, "args": {k: str(v) for k, v in exc.error_args.items()}}
    elif isinstance(exc, InvalidEpcisDocument) and exc.problems:
        extra = {"problems": list(exc.problems)}
    elif isinstance(exc, InvalidInput) and getattr(exc, "problems", None):
        # every problem of a file or document at once (guides.errors.InvalidGuide)
        extra = {"problems": [str(p) for p in getattr(exc, "problems", [])]}
    return _body(status, code, str(exc), **extra)


def validation_error(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> dict[str, Any]:
    """The error object of a request that does not validate (pydantic's `errors()`), each
    problem named by its field path under `prefix`: FastAPI's 422 and a batch's bad item
    (POST /v1/verify/batch) say it the same way."""
    details = [
        {
            "field": ".".join(str(p) for p in (*prefix, *e.get("loc", ()))),
            # our validators' own words, without pydantic's "Value error, " in front
            "problem": str(e.get("msg", "")).removeprefix("Value error, "),
        }
        for e in errors
    ]
    first = details[0] if details else {"field": "", "problem": "invalid request"}
    return {
        "code": "invalid_input",
        "message": f"{first['field']}: {first['problem']}",
        "details": details,
    }


def unexpected_error(method: str, path: str) -> JSONResponse:
    """The answer to a bug: logged with its traceback (call it inside `except`), never shown."""
    log.exception("unexpected error on %s %s", method, path)
    return _body(500, "internal_error", "internal error; the gateway logged it")


def allowed_methods(request: Request) -> str:
    """Every method the request's path answers, as the OpenAPI document lists them (Starlette
    names only those of the first route matching the path, and each method may be a route of
    its own)."""
    app = request.app
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
                [m.upper() for m in item if m in ("get", "put", "post", "patch", "delete")],
            )
            for path, item in app.openapi()["paths"].items()
        ]
        app.state.allow_table = table
    methods = {m for pattern, names in table if pattern.match(request.url.path) for m in names}
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(BorderLedgerError)
    async def _domain(_: Request, exc: BorderLedgerError) -> JSONResponse:
        return domain_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_error(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Its headers too: a 405 says which methods the path has (`Allow`, RFC 9110 15.5.6).
        answer = _body(exc.status_code, "http_error", str(exc.detail))
        answer.headers.update(exc.headers or {})
        if exc.status_code == 405:
            answer.headers["Allow"] = allowed_methods(request)
        return answer

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error(request.method, request.url.path)
