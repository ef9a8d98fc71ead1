"""Follows the registry's events into the database.

- Pages `eth_getLogs` by block range and indexes only blocks buried under `confirmations`.
- Keeps a checkpoint (`IndexerState`) and resumes from it after a restart.
- Detects reorganizations by comparing the hashes it stored for indexed blocks with the
  chain's; it then drops what it indexed above the fork point and rebuilds the derived tables
  by replaying the raw logs it kept (`ChainLog`): simple, and correct for any event order.
- A reorganization can also strike while a page is being read. A page is only stacked on the
  indexed blocks if the last of them is still on the chain after its logs were read (else
  the poll goes back to the reorg check), and the page's last block hash is read before its
  logs, so a page read across a reorganization is noticed by the next check.
- An RPC outage only pauses it: `IndexerThread` logs the error and polls again.
- Several indexers (one per gateway worker process) may share a database: each write
  transaction first locks the checkpoint row, so they take turns and a page another indexer
  already applied is dropped, not applied twice.

Every page is applied in one database transaction together with the checkpoint, so the index
never holds half a page.

After `borderledger deploy --upgrade` the indexer follows the registries the current one
replaced too (`previous`), in the same pages and tables: old batches keep the block and time
they were registered at and the registry that holds them (`IndexedBatch.registry_address`); their
status changes there are still followed. A retired registry's registrations, accreditations
and signer keys after its `retired_at_block` are not (new batches belong on the new registry,
under its rules); revocations are followed on every registry. A batch id (GTIN + lot) names one
batch of the deployment: the first registration in chain order holds it, a later one of the
same id on another registry is kept as a raw log only. A gateway told of another set of
registries than its database indexed re-indexes from its start block.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from web3 import Web3
from web3.contract.contract import ContractEvent
from web3.exceptions import BlockNotFound

from api.db import session_scope
from api.models import (
    ChainLog,
    Checkpoint,
    CheckpointStatus,
    IndexedBatch,
    IndexedBlock,
    IndexedCustomsAgency,
    IndexedGtinBinding,
    IndexedItemStatus,
    IndexedPrefixBinding,
    IndexedRightsHolder,
    IndexedSigner,
    IndexedStatusChange,
    IndexerState,
    utcnow,
)
from chain.contract import load_artifact
from ledger.config import PreviousRegistry

log = logging.getLogger("borderledger.indexer")

#: Block hashes kept for reorg detection; a reorg deeper than this rebuilds from the start.
KEPT_BLOCK_HASHES = 256
#: Rounds of (reorg check, pages) one poll makes when the chain changes under it.
POLL_ROUNDS = 3
DERIVED_TABLES = (
    IndexedRightsHolder,
    IndexedGtinBinding,
    IndexedPrefixBinding,
    IndexedCustomsAgency,
    IndexedSigner,
    IndexedBatch,
    IndexedItemStatus,
    IndexedStatusChange,
)


@dataclass
class PollResult:
    head: int
    indexed_to: int
    #: logs applied by this poll
    logs: int
    #: blocks rolled back because the chain reorganized (the deepest rollback of the poll)
    reorg_depth: int = 0


class _ChainMoved(Exception):
    """The chain changed while a page was read: the page is dropped and re-read."""


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    return str(value)


def _int(value: object) -> int:
    """An integer event argument (a JSON number once stored)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _jsonable(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (_hex(v) if isinstance(v, bytes | bytearray) else v) for k, v in args.items()}


