"""The chain-writes queue for the registry admin: list it, retry a failed write. Thin: the
service (`api.services.chain_writes`) holds the rules."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import AdminDep, GatewayDep, SessionDep
from api.openapi import DEFAULT_PAGE, PageLimit, errors
from api.schemas import ChainWritePublic
from api.services import chain_writes
from api.services.chain_writes import ListedWrite

router = APIRouter(prefix="/v1/chain-writes", tags=["chain writes"])
WriteId = Annotated[int, Path(ge=1, le=2**62)]


def write_public(item: ListedWrite) -> ChainWritePublic:
    w = item.write
    assert w.id is not None
    return ChainWritePublic(
        id=w.id,
        kind=w.kind,
        status=w.status.value,
        organizationId=w.organization_id,
        organization=item.organization,
        subject=item.subject,
        nonce=item.nonce,
        txHash=w.tx_hash,
        block=w.block_number,
        attempts=w.attempts,
        error=w.error,
        reorgs=w.reorgs,
        createdAt=w.created_at,
        updatedAt=w.updated_at,
        ageSeconds=item.age_seconds(),
    )


@router.get("", response_model=list[ChainWritePublic], responses=errors(401, 403, 422))
def list_writes(
    principal: AdminDep,
    session: SessionDep,
    status: Literal["queued", "sent", "done", "failed"] | None = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="page: ids below")] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[ChainWritePublic]:
    """The registry admin's view of every chain write the gateway accepted, newest first:
    state, kind, subject, nonce, transaction, block, attempts and last error. Pass the last
    id seen as `before` for the next page."""
    rows = chain_writes.listed(session, status, kind, before, limit)
    return [write_public(r) for r in rows]


@router.post(
    "/{write_id}/retry", response_model=ChainWritePublic, responses=errors(401, 403, 404, 409, 422)
)
def retry_write(
    write_id: WriteId, principal: AdminDep, session: SessionDep, gateway: GatewayDep
) -> ChainWritePublic:
    """Queue a failed write again (registry admin) and submit it at once: the outbox checks
    whether the chain already shows its effect, else signs it afresh. 409 for a write that is
    not failed (queued, sent or done: nothing to retry; a second retry is refused)."""
    write = chain_writes.retry(session, gateway, principal, write_id)
    assert write.id is not None
    return write_public(chain_writes.one(session, write.id))
