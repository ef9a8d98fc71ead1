"""Transaction sending through a flaky RPC link: retries land each transaction exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chain.contract import RegistryClient, connect
from chain.node import free_port
from chain.tx import TransactionSender
from ledger.errors import RpcUnavailable
from ledger.merkle import MerkleTree, leaf_hash
from tests.conftest import Chain
from tests.rpc_proxy import RpcProxy


@pytest.fixture
def flaky(chain: Chain) -> Iterator[RpcProxy]:
    """Drops requests before they reach the node, and replies after the node acted."""
    with RpcProxy(chain.node.url, mode="flaky") as proxy:
        yield proxy


def test_writes_through_a_flaky_link_land_exactly_once(chain: Chain, flaky: RpcProxy) -> None:
    w3 = connect(flaky.url)
    registry = RegistryClient(w3, chain.registry.address)
    admin = registry.with_sender(
        TransactionSender(w3, chain.admin, registry.decode_revert, backoff=0.01)
    )
    holder = registry.with_sender(
        TransactionSender(w3, chain.holder, registry.decode_revert, backoff=0.01)
    )
    nonce_before = chain.registry.w3.eth.get_transaction_count(chain.holder.address)

    admin.accredit_rights_holder(chain.holder.address, "Acme", "T-1")
    admin.bind_gtin("09506000134352", chain.holder.address)
    holder.add_signer(chain.tag_signer().address)
    trees = []
    for lot in ("L1", "L2", "L3"):
        tree = MerkleTree.from_leaves(
            [leaf_hash("09506000134352", f"S{i}", b"\x01" * 32) for i in range(5)]
        )
        holder.register_batch("09506000134352", lot, tree.root, 5, b"\x00" * 32)
        trees.append(tree)

    assert flaky.dropped_before > 3 and flaky.dropped_after > 1, "the link really was flaky"
    # Two holder transactions per kind of write, each exactly once: signer + three batches.
    assert chain.registry.w3.eth.get_transaction_count(chain.holder.address) == nonce_before + 4
    events = chain.registry.contract.events.BatchRegistered.get_logs(from_block=0)
    assert sorted(e["args"]["lot"] for e in events) == ["L1", "L2", "L3"]
    assert chain.registry.rights_holder(chain.holder.address).name == "Acme"


def test_a_dead_node_is_reported_not_retried_forever(chain: Chain) -> None:
    w3 = connect(f"http://127.0.0.1:{free_port()}", timeout=1)
    registry = RegistryClient(w3, chain.registry.address)
    sender = TransactionSender(w3, chain.admin, registry.decode_revert, attempts=3, backoff=0.01)
    with pytest.raises(RpcUnavailable, match="unreachable after 3 attempts"):
        registry.with_sender(sender).accredit_rights_holder(chain.holder.address, "Acme", "T")
    assert not chain.registry.has_role(b"\x00" * 32, chain.holder.address)