class Indexer:
    def __init__(
        self,
        engine: Engine,
        w3: Web3,
        registry: str,
        *,
        confirmations: int = 0,
        page_blocks: int = 2000,
        start_block: int = 0,
        previous: Sequence[PreviousRegistry] = (),
    ) -> None:
        self.engine = engine
        self.w3 = w3
        self.registry = Web3.to_checksum_address(registry)
        #: retired registry -> its last block: its later registrations are not followed
        self.retired: dict[str, int] = {
            Web3.to_checksum_address(p.registry): p.retired_at_block for p in previous
        }
        self.retired.pop(self.registry, None)
        self.addresses: list[ChecksumAddress] = [
            self.registry,
            *(Web3.to_checksum_address(r) for r in self.retired),
        ]
        #: the set of registries, as the checkpoint records it
        self.registries = ",".join(sorted(self.addresses))
        self.confirmations = confirmations
        self.page_blocks = page_blocks
        self.start_block = start_block
        abi = load_artifact("BorderLedgerRegistry")["abi"]
        self.contract = w3.eth.contract(address=self.registry, abi=abi)
        self._events: dict[bytes, type[ContractEvent]] = {}
        for item in abi:
            if item["type"] == "event":
                event = getattr(self.contract.events, item["name"])
                signature = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                self._events[bytes(Web3.keccak(text=signature))] = event
        #: block timestamps by block hash (a block number may name another block after a reorg)
        self._timestamps: dict[str, int] = {}

    # ------------------------------------------------------------------ state

    def state(self, session: Session, *, lock: bool = False) -> IndexerState:
        """The checkpoint (created on first use). With `lock`, the session's transaction
        first takes the checkpoint row's write lock (an UPDATE locks the row on PostgreSQL
        and takes the write lock on SQLite), so indexers of several gateway processes
        sharing the database take turns and each sees the checkpoint the others committed."""
        if lock:
            session.execute(
                update(IndexerState).where(col(IndexerState.id) == 1).values(updated_at=utcnow())
            )
        state = session.get(IndexerState, 1)
        if state is None:
            state = IndexerState(
                id=1,
                registry_address=self.registry,
                chain_id=int(self.w3.eth.chain_id),
                last_block=self.start_block - 1,
                registries=self.registries,
            )
            session.add(state)
            session.flush()
        elif state.registry_address not in self.addresses:
            raise RuntimeError(
                f"the database indexes registry {state.registry_address}, not {self.registry}"
                " nor a registry it replaced: use another database"
            )
        elif (state.registries or state.registry_address) != self.registries:
            self._reindex(session, state)
        return state

    def _reindex(self, session: Session, state: IndexerState) -> None:
        """Another set of registries than the database indexed (an upgrade): index all of
        them from the start block, as one chain of pages (the gateway's own rows stay)."""
        log.warning(
            "the index followed %s; now %s: re-indexing from block %d",
            state.registries or state.registry_address,
            self.registries,
            self.start_block,
        )
        session.execute(delete(ChainLog))
        session.execute(delete(IndexedBlock))
        rebuild_index(session)
        state.registry_address = self.registry
        state.registries = self.registries
        state.last_block = self.start_block - 1
        state.last_block_hash = None
        session.flush()

    def _ensure_state(self) -> None:
        """Create the checkpoint in a transaction of its own (another indexer may race us)."""
        try:
            with session_scope(self.engine) as session:
                self.state(session)
        except IntegrityError:
            pass  # another indexer created it meanwhile

    # ------------------------------------------------------------------ polling

    def poll_once(self) -> PollResult:
        """Index every confirmed block not indexed yet; returns what was done."""
        self._ensure_state()
        applied = 0
        depth = 0
        for _ in range(POLL_ROUNDS):
            with session_scope(self.engine) as session:
                state = self.state(session, lock=True)
                # the head is read under the lock: another indexer may have indexed past a
                # head read earlier, which would look like a chain that got shorter
                head = int(self.w3.eth.block_number)
                target = head - self.confirmations
                depth = max(depth, self._handle_reorg(session, state, head))
                last, parent_hash = state.last_block, state.last_block_hash
                state.head_block = head
                state.updated_at = utcnow()
            start = last + 1
            try:
                while start <= target:
                    end = min(start + self.page_blocks - 1, target)
                    logs, parent_hash = self._index_page(start, end, head, parent_hash)
                    applied += logs
                    start = end + 1
            except _ChainMoved as moved:
                log.info(
                    "dropped the page of blocks %d-%d (%s): checking again",
                    start,
                    end,
                    moved,
                )
                continue
            break
        with session_scope(self.engine) as session:
            state = self.state(session)
            indexed_to = state.last_block
        return PollResult(head=head, indexed_to=indexed_to, logs=applied, reorg_depth=depth)

    def _block(self, number: int) -> tuple[str, int]:
        block = self.w3.eth.get_block(number)
        return _hex(block["hash"]), int(block["timestamp"])

    def _block_hash(self, number: int) -> str:
        try:
            return self._block(number)[0]
        except BlockNotFound:
            raise _ChainMoved(f"block {number} is gone") from None

    def _on_chain(self, number: int, block_hash: str) -> bool:
        """Whether the chain's block `number` is the block `block_hash`."""
        try:
            return self._block(number)[0] == block_hash
        except BlockNotFound:  # the chain got shorter since we read its head
            return False

    def _timestamp(self, block_hash: str) -> int:
        if block_hash not in self._timestamps:
            if len(self._timestamps) > 4096:
                self._timestamps.clear()
            try:
                block = self.w3.eth.get_block(HexBytes(block_hash))
            except BlockNotFound:
                raise _ChainMoved(f"block {block_hash} is gone") from None
            self._timestamps[block_hash] = int(block["timestamp"])
        return self._timestamps[block_hash]

    def _index_page(
        self, start: int, end: int, head: int, parent_hash: str | None
    ) -> tuple[int, str]:
        """Index blocks `start`..`end` on top of the indexed block `start - 1`, whose hash is
        `parent_hash`; returns (logs applied, hash of `end`). Raises `_ChainMoved` if block
        `start - 1` is no longer on the chain."""
        # The end hash is read before the logs: if the chain reorganizes in between, the
        # stored hash is the old one and the next reorg check rolls the page back.
        end_hash = self._block_hash(end)
        raw_logs = self.w3.eth.get_logs(
            {"address": self.addresses, "fromBlock": start, "toBlock": end}
        )
        # ...and the parent is checked after them: logs of a new fork are never stacked on
        # blocks of the old one.
        if parent_hash is not None and self._block_hash(start - 1) != parent_hash:
            raise _ChainMoved(f"block {start - 1} was replaced")
        block_hashes: dict[int, str] = {end: end_hash}
        decoded: list[ChainLog] = []
        for raw in sorted(raw_logs, key=lambda r: (r["blockNumber"], r["logIndex"])):
            event = self._events.get(bytes(raw["topics"][0]))
            if event is None:
                continue
            number = int(raw["blockNumber"])
            block_hash = _hex(raw["blockHash"])
            block_hashes[number] = block_hash
            processed = event().process_log(raw)
            decoded.append(
                ChainLog(
                    block_number=number,
                    block_hash=block_hash,
                    block_timestamp=self._timestamp(block_hash),
                    log_index=int(raw["logIndex"]),
                    tx_hash=_hex(raw["transactionHash"]),
                    event=processed["event"],
                    args=_jsonable(dict(processed["args"])),
                    registry_address=Web3.to_checksum_address(raw["address"]),
                )
            )
        with session_scope(self.engine) as session:
            state = self.state(session, lock=True)
            if state.last_block != start - 1 or state.last_block_hash != parent_hash:
                raise _ChainMoved("another indexer moved the checkpoint")
            for entry in decoded:
                session.add(entry)
                apply_log(session, entry, self.retired)
            for number, block_hash in block_hashes.items():
                session.merge(IndexedBlock(number=number, hash=block_hash))
            state.last_block = end
            state.last_block_hash = end_hash
            state.head_block = head
            state.updated_at = utcnow()
            session.execute(
                delete(IndexedBlock).where(col(IndexedBlock.number) < end - KEPT_BLOCK_HASHES)
            )
        return len(decoded), end_hash

    # ------------------------------------------------------------------ reorgs

    def _handle_reorg(self, session: Session, state: IndexerState, head: int) -> int:
        """If the chain no longer has our last block, roll back to the fork; returns depth."""
        if state.last_block < self.start_block or state.last_block_hash is None:
            return 0
        if state.last_block <= head and self._on_chain(state.last_block, state.last_block_hash):
            return 0
        kept = session.exec(select(IndexedBlock).order_by(col(IndexedBlock.number).desc())).all()
        fork = self.start_block - 1
        fork_hash: str | None = None
        for block in kept:
            if block.number <= head and self._on_chain(block.number, block.hash):
                fork, fork_hash = block.number, block.hash
                break
        depth = state.last_block - fork
        log.warning(
            "chain reorganized: rolling the index back from block %d to %d", state.last_block, fork
        )
        session.execute(delete(ChainLog).where(col(ChainLog.block_number) > fork))
        session.execute(delete(IndexedBlock).where(col(IndexedBlock.number) > fork))
        rebuild_index(session, self.retired)
        state.last_block = fork
        state.last_block_hash = fork_hash
        return depth


