"""Sending transactions that survive RPC hiccups and can be retried without doubling.

The rules that make retries safe:
- a call is simulated (`eth_estimateGas`) first, so a transaction that would revert is never
  sent and its custom error is reported with its arguments;
- a transaction is signed once and the same raw bytes are re-broadcast on retry, so a retry
  can only ever land the same transaction (a node answering "already known" or "nonce too
  low" for our own hash means it got there);
- callers that must survive being killed (enrollment) journal the signed transaction before
  broadcasting it and re-broadcast the journal on the next run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import Nonce, TxParams

from ledger.errors import ChainError, ContractReverted, ReceiptTimeout, RpcUnavailable

T = TypeVar("T")
RevertDecoder = Callable[[str], ContractReverted]
_TRANSIENT = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


@dataclass(frozen=True, slots=True)
class SignedTx:
    tx_hash: str
    raw: bytes
    nonce: int

    def to_json(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "raw": "0x" + self.raw.hex(), "nonce": self.nonce}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedTx:
        return cls(
            str(data["tx_hash"]),
            bytes.fromhex(str(data["raw"]).removeprefix("0x")),
            int(data["nonce"]),
        )


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    logs: list[Any]


def with_retries(
    fn: Callable[[], T], *, attempts: int = 6, backoff: float = 0.25, what: str = "RPC"
) -> T:
    """Run `fn`, retrying connection failures with exponential backoff."""
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except _TRANSIENT as exc:
            if attempt == attempts:
                raise RpcUnavailable(
                    f"{what}: node unreachable after {attempts} attempts ({exc})"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")  # pragma: no cover


def revert_data(exc: Exception) -> str | None:
    """The revert data hex carried by a web3 error, whichever node produced it."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return data
    if isinstance(data, dict):
        inner = data.get("data")
        if isinstance(inner, str) and inner.startswith("0x"):
            return inner
    message = getattr(exc, "message", None) or (exc.args[0] if exc.args else None)
    if isinstance(message, dict):
        inner = message.get("data")
        if isinstance(inner, str) and inner.startswith("0x"):
            return inner
    return None


class TransactionSender:
    """Signs and sends transactions from one account, with retries and nonce tracking."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        decode_revert: RevertDecoder,
        *,
        receipt_timeout: float = 120.0,
        attempts: int = 6,
        backoff: float = 0.25,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self._decode_revert = decode_revert
        self._receipt_timeout = receipt_timeout
        self._attempts = attempts
        self._backoff = backoff
        self._lock = threading.Lock()
        self._next_nonce: int | None = None

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return with_retries(fn, attempts=self._attempts, backoff=self._backoff, what=what)

    def simulate(self, fn: ContractFunction | ContractConstructor) -> int:
        """Estimate gas; raises ContractReverted (decoded) if the call would revert."""
        try:
            return self._retry(lambda: int(fn.estimate_gas({"from": self.address})), "estimate gas")
        except (ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError) as exc:
            data = revert_data(exc)
            if data:
                raise self._decode_revert(data) from None
            raise ContractReverted("", raw=str(exc)) from None

    def sign(self, fn: ContractFunction | ContractConstructor, gas: int | None = None) -> SignedTx:
        """Simulate, then sign with the next nonce; nothing is sent yet."""
        estimate = self.simulate(fn)
        gas_limit = gas or int(estimate * 1.2) + 10_000
        with self._lock:
            pending = self._retry(
                lambda: self.w3.eth.get_transaction_count(self.address, "pending"), "nonce"
            )
            nonce = max(pending, self._next_nonce or 0)
            params: TxParams = {"from": self.address, "nonce": Nonce(nonce), "gas": gas_limit}
            tx = self._retry(lambda: fn.build_transaction(params), "build transaction")
            signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
            self._next_nonce = nonce + 1
        return SignedTx(HexBytes(signed.hash).to_0x_hex(), bytes(signed.raw_transaction), nonce)

    def broadcast(self, signed: SignedTx) -> None:
        """Send raw bytes; an "already known" answer for our own hash is success."""

        def send() -> None:
            try:
                self.w3.eth.send_raw_transaction(signed.raw)
            except Web3RPCError as exc:
                text = str(exc).lower()
                duplicate = any(
                    m in text for m in ("already known", "already imported", "nonce too low")
                )
                if duplicate and self._known(signed.tx_hash):
                    return
                raise ChainError(f"node refused transaction {signed.tx_hash}: {exc}") from None

        self._retry(send, "send transaction")

    def _known(self, tx_hash: str) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    def wait(self, tx_hash: str, timeout: float | None = None) -> Receipt:
        """Poll for the receipt; a reverted transaction raises its decoded custom error."""
        deadline = time.monotonic() + (timeout or self._receipt_timeout)
        delay = 0.05
        while True:
            try:
                receipt = self._retry(
                    lambda: self.w3.eth.get_transaction_receipt(tx_hash),  # type: ignore[arg-type]
                    "receipt",
                )
                break
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise ReceiptTimeout(
                        f"no receipt for {tx_hash} after {timeout or self._receipt_timeout:.0f} s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
        if receipt["status"] != 1:
            raise ChainError(f"transaction {tx_hash} reverted in block {receipt['blockNumber']}")
        return Receipt(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
            gas_used=int(receipt["gasUsed"]),
            logs=list(receipt["logs"]),
        )

    def transact(
        self,
        fn: ContractFunction | ContractConstructor,
        *,
        gas: int | None = None,
        journal: Path | None = None,
    ) -> Receipt:
        """Sign, broadcast and wait; with `journal`, a run killed half-way resumes the same tx."""
        if journal is not None and journal.exists():
            signed = SignedTx.from_json(json.loads(journal.read_text()))
            if not self._known(signed.tx_hash):
                self.broadcast(signed)
            return self.wait(signed.tx_hash)
        signed = self.sign(fn, gas)
        if journal is not None:
            write_atomic(journal, json.dumps(signed.to_json()).encode())
        self.broadcast(signed)
        return self.wait(signed.tx_hash)


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
