"""The chain indexer against a real Anvil node and a real database (SQLite, or PostgreSQL
with DATABASE_URL): every registry event lands in the index exactly once, only once buried
under the configured confirmations, across restarts, reorganizations, RPC outages and pages.

The chain is driven directly with `RegistryClient` (one fresh `TransactionSender` per
transaction, so no cached nonce survives a rewrite of history). Tests that rewrite history
(`anvil_reorg`, `evm_revert`) run on a node of their own so they cannot disturb other tests.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, func, select
from web3 import Web3
from web3.types import Nonce, TxParams

import api.indexer
from api.db import create_schema, make_engine
from api.indexer import Indexer, IndexerThread, PollResult, rebuild_index
from api.models import (
    ChainLog,
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
)
from chain.contract import REGISTRY, RegistryClient, connect
from chain.contract import deploy as deploy_contract
from chain.node import LocalNode, dev_private_key, rpc_request
from chain.tx import Receipt, TransactionSender
from ledger.batch import batch_id_of, item_key_of
from ledger.models import Status
from tests.rpc_proxy import RpcProxy
from tests.stack import GTIN, Stack

SALT = b"\x5a" * 32


# ------------------------------------------------------------------------------ chain helpers


@dataclass
class Parties:
    """A freshly deployed registry with an accredited rights holder that has a signer key."""

    node: LocalNode
    w3: Web3
    registry: ChecksumAddress
    admin: LocalAccount
    holder: LocalAccount
    signer: LocalAccount
    start_block: int
    #: registry logs emitted so far, AccessControl's included (what ChainLog must hold)
    events: int = 0

    @property
    def url(self) -> str:
        return self.node.url

    def client(self, account: LocalAccount) -> RegistryClient:
        """A client with a new sender: its nonce comes from the chain, never from a cache."""
        client = RegistryClient(self.w3, self.registry)
        return client.with_sender(TransactionSender(self.w3, account, client.decode_revert))

    def count(self, receipt: Receipt) -> Receipt:
        self.events += sum(
            1
            for entry in receipt.logs
            if Web3.to_checksum_address(entry["address"]) == self.registry
        )
        return receipt

    def register(self, lot: str, serial: str = "SN1") -> Receipt:
        """A one-item batch: its root is the item's leaf, so the item's proof is empty."""
        holder = self.client(self.holder)
        root = holder.leaf_hash(GTIN, serial, SALT)
        return self.count(holder.register_batch(GTIN, lot, root, 1, b"\x11" * 32))

    def set_batch_status(self, lot: str, status: Status) -> Receipt:
        holder = self.client(self.holder)
        return self.count(holder.set_batch_status(batch_id_of(GTIN, lot), status))

    def set_item_status(self, lot: str, status: Status, serial: str = "SN1") -> Receipt:
        holder = self.client(self.holder)
        return self.count(holder.set_item_status(GTIN, lot, serial, SALT, [], status))

    def signed_registration(self, lot: str, nonce: int) -> str:
        """A signed registerBatch transaction (raw hex) with an explicit nonce, unsent."""
        holder = self.client(self.holder)
        root = holder.leaf_hash(GTIN, "SN1", SALT)
        fn = holder.contract.functions.registerBatch(GTIN, lot, root, 1, b"\x11" * 32)
        params: TxParams = {"from": self.holder.address, "nonce": Nonce(nonce), "gas": 400_000}
        signed = self.holder.sign_transaction(fn.build_transaction(params))  # type: ignore[arg-type]
        return "0x" + bytes(signed.raw_transaction).hex()

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str:
        return HexBytes(self.w3.eth.get_block(number)["hash"]).to_0x_hex()

    def timestamp(self, number: int) -> int:
        return int(self.w3.eth.get_block(number)["timestamp"])


def deploy(node: LocalNode) -> Parties:
    w3 = connect(node.url)
    admin = Account.from_key(dev_private_key(0))
    sender = TransactionSender(w3, admin, lambda data: None)  # type: ignore[arg-type,return-value]
    address, receipt = deploy_contract(sender, REGISTRY, admin.address)
    parties = Parties(
        node=node,
        w3=w3,
        registry=Web3.to_checksum_address(address),
        admin=admin,
        holder=Account.from_key(dev_private_key(1)),
        signer=Account.from_key(dev_private_key(5)),
        start_block=receipt.block_number,
    )
    parties.count(receipt)  # the constructor's RoleGranted: the index keeps every registry log
    parties.count(
        parties.client(admin).accredit_rights_holder(parties.holder.address, "Acme Pharma", "TMK 1")
    )
    parties.count(parties.client(admin).bind_gtin(GTIN, parties.holder.address))
    parties.count(parties.client(parties.holder).add_signer(parties.signer.address))
    return parties


def mine(url: str, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc_request(url, "evm_mine")


def wait_for(condition: Callable[[], bool], timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# ------------------------------------------------------------------------------ db helpers


def rows(engine: Engine, model: type[SQLModel]) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model)).all())


def log_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(ChainLog)).one())


def state(engine: Engine) -> IndexerState:
    with Session(engine) as session:
        found = session.get(IndexerState, 1)
        assert found is not None
        return found


def batches(engine: Engine) -> dict[str, IndexedBatch]:
    return {b.batch_id: b for b in rows(engine, IndexedBatch)}


def bid(lot: str) -> str:
    return "0x" + batch_id_of(GTIN, lot).hex()


def assert_exactly_once(engine: Engine, parties: Parties) -> None:
    """The raw log table holds every registry event once: no duplicates, nothing missed."""
    logs = rows(engine, ChainLog)
    assert len(logs) == parties.events
    assert len({(entry.block_number, entry.log_index) for entry in logs}) == len(logs)
    onchain = parties.w3.eth.get_logs(
        {"address": parties.registry, "fromBlock": parties.start_block, "toBlock": "latest"}
    )
    assert len(onchain) == parties.events
    assert {(int(x["blockNumber"]), int(x["logIndex"])) for x in onchain} == {
        (entry.block_number, entry.log_index) for entry in logs
    }


def assert_matches_chain(engine: Engine, parties: Parties) -> None:
    """Every block hash the index stored is the chain's (nothing of an orphaned fork left)."""
    for block in rows(engine, IndexedBlock):
        assert block.hash == parties.block_hash(block.number), block.number
    for entry in rows(engine, ChainLog):
        assert entry.block_hash == parties.block_hash(entry.block_number)
    for batch in rows(engine, IndexedBatch):
        assert batch.block_hash == parties.block_hash(batch.block_number)
    st = state(engine)
    assert st.last_block_hash == parties.block_hash(st.last_block)


