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
  (`api.deps.authenticate`) and calls the same `answer_scan`: auth, role checks, verdicts and
  answers are the route's by construction; domain errors go through the same mapping
  (`api.errors.domain_error`).
- It serves a request only when FastAPI would accept its body as it stands (a JSON content
  type, a JSON object that validates). For anything else, such as a malformed, non-JSON or
  invalid body, FastAPI answers, so each of those error statuses and bodies stays FastAPI's
  (the JSON decode error before authentication, and so on).

tests/api/test_verify.py sends a corpus of good and bad requests through both and compares.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import CurrentOrg, GatewayDep, authenticate, require
from api.errors import domain_error, unexpected_error
from api.gateway import Gateway
from api.models import Organization, Role
from api.schemas import ErrorOut, VerifyRequest, VerifyResponse
from api.verification import Scanned, verify
from detector import Scan
from ledger.errors import BorderLedgerError
from ledger.verdicts import Reason, finding_reasons

router = APIRouter(prefix="/v1", tags=["verification"])

PATH = "/v1/verify"
_ROLES = (Role.CUSTOMS, Role.ADMIN, Role.RIGHTS_HOLDER)


@router.post(
    "/verify",
    response_model=VerifyResponse,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def verify_scan(body: VerifyRequest, org: CurrentOrg, gateway: GatewayDep) -> Response:
    """Verify a scanned tag, or a GTIN + serial typed from a label. Every call is recorded.

    `async` on purpose: verification is CPU-only (no I/O: the index snapshot is in memory and
    the scan record goes to a writer thread), so a threadpool hop per request would only add
    latency; only the detector step (database I/O) hops to the threadpool. The answer is
    serialised once, without re-validating the response model.

    A scan with a UN/LOCODE also goes to the diversion/clone detector (state in the database,
    one short transaction; plus the alerts a scan raises): `findings` are the alerts this scan
    raised."""
    return Response(await answer_scan(gateway, org, body), media_type="application/json")


async def answer_scan(gateway: Gateway, org: Organization, body: VerifyRequest) -> bytes:
    """The verification of one request, as the JSON bytes of the answer (both fronts).

    Everything that can refuse the request (role, unknown port, malformed tag) is checked
    before anything is recorded."""
    require(org, *_ROLES)
    location = body.location
    locode = location.unlocode if location else None
    if locode is not None:
        gateway.detection.check_location(locode)  # unknown port: 422, nothing recorded
    if body.tag is not None:
        scanned = Scanned.from_tag(body.tag)
    else:
        assert body.gtin is not None and body.serial is not None
        scanned = Scanned.from_fields(body.gtin, body.serial, body.lot)
    judgement = verify(gateway.catalog, scanned, stale_after=gateway.settings.stale_after_seconds)
    scanned_at = body.scanned_at or datetime.now(UTC)
    if scanned_at.tzinfo is None:
        scanned_at = scanned_at.replace(tzinfo=UTC)  # a time without offset is taken as UTC
    scan_id = str(uuid.uuid4())
    reasons = [r.value for r in judgement.reasons]
    findings = []
    if locode is not None:
        # The detector judges the scan against the item's route policy and earlier sightings.
        # Only a serial proven in its batch is attributed to the batch; any other read is an
        # unknown serial of the GTIN (input to the probing rule).
        # Its state is in the database: run it in the threadpool, off the event loop.
        in_batch = Reason.SERIAL_IN_BATCH in judgement.reasons
        found = await run_in_threadpool(
            gateway.detection.ingest,
            gateway.catalog.snapshot(),
            Scan(
                scan_id,
                scanned.gtin,
                scanned.serial,
                locode,
                scanned_at.timestamp(),
                judgement.batch_id if in_batch else None,
            ),
        )
        findings = [f.to_dict() for f in found]
        reasons += finding_reasons(reasons, (f.alert.alert_class for f in found))
    gateway.scans.record(
        {
            "scan_id": scan_id,
            "organization_id": org.id,
            "gtin": scanned.gtin,
            "lot": scanned.lot,
            "serial": scanned.serial,
            "batch_id": judgement.batch_id,
            "input_kind": scanned.kind,
            "location": locode,
            "latitude": location.latitude if location else None,
            "longitude": location.longitude if location else None,
            "scanned_at": scanned_at,
            "recorded_at": datetime.now(UTC),
            "verdict": judgement.verdict.value,
            "reasons": reasons,
            "index_block": judgement.index["block"],
        }
    )
    answer = {
        "verdict": judgement.verdict.value,
        "summary": judgement.summary,
        "reasons": reasons,
        "item": {"gtin": scanned.gtin, "lot": scanned.lot, "serial": scanned.serial},
        "product": judgement.product,
        "batchId": judgement.batch_id,
        "proof": judgement.proof,
        "index": judgement.index,
        "scanId": scan_id,
        "scannedAt": scanned_at.isoformat(),
        "location": location.model_dump() if location else None,
        "findings": findings,
    }
    return orjson.dumps(answer)


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
        for name, value in scope["headers"]:  # the first of each, as FastAPI's Header() takes
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"x-api-key" and x_api_key is None:
                x_api_key = value.decode("latin-1")
        state = self.app.state
        try:
            org = authenticate(state.gateway, state.key_cache, authorization, x_api_key)
            answer = await answer_scan(state.gateway, org, body)
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
