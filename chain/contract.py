"""Typed client for the BorderLedgerRegistry contract, and its deployment.

Every contract function has a method here taking and returning plain Python values
(`ledger.models`); reverts come out as `ContractReverted` carrying the custom error's name and
arguments, decoded from the ABI.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import requests
from eth_abi.abi import decode as abi_decode
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    Web3RPCError,
)
from web3.providers.rpc.utils import REQUEST_RETRY_ALLOWLIST, ExceptionRetryConfiguration

from chain.tx import Receipt, TransactionSender, revert_data, with_retries
from ledger.config import PROJECT_ROOT
from ledger.errors import BorderLedgerError, ContractReverted, InvalidInput
from ledger.hashing import keccak256
from ledger.models import (
    BatchRecord,
    Checkpoint,
    RightsHolderRecord,
    SignerKeyRecord,
    Status,
    TagCheck,
)

REGISTRY = "BorderLedgerRegistry"
RIGHTS_HOLDER_ROLE = keccak256(b"RIGHTS_HOLDER_ROLE")
CUSTOMS_ROLE = keccak256(b"CUSTOMS_ROLE")
ADMIN_ROLE = b"\x00" * 32


class ArtifactMissing(BorderLedgerError):
    pass


@cache
def load_artifact(name: str, artifacts_dir: Path = PROJECT_ROOT / "artifacts") -> dict[str, Any]:
    """ABI and bytecode of a compiled contract (from `hardhat compile`)."""
    matches = sorted(artifacts_dir.glob(f"contracts/**/{name}.json"))
    if not matches:
        raise ArtifactMissing(f"no compiled {name} under {artifacts_dir}: run `make setup`")
    data: dict[str, Any] = json.loads(matches[0].read_text())
    return data


def make_revert_decoder(abi: Sequence[dict[str, Any]]) -> Any:
    """A function turning revert data into ContractReverted(name, args) using `abi`'s errors."""
    errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for item in abi:
        if item.get("type") == "error":
            types = [_abi_type(i) for i in item["inputs"]]
            names = [i["name"] for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            errors[keccak256(signature.encode())[:4]] = (item["name"], names, types)
    errors[bytes.fromhex("08c379a0")] = ("Error", ["message"], ["string"])
    errors[bytes.fromhex("4e487b71")] = ("Panic", ["code"], ["uint256"])

    def decode(data: str) -> ContractReverted:
        raw = bytes.fromhex(data.removeprefix("0x"))
        known = errors.get(raw[:4])
        if known is None:
            return ContractReverted("", raw=data)
        name, names, types = known
        try:
            values = abi_decode(types, raw[4:])
        except Exception:
            return ContractReverted(name, raw=data)
        args = {n: _pythonic(n, v, t) for n, v, t in zip(names, values, types, strict=True)}
        return ContractReverted(name, args, raw=data)

    return decode


def _pythonic(name: str, value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return Web3.to_checksum_address(value)
    if abi_type == "uint8" and name in ("status", "previous"):
        return Status(value)
    return value


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def connect(rpc_url: str, timeout: float = 10, request_retries: int = 3) -> Web3:
    """A Web3 over HTTP that retries each JSON-RPC request on connection errors.

    Every method is retried, `eth_sendRawTransaction` included: re-sending the same signed
    bytes can only land the same transaction (`chain.tx` treats "already known" as success).
    Longer outages are ridden out one level up, by `chain.tx.with_retries`.
    """
    retry = ExceptionRetryConfiguration(
        errors=(ConnectionError, requests.ConnectionError, requests.Timeout),
        retries=request_retries,
        backoff_factor=0.05,
        method_allowlist=[*REQUEST_RETRY_ALLOWLIST, "anvil", "hardhat"],
    )
    provider = Web3.HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=retry
    )
    return Web3(provider)


def deploy(sender: TransactionSender, name: str, *args: Any) -> tuple[str, Receipt]:
    """Deploy a compiled contract from `sender`'s account; returns (address, receipt)."""
    artifact = load_artifact(name)
    factory = sender.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = sender.transact(factory.constructor(*args))
    raw = sender.w3.eth.get_transaction_receipt(receipt.tx_hash)  # type: ignore[arg-type]
    return str(raw["contractAddress"]), receipt


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _b32(value: str | bytes) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


class RegistryClient:
    """One registry deployment, read through any RPC and written through `sender`."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        sender: TransactionSender | None = None,
        *,
        attempts: int = 6,
        backoff: float = 0.25,
    ) -> None:
        artifact = load_artifact(REGISTRY)
        self.w3 = w3
        self.attempts = attempts
        self.backoff = backoff
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=artifact["abi"])
        self.decode_revert = make_revert_decoder(artifact["abi"])
        self.sender = sender

    @classmethod
    def deploy(cls, sender: TransactionSender, admin: str | None = None) -> RegistryClient:
        address, _ = deploy(sender, REGISTRY, admin or sender.address)
        return cls(sender.w3, address, sender)

    def with_sender(self, sender: TransactionSender) -> RegistryClient:
        return RegistryClient(
            self.w3, self.address, sender, attempts=self.attempts, backoff=self.backoff
        )

    # -------------------------------------------------------------- plumbing

    def _call(self, fn: Any) -> Any:
        try:
            return with_retries(
                fn.call, attempts=self.attempts, backoff=self.backoff, what=f"call {fn.fn_name}"
            )
        except (ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError) as exc:
            data = revert_data(exc)
            raise (
                self.decode_revert(data) if data else ContractReverted("", raw=str(exc))
            ) from None

    def _transact(self, fn: Any, **kwargs: Any) -> Receipt:
        if self.sender is None:
            raise BorderLedgerError("this registry client is read-only: give it a sender")
        return self.sender.transact(fn, **kwargs)

    @property
    def chain_id(self) -> int:
        return int(
            with_retries(
                lambda: self.w3.eth.chain_id,
                attempts=self.attempts,
                backoff=self.backoff,
                what="chain id",
            )
        )

    # -------------------------------------------------------------- writes

    def accredit_rights_holder(self, holder: str, name: str, recordation: str) -> Receipt:
        return self._transact(
            self.contract.functions.accreditRightsHolder(holder, name, recordation)
        )

    def accredit_customs_agency(self, agency: str, name: str) -> Receipt:
        return self._transact(self.contract.functions.accreditCustomsAgency(agency, name))

    def revoke_rights_holder(self, holder: str) -> Receipt:
        """Revoke `holder`'s accreditation for good (its earlier batches stay as they were)."""
        return self._transact(self.contract.functions.revokeRightsHolder(holder))

    def bind_gtin(self, gtin: str, holder: str) -> Receipt:
        """Bind the unbound `gtin` to the accredited rights holder `holder` (admin only)."""
        return self._transact(self.contract.functions.bindGtin(gtin, holder))

    def reassign_gtin(self, gtin: str, holder: str) -> Receipt:
        """Move the bound `gtin` to the rights holder `holder` (admin only)."""
        return self._transact(self.contract.functions.reassignGtin(gtin, holder))

    def bind_company_prefix(self, prefix: str, holder: str) -> Receipt:
        """Bind the unbound GS1 company `prefix` to the rights holder `holder` (admin only)."""
        return self._transact(self.contract.functions.bindCompanyPrefix(prefix, holder))

    def unbind_company_prefix(self, prefix: str) -> Receipt:
        """Unbind the bound company `prefix` (admin only); GTINs bound on their own stay."""
        return self._transact(self.contract.functions.unbindCompanyPrefix(prefix))

    def add_signer(self, signer: str) -> Receipt:
        return self._transact(self.contract.functions.addSigner(signer))

    def revoke_signer(self, signer: str) -> Receipt:
        return self._transact(self.contract.functions.revokeSigner(signer))

    def register_batch(
        self,
        gtin: str,
        lot: str,
        root: bytes,
        item_count: int,
        metadata_hash: bytes,
        journal: Path | None = None,
    ) -> Receipt:
        fn = self.contract.functions.registerBatch(
            gtin, lot, _b32(root), item_count, _b32(metadata_hash)
        )
        return self._transact(fn, journal=journal)

    def set_batch_status(self, batch_id: str | bytes, status: Status) -> Receipt:
        return self._transact(self.contract.functions.setBatchStatus(_b32(batch_id), int(status)))

    def set_item_status(
        self, gtin: str, lot: str, serial: str, salt: bytes, proof: Sequence[bytes], status: Status
    ) -> Receipt:
        """Set one item's status; `salt` and `proof` show it is in the batch `(gtin, lot)`."""
        fn = self.contract.functions.setItemStatus(
            gtin, lot, serial, _b32(salt), [_b32(p) for p in proof], int(status)
        )
        return self._transact(fn)

    def anchor_checkpoint(self, size: int, root: bytes, journal: Path | None = None) -> Receipt:
        """Anchor the calling customs agency's custody-log checkpoint (`size` entries, RFC 6962
        root `root`) in one transaction; simulated first, signed once, re-broadcast on retry.

        A retry after the checkpoint landed reverts with `CheckpointNotIncreasing` (whose
        `latestSize` equals `size`): callers compare `checkpoint_root(agency, size)` with
        `root` to tell "already anchored" from a real conflict."""
        if not 0 < size < 2**64:
            raise InvalidInput(f"checkpoint size {size} is not in [1, 2**64)")
        fn = self.contract.functions.anchorCheckpoint(size, _b32(root))
        return self._transact(fn, journal=journal)

    def grant_role(self, role: bytes, account: str) -> Receipt:
        return self._transact(self.contract.functions.grantRole(role, account))

    def revoke_role(self, role: bytes, account: str) -> Receipt:
        return self._transact(self.contract.functions.revokeRole(role, account))

    # -------------------------------------------------------------- views

    def has_role(self, role: bytes, account: str) -> bool:
        return bool(self._call(self.contract.functions.hasRole(role, account)))

    def batch_id_of(self, gtin: str, lot: str) -> str:
        return _hex(self._call(self.contract.functions.batchIdOf(gtin, lot)))

    def leaf_hash(self, gtin: str, serial: str, salt: bytes) -> bytes:
        return bytes(self._call(self.contract.functions.leafHash(gtin, serial, _b32(salt))))

    def tag_digest(self, gtin: str, serial: str, lot: str) -> bytes:
        return bytes(self._call(self.contract.functions.tagDigest(gtin, serial, lot)))

    def domain_separator(self) -> bytes:
        return bytes(self._call(self.contract.functions.domainSeparator()))

    def rights_holder(self, holder: str) -> RightsHolderRecord:
        call = self.contract.functions.rightsHolder(holder)
        try:
            name, recordation, revoked_at = self._call(call)
        except BadFunctionCallOutput:
            # A registry an upgrade replaced (contracts/legacy, before revocation): its record
            # is (name, recordation); read the same way, never revoked.
            request = {"to": self.address, "data": call._encode_transaction_data()}
            raw = with_retries(
                lambda: self.w3.eth.call(request),  # type: ignore[arg-type]
                attempts=self.attempts,
                backoff=self.backoff,
                what="call rightsHolder",
            )
            ((name, recordation),) = abi_decode(["(string,string)"], bytes(raw))
            revoked_at = 0
        accredited = self.has_role(RIGHTS_HOLDER_ROLE, holder)
        return RightsHolderRecord(
            Web3.to_checksum_address(holder), name, recordation, accredited, int(revoked_at)
        )

    def customs_agency(self, agency: str) -> str:
        return str(self._call(self.contract.functions.customsAgency(agency)))

    def signer_key(self, signer: str) -> SignerKeyRecord:
        holder, added_at, revoked_at = self._call(self.contract.functions.signerKey(signer))
        return SignerKeyRecord(Web3.to_checksum_address(signer), holder, added_at, revoked_at)

    def gtin_holder(self, gtin: str) -> str:
        """The rights holder `gtin` is bound to (the zero address if unbound)."""
        return str(self._call(self.contract.functions.gtinHolder(gtin)))

    def company_prefix_holder(self, prefix: str) -> str:
        """The rights holder the company `prefix` is bound to (the zero address if unbound)."""
        return str(self._call(self.contract.functions.companyPrefixHolder(prefix)))

    def resolve_gtin_holder(self, gtin: str) -> tuple[str, str | None]:
        """The rights holder whose batches of `gtin` the registry accepts, and the company
        prefix that decided (None when the GTIN's own binding did, or nothing is bound).

        A registry from before company prefixes (one an upgrade replaced) has no
        `resolveGtinHolder`: there the GTIN's own binding alone decides, as it did."""
        try:
            holder, length = self._call(self.contract.functions.resolveGtinHolder(gtin))
        except (ContractReverted, BadFunctionCallOutput) as exc:
            if isinstance(exc, ContractReverted) and exc.name:
                raise  # a real custom error, not a missing function
            return self.gtin_holder(gtin), None
        return str(holder), (gtin[1 : 1 + int(length)] if length else None)

    def get_batch(self, batch_id: str | bytes) -> BatchRecord:
        root, holder, count, registered_at, status = self._call(
            self.contract.functions.getBatch(_b32(batch_id))
        )
        return BatchRecord(
            _hex(_b32(batch_id)), _hex(root), holder, count, registered_at, Status(status)
        )

    def item_key_of(self, gtin: str, serial: str) -> bytes:
        return bytes(self._call(self.contract.functions.itemKeyOf(gtin, serial)))

    def item_status(self, batch_id: str | bytes, item_key: bytes) -> Status:
        """Item-level status of `item_key` (see `ledger.batch.item_key_of`) in `batch_id`."""
        fn = self.contract.functions.itemStatus(_b32(batch_id), _b32(item_key))
        return Status(self._call(fn))

    def is_item_in_batch(
        self, gtin: str, lot: str, serial: str, salt: bytes, proof: Sequence[bytes]
    ) -> bool:
        fn = self.contract.functions.isItemInBatch(
            gtin, lot, serial, _b32(salt), [_b32(p) for p in proof]
        )
        return bool(self._call(fn))

    def is_signer_valid_for(self, signer: str, holder: str, registered_at: int) -> bool:
        return bool(
            self._call(self.contract.functions.isSignerValidFor(signer, holder, registered_at))
        )

    def checkpoint_root(self, agency: str, size: int) -> bytes:
        """The root `agency` anchored for tree size `size` (32 zero bytes if never)."""
        if not 0 <= size < 2**64:
            raise InvalidInput(f"checkpoint size {size} is not in [0, 2**64)")
        return bytes(self._call(self.contract.functions.checkpointRoot(agency, size)))

    def latest_checkpoint(self, agency: str) -> Checkpoint:
        """The latest checkpoint `agency` anchored (size 0 and zero root if none)."""
        size, root = self._call(self.contract.functions.latestCheckpoint(agency))
        return Checkpoint(Web3.to_checksum_address(agency), int(size), bytes(root))

    def check_tag(
        self,
        gtin: str,
        serial: str,
        lot: str,
        signature: bytes | None = None,
        salt: bytes | None = None,
        proof: Sequence[bytes] = (),
    ) -> TagCheck:
        fn = self.contract.functions.checkTag(
            gtin,
            serial,
            lot,
            _b32(salt or b"\x00" * 32),
            [_b32(p) for p in proof],
            signature or b"",
        )
        r = self._call(fn)
        return TagCheck(_hex(r[0]), r[1], r[2], r[3], r[4], r[5], Status(r[6]), Status(r[7]))

    def batch_registration(
        self, batch_id: str | bytes, from_block: int = 0
    ) -> dict[str, Any] | None:
        """The BatchRegistered event of `batch_id` (tx hash, block, metadata), or None."""
        event = self.contract.events.BatchRegistered
        logs = with_retries(
            lambda: event.get_logs(
                from_block=from_block, argument_filters={"batchId": _b32(batch_id)}
            ),
            attempts=self.attempts,
            backoff=self.backoff,
            what="get logs",
        )
        if not logs:
            return None
        log = logs[0]
        return {
            "tx_hash": HexBytes(log["transactionHash"]).to_0x_hex(),
            "block_number": int(log["blockNumber"]),
            "root": _hex(log["args"]["root"]),
            "item_count": int(log["args"]["itemCount"]),
            "metadata_hash": _hex(log["args"]["metadataHash"]),
            "gtin": log["args"]["gtin"],
            "lot": log["args"]["lot"],
            "holder": log["args"]["holder"],
        }
