"""The auditor's side of the chain: `custody.audit.ChainView` over a JSON-RPC endpoint, and
the audit of a timeline through it. `borderledger audit` (`custody.cli`) and the gateway's PDF
report (`api.services.audit_report`) both call `audit_on_chain`, so the command line and the
report say the same thing about the same entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web3 import Web3

from chain.contract import RegistryClient, connect
from custody.audit import AuditReport, audit_timeline
from ledger.errors import InvalidInput


class Web3ChainView:
    """`custody.audit.ChainView` over a JSON-RPC endpoint."""

    def __init__(self, rpc_url: str, registry: str) -> None:
        self.w3 = connect(rpc_url, timeout=10)
        try:
            self.client = RegistryClient(self.w3, registry, attempts=3, backoff=0.2)
        except ValueError as exc:
            raise InvalidInput(f"registry address {registry!r}: {exc}") from None

    def chain_id(self) -> int:
        return self.client.chain_id

    def registry(self) -> str:
        return self.client.address

    def _on(self, registry: str | None) -> RegistryClient | None:
        """The client of `registry` (default: the audited one); None for a malformed address."""
        if registry is None or registry.lower() == self.client.address.lower():
            return self.client
        if not Web3.is_address(registry):
            return None
        return RegistryClient(self.w3, Web3.to_checksum_address(registry), attempts=3)

    def agency_name(self, agency: str, registry: str | None = None) -> str:
        client = self._on(registry)
        if client is None or not Web3.is_address(agency):
            return ""
        return client.customs_agency(Web3.to_checksum_address(agency))

    def checkpoint_root(self, agency: str, size: int, registry: str | None = None) -> bytes:
        client = self._on(registry)
        if client is None or not Web3.is_address(agency) or not 0 <= size < 2**64:
            return b"\x00" * 32
        return client.checkpoint_root(Web3.to_checksum_address(agency), size)

    def batch_root(self, batch_id: str, registry: str | None = None) -> str | None:
        client = self._on(registry)
        if client is None:
            return None
        try:
            batch = client.get_batch(batch_id)
        except ValueError:
            return None
        return batch.root if batch.registered else None

    def tx_block(self, tx_hash: str) -> tuple[int, str] | None:
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except Exception:  # unknown or malformed hash: not on this chain
            return None
        if receipt is None or receipt.get("status") != 1:
            return None
        return int(receipt["blockNumber"]), str(receipt.get("to") or "")


def audit_on_chain(
    timeline: Mapping[str, Any],
    rpc_url: str,
    *,
    registry: str | None = None,
    previous: tuple[str, ...] = (),
    strict: bool = False,
) -> AuditReport:
    """Audit `timeline` (the custody API's JSON) against the chain at `rpc_url`: the checks of
    `custody.audit.audit_timeline`, on the registry pinned by `registry` or, without it, the
    one the timeline names."""
    claimed = (timeline.get("log") or {}).get("registry")
    address = registry or claimed
    if not isinstance(address, str) or not address:
        raise InvalidInput("the timeline names no registry; give --registry")
    view = Web3ChainView(rpc_url, address)
    return audit_timeline(timeline, view, registry=registry, previous=previous, strict=strict)
