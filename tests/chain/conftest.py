"""Fixtures of the registry tests shared across files: the accredited parties and a batch
(defined in test_registry_contract.py, where most tests use them)."""

from tests.chain.test_registry_contract import batch, parties

__all__ = ["batch", "parties"]
