"""The local nodes the project starts clean up after themselves (a day of test runs once
left 74 GB of Anvil state caches under ~/.foundry/anvil/tmp)."""

from __future__ import annotations

import os
import signal

from chain.node import MAX_PERSISTED_STATES, LocalNode, rpc_request


def test_anvil_keeps_its_state_cache_in_its_own_bounded_directory() -> None:
    node = LocalNode("anvil").start()
    try:
        cache = node.cache_dir
        assert cache is not None and cache.is_dir()
        command = node.command()
        assert command[command.index("--cache-path") + 1] == str(cache)
        assert command[command.index("--max-persisted-states") + 1] == str(MAX_PERSISTED_STATES)
        rpc_request(node.url, "anvil_mine", [hex(300)])
        assert int(rpc_request(node.url, "eth_blockNumber"), 16) >= 300
    finally:
        node.stop()
    assert not cache.exists()
    assert node.cache_dir is None


def test_the_cache_goes_even_when_the_node_died_first() -> None:
    node = LocalNode("anvil").start()
    cache = node.cache_dir
    assert cache is not None and node.process is not None
    os.killpg(node.process.pid, signal.SIGKILL)
    node.process.wait()
    node.stop()
    assert not cache.exists()