def derived_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The derived tables as comparable tuples (surrogate ids left out)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for model in (
        IndexedRightsHolder,
        IndexedGtinBinding,
        IndexedPrefixBinding,
        IndexedCustomsAgency,
        IndexedSigner,
        IndexedBatch,
        IndexedItemStatus,
        IndexedStatusChange,
    ):
        dumped = [
            tuple(sorted((k, v) for k, v in row.model_dump().items() if k != "id"))
            for row in rows(engine, model)
        ]
        out[model.__name__] = sorted(dumped, key=repr)
    return out


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def engine(database: tuple[str, str | None]) -> Iterator[Engine]:
    url, schema = database
    engine = make_engine(url, schema)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def parties(anvil: LocalNode) -> Parties:
    return deploy(anvil)


@pytest.fixture(scope="module")
def private_node() -> Iterator[LocalNode]:
    """A node of this module's own, for tests that rewrite its history."""
    with LocalNode("anvil") as node:
        yield node


@pytest.fixture
def forkable(private_node: LocalNode) -> Parties:
    return deploy(private_node)


def indexer_for(
    engine: Engine, parties: Parties, w3: Web3 | None = None, **options: Any
) -> Indexer:
    return Indexer(
        engine,
        w3 or connect(parties.url),
        parties.registry,
        start_block=parties.start_block,
        **options,
    )


# ------------------------------------------------------------------------------ 1. every event


