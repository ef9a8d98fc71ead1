"""What the OpenAPI document says beyond each route's own declarations: the answers every
operation can give, whatever route it is.

Routes declare what is theirs (`responses=errors(403, 404, 409)`: a role rule, an object
that may not exist, a state conflict). `complete` adds, to every operation of the generated
document, the answers of the machinery in front of all of them, so a client generated from
the document (and schemathesis' conformance checks) knows them too:

- 429 with `Retry-After`: the rate limits (api/ratelimit.py) run before any route;
- 401 wherever the operation needs credentials (its `security`: an API key or a session);
- 422 wherever it takes parameters or a body (FastAPI's validation, `api.errors`);
- 400 and 413 wherever it takes a body (a body that is no JSON at all; one over the size
  limit, docs/limits.md).

`PageLimit` is the `limit` parameter of every list route: one cap, one description.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from api.schemas import ErrorResponse

#: The most items one page of any list route returns (docs/limits.md).
MAX_PAGE = 1000
DEFAULT_PAGE = 100

PageLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PAGE,
        description=f"most items to return (1..{MAX_PAGE}; default {DEFAULT_PAGE}), newest first",
    ),
]

#: What each error status means wherever it is declared.
MEANING = {
    400: "the body is not JSON (code bad_request / http_error)",
    401: "missing, unknown or revoked API key (code unauthenticated)",
    403: "the caller's role may not do this (code forbidden)",
    404: "no such object, or not one the caller may see (code not_found)",
    409: "the object's state does not allow it (code conflict or chain_rejected)",
    413: "the body is over the size limit (code payload_too_large)",
    422: "a parameter or the body is invalid; `details` names each field (code invalid_input)",
    429: "over a rate limit of the caller or its address; retry after `Retry-After` seconds "
    "(code rate_limited)",
    503: "the chain or a gateway key is unavailable; retry later "
    "(code chain_unavailable / key_unavailable)",
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with the JSON error body and its meaning."""
    return {
        status: {"model": ErrorResponse, "description": MEANING.get(status, "error")}
        for status in statuses
    }


def _error_response(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": MEANING[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    if status == 429:
        answer["headers"] = RETRY_AFTER
    return answer


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the answers every operation shares (module docstring) to `document`, in place."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete", "head"):
                continue
            parameters = operation.get("parameters", [])
            statuses = [429]
            if operation.get("security"):
                statuses.append(401)
            if parameters or "requestBody" in operation:
                statuses.append(422)
            if "requestBody" in operation:
                statuses += [400, 413]
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(str(status), _error_response(status))
            if "429" in responses:
                responses["429"].setdefault("headers", RETRY_AFTER)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorResponse" not in components:
        components["ErrorResponse"] = ErrorResponse.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(components["ErrorResponse"].pop("$defs", {}))
    return document
