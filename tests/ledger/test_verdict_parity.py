"""The three judges agree, on Anvil and on Hardhat: the gateway (`api.verification.verify`,
through POST /v1/verify), the offline verifier (`scanner.offline.judge`, from a trust bundle of
the same chain state) and the registry's own view functions (`checkTag`, `isSignerValidFor`,
read by `borderledger check`), on whether an item is genuine and on why not."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chain.check import TagReport, check_tag_uri
from chain.node import LocalNode
from ledger.models import ZERO_ADDRESS
from ledger.verdicts import OFFLINE_ONLY, Reason, signer_reason
from tests.scanner.test_offline import SERIALS, World, same
from tests.stack import running_stack

#: What only the gateway can say: it holds the batch's tree and a live index.
GATEWAY_ONLY = {"SERIAL_NOT_VERIFIABLE", "INDEX_STALE"}


@pytest.fixture
def world(node: LocalNode, database: tuple[str, str | None], tmp_path: Path) -> Iterator[World]:
    """The offline tests' world (Acme's batch L1, a rival, an officer) on a gateway over `node`:
    each test runs once on Anvil and once on Hardhat."""
    with running_stack(node, database, tmp_path) as stack:
        yield World(stack)


def on_chain(world: World, online: dict[str, Any], tag: str) -> TagReport:
    """`borderledger check` of `tag`, with the salt and proof the gateway answered (so the
    registry checks membership too)."""
    proof = online.get("proof") or {}
    item_proof = None
    if proof.get("salt"):
        item_proof = (
            bytes.fromhex(proof["salt"][2:]),
            [bytes.fromhex(p[2:]) for p in proof["merkleProof"]],
        )
    return check_tag_uri(world.stack.registry, tag, item_proof=item_proof)


def agree(world: World, tag: str, verdict: str, reason: str) -> None:
    bundle = world.bundle()
    online = world.online(tag=tag)
    offline = world.offline(bundle, tag=tag)
    chain = on_chain(world, online, tag)
    same(online, offline)
    assert online["verdict"] == offline["verdict"] == chain.verdict == verdict, (online, chain)
    assert chain.genuine is (verdict == "GENUINE")
    assert [r for r in online["reasons"] if r not in GATEWAY_ONLY] == chain.reasons, chain
    assert [r for r in offline["reasons"] if r not in OFFLINE_ONLY] == [
        r for r in chain.reasons if r != "SERIAL_IN_BATCH"
    ]
    assert reason in chain.reasons and reason in online["reasons"]
    assert chain.in_batch is True and "SERIAL_IN_BATCH" in online["reasons"]
    # the signer rule itself: the engine on the chain's records == isSignerValidFor
    signer = chain.signer
    assert signer is not None and signer == online["proof"]["signer"] == offline["signer"]
    batch = world.stack.registry.get_batch(chain.batch_id)
    key = world.stack.registry.signer_key(signer)
    engine = signer_reason(key if key.registered else None, batch.holder, batch.registered_at)
    contract = world.stack.registry.is_signer_valid_for(signer, batch.holder, batch.registered_at)
    assert (engine == Reason.SIGNATURE_VALID) is contract is chain.signature_valid
    if engine != Reason.SIGNATURE_VALID:
        assert engine.value == reason


def test_signer_cases_agree(world: World) -> None:
    registry = world.stack.registry
    holder_key = world.sealed(world.holder, "signer_key_encrypted")
    rival_key = world.sealed(world.rival, "signer_key_encrypted")
    agree(world, world.tags[SERIALS[0]], "GENUINE", "SIGNATURE_VALID")
    agree(world, world.tag(rival_key, SERIALS[1]), "COUNTERFEIT_SUSPECT", "SIGNER_FOREIGN")
    unknown = world.tag(secrets.token_bytes(32), SERIALS[1])
    agree(world, unknown, "COUNTERFEIT_SUSPECT", "SIGNER_UNKNOWN")

    time.sleep(1.1)  # the revocation is in a later second than L1's registration
    world.revoke_holder_signer()
    time.sleep(1.1)  # L2 is registered in a later second than the revocation
    world.stack.enroll(world.holder["apiKey"], lot="L2", serials=["NEW-1"])
    world.stack.sync()
    # revoked after L1 was registered: L1's tags still vouch; before L2's: L2's do not
    agree(world, world.tags[SERIALS[0]], "GENUINE", "SIGNATURE_VALID")
    agree(world, world.tag(holder_key, "NEW-1", "L2"), "COUNTERFEIT_SUSPECT", "SIGNER_REVOKED")

    # the rule at its edges, for any registration time: engine == isSignerValidFor
    signer = str(world.holder["signer"])
    key = registry.signer_key(signer)
    assert key.revoked_at > key.added_at > 0
    rival = registry.signer_key(str(world.rival["signer"]))
    edges = (
        0,
        key.added_at - 1,
        key.added_at,
        key.revoked_at - 1,
        key.revoked_at,
        key.revoked_at + 1,
        2**40 - 1,
    )
    for account, record in ((signer, key), (str(world.rival["signer"]), rival)):
        for holder in (key.holder, rival.holder, ZERO_ADDRESS):
            for at in edges:
                engine = signer_reason(record, holder, at) == Reason.SIGNATURE_VALID
                assert engine is registry.is_signer_valid_for(account, holder, at), (
                    account,
                    holder,
                    at,
                )
    nobody = registry.w3.to_checksum_address("0x" + secrets.token_hex(20))
    assert registry.signer_key(nobody).registered is False
    assert signer_reason(None, key.holder, key.added_at) == Reason.SIGNER_UNKNOWN
    assert (
        registry.is_signer_valid_for(
            registry.w3.to_checksum_address(nobody), key.holder, key.added_at
        )
        is False
    )


def test_status_cases_agree(world: World) -> None:
    agree(world, world.tags[SERIALS[0]], "GENUINE", "SIGNATURE_VALID")  # active
    for serial, status, verdict, reason in (
        (SERIALS[1], "recalled", "RECALLED", "ITEM_RECALLED"),
        (SERIALS[2], "stolen", "STOLEN", "ITEM_STOLEN"),
        (SERIALS[3], "decommissioned", "DECOMMISSIONED", "ITEM_DECOMMISSIONED"),
        (SERIALS[4], "destroyed", "COUNTERFEIT_SUSPECT", "ITEM_DESTROYED"),
    ):
        world.set_status(status, serial)
        agree(world, world.tags[serial], verdict, reason)
    world.set_status("recalled")  # the whole batch
    agree(world, world.tags[SERIALS[5]], "RECALLED", "BATCH_RECALLED")
    agree(world, world.tags[SERIALS[2]], "STOLEN", "ITEM_STOLEN")  # the item's own status first
