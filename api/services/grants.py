"""Auditor grants: what the registry admin lets an auditor read (every rights holder's
records, or named holders'). `api.scoping.view_of` applies them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlmodel import Session, col, select

from api.models import AuditorGrant, Organization, Role
from api.principal import Principal
from ledger.errors import InvalidInput, NotFound


def auditor_of(session: Session, principal: Principal, organization_id: int) -> Organization:
    """The auditor whose grants are asked for: any for the admin, itself for an auditor;
    another organization is not found (its grants are not the caller's to learn), and an
    organization that is no auditor has none (422)."""
    org = session.get(Organization, organization_id)
    if org is None or (
        principal.role != Role.ADMIN and organization_id != principal.organization_id
    ):
        raise NotFound(f"no auditor {organization_id}")
    if org.role != Role.AUDITOR:
        raise InvalidInput(f"organization {org.name!r} is a {org.role.value}, not an auditor")
    return org


def grants(session: Session, organization_id: int) -> tuple[bool, list[int]]:
    """(every holder granted, the holders granted by name)."""
    rows = session.exec(
        select(AuditorGrant.holder_id).where(AuditorGrant.auditor_id == organization_id)
    ).all()
    return any(h is None for h in rows), sorted(h for h in rows if h is not None)


def put_grants(
    session: Session, organization_id: int, every: bool, holders: Sequence[int]
) -> tuple[bool, list[int]]:
    """Replace the auditor's grants, in one transaction (idempotent). Refused (422, nothing
    changed) when `all` comes with named holders or a named organization is no rights
    holder."""
    wanted = sorted(set(holders))
    if every and wanted:
        raise InvalidInput("grant either all holders or named holders, not both")
    if wanted:
        found = {
            o.id: o
            for o in session.exec(
                select(Organization).where(col(Organization.id).in_(wanted))
            ).all()
        }
        bad = [h for h in wanted if h not in found or found[h].role != Role.RIGHTS_HOLDER]
        if bad:
            raise InvalidInput(
                f"not rights holders: organization(s) {', '.join(map(str, bad))}; "
                "an auditor is granted rights holders' records"
            )
    session.execute(delete(AuditorGrant).where(col(AuditorGrant.auditor_id) == organization_id))
    if every:
        session.add(AuditorGrant(auditor_id=organization_id, holder_id=None))
    for holder in wanted:
        session.add(AuditorGrant(auditor_id=organization_id, holder_id=holder))
    session.commit()
    return grants(session, organization_id)
