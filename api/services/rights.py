"""GTIN and company prefix bindings and rights-holder revocation for the routes: the registry
admin's recordation acts, written on chain through the outbox (idempotent, re-submitted after
a reorganization like accreditations).

A GTIN is bound to one rights holder; only that holder registers batches of it, and only the
admin moves it (`reassign`). The current owner is read from the chain, so a request that
would fail on chain is refused here with the owner named (409), not queued to fail.

A GS1 company prefix is bound to one rights holder too (all its GTINs not bound on their
own); it is unbound, not reassigned: moving a brand's whole range is two explicit acts."""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.gateway import Gateway
from api.models import Organization, PendingWrite, Role
from api.outbox import enqueue
from api.principal import Principal
from chain.contract import RegistryClient
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.gs1 import normalize_gtin, validate_company_prefix
from ledger.models import ZERO_ADDRESS


def holder_of(session: Session, organization_id: int) -> Organization:
    """The rights holder `organization_id` (NotFound, or InvalidInput for another kind)."""
    return _holder(session, organization_id)


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
    reader = _reader(gateway)
    if reader.rights_holder(org.address).revoked_at:
        # the chain would refuse it (a revoked holder is no active holder): said now, with
        # the holder named, rather than queued to fail
        raise Conflict(
            f"{org.name} is suspended (its accreditation was revoked on chain): "
            "no GTIN is bound to it any more"
        )
    owner = reader.gtin_holder(gtin)
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


def _generation(session: Session, kind: str, prefix: str) -> int:
    """How many `kind` writes about company `prefix` were ever queued: part of the other
    act's idempotency key, so a retried bind (or unbind) replays its write while a bind after
    an unbind (or the reverse) is a new act."""
    rows = session.exec(
        select(PendingWrite.id).where(
            col(PendingWrite.idempotency_key).startswith(f"{kind}:{prefix}:")
        )
    ).all()
    return len(rows)


def _stored(session: Session, gateway: Gateway, key: str) -> PendingWrite | None:
    """The write already queued under `key` (a retried request), pushed on, or None."""
    write = session.exec(select(PendingWrite).where(PendingWrite.idempotency_key == key)).first()
    if write is None:
        return None
    assert write.id is not None
    gateway.writer.process(only=write.id)
    session.expire_all()
    return session.get(PendingWrite, write.id)


def _queue(
    session: Session,
    gateway: Gateway,
    admin: Organization,
    kind: str,
    key: str,
    payload: dict[str, str],
) -> PendingWrite:
    assert admin.id is not None
    enqueue(session, admin.id, kind, payload, key)
    session.commit()
    stored = _stored(session, gateway, key)
    assert stored is not None
    return stored


def bind_prefix(
    session: Session, gateway: Gateway, principal: Principal, prefix: str, organization_id: int
) -> PendingWrite:
    """Bind the GS1 company `prefix` to the rights holder `organization_id`: its GTINs not
    bound on their own are that holder's. A retried request returns the same write; a prefix
    bound to another holder is refused with the owner named (unbind it first)."""
    prefix = validate_company_prefix(prefix)
    org = _holder(session, organization_id)
    assert org.address is not None
    key = f"bind_prefix:{prefix}:{org.address}:{_generation(session, 'unbind_prefix', prefix)}"
    replay = _stored(session, gateway, key)
    if replay is not None:
        return replay
    reader = _reader(gateway)
    if reader.rights_holder(org.address).revoked_at:
        raise Conflict(
            f"{org.name} is suspended (its accreditation was revoked on chain): "
            f"company prefix {prefix} cannot be bound to it"
        )
    owner = reader.company_prefix_holder(prefix)
    if owner != ZERO_ADDRESS:
        raise Conflict(
            f"company prefix {prefix} is already bound to {owner}"
            + ("" if owner == org.address else f": unbind it before binding it to {org.address}")
        )
    payload = {"prefix": prefix, "holder": org.address}
    return _queue(session, gateway, principal.organization, "bind_prefix", key, payload)


def unbind_prefix(
    session: Session,
    gateway: Gateway,
    principal: Principal,
    prefix: str,
    organization_id: int | None = None,
) -> tuple[str, PendingWrite]:
    """Unbind the bound company `prefix` (from the holder `organization_id` only, when given:
    a page about one holder never unbinds another's); returns (the holder it was bound to,
    the write). Batches registered under it keep their holder; GTINs bound on their own stay
    bound."""
    prefix = validate_company_prefix(prefix)
    generation = _generation(session, "bind_prefix", prefix)
    replays = session.exec(
        select(PendingWrite).where(
            col(PendingWrite.idempotency_key).startswith(f"unbind_prefix:{prefix}:"),
            col(PendingWrite.idempotency_key).endswith(f":{generation}"),
        )
    ).all()
    for replay in replays:
        stored = _stored(session, gateway, replay.idempotency_key)
        assert stored is not None
        return str(stored.payload["previous"]), stored
    owner = _reader(gateway).company_prefix_holder(prefix)
    if owner == ZERO_ADDRESS:
        raise NotFound(f"company prefix {prefix} is bound to no rights holder")
    if organization_id is not None:
        org = _holder(session, organization_id)
        if org.address != owner:
            raise Conflict(f"company prefix {prefix} is bound to {owner}, not to {org.name}")
    # the key ends with the holder and the generation: the holder's page finds its writes
    key = f"unbind_prefix:{prefix}:{owner}:{generation}"
    payload = {"prefix": prefix, "previous": owner}
    return owner, _queue(session, gateway, principal.organization, "unbind_prefix", key, payload)


def revoke_holder(
    session: Session, gateway: Gateway, principal: Principal, organization_id: int
) -> PendingWrite:
    """Revoke the rights holder's accreditation on chain, for good: it registers no batch,
    adds no key and changes no status any more; its earlier batches stay as they were."""
    org = _holder(session, organization_id)
    assert org.address is not None
    payload = {"address": org.address}
    return _submit(session, gateway, principal.organization, "revoke_holder", payload)