def test_follows_every_registry_event_into_the_index(engine: Engine, parties: Parties) -> None:
    agency = Account.from_key(dev_private_key(2))
    second_signer = Account.from_key(dev_private_key(6))
    admin = parties.client(parties.admin)
    parties.count(admin.accredit_customs_agency(agency.address, "NL Customs"))
    added = parties.count(parties.client(parties.holder).add_signer(second_signer.address))
    revoked = parties.count(parties.client(parties.holder).revoke_signer(second_signer.address))
    reg = parties.register("L1")
    parties.register("L2", serial="SN9")
    recalled = parties.set_batch_status("L2", Status.RECALLED)
    stolen = parties.set_item_status("L1", Status.STOLEN)
    destroyed = parties.set_item_status("L1", Status.DESTROYED)
    # a custody-log checkpoint (issue 5): recorded raw, the largest uint64 size included
    anchored = parties.count(parties.client(agency).anchor_checkpoint(2**64 - 1, b"\xab" * 32))

    result = indexer_for(engine, parties).poll_once()

    head = parties.head()
    assert result == PollResult(head=head, indexed_to=head, logs=parties.events, reorg_depth=0)
    assert_exactly_once(engine, parties)
    assert_matches_chain(engine, parties)

    holders = rows(engine, IndexedRightsHolder)
    assert [(h.address, h.name, h.recordation) for h in holders] == [
        (parties.holder.address, "Acme Pharma", "TMK 1")
    ]
    agencies = rows(engine, IndexedCustomsAgency)
    assert [(a.address, a.name) for a in agencies] == [(agency.address, "NL Customs")]

    signers = {s.address: s for s in rows(engine, IndexedSigner)}
    assert set(signers) == {parties.signer.address, second_signer.address}
    assert signers[parties.signer.address].holder == parties.holder.address
    assert signers[parties.signer.address].revoked_at is None
    assert signers[second_signer.address].added_at == parties.timestamp(added.block_number)
    assert signers[second_signer.address].revoked_at == parties.timestamp(revoked.block_number)
    assert signers[second_signer.address].block_number == added.block_number

    indexed = batches(engine)
    assert set(indexed) == {bid("L1"), bid("L2")}
    l1 = indexed[bid("L1")]
    registry = parties.client(parties.holder)
    assert l1.tx_hash == reg.tx_hash
    assert l1.block_number == reg.block_number
    assert l1.block_hash == reg.block_hash
    assert l1.registered_at == parties.timestamp(reg.block_number)
    assert l1.registered_at == registry.get_batch(bid("L1")).registered_at
    assert (l1.holder, l1.gtin, l1.lot, l1.item_count) == (parties.holder.address, GTIN, "L1", 1)
    assert l1.root == "0x" + registry.leaf_hash(GTIN, "SN1", SALT).hex()
    assert l1.metadata_hash == "0x" + "11" * 32
    assert l1.status == Status.ACTIVE
    assert indexed[bid("L2")].status == Status.RECALLED

    key = "0x" + item_key_of(GTIN, "SN1").hex()
    items = rows(engine, IndexedItemStatus)
    assert [(i.batch_id, i.item_key, i.status, i.tx_hash, i.block_number) for i in items] == [
        (bid("L1"), key, Status.DESTROYED, destroyed.tx_hash, destroyed.block_number)
    ]
    assert items[0].leaf == l1.root

    with Session(engine) as session:
        history = session.exec(
            select(IndexedStatusChange).order_by(col(IndexedStatusChange.block_number))
        ).all()
    assert [
        (h.batch_id, h.item_key, h.previous, h.status, h.by, h.tx_hash, h.block_timestamp)
        for h in history
    ] == [
        (
            bid("L2"),
            None,
            Status.ACTIVE,
            Status.RECALLED,
            parties.holder.address,
            recalled.tx_hash,
            parties.timestamp(recalled.block_number),
        ),
        (
            bid("L1"),
            key,
            Status.ACTIVE,
            Status.STOLEN,
            parties.holder.address,
            stolen.tx_hash,
            parties.timestamp(stolen.block_number),
        ),
        (
            bid("L1"),
            key,
            Status.STOLEN,
            Status.DESTROYED,
            parties.holder.address,
            destroyed.tx_hash,
            parties.timestamp(destroyed.block_number),
        ),
    ]

    checkpoints = [log for log in rows(engine, ChainLog) if log.event == "CheckpointAnchored"]
    assert [(c.tx_hash, c.args) for c in checkpoints] == [
        (anchored.tx_hash, {"agency": agency.address, "size": 2**64 - 1, "root": "0x" + "ab" * 32})
    ]

    # replaying the raw logs gives the same derived tables
    before = derived_snapshot(engine)
    with Session(engine) as session:
        rebuild_index(session)
        session.commit()
    assert derived_snapshot(engine) == before


