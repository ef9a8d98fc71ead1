"""Transaction sending through a flaky RPC link: retries land each transaction exactly once."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ledger.contract import RegistryClient, connect
from ledger.errors import RpcUnavailable
from ledger.merkle import MerkleTree, leaf_hash
from ledger.node import free_port
from ledger.tx import TransactionSender
from tests.conftest import Chain


class FlakyProxy:
    """Forwards JSON-RPC to a node, but drops some requests before forwarding them and the
    replies of others after forwarding them (the worst case: the node acted, we never heard)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.count = 0
        self.dropped_before = 0
        self.dropped_after = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.count += 1
                n = proxy.count
                if n % 3 == 1:
                    proxy.dropped_before += 1
                    self.close_connection = True
                    return
                request = urllib.request.Request(
                    proxy.upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    reply = response.read()
                if n % 5 == 2:
                    proxy.dropped_after += 1
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(chain: Chain) -> Iterator[FlakyProxy]:
    with FlakyProxy(chain.node.url) as proxy:
        yield proxy


def test_writes_through_a_flaky_link_land_exactly_once(chain: Chain, flaky: FlakyProxy) -> None:
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
