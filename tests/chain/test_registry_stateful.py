"""Stateful property tests of the registry on Anvil (bench/contract.py has the machine and
its invariants): a short profile here; `borderledger bench contract` runs the long one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.contract import Deployment, run_state_machine
from chain.node import LocalNode


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    """An Anvil of its own: the machine moves the clock by days (the admin's transfer
    delay), and the shared nodes' clocks must stay the wall clock for the other tests."""
    with LocalNode("anvil") as own:
        yield Deployment.create(own.url)


def test_random_sequences_keep_the_invariants(deployment: Deployment) -> None:
    figures = run_state_machine(deployment, examples=12, steps=30)
    assert figures["sequences"] >= 12
    # the model predicted reverts as well as successes: both kinds were exercised
    assert figures["transactions"] > figures["reverted_as_predicted"] > 0
