"""Organizations (admin creates them) and who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from api.models import Organization, PendingWrite
from api.schemas import ErrorResponse, OrganizationCreate, OrganizationPublic, WritePublic
from api.services import organizations

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}


def _out(
    org: Organization, writes: list[PendingWrite], api_key: str | None = None
) -> OrganizationPublic:
    assert org.id is not None
    return OrganizationPublic(
        id=org.id,
        name=org.name,
        role=org.role,
        address=org.address,
        signer=org.signer_address,
        apiKey=api_key,
        writes=[WritePublic.of(w) for w in writes],
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=OrganizationPublic, responses=ERRORS
)
def create(
    body: OrganizationCreate, principal: AdminDep, session: SessionDep, gateway: GatewayDep
) -> OrganizationPublic:
    """Create an organization and its API key (shown once). Rights holders and customs
    agencies are accredited on chain, and a rights holder's signing key is registered."""
    org, key, writes = organizations.create(session, gateway, principal, body)
    return _out(org, writes, key)


@router.get("/me", response_model=OrganizationPublic, responses=ERRORS)
def me(principal: ReaderDep, session: SessionDep) -> OrganizationPublic:
    """The calling organization, with its recent chain writes."""
    writes = organizations.recent_writes(session, principal)
    return _out(principal.organization, writes)