def rebuild_index(session: Session, retired: dict[str, int] | None = None) -> None:
    """Recompute every derived table from the raw logs, in chain order (`retired`: as for
    `apply_log`)."""
    for table in DERIVED_TABLES:
        session.execute(delete(table))
    # Checkpoints are the gateway's own rows: only their "anchored" mark is derived.
    session.execute(
        update(Checkpoint)
        .where(col(Checkpoint.status) == CheckpointStatus.ANCHORED.value)
        .values(status=CheckpointStatus.QUEUED.value, tx_hash=None, block_number=None)
    )
    session.flush()
    logs = session.exec(
        select(ChainLog).order_by(col(ChainLog.block_number), col(ChainLog.log_index))
    ).all()
    for entry in logs:
        apply_log(session, entry, retired)


#: Events a retired registry is no longer followed for after its `retired_at_block`: what it
#: would newly vouch for (revocations and status changes are still followed).
_NOT_AFTER_RETIREMENT = frozenset(
    {"RightsHolderAccredited", "CustomsAgencyAccredited", "SignerAdded", "BatchRegistered"}
)


def _earliest(current: int | None, new: int) -> int:
    return new if current is None or current == 0 else min(current, new)


def apply_log(session: Session, entry: ChainLog, retired: dict[str, int] | None = None) -> None:
    """Apply one registry event to the derived tables. `retired`: registries an upgrade
    replaced, with the block each was retired at (what they vouch for after it is ignored).

    With several registries one holder, key or batch may appear on each: a key counts from its
    first addition and is revoked at its earliest revocation on any of them, a holder at its
    earliest revocation, and a batch's statuses follow the registry that holds it."""
    a = entry.args
    name = entry.event
    retired_at = (retired or {}).get(entry.registry_address)
    if name in _NOT_AFTER_RETIREMENT and retired_at is not None and entry.block_number > retired_at:
        log.warning(
            "%s on retired registry %s at block %d (retired at %d): not followed",
            name,
            entry.registry_address,
            entry.block_number,
            retired_at,
        )
        return
    if name == "RightsHolderAccredited":
        existing = session.get(IndexedRightsHolder, str(a["holder"]))
        if existing is not None:  # accredited again on the new registry: same holder
            existing.name, existing.recordation = str(a["name"]), str(a["recordation"])
            session.add(existing)
        else:
            session.add(
                IndexedRightsHolder(
                    address=str(a["holder"]),
                    name=str(a["name"]),
                    recordation=str(a["recordation"]),
                    block_number=entry.block_number,
                )
            )
    elif name == "RightsHolderRevoked":
        holder = session.get(IndexedRightsHolder, str(a["holder"]))
        if holder is not None:
            holder.revoked_at = _earliest(holder.revoked_at, _int(a["revokedAt"]))
            session.add(holder)
    elif name in ("GtinBound", "GtinReassigned"):
        session.merge(
            IndexedGtinBinding(
                gtin=str(a["gtin"]),
                holder=str(a["holder"]),
                block_number=entry.block_number,
                previous=str(a["previous"]) if name == "GtinReassigned" else None,
            )
        )
    elif name == "CompanyPrefixBound":
        session.merge(
            IndexedPrefixBinding(
                prefix=str(a["prefix"]), holder=str(a["holder"]), block_number=entry.block_number
            )
        )
    elif name == "CompanyPrefixUnbound":
        bound = session.get(IndexedPrefixBinding, str(a["prefix"]))
        if bound is not None:
            session.delete(bound)
    elif name == "CustomsAgencyAccredited":
        session.merge(
            IndexedCustomsAgency(
                address=str(a["agency"]), name=str(a["name"]), block_number=entry.block_number
            )
        )
    elif name == "SignerAdded":
        known = session.get(IndexedSigner, str(a["signer"]))
        if known is not None and known.holder == str(a["holder"]):
            # the same key added on another registry: it counts from its first addition
            known.added_at = min(known.added_at, _int(a["addedAt"]))
            session.add(known)
            session.flush()
            return
        session.merge(
            IndexedSigner(
                address=str(a["signer"]),
                holder=str(a["holder"]),
                added_at=_int(a["addedAt"]),
                block_number=entry.block_number,
            )
        )
    elif name == "SignerRevoked":
        signer = session.get(IndexedSigner, str(a["signer"]))
        if signer is not None:
            signer.revoked_at = _earliest(signer.revoked_at, _int(a["revokedAt"]))
            session.add(signer)
    elif name == "BatchRegistered":
        held = session.get(IndexedBatch, str(a["batchId"]))
        if held is not None and held.registry_address != entry.registry_address:
            log.warning(
                "batch %s registered on %s at block %d is held by registry %s: not followed",
                a["batchId"],
                entry.registry_address,
                entry.block_number,
                held.registry_address,
            )
            return
        session.merge(
            IndexedBatch(
                batch_id=str(a["batchId"]),
                holder=str(a["holder"]),
                gtin=str(a["gtin"]),
                lot=str(a["lot"]),
                root=str(a["root"]),
                item_count=_int(a["itemCount"]),
                metadata_hash=str(a["metadataHash"]),
                registered_at=entry.block_timestamp,
                tx_hash=entry.tx_hash,
                block_number=entry.block_number,
                block_hash=entry.block_hash,
                registry_address=entry.registry_address,
            )
        )
    elif name == "BatchStatusChanged":
        batch = session.get(IndexedBatch, str(a["batchId"]))
        if batch is not None and batch.registry_address != entry.registry_address:
            return  # a batch of the same id on a registry that does not hold it
        if batch is not None:
            batch.status = _int(a["status"])
            session.add(batch)
        _history(session, entry, None)
    elif name == "ItemStatusChanged":
        batch = session.get(IndexedBatch, str(a["batchId"]))
        if batch is not None and batch.registry_address != entry.registry_address:
            return
        session.merge(
            IndexedItemStatus(
                batch_id=str(a["batchId"]),
                item_key=str(a["itemKey"]),
                leaf=str(a["leaf"]),
                status=_int(a["status"]),
                block_number=entry.block_number,
                tx_hash=entry.tx_hash,
            )
        )
        _history(session, entry, str(a["itemKey"]))
    elif name == "CheckpointAnchored":
        _checkpoint(session, entry)
    session.flush()


