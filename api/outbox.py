"""Chain writes the gateway accepted, submitted now or as soon as the chain is reachable.

Every write (enrollment, status change, accreditation, signer key) is first stored as a
`PendingWrite` with an idempotency key, in the same transaction as the data it belongs to.
Then it is submitted: checked against the chain (already done? then it is done), signed once,
its signed bytes and hash stored *before* broadcasting, broadcast, and awaited. If the RPC is
down the row simply stays queued and the outbox thread tries again; a stored signed
transaction is re-broadcast as is, so a retry can never land a second transaction.

A write that landed is not safe yet: a reorganization can drop the block that held it. After
every index poll, `recover_dropped` looks at the landed writes of the blocks the index still
keeps hashes for: one whose transaction the index no longer shows, although it indexed past
its block, is submitted again, once per loss (`reorgs`, `reorged_at` say so; the custody
anchorer does the same for its checkpoints, with `resubmit`). Its stored signed bytes are
re-broadcast first: after a revert their nonce is usually free again, and the same bytes can
never land twice. If another transaction took that nonce meanwhile, the node refuses them; the
outbox then asks the chain whether the effect is already there (the contract's own state: a
batch registered with this root, a signer registered...) and otherwise signs afresh with the
next nonce. So nothing is doubled, and nothing is silently lost.

Each submission holds a lease on its row, so gateway processes sharing a database never
submit the same write at the same time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from web3 import Web3

from api.crypto import unseal
from api.indexer import KEPT_BLOCK_HASHES
from api.models import ChainLog, IndexerState, Organization, PendingWrite, WriteStatus, utcnow
from chain.contract import RegistryClient, connect
from chain.tx import SignedTx, TransactionSender, with_retries
from ledger.errors import ChainError, ContractReverted, ReceiptTimeout, RpcUnavailable
from ledger.models import ZERO_ADDRESS, Status

log = logging.getLogger("borderledger.outbox")

#: Longer than one submission can take (a broadcast and a 30 s receipt wait): a live process
#: never loses the lease mid-submission; a dead one's writes are taken over after it.
WRITE_LEASE = timedelta(seconds=120)


def enqueue(
    session: Session, organization_id: int, kind: str, payload: dict[str, Any], idempotency_key: str
) -> PendingWrite:
    """Store a write (or return the one stored under the same idempotency key)."""
    existing = session.exec(
        select(PendingWrite).where(PendingWrite.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        return existing
    write = PendingWrite(
        idempotency_key=idempotency_key, organization_id=organization_id, kind=kind, payload=payload
    )
    session.add(write)
    session.flush()
    return write


def resubmit(session: Session, write: PendingWrite) -> bool:
    """Submit a landed write again because the chain no longer holds its transaction (a
    reorganization). Its stored signed bytes go out first (see the module docstring). Only
    one caller wins for a given loss: the row changes only if it is still landed with the
    count of losses that was read, so two gateway processes re-submit it once.
    Returns whether this call re-submitted it."""
    now = utcnow()
    changed = session.execute(
        update(PendingWrite)
        .where(
            col(PendingWrite.id) == write.id,
            col(PendingWrite.status) == WriteStatus.DONE,
            col(PendingWrite.reorgs) == write.reorgs,
        )
        .values(
            status=WriteStatus.SENT if write.signed_tx else WriteStatus.QUEUED,
            block_number=None,
            error=None,
            reorgs=write.reorgs + 1,
            reorged_at=now,
            updated_at=now,
        )
    )
    session.flush()
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    log.warning(
        "the chain dropped %s write %s (tx %s, block %s): submitting it again",
        write.kind,
        write.id,
        write.tx_hash,
        write.block_number,
    )
    return True


class ChainWriter:
    """Submits pending writes; one instance per gateway process, serialised by a lock."""

    def __init__(self, engine: Engine, rpc_url: str, registry: str, secret_key: str) -> None:
        self.engine = engine
        self.rpc_url = rpc_url
        self.registry = registry
        self.secret_key = secret_key
        self._lock = threading.Lock()
        self._w3: Web3 | None = None
        self.lease = WRITE_LEASE
        #: (last indexed block, its hash, index start) at the last full `recover_dropped`
        self._recovered_for: tuple[int, str, int] | None = None

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(self.rpc_url, timeout=5, request_retries=1)
        return self._w3

    def client(self, org: Organization) -> RegistryClient:
        # One quick attempt: a write the chain cannot take now stays queued for the next pass.
        registry = RegistryClient(self.w3, self.registry, attempts=1, backoff=0.05)
        if org.key_encrypted is None:
            raise ChainError(f"organization {org.name!r} has no chain key")
        account = Account.from_key(unseal(self.secret_key, org.key_encrypted))
        sender = TransactionSender(
            self.w3, account, registry.decode_revert, attempts=2, backoff=0.1, receipt_timeout=30
        )
        return registry.with_sender(sender)

    def fund(self, admin: Organization, address: str, wei: int = 10**19) -> None:
        """Development chains only: give a new organization's account gas money, best effort."""
        try:
            client = self.client(admin)
            assert client.sender is not None
            account = client.sender.account
            tx = {
                "to": Web3.to_checksum_address(address),
                "value": wei,
                "gas": 21_000,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.w3.eth.chain_id,
                "maxFeePerGas": 2 * int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
                + 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
            signed = account.sign_transaction(tx)  # type: ignore[arg-type]
            self.w3.eth.wait_for_transaction_receipt(
                self.w3.eth.send_raw_transaction(signed.raw_transaction), 30
            )
        except Exception as exc:
            log.warning("could not fund %s: %s", address, exc)

    def process(self, only: int | None = None) -> int:
        """Submit queued writes in order (or just `only`); returns how many completed."""
        with self._lock:
            with Session(self.engine) as session:
                query = select(PendingWrite.id).where(
                    col(PendingWrite.status).in_([WriteStatus.QUEUED, WriteStatus.SENT])
                )
                if only is not None:
                    query = query.where(PendingWrite.id == only)
                ids = list(session.exec(query.order_by(col(PendingWrite.id))).all())
            done = 0
            for write_id in ids:
                assert write_id is not None
                outcome = self._submit(write_id)
                if outcome == WriteStatus.DONE:
                    done += 1
                elif outcome in (WriteStatus.QUEUED, WriteStatus.SENT):
                    break  # the chain is unreachable: keep order, try again later
            return done

    def recover_dropped(self, index_start_block: int = 0) -> list[int]:
        """Re-submit the landed writes a reorganization dropped; returns their ids.

        Looks at writes that landed in blocks the index covers (from `index_start_block`, at
        most `KEPT_BLOCK_HASHES` deep): one whose transaction hash has no indexed log is no
        longer on the chain. Anchor checkpoints are left to the custody anchorer, which
        re-submits them itself (it also decides which checkpoint comes next). A transaction
        the node re-included in another block only gets its block number updated.

        Only a change of the index can reveal a dropped transaction (a reorganization changes
        the hash of the last indexed block), so an index that has not moved since the last
        full look is not looked at again: an idle gateway costs one read per poll."""
        with Session(self.engine, expire_on_commit=False) as session:
            state = session.get(IndexerState, 1)
            if state is None or state.last_block_hash is None:
                return []
            seen = (state.last_block, state.last_block_hash, index_start_block)
            if seen == self._recovered_for:
                return []
            floor = max(index_start_block, state.last_block - KEPT_BLOCK_HASHES)
            landed = session.exec(
                select(PendingWrite).where(
                    PendingWrite.status == WriteStatus.DONE,
                    PendingWrite.kind != "anchor_checkpoint",
                    col(PendingWrite.tx_hash).is_not(None),
                    col(PendingWrite.block_number) >= floor,
                    col(PendingWrite.block_number) <= state.last_block,
                )
            ).all()
            if not landed:
                self._recovered_for = seen
                return []
            blocks = dict(
                session.exec(
                    select(ChainLog.tx_hash, ChainLog.block_number).where(
                        col(ChainLog.tx_hash).in_([w.tx_hash for w in landed])
                    )
                ).all()
            )
            dropped: list[int] = []
            for write in landed:
                assert write.id is not None and write.tx_hash is not None
                block = blocks.get(write.tx_hash)
                if block is None:
                    if resubmit(session, write):
                        dropped.append(write.id)
                elif block != write.block_number:
                    write.block_number = block
                    session.add(write)
            session.commit()
            self._recovered_for = seen
            return dropped

    def _submit(self, write_id: int) -> WriteStatus:
        """Submit one write under a lease, so that two gateway processes never sign it
        both. When another process holds the lease, wait for it (up to the lease) and
        report the status it left."""
        deadline = time.monotonic() + self.lease.total_seconds()
        while (token := self._claim(write_id)) is None:
            with Session(self.engine) as session:
                write = session.get(PendingWrite, write_id)
                assert write is not None
                if write.status not in (WriteStatus.QUEUED, WriteStatus.SENT):
                    return write.status
                if time.monotonic() > deadline:
                    return write.status
            time.sleep(0.1)
        try:
            return self._submit_claimed(write_id)
        finally:
            with Session(self.engine) as session:
                session.execute(
                    update(PendingWrite)
                    .where(col(PendingWrite.id) == write_id, col(PendingWrite.claim_token) == token)
                    .values(claim_token=None, claimed_until=None)
                    .execution_options(synchronize_session=False)
                )
                session.commit()

    def _claim(self, write_id: int) -> str | None:
        """The lease on a queued or sent write (a conditional UPDATE: on PostgreSQL it waits
        for a concurrent claim's commit and re-checks), or None if another process has it."""
        now = utcnow()
        token = str(uuid.uuid4())
        with Session(self.engine) as session:
            result = session.execute(
                update(PendingWrite)
                .where(
                    col(PendingWrite.id) == write_id,
                    col(PendingWrite.status).in_([WriteStatus.QUEUED, WriteStatus.SENT]),
                    or_(
                        col(PendingWrite.claimed_until).is_(None),
                        col(PendingWrite.claimed_until) < now,
                    ),
                )
                .values(claim_token=token, claimed_until=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        return token if getattr(result, "rowcount", 0) == 1 else None

    def _submit_claimed(self, write_id: int) -> WriteStatus:
        with Session(self.engine, expire_on_commit=False) as session:
            write = session.get(PendingWrite, write_id)
            assert write is not None
            org = session.get(Organization, write.organization_id)
            assert org is not None
            try:
                client = self.client(org)
                assert client.sender is not None
                if write.signed_tx is None:
                    if self._already_done(client, write):
                        return self._finish(session, write, None)
                    signed = client.sender.sign(self._call(client, write))
                    write.signed_tx = signed.to_json()["raw"]
                    write.tx_hash = signed.tx_hash
                    write.status = WriteStatus.SENT
                    write.updated_at = utcnow()
                    session.add(write)
                    session.commit()  # stored before broadcast: a crash now cannot double it
                    client.sender.broadcast(signed)
                else:
                    raw = bytes.fromhex(write.signed_tx.removeprefix("0x"))
                    stored = SignedTx(write.tx_hash or "", raw, _nonce_of(raw))
                    try:
                        address = client.sender.address
                        if stored.nonce > with_retries(
                            lambda: self.w3.eth.get_transaction_count(address, "pending"),
                            attempts=2,
                            backoff=0.1,
                            what="nonce",
                        ):
                            # A transaction before it is gone (a reorganization dropped one
                            # the outbox did not send): these bytes would wait forever.
                            raise ChainError(f"nonce {stored.nonce} follows a gap")
                        client.sender.broadcast(stored)
                    except RpcUnavailable:
                        raise
                    except ChainError:
                        # The stored transaction can no longer land (its nonce was used, e.g.
                        # by another transaction after a reorganization): sign it afresh.
                        if self._already_done(client, write):
                            return self._finish(session, write, None)
                        write.signed_tx, write.tx_hash, write.status = (
                            None,
                            None,
                            WriteStatus.QUEUED,
                        )
                        session.add(write)
                        session.commit()
                        return self._submit_claimed(write_id)  # still under our lease
                receipt = client.sender.wait(write.tx_hash or "")
                return self._finish(session, write, receipt.block_number)
            except ContractReverted as exc:
                write.status, write.error = WriteStatus.FAILED, str(exc)
            except (RpcUnavailable, ReceiptTimeout, ConnectionError, TimeoutError) as exc:
                write.error = f"waiting for the chain: {exc}"
            except ChainError as exc:
                write.error = str(exc)
            write.attempts += 1
            write.updated_at = utcnow()
            session.add(write)
            session.commit()
            return write.status

    def _finish(self, session: Session, write: PendingWrite, block: int | None) -> WriteStatus:
        write.status, write.block_number, write.error = WriteStatus.DONE, block, None
        write.updated_at = utcnow()
        session.add(write)
        session.commit()
        return WriteStatus.DONE

    @staticmethod
    def _call(client: RegistryClient, write: PendingWrite) -> Any:
        p = write.payload
        f = client.contract.functions
        calls: dict[str, Callable[[], Any]] = {
            "accredit_holder": lambda: f.accreditRightsHolder(
                p["address"], p["name"], p.get("recordation", "")
            ),
            "accredit_agency": lambda: f.accreditCustomsAgency(p["address"], p["name"]),
            "add_signer": lambda: f.addSigner(p["signer"]),
            "bind_gtin": lambda: f.bindGtin(p["gtin"], p["holder"]),
            "reassign_gtin": lambda: f.reassignGtin(p["gtin"], p["holder"]),
            "bind_prefix": lambda: f.bindCompanyPrefix(p["prefix"], p["holder"]),
            "unbind_prefix": lambda: f.unbindCompanyPrefix(p["prefix"]),
            "revoke_holder": lambda: f.revokeRightsHolder(p["address"]),
            "revoke_signer": lambda: f.revokeSigner(p["signer"]),
            "register_batch": lambda: f.registerBatch(
                p["gtin"],
                p["lot"],
                bytes.fromhex(str(p["root"])[2:]),
                int(str(p["item_count"])),
                bytes.fromhex(str(p["metadata_hash"])[2:]),
            ),
            "set_batch_status": lambda: f.setBatchStatus(
                bytes.fromhex(str(p["batch_id"])[2:]), int(str(p["status"]))
            ),
            "set_item_status": lambda: f.setItemStatus(
                p["gtin"],
                p["lot"],
                p["serial"],
                bytes.fromhex(str(p["salt"])[2:]),
                [bytes.fromhex(str(x)[2:]) for x in _strings(p["proof"])],
                int(str(p["status"])),
            ),
            "anchor_checkpoint": lambda: f.anchorCheckpoint(
                int(str(p["size"])), bytes.fromhex(str(p["root"])[2:])
            ),
        }
        if write.kind not in calls:
            raise ChainError(f"unknown write kind {write.kind!r}")
        return calls[write.kind]()

    @staticmethod
    def _already_done(client: RegistryClient, write: PendingWrite) -> bool:
        """Whether the chain already shows the effect (a retry after a lost answer)."""
        p = write.payload
        if write.kind == "register_batch":
            batch = client.get_batch(str(p["batch_id"]))
            return batch.registered and batch.root == p["root"]
        if write.kind == "accredit_holder":
            return client.rights_holder(str(p["address"])).accredited
        if write.kind in ("bind_gtin", "reassign_gtin"):
            return client.gtin_holder(str(p["gtin"])) == str(p["holder"])
        if write.kind == "bind_prefix":
            return client.company_prefix_holder(str(p["prefix"])) == str(p["holder"])
        if write.kind == "unbind_prefix":
            return client.company_prefix_holder(str(p["prefix"])) == ZERO_ADDRESS
        if write.kind == "revoke_holder":
            return client.rights_holder(str(p["address"])).revoked_at != 0
        if write.kind == "accredit_agency":
            return bool(client.customs_agency(str(p["address"])))
        if write.kind == "add_signer":
            return client.signer_key(str(p["signer"])).registered
        if write.kind == "revoke_signer":
            return client.signer_key(str(p["signer"])).revoked_at != 0
        if write.kind == "set_batch_status":
            return client.get_batch(str(p["batch_id"])).status == Status(int(str(p["status"])))
        if write.kind == "set_item_status":
            batch_id = client.batch_id_of(str(p["gtin"]), str(p["lot"]))
            current = client.item_status(batch_id, bytes.fromhex(str(p["item_key"])[2:]))
            return current == Status(int(str(p["status"])))
        if write.kind == "anchor_checkpoint":
            anchored = client.checkpoint_root(str(p["agency"]), int(str(p["size"])))
            return "0x" + anchored.hex() == str(p["root"])
        return False


def _nonce_of(raw: bytes) -> int:
    """The nonce of a signed transaction (0 if it cannot be read: then no gap is assumed)."""
    try:
        return int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"])
    except Exception:
        return 0


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        raise ChainError(f"expected a list in the write payload, got {type(value).__name__}")
    return [str(v) for v in value]


class OutboxThread(threading.Thread):
    def __init__(self, writer: ChainWriter, interval: float = 1.0) -> None:
        super().__init__(name="borderledger-outbox", daemon=True)
        self.writer = writer
        self.interval = interval
        self.stopped = threading.Event()
        self.wake = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.writer.process()
            except Exception as exc:
                log.warning("outbox pass failed: %s", exc)
            self.wake.wait(self.interval)
            self.wake.clear()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.join(timeout=30)
