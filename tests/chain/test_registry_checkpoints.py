"""Custody-log checkpoint anchoring in BorderLedgerRegistry, through `RegistryClient`.

Runs once per node kind (Anvil and Hardhat, the `chain` fixture of tests/conftest.py) on a
fresh registry. Roots come from a real `custody.log.MerkleLog`, so the test also shows that the
log's 32-byte roots round-trip through the contract unchanged. Reverting transactions are
simulated before they are sent (`chain.tx`); tests check the state they must not touch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain.contract import CUSTOMS_ROLE, RegistryClient, connect
from chain.tx import TransactionSender
from custody.log import MerkleLog, leaf_hash
from ledger.errors import ChainError, InvalidInput
from ledger.models import Checkpoint
from tests.chain.test_registry_contract import events, expect_revert
from tests.rpc_proxy import RpcProxy

ZERO32 = b"\x00" * 32
UINT64_MAX = 2**64 - 1
#: The custody log's budget: gas per log entry for a checkpoint of a million entries.
MAX_GAS_PER_ENTRY = 0.1


def custody_log(entries: int) -> MerkleLog:
    log = MerkleLog()
    log.extend(leaf_hash(f"scan event {i}".encode()) for i in range(entries))
    return log


@pytest.fixture(scope="module")
def million() -> MerkleLog:
    """A custody log of 1,000,000 entries (built once: about 2 s)."""
    return MerkleLog.from_leaf_hashes(
        b"".join([leaf_hash(i.to_bytes(4, "big")) for i in range(1_000_000)])
    )


@dataclass
class Agencies:
    chain: Any
    admin: RegistryClient
    agency: RegistryClient
    second: RegistryClient  # another customs agency (the `stranger` account, accredited)
    holder: RegistryClient  # a rights holder: no CUSTOMS_ROLE
    log: MerkleLog


@pytest.fixture
def agencies(chain: Any) -> Agencies:
    admin = chain.client(chain.admin)
    admin.accredit_customs_agency(chain.agency.address, "Border Force")
    admin.accredit_customs_agency(chain.stranger.address, "Douane")
    admin.accredit_rights_holder(chain.holder.address, "Acme Pharma", "TMK-1")
    return Agencies(
        chain=chain,
        admin=admin,
        agency=chain.client(chain.agency),
        second=chain.client(chain.stranger),
        holder=chain.client(chain.holder),
        log=custody_log(40),
    )


class TestAnchorCheckpoint:
    def test_anchor_stores_root_emits_event_and_updates_latest(self, agencies: Agencies) -> None:
        agency = agencies.chain.agency.address
        root = agencies.log.root(25)
        assert agencies.agency.latest_checkpoint(agency) == Checkpoint(agency, 0, ZERO32)
        assert not agencies.agency.latest_checkpoint(agency).anchored

        receipt = agencies.agency.anchor_checkpoint(25, root)

        assert events(agencies.agency, receipt, "CheckpointAnchored") == [
            {"agency": agency, "size": 25, "root": root}
        ]
        assert agencies.admin.checkpoint_root(agency, 25) == root
        latest = agencies.admin.latest_checkpoint(agency)
        assert latest == Checkpoint(agency, 25, root)
        assert latest.anchored and latest.root_hex == "0x" + root.hex()
        # sizes never anchored read as zero, before and after the anchored one
        assert agencies.admin.checkpoint_root(agency, 24) == ZERO32
        assert agencies.admin.checkpoint_root(agency, 26) == ZERO32
        assert agencies.admin.checkpoint_root(agency, 0) == ZERO32

    def test_later_checkpoints_keep_earlier_roots(self, agencies: Agencies) -> None:
        agency = agencies.chain.agency.address
        for size in (1, 8, 13, 40):
            agencies.agency.anchor_checkpoint(size, agencies.log.root(size))
            assert agencies.agency.latest_checkpoint(agency) == Checkpoint(
                agency, size, agencies.log.root(size)
            )
        for size in (1, 8, 13, 40):
            assert agencies.agency.checkpoint_root(agency, size) == agencies.log.root(size)

    def test_checkpoints_are_per_agency(self, agencies: Agencies) -> None:
        first, second = agencies.chain.agency.address, agencies.chain.stranger.address
        other_log = custody_log(7)
        agencies.agency.anchor_checkpoint(30, agencies.log.root(30))
        # the second agency's sizes are its own: 7 < 30 is fine
        receipt = agencies.second.anchor_checkpoint(7, other_log.root())
        assert events(agencies.second, receipt, "CheckpointAnchored") == [
            {"agency": second, "size": 7, "root": other_log.root()}
        ]
        assert agencies.admin.latest_checkpoint(first) == Checkpoint(
            first, 30, agencies.log.root(30)
        )
        assert agencies.admin.latest_checkpoint(second) == Checkpoint(second, 7, other_log.root())
        assert agencies.admin.checkpoint_root(first, 7) == ZERO32
        assert agencies.admin.checkpoint_root(second, 30) == ZERO32

    def test_largest_size_is_accepted(self, agencies: Agencies) -> None:
        agency = agencies.chain.agency.address
        root = agencies.log.root()
        agencies.agency.anchor_checkpoint(UINT64_MAX, root)
        assert agencies.agency.latest_checkpoint(agency) == Checkpoint(agency, UINT64_MAX, root)
        expect_revert(
            lambda: agencies.agency.anchor_checkpoint(UINT64_MAX, root),
            "CheckpointNotIncreasing",
            agency=agency,
            latestSize=UINT64_MAX,
            size=UINT64_MAX,
        )


class TestAnchorCheckpointRefusals:
    @pytest.mark.parametrize("size", [10, 9, 1])
    def test_size_must_grow(self, agencies: Agencies, size: int) -> None:
        agency = agencies.chain.agency.address
        agencies.agency.anchor_checkpoint(10, agencies.log.root(10))
        expect_revert(
            lambda: agencies.agency.anchor_checkpoint(size, agencies.log.root(size)),
            "CheckpointNotIncreasing",
            agency=agency,
            latestSize=10,
            size=size,
        )
        assert agencies.agency.latest_checkpoint(agency) == Checkpoint(
            agency, 10, agencies.log.root(10)
        )
        if size != 10:
            assert agencies.agency.checkpoint_root(agency, size) == ZERO32

    def test_retry_of_a_landed_anchor_is_recognisable(self, agencies: Agencies) -> None:
        """What an idempotent caller relies on: the revert names the same size and the stored
        root equals the one it meant to anchor."""
        agency = agencies.chain.agency.address
        root = agencies.log.root(12)
        agencies.agency.anchor_checkpoint(12, root)
        error = expect_revert(
            lambda: agencies.agency.anchor_checkpoint(12, root),
            "CheckpointNotIncreasing",
            agency=agency,
            latestSize=12,
            size=12,
        )
        assert error.error_args["latestSize"] == 12
        assert agencies.agency.checkpoint_root(agency, 12) == root

    def test_zero_size(self, agencies: Agencies) -> None:
        agency = agencies.chain.agency.address
        fn = agencies.agency.contract.functions.anchorCheckpoint(0, agencies.log.root(1))
        expect_revert(lambda: agencies.agency._transact(fn), "InvalidCheckpointSize", size=0)
        assert agencies.agency.latest_checkpoint(agency) == Checkpoint(agency, 0, ZERO32)

    def test_zero_root(self, agencies: Agencies) -> None:
        agency = agencies.chain.agency.address
        expect_revert(
            lambda: agencies.agency.anchor_checkpoint(5, ZERO32), "InvalidRoot", root=ZERO32
        )
        assert agencies.agency.checkpoint_root(agency, 5) == ZERO32
        assert agencies.agency.latest_checkpoint(agency).size == 0

    @pytest.mark.parametrize("who", ["holder", "admin", "unaccredited"])
    def test_only_customs_agencies_anchor(self, agencies: Agencies, who: str) -> None:
        chain = agencies.chain
        if who == "holder":
            client, account = agencies.holder, chain.holder.address
        elif who == "admin":
            client, account = agencies.admin, chain.admin.address
        else:
            client, account = chain.client(chain.other_holder), chain.other_holder.address
        expect_revert(
            lambda: client.anchor_checkpoint(3, agencies.log.root(3)),
            "AccessControlUnauthorizedAccount",
            account=account,
            neededRole=CUSTOMS_ROLE,
        )
        assert client.latest_checkpoint(account) == Checkpoint(account, 0, ZERO32)

    def test_revoked_agency_cannot_anchor_but_its_checkpoints_remain(
        self, agencies: Agencies
    ) -> None:
        agency = agencies.chain.agency.address
        agencies.agency.anchor_checkpoint(4, agencies.log.root(4))
        agencies.admin.revoke_role(CUSTOMS_ROLE, agency)
        expect_revert(
            lambda: agencies.agency.anchor_checkpoint(8, agencies.log.root(8)),
            "AccessControlUnauthorizedAccount",
            account=agency,
            neededRole=CUSTOMS_ROLE,
        )
        assert agencies.admin.latest_checkpoint(agency) == Checkpoint(
            agency, 4, agencies.log.root(4)
        )

    @pytest.mark.parametrize("size", [0, -1, 2**64])
    def test_client_refuses_sizes_outside_uint64_before_sending(
        self, agencies: Agencies, size: int
    ) -> None:
        block = agencies.chain.registry.w3.eth.block_number
        with pytest.raises(InvalidInput, match="checkpoint size"):
            agencies.agency.anchor_checkpoint(size, agencies.log.root(1))
        assert agencies.chain.registry.w3.eth.block_number == block
        if size < 0 or size >= 2**64:
            with pytest.raises(InvalidInput, match="checkpoint size"):
                agencies.agency.checkpoint_root(agencies.chain.agency.address, size)

    def test_client_refuses_a_root_that_is_not_32_bytes(self, agencies: Agencies) -> None:
        with pytest.raises(ValueError, match="expected 32 bytes"):
            agencies.agency.anchor_checkpoint(3, agencies.log.root(3)[:31])


class TestAnchorCheckpointCost:
    def test_one_transaction_whatever_the_size_within_the_gas_budget(
        self, agencies: Agencies, million: MerkleLog
    ) -> None:
        """Gas does not depend on the number of entries; a million-entry checkpoint costs at
        most 0.1 gas per entry, the first anchor of an agency (two fresh slots) included."""
        first = agencies.agency.anchor_checkpoint(1_000, million.root(1_000))
        later = agencies.agency.anchor_checkpoint(1_000_000, million.root())
        other_first = agencies.second.anchor_checkpoint(4_000, million.root(4_000))
        assert first.gas_used / 1_000_000 <= MAX_GAS_PER_ENTRY
        assert later.gas_used / 1_000_000 <= MAX_GAS_PER_ENTRY
        # later anchors only overwrite the agency's non-zero latest-size slot: cheaper
        assert later.gas_used < first.gas_used
        # the first anchor of two agencies costs the same whatever its size
        assert abs(other_first.gas_used - first.gas_used) <= 100
        receipts = [first, later, other_first]
        assert len({r.tx_hash for r in receipts}) == 3

    def test_journaled_anchor_resumes_the_same_transaction(
        self, agencies: Agencies, tmp_path: Path
    ) -> None:
        """A gateway killed after signing re-broadcasts the journaled transaction instead of
        signing a second one."""
        journal = tmp_path / "anchor.json"
        root = agencies.log.root(20)
        receipt = agencies.agency.anchor_checkpoint(20, root, journal=journal)
        assert json.loads(journal.read_text())["tx_hash"] == receipt.tx_hash
        again = agencies.agency.anchor_checkpoint(20, root, journal=journal)
        assert again.tx_hash == receipt.tx_hash
        assert agencies.agency.latest_checkpoint(agencies.chain.agency.address).size == 20

    def test_anchors_through_a_flaky_link_land_exactly_once(self, agencies: Agencies) -> None:
        """Requests dropped before the node and replies lost after it acted: the sender
        re-broadcasts the same signed bytes, so each checkpoint is one transaction."""
        chain = agencies.chain
        agency = chain.agency.address
        nonce_before = chain.registry.w3.eth.get_transaction_count(agency)
        with RpcProxy(chain.node.url, mode="flaky") as proxy:
            client = via(proxy, chain)
            for size in (5, 17, 40):
                receipt = client.anchor_checkpoint(size, agencies.log.root(size))
                assert events(client, receipt, "CheckpointAnchored") == [
                    {"agency": agency, "size": size, "root": agencies.log.root(size)}
                ]
            assert proxy.dropped_before >= 1 and proxy.dropped_after >= 1, "really flaky"
        assert chain.registry.w3.eth.get_transaction_count(agency) == nonce_before + 3
        assert anchored_sizes(agencies) == [5, 17, 40]

    def test_an_anchor_whose_reply_was_lost_resumes_from_its_journal(
        self, agencies: Agencies, tmp_path: Path
    ) -> None:
        """The node anchored but no reply ever came back: the caller gives up with an RPC
        error; run again with the same journal, it re-broadcasts the same transaction."""
        chain = agencies.chain
        agency = chain.agency.address
        journal = tmp_path / "anchor-40.json"
        nonce_before = chain.registry.w3.eth.get_transaction_count(agency)
        with RpcProxy(chain.node.url, mode="lose_replies") as proxy:
            client = via(proxy, chain, attempts=2)
            with pytest.raises(ChainError):
                client.anchor_checkpoint(40, agencies.log.root(), journal=journal)
            assert proxy.dropped_after >= 1
            proxy.mode = "up"
            receipt = client.anchor_checkpoint(40, agencies.log.root(), journal=journal)
        assert receipt.tx_hash == json.loads(journal.read_text())["tx_hash"]
        assert chain.registry.w3.eth.get_transaction_count(agency) == nonce_before + 1
        assert anchored_sizes(agencies) == [40]
        assert agencies.agency.latest_checkpoint(agency) == Checkpoint(
            agency, 40, agencies.log.root()
        )


def via(proxy: RpcProxy, chain: Any, attempts: int = 6) -> RegistryClient:
    """The agency's client talking to the node through `proxy`."""
    w3 = connect(proxy.url, timeout=5)
    registry = RegistryClient(w3, chain.registry.address)
    sender = TransactionSender(
        w3, chain.agency, registry.decode_revert, attempts=attempts, backoff=0.01
    )
    return registry.with_sender(sender)


def anchored_sizes(agencies: Agencies) -> list[int]:
    logs = agencies.chain.registry.contract.events.CheckpointAnchored.get_logs(from_block=0)
    return [int(log["args"]["size"]) for log in logs]
