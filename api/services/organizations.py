"""Organizations for the routes: creating one (with its accreditation and signer on
chain), and what the caller's own organization wrote recently."""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.gateway import Gateway
from api.models import Organization, PendingWrite, Role
from api.orgs import create_organization
from api.outbox import enqueue
from api.principal import Principal
from api.schemas import OrganizationCreate


def create(
    session: Session, gateway: Gateway, principal: Principal, body: OrganizationCreate
) -> tuple[Organization, str, list[PendingWrite]]:
    """Create an organization and its first API key; rights holders and customs agencies are
    accredited on chain (and a holder's signing key registered) by writes queued here and
    submitted now. Returns the organization, its key (shown once) and those writes."""
    admin = principal.organization
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
    return org, key, [w for w in fresh if w is not None]


def recent_writes(session: Session, principal: Principal, limit: int = 20) -> list[PendingWrite]:
    """The caller's organization's latest chain writes, newest first."""
    return list(
        session.exec(
            select(PendingWrite)
            .where(PendingWrite.organization_id == principal.organization_id)
            .order_by(col(PendingWrite.id).desc())
            .limit(limit)
        ).all()
    )