def _checkpoint(session: Session, entry: ChainLog) -> None:
    """A custody-log checkpoint is on chain: mark the gateway's row (or record another
    agency's) as anchored, with the root the chain holds."""
    a = entry.args
    agency, size, root = str(a["agency"]), _int(a["size"]), str(a["root"]).lower()
    if size >= 2**63:  # no log reaches that size; the raw ChainLog row keeps the event
        log.warning("checkpoint %s/%d: size beyond any custody log, not indexed", agency, size)
        return
    row = session.get(Checkpoint, (agency, size))
    if row is None:
        row = Checkpoint(agency=agency, size=size, root=root)
    elif row.root != root:
        log.error("checkpoint %s/%d: the chain holds root %s, not %s", agency, size, root, row.root)
        row.root = root
    row.status = CheckpointStatus.ANCHORED.value
    row.tx_hash, row.block_number, row.error = entry.tx_hash, entry.block_number, None
    row.updated_at = utcnow()
    session.add(row)


def _history(session: Session, entry: ChainLog, item_key: str | None) -> None:
    a = entry.args
    session.add(
        IndexedStatusChange(
            batch_id=str(a["batchId"]),
            item_key=item_key,
            previous=_int(a["previous"]),
            status=_int(a["status"]),
            by=str(a["by"]),
            block_number=entry.block_number,
            block_timestamp=entry.block_timestamp,
            tx_hash=entry.tx_hash,
        )
    )


class IndexerThread(threading.Thread):
    """Polls forever; RPC failures are logged and retried, so an outage only pauses indexing."""

    def __init__(
        self, indexer: Indexer, interval: float, after_poll: Callable[[], object] | None = None
    ) -> None:
        super().__init__(name="borderledger-indexer", daemon=True)
        self.indexer = indexer
        self.interval = interval
        self.after_poll = after_poll  # e.g. pass indexed status changes on to the detector
        self.stopped = threading.Event()
        self.last_error: str | None = None
        self.polled = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.indexer.poll_once()
                if self.after_poll is not None:
                    self.after_poll()
                self.last_error = None
            except Exception as exc:  # an outage or a transient DB error: try again later
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("indexer poll failed: %s", self.last_error)
            self.polled.set()
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
