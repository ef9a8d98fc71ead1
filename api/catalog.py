"""An in-memory snapshot of the chain index, so verification never waits on the database.

Verification must answer in milliseconds and must not make one RPC call (or several queries)
per request. The index is small next to the items it covers (batches, keys, status changes),
so each gateway process keeps a snapshot of it and reloads it when the indexer's checkpoint
moves. Merkle trees and batch secrets are loaded on first use and kept: they never change.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.crypto import unseal
from api.models import (
    BatchTree,
    GatewayBatch,
    IndexedBatch,
    IndexedGtinBinding,
    IndexedItemStatus,
    IndexedPrefixBinding,
    IndexedRightsHolder,
    IndexedSigner,
    IndexerState,
)
from ledger.gs1 import resolve_holder
from ledger.merkle import MerkleTree


@dataclass(frozen=True)
class ProvableBatch:
    """What the gateway holds to prove items of a batch it enrolled."""

    secret: bytes
    tree: MerkleTree
    expiry: str | None


@dataclass
class Snapshot:
    index_block: int = -1
    head_block: int = -1
    chain_id: int = 0
    registry: str = ""
    updated_at: datetime | None = None
    #: registries an upgrade replaced that the index also follows
    previous_registries: list[str] = field(default_factory=list)
    batches: dict[str, IndexedBatch] = field(default_factory=dict)
    batches_by_gtin: dict[str, list[IndexedBatch]] = field(default_factory=dict)
    signers: dict[str, IndexedSigner] = field(default_factory=dict)
    holders: dict[str, IndexedRightsHolder] = field(default_factory=dict)
    #: GTIN -> the rights holder it is bound to on chain now
    gtin_owners: dict[str, str] = field(default_factory=dict)
    #: company prefix -> the holder it is bound to (a GTIN's own binding wins over it)
    prefix_owners: dict[str, str] = field(default_factory=dict)
    item_statuses: dict[tuple[str, str], int] = field(default_factory=dict)

    def owner_of(self, gtin: str) -> str | None:
        """The rights holder `gtin` is bound to now, on its own or by a company prefix."""
        return resolve_holder(gtin, self.gtin_owners, self.prefix_owners)[0]


_STATE: Table = IndexerState.__table__  # type: ignore[attr-defined]
_CHECKPOINT = sa_select(_STATE.c.last_block, _STATE.c.head_block, _STATE.c.updated_at).where(
    _STATE.c.id == 1
)


class Catalog:
    def __init__(self, engine: Engine, secret_key: str, refresh_interval: float = 0.2) -> None:
        self.engine = engine
        self.secret_key = secret_key
        self.refresh_interval = refresh_interval
        self._snapshot = Snapshot()
        self._version: tuple[int, datetime | None] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._provable: dict[str, ProvableBatch | None] = {}

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        if now - self._checked >= self.refresh_interval:
            with self._lock:
                if now - self._checked >= self.refresh_interval:
                    self._refresh()
                    self._checked = time.monotonic()
        return self._snapshot

    def invalidate(self) -> None:
        self._checked = 0.0
        self._version = None

    def _refresh(self) -> None:
        # The checkpoint alone, with one Core query (this runs several times a second in
        # every process; an ORM Session.get cost ~5x more); the tables only when it moved.
        with self.engine.connect() as connection:
            row = connection.execute(_CHECKPOINT).first()
        if row is None:
            return
        last_block, head_block, updated_at = row
        version = (last_block, updated_at)
        if version == self._version:
            return
        if self._version is not None and self._version[0] == last_block:
            # Only the head moved: keep the tables, update the freshness figures.
            self._snapshot.head_block = head_block
            self._snapshot.updated_at = updated_at
            self._version = version
            return
        with Session(self.engine) as session:
            state = session.get(IndexerState, 1)
            if state is None:
                return
            version = (state.last_block, state.updated_at)
            snap = Snapshot(
                index_block=state.last_block,
                head_block=state.head_block,
                chain_id=state.chain_id,
                registry=state.registry_address,
                updated_at=state.updated_at,
                previous_registries=sorted(
                    set((state.registries or "").split(",")) - {state.registry_address, ""}
                ),
            )
            by_gtin: dict[str, list[IndexedBatch]] = defaultdict(list)
            for batch in session.exec(select(IndexedBatch)).all():
                snap.batches[batch.batch_id] = batch
                by_gtin[batch.gtin].append(batch)
            snap.batches_by_gtin = dict(by_gtin)
            snap.signers = {s.address: s for s in session.exec(select(IndexedSigner)).all()}
            snap.holders = {h.address: h for h in session.exec(select(IndexedRightsHolder)).all()}
            snap.gtin_owners = {
                b.gtin: b.holder for b in session.exec(select(IndexedGtinBinding)).all()
            }
            snap.prefix_owners = {
                b.prefix: b.holder for b in session.exec(select(IndexedPrefixBinding)).all()
            }
            snap.item_statuses = {
                (s.batch_id, s.item_key): s.status
                for s in session.exec(select(IndexedItemStatus)).all()
            }
            self._snapshot = snap
            self._version = version

    def provable(self, batch_id: str) -> ProvableBatch | None:
        """Secret and tree of a batch enrolled through this gateway (None for others)."""
        if batch_id in self._provable and self._provable[batch_id] is not None:
            return self._provable[batch_id]
        with Session(self.engine) as session:
            batch = session.get(GatewayBatch, batch_id)
            tree = session.get(BatchTree, batch_id) if batch else None
            if batch is None or tree is None:
                self._provable.pop(batch_id, None)
                return None
            found = ProvableBatch(
                unseal(self.secret_key, batch.secret_encrypted),
                MerkleTree.from_bytes(tree.nodes),
                batch.expiry,
            )
        self._provable[batch_id] = found
        return found
