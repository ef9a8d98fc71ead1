"""Registrations this gateway has enrolled that its index does not show yet.

A batch is enrolled through one gateway process, registered on chain, and indexed by every
process some blocks later. Between the enrolling process answering `registration: "done"`
and the index reaching that block, a scan of the batch's tags would find its GTIN or lot
unknown — a suspect verdict for goods the brand just registered. The gateway database (the
`gateway_batches` row and its registration's `pending_writes` row, written at enrollment and
shared by every process) says otherwise: such a scan is answered PENDING
(`ledger.verdicts.Pending`), never suspect.

Only the unknown-batch path asks; the genuine path never touches the database. The answer
comes from one list per process — registrations queued, sent, or landed after the block the
index has reached — read again at most every `TTL` seconds, so a flood of fake codes costs
the database one small query per process and `TTL`, whatever the codes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import and_, literal, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import GatewayBatch, PendingWrite, WriteStatus
from ledger.batch import batch_id_of

#: Seconds the list of registrations not yet indexed is used before it is read again.
TTL = 0.5
_KIND = "register_batch"
_PREFIX = "register:"


@dataclass(frozen=True)
class _Unindexed:
    """Registrations live and not yet indexed, when read: batch id → (GTIN, landed block or
    None while queued or sent), and the GTINs they cover."""

    read_at: float
    batches: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    gtins: dict[str, int | None] = field(default_factory=dict)


class Registrations:
    """Answers, for a GTIN (and lot) the index does not know, whether this gateway enrolled
    it and its registration is live: queued, sent, or landed after the index's block."""

    def __init__(self, engine: Engine, ttl: float = TTL) -> None:
        self.engine = engine
        self.ttl = ttl
        self._list = _Unindexed(read_at=-float("inf"))
        self._lock = threading.Lock()

    def lookup(self, gtin: str, lot: str | None, index_block: int) -> tuple[bool, int | None]:
        """(enrolled here, registration live and not indexed; the block it landed in — None
        while queued or sent). With no lot, any such batch of the GTIN counts."""
        unindexed = self._list
        if time.monotonic() - unindexed.read_at >= self.ttl:
            with self._lock:  # one reader per process; the others use the list it reads
                if time.monotonic() - self._list.read_at >= self.ttl:
                    self._list = self._read(index_block)
                unindexed = self._list
        if lot is None:
            if gtin in unindexed.gtins:
                return True, unindexed.gtins[gtin]
            return False, None
        found = unindexed.batches.get("0x" + batch_id_of(gtin, lot).hex())
        if found is None or found[0] != gtin:
            return False, None
        return True, found[1]

    def invalidate(self) -> None:
        """Read the list again on the next look-up (tests; a process that just enrolled)."""
        self._list = _Unindexed(read_at=-float("inf"))

    def _read(self, index_block: int) -> _Unindexed:
        # `index_block` is this process's snapshot, never ahead of the index: a registration
        # landed after it and already indexed is listed too, harmlessly (the index answers).
        query = (
            select(GatewayBatch.batch_id, GatewayBatch.gtin, PendingWrite.block_number)
            .join(
                GatewayBatch,
                col(PendingWrite.idempotency_key)
                == literal(_PREFIX).concat(col(GatewayBatch.batch_id)),
            )
            .where(
                PendingWrite.kind == _KIND,
                or_(
                    col(PendingWrite.status).in_([WriteStatus.QUEUED, WriteStatus.SENT]),
                    and_(
                        col(PendingWrite.status) == WriteStatus.DONE,
                        col(PendingWrite.block_number) > index_block,
                    ),
                ),
            )
        )
        unindexed = _Unindexed(read_at=time.monotonic())
        blocks: dict[str, list[int | None]] = {}
        with Session(self.engine) as session:
            for batch_id, gtin, block in session.exec(query).all():
                unindexed.batches[batch_id] = (gtin, block)
                blocks.setdefault(gtin, []).append(block)
        for gtin, landed in blocks.items():
            # a GTIN read without its lot: the newest registration it waits for
            known = [b for b in landed if b is not None]
            unindexed.gtins[gtin] = max(known) if len(known) == len(landed) else None
        return unindexed
