"""Auditor grants: the registry admin says what an auditor reads (every rights holder's
records, or named holders'); the auditor reads its own grants. Logic: `api.services.grants`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from api import principal as roles
from api.deps import AdminDep, SessionDep, role_rule
from api.principal import Principal
from api.schemas import AuditorGrantPublic, AuditorGrantUpdate, ErrorResponse
from api.services import grants

router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422)
}
AuditorId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the auditor's organization id")]
AdminOrAuditorDep = Annotated[Principal, Depends(role_rule(*roles.ADMINS_AND_AUDITORS))]


def _out(organization_id: int, every: bool, holders: list[int]) -> AuditorGrantPublic:
    return AuditorGrantPublic(organizationId=organization_id, all=every, holders=holders)


@router.get("/{organization_id}/grants", response_model=AuditorGrantPublic, responses=ERRORS)
def get_grants(
    organization_id: AuditorId, principal: AdminOrAuditorDep, session: SessionDep
) -> AuditorGrantPublic:
    """What the auditor may read (the admin: any auditor's; an auditor: its own)."""
    grants.auditor_of(session, principal, organization_id)
    return _out(organization_id, *grants.grants(session, organization_id))


@router.put("/{organization_id}/grants", response_model=AuditorGrantPublic, responses=ERRORS)
def put_grants(
    organization_id: AuditorId, body: AuditorGrantUpdate, principal: AdminDep, session: SessionDep
) -> AuditorGrantPublic:
    """Replace what the auditor may read (registry admin): `{"all": true}` for every rights
    holder's records, `{"holders": [ids]}` for named ones, `{}` for nothing. Idempotent."""
    grants.auditor_of(session, principal, organization_id)
    return _out(
        organization_id, *grants.put_grants(session, organization_id, body.all, body.holders)
    )
