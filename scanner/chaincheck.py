"""`scan --verify-chain RPC_URL`: check the gateway's answer against the chain itself.

The gateway answers from its own index; a compromised gateway, an edited database row or an
intercepting proxy could make it say GENUINE about an item the chain does not vouch for. With
`--verify-chain` the scanner asks a node of its choosing, for every verdict:

- the registry's chain id is the one in the proof;
- the batch the gateway named is registered, under the root the proof names, and the lot or
  GTIN the gateway called unknown is indeed unregistered;
- the Merkle proof leads from `leaf = keccak256(keccak256(abi.encode(gtin, serial, salt)))` to
  the root **on chain** (checked locally and with the registry's `isItemInBatch`);
- the signature: `checkTag` recovers the same signer and says valid exactly when the gateway
  said SIGNATURE_VALID (the key is the holder's and was active at registration);
- the item's and batch's statuses on chain give the status the gateway reported.

Each difference is reported as `{check, gateway, chain}`; `scan` exits 4 when there is one.
The registry is `--registry` / BORDERLEDGER_REGISTRY when given; otherwise the address in the
gateway's proof is used, and the report says so (a lying gateway could name its own contract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chain.contract import RegistryClient, connect
from ledger.batch import batch_id_of, item_key_of
from ledger.digital_link import parse_digital_link
from ledger.errors import BorderLedgerError, InvalidInput
from ledger.merkle import leaf_hash, verify_proof
from ledger.models import ZERO_ADDRESS, Status
from ledger.verdicts import STATUS_REASONS
from scanner.online import CodeResult

#: The gateway's status reason codes → the status they report (the engine's map, inverted).
_STATUS_OF_REASON = {reason.value: status for (status, _), reason in STATUS_REASONS.items()}


def _b32(text: Any, what: str) -> bytes:
    try:
        raw = bytes.fromhex(str(text).removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"the gateway's {what} is not hex: {text!r}") from None
    if len(raw) != 32:
        raise InvalidInput(f"the gateway's {what} is not 32 bytes: {text!r}")
    return raw


@dataclass
class ChainReport:
    registry: str | None = None
    registry_source: str = ""
    checks: list[str] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the chain could not be asked (RPC down, no contract there): not checked, not cleared
    error: str | None = None

    def differ(self, check: str, gateway: Any, chain: Any) -> None:
        self.disagreements.append({"check": check, "gateway": gateway, "chain": chain})

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "registrySource": self.registry_source,
            "agrees": None if self.error and not self.disagreements else not self.disagreements,
            "error": self.error,
            "checked": self.checks,
            "disagreements": self.disagreements,
            "notes": self.notes,
        }


class ChainChecker:
    """One RPC connection; a read-only registry client per registry address seen."""

    def __init__(self, rpc_url: str, registry: str | None = None) -> None:
        self.rpc_url = rpc_url
        self.registry = registry
        self.w3 = connect(rpc_url, timeout=10, request_retries=1)
        self._clients: dict[str, RegistryClient] = {}
        self._chain_id: int | None = None

    def _client(self, address: str) -> RegistryClient:
        if address not in self._clients:
            self._clients[address] = RegistryClient(self.w3, address, attempts=2, backoff=0.2)
        return self._clients[address]

    def chain_id(self, client: RegistryClient) -> int:
        if self._chain_id is None:
            self._chain_id = client.chain_id
        return self._chain_id

    def check(self, result: CodeResult) -> ChainReport | None:
        """Compare one online verdict with the chain; None when there is nothing to compare."""
        data = result.response
        if data is None or result.verdict is None:
            return None
        report = ChainReport()
        try:
            self._check(result, data, report)
        except BorderLedgerError as exc:
            report.error = f"cannot check on chain via {self.rpc_url}: {exc}"
        return report

    def _check(self, result: CodeResult, data: dict[str, Any], report: ChainReport) -> None:
        proof = data.get("proof") or None
        reasons = set(result.reasons)
        item = data.get("item") or {}
        gtin, serial, lot = item.get("gtin"), item.get("serial"), item.get("lot")
        if not gtin or not serial:
            report.notes.append("the gateway's answer names no item: nothing to check")
            return
        gtin, serial = str(gtin), str(serial)
        lot = str(lot) if lot else None
        signature = None
        if result.payload.tag is not None:
            link = parse_digital_link(result.payload.tag)
            signature = link.signature
            if (link.gtin, link.serial, link.lot) != (gtin, serial, lot):
                report.differ("item", [gtin, lot, serial], [link.gtin, link.lot, link.serial])
        if self.registry:
            report.registry, report.registry_source = self.registry, "--registry"
            if proof and str(proof.get("registry", "")).lower() != self.registry.lower():
                report.differ("registry", proof.get("registry"), self.registry)
        elif proof and proof.get("registry"):
            report.registry = str(proof["registry"])
            report.registry_source = "the gateway's proof (give --registry to pin it)"
        else:
            report.notes.append(
                "no proof and no --registry / BORDERLEDGER_REGISTRY: the chain was not asked"
            )
            return
        client = self._client(report.registry)

        if proof and proof.get("chainId") is not None:
            report.checks.append("chainId")
            chain_id = self.chain_id(client)
            if int(proof["chainId"]) != chain_id:
                report.differ("chainId", proof["chainId"], chain_id)

        if "GTIN_UNKNOWN" in reasons:
            report.checks.append("gtin unregistered")
            holder = client.gtin_holder(gtin)
            if holder != ZERO_ADDRESS:
                report.differ("GTIN registered", False, f"yes, holder {holder}")
            return
        if "BATCH_UNKNOWN" in reasons and lot is not None:
            report.checks.append("batch unregistered")
            batch = client.get_batch(batch_id_of(gtin, lot))
            if batch.registered:
                report.differ("batch registered", False, f"yes, {batch.batch_id}")
            return

        batch_id = data.get("batchId") or (proof or {}).get("batchId")
        if not batch_id:
            report.notes.append("the gateway named no batch: nothing more to check")
            return
        bid = _b32(batch_id, "batchId")
        if lot is not None and bid != batch_id_of(gtin, lot):
            report.differ("batchId", batch_id, "0x" + batch_id_of(gtin, lot).hex())
        report.checks.append("batch registered")
        batch = client.get_batch(bid)
        if not batch.registered:
            report.differ("batch registered", True, False)
            return
        if proof and proof.get("root"):
            report.checks.append("root")
            if str(proof["root"]).lower() != batch.root.lower():
                report.differ("root", proof["root"], batch.root)

        salt = merkle = None
        if proof and proof.get("salt") and proof.get("merkleProof") is not None:
            salt = _b32(proof["salt"], "salt")
            merkle = [_b32(p, "merkleProof node") for p in proof["merkleProof"]]
        if "SERIAL_IN_BATCH" in reasons:
            report.checks.append("membership")
            if salt is None or merkle is None:
                report.differ("membership proof", "SERIAL_IN_BATCH", "no salt/proof given")
            else:
                leaf = leaf_hash(gtin, serial, salt)
                if proof and str(proof.get("leaf", "")).lower() != "0x" + leaf.hex():
                    report.differ("leaf", proof.get("leaf"), "0x" + leaf.hex())
                local = verify_proof(_b32(batch.root, "root"), leaf, merkle)
                on_chain = (
                    client.is_item_in_batch(gtin, lot, serial, salt, merkle)
                    if lot is not None
                    else local
                )
                if not (local and on_chain):
                    report.differ("serial in batch", True, False)

        if signature is not None and lot is not None:
            report.checks.append("signature")
            check = client.check_tag(gtin, serial, lot, signature)
            said_valid = "SIGNATURE_VALID" in reasons
            if check.signature_valid != said_valid:
                report.differ("signature valid", said_valid, check.signature_valid)
            said_signer = (proof or {}).get("signer")
            if said_signer and check.signer != ZERO_ADDRESS and said_signer != check.signer:
                report.differ("signer", said_signer, check.signer)

        report.checks.append("status")
        item_status = client.item_status(bid, item_key_of(gtin, serial))
        chain_status = item_status if item_status != Status.ACTIVE else batch.status
        said = [s for r, s in _STATUS_OF_REASON.items() if r in reasons]
        gateway_status = said[0] if said else Status.ACTIVE
        if gateway_status != chain_status:
            report.differ("status", gateway_status.name.lower(), chain_status.name.lower())
