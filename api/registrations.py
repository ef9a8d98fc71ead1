"""Registrations this gateway has enrolled that its index does not show yet.

A batch is enrolled through one gateway process, registered on chain, and indexed by every
process some blocks later. Between the enrolling process answering `registration: "done"`
and another process's index reaching that block, a scan of the batch's tags would find its
GTIN or lot unknown — a suspect verdict for goods the brand just registered. The gateway
database (`gateway_batches` and the registration's `pending_writes` row, written at
enrollment and shared by every process) says otherwise: such a scan is answered PENDING
(`ledger.verdicts.Pending`), never suspect.

Only the unknown-batch path asks; the genuine path never touches the database. Answers are
remembered for `TTL` seconds per (GTIN, lot), negatives included, so a flood of codes with
unknown GTINs costs one query per code and second at most.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import GatewayBatch, PendingWrite, WriteStatus
from ledger.batch import batch_id_of

#: Seconds an answer (registration pending or not) is remembered per (GTIN, lot).
TTL = 0.5
_MAX_ENTRIES = 100_000
#: What a registration write's state says: not failed → registered, or on its way.
_LIVE = (WriteStatus.QUEUED, WriteStatus.SENT, WriteStatus.DONE)


class Registrations:
    """Looks up, for an unknown GTIN (and lot), a registration enrolled here and not failed."""

    def __init__(self, engine: Engine, ttl: float = TTL) -> None:
        self.engine = engine
        self.ttl = ttl
        self._cache: dict[tuple[str, str | None], tuple[float, tuple[bool, int | None]]] = {}
        self._lock = threading.Lock()

    def lookup(self, gtin: str, lot: str | None) -> tuple[bool, int | None]:
        """(enrolled here and its registration live, block it landed in — None while queued
        or sent). With no lot, any batch of the GTIN counts."""
        key = (gtin, lot)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = self._query(gtin, lot)
        with self._lock:
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now, found)
        return found

    def _query(self, gtin: str, lot: str | None) -> tuple[bool, int | None]:
        with Session(self.engine) as session:
            if lot is not None:
                batch_ids = ["0x" + batch_id_of(gtin, lot).hex()]
                if session.get(GatewayBatch, batch_ids[0]) is None:
                    return False, None
            else:
                batch_ids = list(
                    session.exec(
                        select(GatewayBatch.batch_id).where(GatewayBatch.gtin == gtin).limit(50)
                    ).all()
                )
                if not batch_ids:
                    return False, None
            writes = session.exec(
                select(PendingWrite.status, PendingWrite.block_number).where(
                    col(PendingWrite.idempotency_key).in_([f"register:{b}" for b in batch_ids]),
                    col(PendingWrite.status).in_(_LIVE),
                )
            ).all()
        if not writes:
            return False, None
        blocks = [b for s, b in writes if s == WriteStatus.DONE and b is not None]
        return True, (min(blocks) if blocks else None)
