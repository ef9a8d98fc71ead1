"""RPC outages: the gateway keeps verifying from its index and queues writes until the chain
is back; nothing is lost and nothing is sent twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session, select

from api.models import PendingWrite, WriteStatus
from ledger.batch import batch_id_of
from ledger.contract import connect
from ledger.node import LocalNode, dev_private_key
from ledger.tx import TransactionSender
from tests.api.conftest import GTIN, Stack, running_stack
from tests.rpc_proxy import RpcProxy


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
    """Another holder registers the GTIN on chain before the index shows it: the chain refuses
    our registration. The lot is not stuck: a retry is a fresh attempt, and once the index
    knows the GTIN's owner the gateway refuses upfront with 403."""
    holder = stack.org("Acme", "rights_holder")["apiKey"]
    rival = stack.org("Rival", "rights_holder")
    rival_account = Account.from_key(dev_private_key(6))
    stack.registry.with_sender(
        TransactionSender(
            stack.registry.w3, Account.from_key(dev_private_key(0)), stack.registry.decode_revert
        )
    ).accredit_rights_holder(rival_account.address, "Squatter", "")
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
        and "belongs to another rights holder" in refused.json()["error"]["message"]
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
