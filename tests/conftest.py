"""Session fixtures: real Anvil and Hardhat nodes started by the tests themselves.

Integration tests take the `chain` fixture and run once per node kind, as web3.py runs one
test class against every backend. Each test gets a freshly deployed registry, so tests never
see each other's batches; the nodes themselves start once per session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chain.contract import RegistryClient, connect
from chain.node import LocalNode, dev_private_key
from chain.tx import TransactionSender
from ledger.tags import TagDomain, TagSigner
from tests.stack import Stack, running_stack, scratch_database

NODE_KINDS = ("anvil", "hardhat")


@pytest.fixture(scope="session", params=NODE_KINDS)
def node(request: pytest.FixtureRequest) -> Iterator[LocalNode]:
    """A running local node of each kind, started once per session."""
    with LocalNode(request.param) as running:
        yield running


@dataclass
class Chain:
    """A deployed registry with the parties of a small supply chain, each with its own client."""

    node: LocalNode
    admin: LocalAccount
    holder: LocalAccount
    agency: LocalAccount
    stranger: LocalAccount
    other_holder: LocalAccount
    signer_key: bytes
    registry: RegistryClient

    def client(self, account: LocalAccount) -> RegistryClient:
        sender = TransactionSender(
            self.registry.w3, account, self.registry.decode_revert, backoff=0.05
        )
        return self.registry.with_sender(sender)

    @property
    def domain(self) -> TagDomain:
        return TagDomain(self.registry.chain_id, self.registry.address)

    def tag_signer(self, key: bytes | None = None) -> TagSigner:
        return TagSigner(key or self.signer_key, self.domain)


@pytest.fixture
def chain(node: LocalNode) -> Chain:
    """A fresh registry on `node`, deployed by dev account 0 (the registry admin)."""
    w3 = connect(node.url)
    admin = Account.from_key(dev_private_key(0))
    sender = TransactionSender(w3, admin, lambda data: None, backoff=0.05)  # type: ignore[arg-type,return-value]
    registry = RegistryClient.deploy(sender)
    sender._decode_revert = registry.decode_revert
    return Chain(
        node=node,
        admin=admin,
        holder=Account.from_key(dev_private_key(1)),
        agency=Account.from_key(dev_private_key(2)),
        stranger=Account.from_key(dev_private_key(3)),
        other_holder=Account.from_key(dev_private_key(4)),
        signer_key=dev_private_key(5),
        registry=registry,
    )


# ----------------------------------------------------------- the gateway stack (tests/stack.py)


@pytest.fixture(scope="session")
def anvil() -> Iterator[LocalNode]:
    with LocalNode("anvil") as node:
        yield node


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(SQLAlchemy URL, schema): SQLite by default, a fresh PostgreSQL schema with DATABASE_URL."""
    with scratch_database(tmp_path, "gateway.db", "t_") as db:
        yield db


@pytest.fixture
def stack(anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[Stack]:
    """A deployed registry, a gateway on it and a client with the admin's API key."""
    with running_stack(anvil, database, tmp_path) as running:
        yield running
