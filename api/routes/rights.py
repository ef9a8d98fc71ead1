"""Rights on chain (admin): binding GTINs and GS1 company prefixes to rights holders,
revoking a rights holder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import AdminDep, GatewayDep, SessionDep
from api.openapi import errors
from api.schemas import (
    COMPANY_PREFIX,
    GtinBindingCreate,
    GtinBindingPublic,
    PrefixBindingCreate,
    PrefixBindingPublic,
    WritePublic,
)
from api.services import rights

router = APIRouter(prefix="/v1", tags=["rights"])
OrgId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the rights holder's organization id")]
ERRORS = errors(401, 403, 404, 409, 422)


@router.post(
    "/gtin-bindings",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=GtinBindingPublic,
    responses=ERRORS,
)
def bind_gtin(
    body: GtinBindingCreate, principal: AdminDep, session: SessionDep, gateway: GatewayDep
) -> GtinBindingPublic:
    """Bind a GTIN to a rights holder on chain (its recordation): only that holder registers
    batches of it. A GTIN bound to another holder moves only with `reassign: true`."""
    gtin, previous, write = rights.bind_gtin(
        session, gateway, principal, body.gtin, body.organizationId, body.reassign
    )
    return GtinBindingPublic(
        gtin=gtin,
        holder=str(write.payload["holder"]),
        previous=previous,
        write=WritePublic.of(write),
    )


@router.post(
    "/prefix-bindings",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PrefixBindingPublic,
    responses=ERRORS,
)
def bind_prefix(
    body: PrefixBindingCreate, principal: AdminDep, session: SessionDep, gateway: GatewayDep
) -> PrefixBindingPublic:
    """Bind a GS1 company prefix to a rights holder on chain: every GTIN under it that is not
    bound on its own is that holder's. A prefix bound to another holder is unbound first."""
    write = rights.bind_prefix(session, gateway, principal, body.prefix, body.organizationId)
    return PrefixBindingPublic(
        prefix=str(write.payload["prefix"]),
        holder=str(write.payload["holder"]),
        write=WritePublic.of(write),
    )


@router.delete(
    "/prefix-bindings/{prefix}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PrefixBindingPublic,
    responses=ERRORS,
)
def unbind_prefix(
    prefix: Annotated[
        str,
        Path(
            max_length=40,
            json_schema_extra={"pattern": COMPANY_PREFIX},  # ledger.gs1 checks it, saying why
            description="GS1 company prefix",
        ),
    ],
    principal: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
) -> PrefixBindingPublic:
    """Unbind a company prefix on chain. Batches registered under it keep their holder;
    GTINs bound on their own stay bound."""
    previous, write = rights.unbind_prefix(session, gateway, principal, prefix)
    return PrefixBindingPublic(
        prefix=str(write.payload["prefix"]), holder=previous, write=WritePublic.of(write)
    )


@router.post(
    "/organizations/{organization_id}/revocation",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WritePublic,
    responses=ERRORS,
)
def revoke_holder(
    organization_id: OrgId, principal: AdminDep, session: SessionDep, gateway: GatewayDep
) -> WritePublic:
    """Revoke a rights holder's accreditation on chain, for good. Its batches registered
    before stay as they were; it registers no batch, adds no key, changes no status."""
    return WritePublic.of(rights.revoke_holder(session, gateway, principal, organization_id))
