"""The signed trust bundle for offline scanners, and the public key that signs it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import GatewayDep, OfficerDep
from api.schemas import ErrorResponse, GatewayKeyPublic, TrustBundlePublic
from api.trust import gateway_signing_key, signed_bundle
from ledger.trustbundle import key_description

router = APIRouter(prefix="/v1", tags=["trust bundle"])


@router.get(
    "/trust-bundle",
    response_model=TrustBundlePublic,
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
def trust_bundle(principal: OfficerDep, gateway: GatewayDep) -> dict[str, Any]:
    """The gateway's chain index for offline verification, signed with its Ed25519 key.

    For customs agencies and admins. Verify the signature with the key you pinned (see
    `/v1/trust-bundle/key`) before reading the payload; docs/formats.md describes both."""
    return signed_bundle(gateway)


@router.get("/trust-bundle/key", response_model=GatewayKeyPublic)
def trust_bundle_key(gateway: GatewayDep) -> dict[str, str]:
    """The public key trust bundles are signed with (public: pin it on your devices)."""
    return key_description(gateway_signing_key(gateway))
