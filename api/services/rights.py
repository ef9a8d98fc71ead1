"""GTIN bindings and rights-holder revocation for the routes: the registry admin's
recordation acts, written on chain through the outbox (idempotent, re-submitted after a
reorganization like accreditations).

A GTIN is bound to one rights holder; only that holder registers batches of it, and only the
admin moves it (`reassign`). The current owner is read from the chain, so a request that
would fail on chain is refused here with the owner named (409), not queued to fail."""

from __future__ import annotations

from sqlmodel import Session

from api.gateway import Gateway
from api.models import Organization, PendingWrite, Role
from api.outbox import enqueue
from api.principal import Principal
from chain.contract import RegistryClient
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.gs1 import normalize_gtin
from ledger.models import ZERO_ADDRESS


def _holder(session: Session, organization_id: int) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"no organization {organization_id}")
    if org.role != Role.RIGHTS_HOLDER or not org.address:
        raise InvalidInput(
            f"organization {organization_id} ({org.name}) is a {org.role.value}, "
            "not a rights holder: only rights holders own GTINs"
        )
    return org


def _submit(
    session: Session, gateway: Gateway, admin: Organization, kind: str, payload: dict[str, str]
) -> PendingWrite:
    assert admin.id is not None
    key = f"{kind}:" + ":".join(payload[k] for k in sorted(payload))
    write = enqueue(session, admin.id, kind, payload, key)
    session.commit()
    assert write.id is not None
    gateway.writer.process(only=write.id)
    session.expire_all()
    fresh = session.get(PendingWrite, write.id)
    assert fresh is not None
    return fresh


def _reader(gateway: Gateway) -> RegistryClient:
    return RegistryClient(gateway.writer.w3, gateway.registry)


def bind_gtin(
    session: Session,
    gateway: Gateway,
    principal: Principal,
    gtin: str,
    organization_id: int,
    reassign: bool,
) -> tuple[str, str | None, PendingWrite]:
    """Bind `gtin` to the rights holder `organization_id` (or, with `reassign`, move it
    there from its current owner). Returns (gtin, previous owner or None, the write)."""
    gtin = normalize_gtin(gtin)
    org = _holder(session, organization_id)
    assert org.address is not None
    owner = _reader(gateway).gtin_holder(gtin)
    previous = None if owner == ZERO_ADDRESS else owner
    if previous is not None and previous != org.address and not reassign:
        raise Conflict(
            f"GTIN {gtin} is bound to {previous}: reassigning it to {org.address} "
            'is an explicit act (send "reassign": true)'
        )
    kind = "reassign_gtin" if previous is not None and previous != org.address else "bind_gtin"
    write = _submit(
        session, gateway, principal.organization, kind, {"gtin": gtin, "holder": org.address}
    )
    return gtin, previous, write


def revoke_holder(
    session: Session, gateway: Gateway, principal: Principal, organization_id: int
) -> PendingWrite:
    """Revoke the rights holder's accreditation on chain, for good: it registers no batch,
    adds no key and changes no status any more; its earlier batches stay as they were."""
    org = _holder(session, organization_id)
    assert org.address is not None
    payload = {"address": org.address}
    return _submit(session, gateway, principal.organization, "revoke_holder", payload)