def test_batches_enrolled_through_the_api_are_indexed(stack: Stack) -> None:
    holder = stack.org("Acme Pharma", "rights_holder", "TMK 19-1")
    stack.org("NL Customs", "customs")
    batch = stack.enroll(holder["apiKey"], lot="API1", serials=["A1", "A2", "A3"])
    stack.sync()

    engine = stack.gateway.engine
    indexed = batches(engine)
    assert set(indexed) == {batch["batchId"]}
    row = indexed[batch["batchId"]]
    assert row.tx_hash == batch["txHash"]
    assert (row.lot, row.item_count, row.root) == ("API1", 3, batch["root"])
    block = stack.registry.w3.eth.get_block(row.block_number)
    assert row.block_hash == HexBytes(block["hash"]).to_0x_hex()
    assert row.registered_at == int(block["timestamp"])
    assert [a.name for a in rows(engine, IndexedCustomsAgency)] == ["NL Customs"]
    assert [h.name for h in rows(engine, IndexedRightsHolder)] == ["Acme Pharma"]
    assert len(rows(engine, IndexedSigner)) == 1


# ------------------------------------------------------------------------------ 2. confirmations


def test_a_log_is_indexed_only_once_buried_under_the_confirmations(
    engine: Engine, parties: Parties
) -> None:
    indexer = indexer_for(engine, parties, confirmations=3)
    reg = parties.register("C1")

    def poll() -> PollResult:
        result = indexer.poll_once()
        head = parties.head()
        assert result.head == head
        assert result.indexed_to == head - 3
        assert state(engine).last_block == head - 3
        assert state(engine).head_block == head
        return result

    poll()
    assert bid("C1") not in batches(engine)
    for _ in range(2):
        mine(parties.url)
        poll()
        assert bid("C1") not in batches(engine)
        assert state(engine).last_block < reg.block_number
    mine(parties.url)
    result = poll()
    assert result.logs == 1
    assert state(engine).last_block == reg.block_number
    assert batches(engine)[bid("C1")].block_hash == reg.block_hash
    assert_exactly_once(engine, parties)

    # nothing new: a poll is a no-op
    assert poll().logs == 0


# ------------------------------------------------------------------------------ 3. restarts


