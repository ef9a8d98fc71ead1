"""Organizations (the admin creates, lists and reads them) and who am I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from api.deps import AdminDep, GatewayDep, ReaderDep, SessionDep
from api.models import Organization, PendingWrite, Role
from api.schemas import (
    ErrorResponse,
    GtinBindingState,
    OrganizationCreate,
    OrganizationDetail,
    OrganizationList,
    OrganizationPublic,
    OrganizationSummary,
    WritePublic,
)
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


def _summary(state: organizations.OrgState) -> OrganizationSummary:
    org = state.org
    assert org.id is not None
    return OrganizationSummary(
        id=org.id,
        name=org.name,
        role=org.role,
        address=org.address,
        signer=org.signer_address,
        createdAt=org.created_at,
        accreditation=WritePublic.of(state.accreditation) if state.accreditation else None,
        revocation=WritePublic.of(state.revocation) if state.revocation else None,
        suspended=state.suspended,
    )


@router.get("", response_model=OrganizationList, responses=ERRORS)
def list_organizations(
    principal: AdminDep,
    session: SessionDep,
    kind: Annotated[Role | None, Query(description="only organizations of this kind")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> OrganizationList:
    """Every organization (registry admin), by name, a page at a time, with its
    accreditation on chain and whether it is suspended."""
    states, total = organizations.listing(session, kind, limit, offset)
    following = offset + len(states)
    return OrganizationList(
        organizations=[_summary(s) for s in states],
        total=total,
        nextOffset=following if following < total else None,
    )


@router.get(
    "/{organization_id}",
    response_model=OrganizationDetail,
    responses={**ERRORS, 404: {"model": ErrorResponse}},
)
def read_organization(
    organization_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: AdminDep,
    session: SessionDep,
) -> OrganizationDetail:
    """One organization (registry admin): its accreditation, suspension, every chain write
    about it and a rights holder's GTIN bindings."""
    state = organizations.state(session, organization_id)
    writes = organizations.writes_about(session, state.org)
    return OrganizationDetail(
        **_summary(state).model_dump(),
        writes=[WritePublic.of(w) for w in writes],
        gtins=[
            GtinBindingState(
                gtin=b.gtin, write=WritePublic.of(b.write) if b.write else None, movedTo=b.moved_to
            )
            for b in organizations.bindings(session, state.org, writes)
        ],
    )
