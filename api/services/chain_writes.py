"""The chain-writes queue (`PendingWrite`, api/outbox.py) for the registry admin: listed with
filters, and a failed write put back in the queue.

Only a write the chain refused is `failed` (its call reverted: a GTIN bound to another holder,
an account revoked…); an unreachable chain leaves writes `queued`/`sent` and the outbox keeps
trying on its own. So a retry is for after the admin fixed the cause (re-bound the GTIN,
funded the account): the write is queued again *without* its old signed bytes, because a
reverted transaction either never left (the revert was found by simulation) or was mined and
used its nonce, and either way those bytes can never land. The outbox then checks the chain
first (already done? then it is done) and signs afresh, so nothing is doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from api import audit
from api.gateway import Gateway
from api.models import Organization, PendingWrite, WriteStatus, utcnow
from api.outbox import _nonce_of
from api.principal import Principal
from ledger.errors import Conflict, NotFound

#: Every kind the outbox submits (api.outbox.ChainWriter._call), for the filter.
KINDS = (
    "accredit_holder",
    "accredit_agency",
    "add_signer",
    "anchor_checkpoint",
    "bind_gtin",
    "reassign_gtin",
    "bind_prefix",
    "unbind_prefix",
    "register_batch",
    "revoke_holder",
    "revoke_signer",
    "set_batch_status",
    "set_item_status",
)
STATES = tuple(s.value for s in WriteStatus)


@dataclass(frozen=True)
class ListedWrite:
    """A write with what the admin needs to judge it: who asked, about what, how old."""

    write: PendingWrite
    organization: str
    subject: str
    nonce: int | None

    def age_seconds(self, now: datetime | None = None) -> int:
        return max(0, int(((now or utcnow()) - self.write.created_at).total_seconds()))


def subject_of(write: PendingWrite) -> str:
    """What the write is about, in words an admin recognises (batch, GTIN, account…)."""
    p: dict[str, Any] = dict(write.payload or {})
    if write.kind == "register_batch":
        return f"batch {p.get('gtin', '?')}/{p.get('lot', '?')}"
    if write.kind == "set_item_status":
        return f"item {p.get('gtin', '?')}/{p.get('lot', '?')}/{p.get('serial', '?')}"
    if write.kind == "set_batch_status":
        return f"batch {p.get('batch_id', '?')}"
    if write.kind in ("bind_gtin", "reassign_gtin"):
        return f"GTIN {p.get('gtin', '?')} → {p.get('holder', '?')}"
    if write.kind == "bind_prefix":
        return f"company prefix {p.get('prefix', '?')} → {p.get('holder', '?')}"
    if write.kind == "unbind_prefix":
        return f"company prefix {p.get('prefix', '?')} unbound"
    if write.kind in ("add_signer", "revoke_signer"):
        return f"signer {p.get('signer', '?')}"
    if write.kind == "anchor_checkpoint":
        return f"checkpoint size {p.get('size', '?')}"
    name = p.get("name")
    address = p.get("address", "?")
    return f"{name} ({address})" if name else str(address)


def _nonce(write: PendingWrite) -> int | None:
    if not write.signed_tx:
        return None
    try:
        return _nonce_of(bytes.fromhex(write.signed_tx.removeprefix("0x")))
    except ValueError:
        return None


def listed(
    session: Session,
    status: str | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[ListedWrite]:
    """Writes newest first, filtered by state and kind; `before` (an id) pages back."""
    query = select(PendingWrite, Organization.name).join(
        Organization, col(Organization.id) == col(PendingWrite.organization_id)
    )
    if status is not None:
        query = query.where(PendingWrite.status == status)
    if kind is not None:
        query = query.where(PendingWrite.kind == kind)
    if before is not None:
        query = query.where(col(PendingWrite.id) < before)
    rows = session.exec(query.order_by(col(PendingWrite.id).desc()).limit(limit)).all()
    return [ListedWrite(w, name, subject_of(w), _nonce(w)) for w, name in rows]


def one(session: Session, write_id: int) -> ListedWrite:
    """One write as listed (404 if there is none)."""
    found = listed(session, before=write_id + 1, limit=1)
    if not found or found[0].write.id != write_id:
        raise NotFound(f"no chain write {write_id}")
    return found[0]


def counts(session: Session) -> dict[str, int]:
    """How many writes are in each state (the queue's health at a glance)."""
    found = dict(
        session.exec(
            select(PendingWrite.status, func.count()).group_by(col(PendingWrite.status))
        ).all()
    )
    return {state: int(found.get(WriteStatus(state), 0)) for state in STATES}


def retry(session: Session, gateway: Gateway, principal: Principal, write_id: int) -> PendingWrite:
    """Queue a failed write again and submit it now; 409 for a write in any other state.

    A conditional UPDATE (only while it is still `failed`), so two admins retrying at once
    queue it once; the loser is told its state."""
    write = session.get(PendingWrite, write_id)
    if write is None:
        raise NotFound(f"no chain write {write_id}")
    changed = session.execute(
        update(PendingWrite)
        .where(col(PendingWrite.id) == write_id, col(PendingWrite.status) == WriteStatus.FAILED)
        .values(
            status=WriteStatus.QUEUED,
            signed_tx=None,
            tx_hash=None,
            block_number=None,
            error=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.expire_all()
        current = session.get(PendingWrite, write_id)
        state = current.status.value if current is not None else "gone"
        raise Conflict(
            f"chain write {write_id} is {state}, not failed: only a failed write is retried"
        )
    audit.record(session, principal, "chain_write.retry", str(write_id), {"kind": write.kind})
    session.commit()
    gateway.writer.process(only=write_id)
    session.expire_all()
    fresh = session.get(PendingWrite, write_id)
    assert fresh is not None
    return fresh