def test_resumes_after_a_restart_without_duplicates_or_gaps(
    database: tuple[str, str | None],
    engine: Engine,
    parties: Parties,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parties.register("R1")
    pending = parties.register("R2")  # not yet confirmed when the first process stops
    first = indexer_for(engine, parties, confirmations=1)
    first.poll_once()
    assert state(engine).last_block == pending.block_number - 1
    assert set(batches(engine)) == {bid("R1")}
    assert log_count(engine) == parties.events - 1

    # a process dies half-way through a page: the page's transaction is rolled back whole
    parties.register("R3")
    parties.set_batch_status("R1", Status.STOLEN)
    before = (log_count(engine), state(engine).last_block, derived_snapshot(engine))
    real_apply = api.indexer.apply_log
    applied: list[str] = []

    def crash_on_second(
        session: Session, entry: ChainLog, retired: dict[str, int] | None = None
    ) -> None:
        applied.append(entry.event)
        if len(applied) == 2:
            raise KeyboardInterrupt("killed")
        real_apply(session, entry, retired)

    monkeypatch.setattr(api.indexer, "apply_log", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        indexer_for(engine, parties).poll_once()
    monkeypatch.setattr(api.indexer, "apply_log", real_apply)
    assert (log_count(engine), state(engine).last_block, derived_snapshot(engine)) == before

    # a new process: new engine, new indexer, same database
    url, schema = database
    engine2 = make_engine(url, schema)
    try:
        parties.register("R4")
        second = indexer_for(engine2, parties)
        result = second.poll_once()
        assert result.logs == 4  # R2, R3, the status change, R4: nothing re-read
        assert result.indexed_to == parties.head()
        assert_exactly_once(engine2, parties)
        assert set(batches(engine2)) == {bid(lot) for lot in ("R1", "R2", "R3", "R4")}
        assert batches(engine2)[bid("R1")].status == Status.STOLEN
        assert len(rows(engine2, IndexedStatusChange)) == 1

        # and once more, with an event in between
        third = indexer_for(engine2, parties)
        assert third.poll_once().logs == 0
        parties.set_item_status("R4", Status.RECALLED)
        assert indexer_for(engine2, parties).poll_once().logs == 1
        assert_exactly_once(engine2, parties)
        assert len(rows(engine2, IndexedStatusChange)) == 2
        assert_matches_chain(engine2, parties)
    finally:
        engine2.dispose()


# ------------------------------------------------------------------------------ 4. reorgs


def test_anvil_reorg_replacing_a_batch_is_followed(engine: Engine, forkable: Parties) -> None:
    chain = forkable
    orphan = chain.register("ORPHAN")
    chain.set_batch_status("ORPHAN", Status.RECALLED)
    indexer = indexer_for(engine, chain, confirmations=0)
    indexer.poll_once()
    assert bid("ORPHAN") in batches(engine)
    assert len(rows(engine, IndexedStatusChange)) == 1
    old_hash = orphan.block_hash

    # replace the last blocks: the orphan's block now holds another batch (same nonce)
    head = chain.head()
    depth = head - orphan.block_number + 1
    nonce = int(chain.w3.eth.get_transaction(orphan.tx_hash)["nonce"])  # type: ignore[arg-type]
    raw = chain.signed_registration("REPLACEMENT", nonce)
    rpc_request(chain.url, "anvil_reorg", [depth, [[raw, 0]]])
    chain.events -= 2  # the orphan's registration and status change are gone
    chain.events += 1  # the replacement
    assert chain.head() == head
    assert chain.block_hash(orphan.block_number) != old_hash

    result = indexer.poll_once()
    assert result.reorg_depth == depth  # back to the block of the signer key, the fork point
    assert result.indexed_to == head
    indexed = batches(engine)
    assert bid("ORPHAN") not in indexed
    replacement = indexed[bid("REPLACEMENT")]
    assert replacement.block_number == orphan.block_number
    assert replacement.block_hash == chain.block_hash(orphan.block_number)
    assert replacement.registered_at == chain.timestamp(orphan.block_number)
    assert replacement.status == Status.ACTIVE
    assert rows(engine, IndexedStatusChange) == []
    assert_exactly_once(engine, chain)
    assert_matches_chain(engine, chain)
    # what came before the fork survived the rebuild
    assert [h.address for h in rows(engine, IndexedRightsHolder)] == [chain.holder.address]
    assert [s.address for s in rows(engine, IndexedSigner)] == [chain.signer.address]

    # the index keeps following the new chain
    chain.register("AFTER")
    assert indexer.poll_once().reorg_depth == 0
    assert set(batches(engine)) == {bid("REPLACEMENT"), bid("AFTER")}
    assert_exactly_once(engine, chain)


def test_snapshot_revert_to_a_shorter_chain_is_followed(engine: Engine, forkable: Parties) -> None:
    chain = forkable
    fork_point = chain.head()
    snapshot = rpc_request(chain.url, "evm_snapshot")
    chain.register("ORPHAN")
    chain.set_item_status("ORPHAN", Status.STOLEN)
    indexer = indexer_for(engine, chain, page_blocks=1)
    indexer.poll_once()
    assert bid("ORPHAN") in batches(engine)
    indexed_to = state(engine).last_block
    events_before = chain.events

    assert rpc_request(chain.url, "evm_revert", [snapshot]) is True
    chain.events -= 2
    assert chain.head() == fork_point
    replacement = chain.register("REPLACEMENT")  # the chain is now shorter than the index
    assert chain.head() < indexed_to

    result = indexer.poll_once()
    assert result.reorg_depth == indexed_to - fork_point
    assert set(batches(engine)) == {bid("REPLACEMENT")}
    assert batches(engine)[bid("REPLACEMENT")].block_hash == replacement.block_hash
    assert rows(engine, IndexedItemStatus) == []
    assert rows(engine, IndexedStatusChange) == []
    assert chain.events == events_before - 1
    assert_exactly_once(engine, chain)
    assert_matches_chain(engine, chain)


def reorg_on_get_logs(
    monkeypatch: pytest.MonkeyPatch, w3: Web3, url: str, depth: int, raw: str, *, after: bool
) -> list[bool]:
    """Make the first eth_getLogs of `w3` coincide with a real `anvil_reorg`: just before the
    call reaches the node, or just after its answer came back. Returns a flag list that
    holds True once the reorg happened."""
    real_get_logs = w3.eth.get_logs
    done: list[bool] = []

    def get_logs(params: Any) -> Any:
        if done:
            return real_get_logs(params)
        done.append(True)
        if not after:
            rpc_request(url, "anvil_reorg", [depth, [[raw, 0]]])
            return real_get_logs(params)
        answer = real_get_logs(params)
        rpc_request(url, "anvil_reorg", [depth, [[raw, 0]]])
        return answer

    monkeypatch.setattr(w3.eth, "get_logs", get_logs)  # on this instance only
    return done


def test_a_reorg_below_the_page_while_it_is_read_is_not_missed(
    engine: Engine, forkable: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain reorganizes after the poll checked for reorgs but before it read the page,
    replacing an indexed block: the page must not be stacked on the orphaned block."""
    chain = forkable
    orphan = chain.register("ORPHAN")
    w3 = connect(chain.url)
    indexer = indexer_for(engine, chain, w3=w3)
    indexer.poll_once()
    assert set(batches(engine)) == {bid("ORPHAN")}
    mine(chain.url, 2)
    nonce = int(chain.w3.eth.get_transaction(orphan.tx_hash)["nonce"])  # type: ignore[arg-type]
    raw = chain.signed_registration("REPLACEMENT", nonce)
    depth = chain.head() - orphan.block_number + 1
    reorged = reorg_on_get_logs(monkeypatch, w3, chain.url, depth, raw, after=False)

    result = indexer.poll_once()
    assert reorged

    # the same poll noticed, rolled the orphan's block back and indexed the new fork
    assert result.reorg_depth == 1
    assert result.indexed_to == chain.head()
    assert set(batches(engine)) == {bid("REPLACEMENT")}
    assert_exactly_once(engine, chain)
    assert_matches_chain(engine, chain)


@pytest.mark.parametrize("old_fork", ["empty blocks", "a batch"])
def test_a_reorg_just_after_a_page_was_read_is_not_missed(
    engine: Engine, forkable: Parties, old_fork: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chain reorganizes just after a page's logs were read (a new batch replaces the
    old fork's blocks): what the index keeps of the page must let it notice and undo it."""
    chain = forkable
    w3 = connect(chain.url)
    indexer = indexer_for(engine, chain, w3=w3)
    indexer.poll_once()
    indexed_to = state(engine).last_block
    if old_fork == "a batch":
        chain.register("ORPHAN")
        chain.events -= 1
    mine(chain.url, 2)
    nonce = int(chain.w3.eth.get_transaction_count(chain.holder.address))
    if old_fork == "a batch":
        nonce -= 1
    raw = chain.signed_registration("REPLACEMENT", nonce)
    chain.events += 1
    reorged = reorg_on_get_logs(
        monkeypatch, w3, chain.url, chain.head() - indexed_to, raw, after=True
    )

    first = indexer.poll_once()
    assert reorged
    second = indexer.poll_once()

    if old_fork == "empty blocks":
        # the page read before the reorg had no logs: its stored end hash gives it away
        assert second.reorg_depth == chain.head() - indexed_to
    else:
        # the orphan's block was gone when its timestamp was asked: the page was re-read
        assert first.reorg_depth == second.reorg_depth == 0
        assert first.indexed_to == chain.head()
    assert second.indexed_to == chain.head()
    assert set(batches(engine)) == {bid("REPLACEMENT")}
    assert_exactly_once(engine, chain)
    assert_matches_chain(engine, chain)


# ------------------------------------------------------------------------------ 5. outages


def test_catches_up_after_an_rpc_outage(engine: Engine, parties: Parties) -> None:
    with RpcProxy(parties.url) as proxy:
        w3 = connect(proxy.url, timeout=2, request_retries=1)
        thread = IndexerThread(indexer_for(engine, parties, w3=w3, page_blocks=3), interval=0.05)
        parties.register("O1")
        thread.start()
        try:
            wait_for(lambda: bid("O1") in batches(engine), what="the first batch")
            assert thread.last_error is None

            proxy.mode = "down"
            wait_for(lambda: thread.last_error is not None, what="the outage to be noticed")
            assert "Connection" in (thread.last_error or ""), thread.last_error
            # the chain moves on meanwhile (written straight to the node)
            more = [parties.register(f"O{i}") for i in range(2, 6)]
            parties.set_batch_status("O1", Status.RECALLED)
            mine(parties.url, 4)
            dropped = proxy.dropped_before
            wait_for(lambda: proxy.dropped_before >= dropped + 3, what="polls during the outage")
            assert thread.is_alive()
            assert thread.last_error is not None
            assert set(batches(engine)) == {bid("O1")}
            assert state(engine).last_block < more[0].block_number

            proxy.mode = "up"
            head = parties.head()
            wait_for(
                lambda: state(engine).last_block >= head and thread.last_error is None,
                what="the index to catch up",
            )
        finally:
            thread.stop()
        assert not thread.is_alive()

    assert set(batches(engine)) == {bid(f"O{i}") for i in range(1, 6)}
    assert batches(engine)[bid("O1")].status == Status.RECALLED
    assert_exactly_once(engine, parties)
    assert_matches_chain(engine, parties)


class Recorder(logging.Handler):
    """Keeps the warnings logged (failed polls, reorganizations)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_indexers_of_several_processes_share_one_database(
    database: tuple[str, str | None], engine: Engine, parties: Parties
) -> None:
    """Every gateway worker runs an indexer on the same database: they take turns on the
    checkpoint, so no poll fails, no reorg is imagined, and every event lands once."""
    url, schema = database
    engines = [make_engine(url, schema) for _ in range(3)]
    threads = [
        IndexerThread(indexer_for(e, parties, page_blocks=1), interval=0.001) for e in engines
    ]
    recorder = Recorder()
    logger = logging.getLogger("borderledger.indexer")
    logger.addHandler(recorder)
    try:
        for thread in threads:
            thread.start()
        for i in range(12):
            parties.register(f"W{i}")
        head = parties.head()
        wait_for(lambda: state(engine).last_block >= head, what="the indexers to catch up")
        time.sleep(0.2)  # a few more concurrent polls at the head
    finally:
        for thread in threads:
            thread.stop()
        logger.removeHandler(recorder)
        for e in engines:
            e.dispose()

    assert recorder.messages == []
    assert all(thread.last_error is None for thread in threads)
    assert set(batches(engine)) == {bid(f"W{i}") for i in range(12)}
    assert_exactly_once(engine, parties)
    assert_matches_chain(engine, parties)


# ------------------------------------------------------------------------------ 6. paging


@pytest.mark.parametrize("page_blocks", [1, 2])
def test_pages_cover_every_block_exactly_once(
    engine: Engine, parties: Parties, page_blocks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    w3 = connect(parties.url)
    indexer = indexer_for(engine, parties, w3=w3, page_blocks=page_blocks)
    ranges: list[tuple[int, int]] = []
    real_get_logs = w3.eth.get_logs

    def counting_get_logs(params: Any) -> Any:  # counts, then asks the real node
        ranges.append((int(params["fromBlock"]), int(params["toBlock"])))
        return real_get_logs(params)

    monkeypatch.setattr(w3.eth, "get_logs", counting_get_logs)  # on this instance only

    receipts = []
    for i in range(3):
        receipts.append(parties.register(f"P{i}"))
        mine(parties.url, i)  # gaps of empty blocks
    indexer.poll_once()
    # two transactions in one block: events of one block must keep their order
    agency = Account.from_key(dev_private_key(2))
    admin = parties.client(parties.admin)
    holder = parties.client(parties.holder)
    assert admin.sender is not None and holder.sender is not None
    rpc_request(parties.url, "evm_setAutomine", [False])
    try:
        first = admin.sender.sign(
            admin.contract.functions.accreditCustomsAgency(agency.address, "Agency")
        )
        second = holder.sender.sign(
            holder.contract.functions.setBatchStatus(batch_id_of(GTIN, "P0"), int(Status.STOLEN))
        )
        third = holder.sender.sign(
            holder.contract.functions.setBatchStatus(batch_id_of(GTIN, "P0"), int(Status.DESTROYED))
        )
        for signed in (first, second, third):
            admin.sender.broadcast(signed)
        mine(parties.url)
    finally:
        rpc_request(parties.url, "evm_setAutomine", [True])
    shared = [parties.count(admin.sender.wait(s.tx_hash)) for s in (first, second, third)]
    assert len({r.block_number for r in shared}) == 1
    receipts.append(parties.register("P3"))
    mine(parties.url, 3)
    indexer.poll_once()

    head = parties.head()
    assert ranges, "eth_getLogs was never called"
    assert all(0 <= end - start < page_blocks for start, end in ranges), ranges
    assert ranges[0][0] == parties.start_block
    for (_, previous_end), (start, _) in itertools.pairwise(ranges):
        assert start == previous_end + 1, ranges  # no gap, no overlap
    assert ranges[-1][1] == head

    assert_exactly_once(engine, parties)
    assert_matches_chain(engine, parties)
    indexed = batches(engine)
    assert {b: indexed[b].block_number for b in indexed} == {
        bid(f"P{i}"): r.block_number for i, r in enumerate(receipts)
    }
    assert indexed[bid("P0")].status == Status.DESTROYED
    with Session(engine) as session:
        history = session.exec(
            select(IndexedStatusChange).order_by(col(IndexedStatusChange.id))
        ).all()
    assert [(h.previous, h.status, h.block_number) for h in history] == [
        (Status.ACTIVE, Status.STOLEN, shared[0].block_number),
        (Status.STOLEN, Status.DESTROYED, shared[0].block_number),
    ]
    assert [a.address for a in rows(engine, IndexedCustomsAgency)] == [agency.address]


# ------------------------------------------------------------------------------ 7. one registry


def test_refuses_a_database_that_indexes_another_registry(
    engine: Engine, parties: Parties, anvil: LocalNode
) -> None:
    indexer_for(engine, parties).poll_once()
    before = (log_count(engine), state(engine).last_block)
    other = deploy(anvil)
    assert other.registry != parties.registry

    with pytest.raises(RuntimeError) as refused:
        indexer_for(engine, other).poll_once()
    assert parties.registry in str(refused.value)
    assert other.registry in str(refused.value)
    assert (log_count(engine), state(engine).last_block) == before
    assert state(engine).registry_address == parties.registry


def test_follows_bindings_reassignments_and_revocations(engine: Engine, parties: Parties) -> None:
    """GtinBound, GtinReassigned and RightsHolderRevoked reach the index, and a rebuild from
    the raw logs (what a reorganization does) gives the same tables."""
    successor = Account.from_key(dev_private_key(7))
    admin = parties.client(parties.admin)
    parties.register("L1")
    parties.count(admin.accredit_rights_holder(successor.address, "Successor", "TMK 2"))
    parties.count(admin.reassign_gtin(GTIN, successor.address))
    revoked = parties.count(admin.revoke_rights_holder(parties.holder.address))
    indexer = Indexer(engine, parties.w3, parties.registry, start_block=parties.start_block)
    indexer.poll_once()
    (binding,) = rows(engine, IndexedGtinBinding)
    assert (binding.gtin, binding.holder, binding.previous) == (
        GTIN,
        successor.address,
        parties.holder.address,
    )
    holders = {h.address: h for h in rows(engine, IndexedRightsHolder)}
    assert holders[parties.holder.address].revoked_at == parties.timestamp(revoked.block_number)
    assert holders[successor.address].revoked_at is None
    assert batches(engine)[bid("L1")].holder == parties.holder.address  # the batch stays
    before = derived_snapshot(engine)
    with Session(engine) as session:
        rebuild_index(session)
        session.commit()
    assert derived_snapshot(engine) == before


def test_follows_company_prefix_bindings(engine: Engine, parties: Parties) -> None:
    """CompanyPrefixBound and CompanyPrefixUnbound reach the index (an unbinding removes the
    row; a prefix bound again is bound anew), and a rebuild from the raw logs gives the same
    tables."""
    admin = parties.client(parties.admin)
    holder = parties.holder.address
    parties.count(admin.bind_company_prefix("950600", holder))
    parties.count(admin.bind_company_prefix("4012345", holder))
    parties.count(admin.unbind_company_prefix("4012345"))
    parties.count(admin.unbind_company_prefix("950600"))
    rebound = parties.count(admin.bind_company_prefix("950600", holder))
    indexer = Indexer(engine, parties.w3, parties.registry, start_block=parties.start_block)
    indexer.poll_once()
    (binding,) = rows(engine, IndexedPrefixBinding)
    assert (binding.prefix, binding.holder, binding.block_number) == (
        "950600",
        holder,
        rebound.block_number,
    )
    before = derived_snapshot(engine)
    with Session(engine) as session:
        rebuild_index(session)
        session.commit()
    assert derived_snapshot(engine) == before
