"""RPC outages: the gateway keeps verifying from its index and queues writes until the chain
is back; nothing is lost and nothing is sent twice. Reorganizations: a landed write the chain
drops is submitted again, once, and says so; nothing is doubled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session, col, select
from web3.types import Nonce, TxParams

from api.crypto import unseal
from api.models import IndexedBatch, IndexedCustomsAgency, Organization, PendingWrite, WriteStatus
from chain.contract import connect
from chain.node import LocalNode, dev_private_key, rpc_request
from chain.tx import TransactionSender
from ledger.batch import batch_id_of
from ledger.models import Status
from tests.rpc_proxy import RpcProxy
from tests.stack import GTIN, Stack, running_stack


@pytest.fixture
def proxied(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> Iterator[tuple[Stack, RpcProxy]]:
    """A stack whose gateway reaches the chain only through a proxy the test can break."""
    with (
        RpcProxy(anvil.url) as proxy,
        running_stack(anvil, database, tmp_path, proxy.url, stale_after_seconds=1.0) as stack,
    ):
        yield stack, proxy


def _registrations(stack: Stack, lot: str) -> int:
    event = stack.registry.contract.events.BatchRegistered
    return len(event.get_logs(from_block=0, argument_filters={"batchId": batch_id_of(GTIN, lot)}))


def test_outage_verifies_from_the_index_and_queues_writes(proxied: tuple[Stack, RpcProxy]) -> None:
    stack, proxy = proxied
    holder = stack.org("Acme", "rights_holder")["apiKey"]
    officer = stack.org("Customs", "customs")["apiKey"]
    first = stack.enroll(holder, lot="A", serials=[f"A{i}" for i in range(10)])
    stack.sync()
    tag = stack.tags(holder, first["batchId"])[0]["uri"]

    proxy.mode = "down"
    time.sleep(1.2)  # the index is now older than stale_after_seconds
    during = stack.verify(officer, tag=tag)
    assert during["verdict"] == "GENUINE"
    assert "INDEX_STALE" in during["reasons"] and during["index"]["stale"] is True
    ready = stack.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["chain"].startswith("unreachable")

    body = {"gtin": GTIN, "lot": "B", "serials": [f"B{i}" for i in range(10)]}
    queued = stack.client.post("/v1/batches", json=body, headers=stack.headers(holder))
    assert queued.status_code == 201, queued.text
    assert queued.json()["registration"] == "queued" and queued.json()["txHash"] is None
    retried = stack.client.post("/v1/batches", json=body, headers=stack.headers(holder))
    assert retried.status_code == 200 and retried.json()["batchId"] == queued.json()["batchId"]
    status = stack.client.post(
        f"/v1/batches/{first['batchId']}/status",
        json={"status": "recalled"},
        headers={**stack.headers(holder), "Idempotency-Key": "recall-A"},
    )
    assert status.status_code == 202 and status.json()["status"] == "queued"
    again = stack.client.post(
        f"/v1/batches/{first['batchId']}/status",
        json={"status": "recalled"},
        headers={**stack.headers(holder), "Idempotency-Key": "recall-A"},
    )
    assert again.json()["id"] == status.json()["id"]
    assert _registrations(stack, "B") == 0

    proxy.mode = "up"
    assert stack.gateway.writer.process() == 2
    stack.sync()
    assert _registrations(stack, "B") == 1
    with Session(stack.gateway.engine) as session:
        writes = session.exec(
            select(PendingWrite).where(
                PendingWrite.kind.in_(["register_batch", "set_batch_status"])
            )
        ).all()  # type: ignore[attr-defined]
    assert sorted(w.kind for w in writes) == [
        "register_batch",
        "register_batch",
        "set_batch_status",
    ]
    assert all(w.status == WriteStatus.DONE for w in writes)
    after = stack.verify(officer, tag=tag)
    assert after["verdict"] == "RECALLED" and "INDEX_STALE" not in after["reasons"]
    b_tag = stack.tags(holder, queued.json()["batchId"])[0]["uri"]
    assert stack.verify(officer, tag=b_tag)["verdict"] == "GENUINE"


def test_a_lost_reply_after_broadcast_does_not_send_twice(proxied: tuple[Stack, RpcProxy]) -> None:
    """The node accepted the transaction but the gateway never heard back: the stored signed
    transaction is re-broadcast later and recognised, not signed again."""
    stack, proxy = proxied
    holder = stack.org("Acme", "rights_holder")["apiKey"]
    proxy.mode = "lose_replies"
    lost = stack.client.post(
        "/v1/batches",
        json={"gtin": GTIN, "lot": "C", "serials": ["C1", "C2"]},
        headers=stack.headers(holder),
    )
    assert lost.status_code == 201
    assert lost.json()["registration"] in ("sent", "done")
    proxy.mode = "up"
    stack.gateway.writer.process()
    with Session(stack.gateway.engine) as session:
        write = session.exec(
            select(PendingWrite).where(PendingWrite.kind == "register_batch")
        ).one()
    assert write.status == WriteStatus.DONE
    assert _registrations(stack, "C") == 1
    nonce = connect(stack.node.url).eth.get_transaction_count(
        write.payload and stack.registry.w3.eth.get_transaction(write.tx_hash)["from"]
    )  # type: ignore[arg-type]
    assert nonce >= 1


def test_a_registration_the_chain_refused_can_be_enrolled_again(stack: Stack) -> None:
    """The registry admin moves the GTIN to another holder on chain before the index shows
    it: the chain refuses our registration. The lot is not stuck: a retry is a fresh attempt,
    and once the index knows the GTIN's owner the gateway refuses upfront with 403."""
    holder = stack.org("Acme", "rights_holder")["apiKey"]
    rival = stack.org("Rival", "rights_holder")
    rival_account = Account.from_key(dev_private_key(6))
    admin = stack.registry.with_sender(
        TransactionSender(
            stack.registry.w3, Account.from_key(dev_private_key(0)), stack.registry.decode_revert
        )
    )
    admin.accredit_rights_holder(rival_account.address, "Successor", "")
    admin.reassign_gtin(GTIN, rival_account.address)
    squatter = stack.registry.with_sender(
        TransactionSender(stack.registry.w3, rival_account, stack.registry.decode_revert)
    )
    squatter.register_batch(GTIN, "OTHER", b"\x01" * 32, 1, b"\x00" * 32)
    assert rival["apiKey"]

    body = {"gtin": GTIN, "lot": "L1", "serials": ["A", "B"]}
    first = stack.client.post("/v1/batches", json=body, headers=stack.headers(holder))
    assert first.status_code == 201 and first.json()["registration"] == "failed"
    assert "GtinOwnedByAnotherHolder" in first.json()["error"]
    again = stack.client.post("/v1/batches", json=body, headers=stack.headers(holder))
    assert again.status_code == 201, "a refused registration is retried afresh, not replayed"
    with Session(stack.gateway.engine) as session:
        writes = session.exec(
            select(PendingWrite).where(PendingWrite.kind == "register_batch")
        ).all()
    assert len(writes) == 1
    stack.sync()
    refused = stack.client.post("/v1/batches", json=body, headers=stack.headers(holder))
    assert (
        refused.status_code == 403
        and "is bound to another rights holder" in refused.json()["error"]["message"]
    )


