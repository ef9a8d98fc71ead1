"""Organizations for the routes: creating one (with its accreditation and signer on
chain), what the caller's own organization wrote recently, and the registry admin's view
of every organization (its accreditation, suspension and GTIN bindings on chain)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from api.gateway import Gateway
from api.models import (
    IndexedGtinBinding,
    IndexedPrefixBinding,
    Organization,
    PendingWrite,
    Role,
    WriteStatus,
)
from api.orgs import create_organization
from api.outbox import enqueue
from api.principal import Principal
from api.schemas import OrganizationCreate
from ledger.errors import NotFound


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


#: Kinds of writes that bind a GTIN to a holder (their idempotency key ends with the holder).
BIND_KINDS = ("bind_gtin", "reassign_gtin")
#: Kinds of writes that bind or unbind a company prefix (key: kind:prefix:holder:generation).
PREFIX_KINDS = ("bind_prefix", "unbind_prefix")


def accreditation_key(org: Organization) -> str | None:
    """The idempotency key of the organization's accreditation write (None: the kind has no
    accreditation on chain, as auditors and the admin)."""
    if org.role == Role.RIGHTS_HOLDER and org.address:
        return f"accredit:{org.address}"
    if org.role == Role.CUSTOMS and org.address:
        return f"agency:{org.address}"
    return None


def revocation_key(org: Organization) -> str | None:
    """The key `api.services.rights.revoke_holder` stores the holder's revocation under."""
    return f"revoke_holder:{org.address}" if org.role == Role.RIGHTS_HOLDER else None


@dataclass
class OrgState:
    """An organization as the registry admin sees it: its accreditation and suspension
    writes (their progress: queued, sent, on chain with block and transaction, failed)."""

    org: Organization
    accreditation: PendingWrite | None
    revocation: PendingWrite | None

    @property
    def suspended(self) -> bool:
        """On chain: the revocation landed (revocation is final on the registry)."""
        return self.revocation is not None and self.revocation.status == WriteStatus.DONE


def _writes_by_key(session: Session, keys: Sequence[str]) -> dict[str, PendingWrite]:
    if not keys:
        return {}
    rows = session.exec(select(PendingWrite).where(col(PendingWrite.idempotency_key).in_(keys)))
    return {w.idempotency_key: w for w in rows.all()}


def _states(session: Session, orgs: Sequence[Organization]) -> list[OrgState]:
    keys = [k for o in orgs for k in (accreditation_key(o), revocation_key(o)) if k]
    writes = _writes_by_key(session, keys)
    out = []
    for o in orgs:
        accredit, revoke = accreditation_key(o), revocation_key(o)
        out.append(
            OrgState(
                o,
                writes.get(accredit) if accredit else None,
                writes.get(revoke) if revoke else None,
            )
        )
    return out


def listing(
    session: Session, kind: Role | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[OrgState], int]:
    """Organizations by name (of one kind, or all), a page of them, and how many match:
    two queries for the orgs and one for their accreditation and suspension writes."""
    query = select(Organization)
    count = select(func.count()).select_from(Organization)
    if kind is not None:
        query = query.where(Organization.role == kind)
        count = count.where(col(Organization.role) == kind)
    orgs = list(
        session.exec(query.order_by(col(Organization.name)).offset(offset).limit(limit)).all()
    )
    return _states(session, orgs), int(session.exec(count).one())


def state(session: Session, organization_id: int) -> OrgState:
    """One organization's state, or NotFound."""
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id}")
    return _states(session, [org])[0]


@dataclass
class Binding:
    """A GTIN bound (or being bound) to the holder: the write's progress, and whether the
    index now shows the GTIN with another holder (reassigned away)."""

    gtin: str
    write: PendingWrite | None
    moved_to: str | None = None


def writes_about(session: Session, org: Organization, limit: int = 200) -> list[PendingWrite]:
    """The chain writes about `org`, oldest first: its accreditation, signer key, GTIN
    bindings and suspension (most are the admin's writes, found by their idempotency keys)."""
    if not org.address:
        return []
    conditions = [col(PendingWrite.idempotency_key) == k for k in _own_keys(org)]
    # Bindings are the registry admin's writes (few: one per organization or GTIN), so the
    # LIKE on their keys looks at those rows only, never at every batch's registration.
    admins = select(Organization.id).where(Organization.role == Role.ADMIN)
    conditions.append(
        and_(
            col(PendingWrite.organization_id).in_(admins),
            col(PendingWrite.kind).in_(BIND_KINDS + PREFIX_KINDS),
            or_(
                *(
                    col(PendingWrite.idempotency_key).like(f"{kind}:%:{org.address}")
                    for kind in BIND_KINDS
                ),
                *(
                    col(PendingWrite.idempotency_key).like(f"{kind}:%:{org.address}:%")
                    for kind in PREFIX_KINDS
                ),
            ),
        )
    )
    return list(
        session.exec(
            select(PendingWrite).where(or_(*conditions)).order_by(col(PendingWrite.id)).limit(limit)
        ).all()
    )


def _own_keys(org: Organization) -> list[str]:
    keys = [accreditation_key(org), revocation_key(org)]
    if org.signer_address:
        keys.append(f"signer:{org.signer_address}")
    return [k for k in keys if k]


@dataclass
class PrefixBinding:
    """A company prefix of the holder: bound on chain (as indexed), and the latest write
    about it (its bind or unbind on its way, or failed)."""

    prefix: str
    bound: bool
    write: PendingWrite | None


def prefix_bindings(
    session: Session, org: Organization, writes: Sequence[PendingWrite]
) -> list[PrefixBinding]:
    """The company prefixes bound to the holder, and those a write is binding or unbinding:
    the index says what is bound, except that a landed write of the gateway wins (the index
    may not have followed it yet)."""
    if org.role != Role.RIGHTS_HOLDER or not org.address:
        return []
    indexed = session.exec(
        select(IndexedPrefixBinding).where(IndexedPrefixBinding.holder == org.address)
    ).all()
    found = {row.prefix: PrefixBinding(row.prefix, True, None) for row in indexed}
    for write in writes:  # oldest first: the latest write about a prefix stays
        if write.kind in PREFIX_KINDS:
            prefix = str(write.payload["prefix"])
            found.setdefault(prefix, PrefixBinding(prefix, False, None)).write = write
    shown = []
    for prefix in sorted(found):
        entry, latest = found[prefix], found[prefix].write
        if latest is not None and latest.status == WriteStatus.DONE:
            entry.bound = latest.kind == "bind_prefix"
        if entry.bound or (latest is not None and latest.status != WriteStatus.DONE):
            shown.append(entry)
    return shown


def bindings(session: Session, org: Organization, writes: Sequence[PendingWrite]) -> list[Binding]:
    """The GTINs bound to the holder: those its bind writes name (with their progress) and
    those the chain's index shows bound to it some other way, by GTIN."""
    if org.role != Role.RIGHTS_HOLDER or not org.address:
        return []
    found: dict[str, Binding] = {}
    for write in writes:
        if write.kind in BIND_KINDS:
            found[str(write.payload["gtin"])] = Binding(str(write.payload["gtin"]), write)
    indexed = session.exec(
        select(IndexedGtinBinding).where(
            or_(
                col(IndexedGtinBinding.holder) == org.address,
                col(IndexedGtinBinding.gtin).in_(list(found)),
            )
        )
    ).all()
    for row in indexed:
        if row.holder == org.address:
            found.setdefault(row.gtin, Binding(row.gtin, None))
        elif row.gtin in found:
            found[row.gtin].moved_to = row.holder
    return [found[g] for g in sorted(found)]
