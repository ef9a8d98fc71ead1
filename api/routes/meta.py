"""Health, readiness and the public tag format."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import GatewayDep
from api.schemas import HealthResponse, ReadinessResponse, TagFormatPublic
from ledger.merkle import LEAF_ENCODING
from ledger.tags import DOMAIN_NAME, DOMAIN_VERSION, EIP712_TYPES, TAG_TYPE

router = APIRouter(tags=["meta"])


@router.get("/healthz", response_model=HealthResponse)
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz", response_model=ReadinessResponse, responses={503: {"model": ReadinessResponse}}
)
def readyz(gateway: GatewayDep) -> JSONResponse:
    """Readiness: database and chain reachable, and how far the index lags the chain."""
    checks: dict[str, Any] = {}
    try:
        with gateway.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        head = int(gateway.indexer.w3.eth.block_number)
        checks["chain"] = "ok"
    except Exception as exc:
        head = None
        checks["chain"] = f"unreachable: {type(exc).__name__}"
    snap = gateway.catalog.snapshot()
    lag = head - snap.index_block if head is not None and snap.index_block >= 0 else None
    checks["index"] = {"block": snap.index_block, "chainHead": head, "lagBlocks": lag}
    ready = checks["database"] == "ok" and checks["chain"] == "ok"
    return JSONResponse(
        {"status": "ready" if ready else "degraded", **checks}, status_code=200 if ready else 503
    )


@router.get("/v1/tag-format", response_model=TagFormatPublic)
def tag_format(gateway: GatewayDep) -> dict[str, Any]:
    """The EIP-712 domain and types tags are signed with, and the Merkle leaf encoding."""
    snap = gateway.catalog.snapshot()
    return {
        "eip712": {
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": snap.chain_id or None,
                "verifyingContract": gateway.registry,
            },
            "primaryType": "Tag",
            "types": {"Tag": EIP712_TYPES["Tag"]},
            "encodeType": TAG_TYPE,
        },
        "merkle": {
            "library": "@openzeppelin/merkle-tree StandardMerkleTree",
            "leafEncoding": list(LEAF_ENCODING),
            "leaf": "keccak256(keccak256(abi.encode(gtin, serial, salt)))",
            "node": "keccak256(sort(a, b))",
            "salt": "HMAC-SHA256(batchSecret, gtin || serial)",
        },
        "digitalLink": "https://<host>/01/<gtin>/10/<lot>/21/<serial>?sig=<base64url(65-byte signature)>",
        "batchId": "keccak256(abi.encode(gtin, lot))",
        "itemKey": "keccak256(abi.encode(gtin, serial))",
    }