def test_a_write_another_process_is_submitting_is_left_to_it(
    proxied: tuple[Stack, RpcProxy],
) -> None:
    """Two gateway processes on one database: while one holds a write's lease the other
    does not submit it; once that lease has expired (the process died), it does, once."""
    from datetime import timedelta

    from sqlalchemy import update

    from api.models import utcnow
    from api.outbox import ChainWriter

    stack, proxy = proxied
    holder = stack.org("Acme", "rights_holder")["apiKey"]
    stack.sync()  # the index knows the chain id: enrolling needs no RPC
    proxy.mode = "down"
    body = {"gtin": GTIN, "lot": "L", "serials": [f"L{i}" for i in range(10)]}
    r = stack.client.post("/v1/batches", json=body, headers=stack.headers(holder))
    assert r.status_code == 201 and r.json()["registration"] == "queued", r.text
    proxy.mode = "up"
    with Session(stack.gateway.engine) as session:
        write = session.exec(
            select(PendingWrite).where(PendingWrite.kind == "register_batch")
        ).one()
    assert write.id is not None
    assert stack.gateway.writer._claim(write.id) is not None  # "process A" is submitting it
    other = ChainWriter(
        stack.gateway.engine, stack.gateway.settings.rpc_url, stack.gateway.registry,
        stack.gateway.settings.secret_key,
    )  # fmt: skip
    other.lease = timedelta(seconds=0.5)
    assert other.process(only=write.id) == 0  # waited for A's lease, sent nothing
    assert _registrations(stack, "L") == 0
    with Session(stack.gateway.engine) as session:  # process A dies: its lease runs out
        session.execute(
            update(PendingWrite)
            .where(PendingWrite.id == write.id)  # type: ignore[arg-type]
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert other.process(only=write.id) == 1
    assert stack.gateway.writer.process(only=write.id) == 0  # done: nothing left to send
    assert _registrations(stack, "L") == 1
    with Session(stack.gateway.engine) as session:
        done = session.get(PendingWrite, write.id)
        assert done is not None and done.status == WriteStatus.DONE and done.claim_token is None


# ------------------------------------------------------------------------ reorganizations


def _writes(stack: Stack) -> dict[str, PendingWrite]:
    """The stack's writes by idempotency key."""
    with Session(stack.gateway.engine) as session:
        rows = session.exec(select(PendingWrite).order_by(col(PendingWrite.id))).all()
    return {w.idempotency_key: w for w in rows}


def _indexed(stack: Stack, batch_id: str) -> IndexedBatch | None:
    with Session(stack.gateway.engine) as session:
        return session.get(IndexedBatch, batch_id)


@pytest.fixture
def node_stack(
    node: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> Iterator[Stack]:
    """A stack on each node kind (Anvil and Hardhat). The test reverts only what it did after
    its own snapshot, so the shared node stays usable by the tests that follow."""
    with running_stack(node, database, tmp_path) as stack:
        yield stack


def test_writes_a_revert_dropped_are_submitted_again_once(node_stack: Stack) -> None:
    stack = node_stack
    holder = stack.org("Acme", "rights_holder")["apiKey"]
    kept = stack.enroll(holder, lot="KEPT", serials=["K1", "K2"])
    snapshot = rpc_request(stack.node.url, "evm_snapshot")
    stack.org("Customs", "customs")  # an accreditation by the registry admin
    dropped = stack.enroll(holder, lot="R", serials=["R1", "R2"])
    assert dropped["registration"] == "done"
    stack.sync()
    recall = stack.client.post(
        f"/v1/batches/{dropped['batchId']}/status",
        json={"status": "recalled"},
        headers={**stack.headers(holder), "Idempotency-Key": "recall-R"},
    )
    assert recall.status_code == 202 and recall.json()["status"] == "done", recall.text
    stack.sync()
    indexed = _indexed(stack, dropped["batchId"])
    assert indexed is not None and indexed.status == Status.RECALLED
    landed = {k: w.tx_hash for k, w in _writes(stack).items()}

    assert rpc_request(stack.node.url, "evm_revert", [snapshot]) is True
    for _ in range(6):  # mine on, past the blocks that held the writes
        rpc_request(stack.node.url, "evm_mine")
    stack.sync()
    assert _indexed(stack, dropped["batchId"]) is None  # the index follows the chain
    with Session(stack.gateway.engine) as session:
        assert session.exec(select(IndexedCustomsAgency)).all() == []
    stack.gateway.writer.process()
    stack.sync()

    # registered again, exactly once, with its status; the agency accredited again
    assert _registrations(stack, "R") == 1
    assert _registrations(stack, "KEPT") == 1
    again = _indexed(stack, dropped["batchId"])
    assert again is not None and again.status == Status.RECALLED
    with Session(stack.gateway.engine) as session:
        assert len(session.exec(select(IndexedCustomsAgency)).all()) == 1
    writes = _writes(stack)
    moved = {k for k, w in writes.items() if w.reorgs}
    status_key = next(k for k in writes if k.startswith("status:"))
    agency_key = next(k for k in writes if k.startswith("agency:"))
    assert moved == {f"register:{dropped['batchId']}", status_key, agency_key}
    for key in moved:
        w = writes[key]
        assert w.status == WriteStatus.DONE and w.reorgs == 1 and w.reorged_at is not None
        assert w.block_number is not None
    # the holder's nonces were free again: the same signed bytes landed
    assert (
        writes[f"register:{dropped['batchId']}"].tx_hash == landed[f"register:{dropped['batchId']}"]
    )
    assert writes[status_key].tx_hash == landed[status_key]
    # the admin's funding of the new agency (not an outbox write) is gone too, so the stored
    # accreditation's nonce follows a gap: it was signed afresh
    assert writes[agency_key].tx_hash != landed[agency_key]
    assert writes[f"register:{kept['batchId']}"].reorgs == 0

    # the rights holder sees it where it sees its registration
    shown = stack.client.get(f"/v1/batches/{dropped['batchId']}", headers=stack.headers(holder))
    assert shown.status_code == 200, shown.text
    assert shown.json()["registration"] == "done" and shown.json()["reorgs"] == 1
    me = stack.client.get("/v1/organizations/me", headers=stack.headers(holder)).json()
    assert [w["reorgs"] for w in me["writes"] if w["kind"] == "set_batch_status"] == [1]

    # nothing more to do: more polls and passes submit nothing again
    stack.sync()
    stack.gateway.writer.process()
    stack.sync()
    assert _registrations(stack, "R") == 1
    assert all(w.reorgs == writes[k].reorgs for k, w in _writes(stack).items())


def test_a_dropped_write_whose_nonce_was_reused_is_signed_again(
    database: tuple[str, str | None], tmp_path: Path
) -> None:
    """`anvil_reorg` replaces the block of a registration with another transaction of the same
    account and nonce: the stored bytes can no longer land, so the write is signed afresh."""
    with (
        LocalNode("anvil") as node,  # history is rewritten: a node of its own
        running_stack(node, database, tmp_path) as stack,
    ):
        holder = stack.org("Acme", "rights_holder")["apiKey"]
        dropped = stack.enroll(holder, lot="R", serials=["R1", "R2"])
        stack.sync()
        key = f"register:{dropped['batchId']}"
        write = _writes(stack)[key]
        assert write.block_number is not None and write.tx_hash is not None
        w3 = stack.registry.w3
        nonce = int(w3.eth.get_transaction(write.tx_hash)["nonce"])  # type: ignore[arg-type]
        with Session(stack.gateway.engine) as session:
            org = session.get(Organization, write.organization_id)
            assert org is not None and org.key_encrypted is not None
            account = Account.from_key(unseal("test-secret-key", org.key_encrypted))
        fn = stack.registry.contract.functions.registerBatch(
            GTIN, "OTHER", b"\x01" * 32, 1, b"\x00" * 32
        )
        params: TxParams = {"from": account.address, "nonce": Nonce(nonce), "gas": 400_000}
        raw = account.sign_transaction(fn.build_transaction(params))  # type: ignore[arg-type]
        depth = int(w3.eth.block_number) - write.block_number + 1
        rpc_request(
            node.url, "anvil_reorg", [depth, [["0x" + bytes(raw.raw_transaction).hex(), 0]]]
        )

        stack.sync()
        assert _indexed(stack, dropped["batchId"]) is None
        assert _writes(stack)[key].status == WriteStatus.SENT  # re-submitted, not yet landed
        stack.gateway.writer.process()
        stack.sync()
        assert _registrations(stack, "R") == 1
        assert _registrations(stack, "OTHER") == 1
        after = _writes(stack)[key]
        assert after.status == WriteStatus.DONE and after.reorgs == 1
        assert after.tx_hash != write.tx_hash  # signed afresh, with the next nonce
        assert int(w3.eth.get_transaction(after.tx_hash)["nonce"]) == nonce + 1  # type: ignore[arg-type]
        assert _indexed(stack, dropped["batchId"]) is not None


def test_an_accreditation_and_a_signer_key_a_reorg_dropped_land_again(
    database: tuple[str, str | None], tmp_path: Path
) -> None:
    """`anvil_reorg` drops every block from the holder's accreditation on (its funding stays):
    the accreditation, its signer key and its first registration are submitted again, in
    order, and the holder ends up accredited with its key, its batch registered once."""
    with (
        LocalNode("anvil") as node,  # history is rewritten: a node of its own
        running_stack(node, database, tmp_path) as stack,
    ):
        holder = stack.org("Acme", "rights_holder")
        batch = stack.enroll(holder["apiKey"], lot="R", serials=["R1", "R2"])
        stack.sync()
        writes = _writes(stack)
        accredit = writes[f"accredit:{holder['address']}"]
        signer = writes[f"signer:{holder['signer']}"]
        assert accredit.block_number is not None
        depth = int(stack.registry.w3.eth.block_number) - accredit.block_number + 1
        rpc_request(node.url, "anvil_reorg", [depth, []])
        assert not stack.registry.rights_holder(holder["address"]).accredited

        stack.sync()
        assert _indexed(stack, batch["batchId"]) is None
        stack.gateway.writer.process()
        stack.sync()
        assert stack.registry.rights_holder(holder["address"]).accredited
        assert stack.registry.signer_key(holder["signer"]).registered
        assert _registrations(stack, "R") == 1
        after = _writes(stack)
        for key in (
            accredit.idempotency_key,
            signer.idempotency_key,
            f"register:{batch['batchId']}",
        ):
            assert after[key].status == WriteStatus.DONE and after[key].reorgs == 1, key
        me = stack.client.get("/v1/organizations/me", headers=stack.headers(holder["apiKey"]))
        assert {w["kind"]: w["reorgs"] for w in me.json()["writes"]} == {
            "add_signer": 1,
            "register_batch": 1,
        }
        admin = stack.client.get("/v1/organizations/me", headers=stack.headers(stack.admin_key))
        shown = {w["kind"]: w for w in admin.json()["writes"]}["accredit_holder"]
        assert shown["reorgs"] == 1 and shown["reorgedAt"] and shown["status"] == "done"
