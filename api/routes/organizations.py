"""Organizations (admin creates them) and who am I."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from sqlmodel import col, select

from api.deps import CurrentOrg, GatewayDep, SessionDep, require
from api.models import Organization, PendingWrite, Role
from api.orgs import create_organization
from api.outbox import enqueue
from api.schemas import ErrorOut, OrganizationCreate, OrganizationOut, WriteOut

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    409: {"model": ErrorOut},
    422: {"model": ErrorOut},
}


def _out(
    org: Organization, writes: list[PendingWrite], api_key: str | None = None
) -> OrganizationOut:
    assert org.id is not None
    return OrganizationOut(
        id=org.id,
        name=org.name,
        role=org.role,
        address=org.address,
        signer=org.signer_address,
        apiKey=api_key,
        writes=[WriteOut.of(w) for w in writes],
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=OrganizationOut, responses=ERRORS
)
def create(
    body: OrganizationCreate, admin: CurrentOrg, session: SessionDep, gateway: GatewayDep
) -> OrganizationOut:
    """Create an organization and its API key (shown once). Rights holders and customs
    agencies are accredited on chain, and a rights holder's signing key is registered."""
    require(admin, Role.ADMIN)
    assert admin.id is not None
    org, key = create_organization(session, body.name, body.role, gateway.settings.secret_key)
    assert org.id is not None
    writes = []
    if body.role == Role.RIGHTS_HOLDER:
        writes.append(
            enqueue(
                session,
                admin.id,
                "accredit_holder",
                {"address": org.address, "name": org.name, "recordation": body.recordation},
                f"accredit:{org.address}",
            )
        )
        writes.append(
            enqueue(
                session,
                org.id,
                "add_signer",
                {"signer": org.signer_address},
                f"signer:{org.signer_address}",
            )
        )
    elif body.role == Role.CUSTOMS:
        writes.append(
            enqueue(
                session,
                admin.id,
                "accredit_agency",
                {"address": org.address, "name": org.name},
                f"agency:{org.address}",
            )
        )
    session.commit()
    if org.address and gateway.settings.environment == "dev":
        gateway.writer.fund(admin, org.address)
    for write in writes:
        assert write.id is not None
        gateway.writer.process(only=write.id)
    session.expire_all()
    fresh = [session.get(PendingWrite, w.id) for w in writes]
    return _out(org, [w for w in fresh if w is not None], key)


@router.get("/me", response_model=OrganizationOut, responses=ERRORS)
def me(org: CurrentOrg, session: SessionDep) -> OrganizationOut:
    """The calling organization, with its recent chain writes."""
    writes = session.exec(
        select(PendingWrite)
        .where(PendingWrite.organization_id == org.id)
        .order_by(col(PendingWrite.id).desc())
        .limit(20)
    ).all()
    return _out(org, list(writes))
