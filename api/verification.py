"""Judging what an officer scanned: a verdict, the reasons, and a proof anyone can re-check.

Wording follows the EU medicines verification system: a failed check makes the item a
*potential suspect* to investigate, never a declared fake, and data errors (a malformed URI,
a wrong check digit) are refused as input errors rather than judged, because most failed
verifications in practice are scanner or typing faults.

This module gathers the evidence from the index snapshot (batch, Merkle membership, recovered
signer, statuses); naming and weighing it — the signer rule, the status reasons, the order of
judgement, the summaries — is the verdict engine's (`ledger.verdicts`), which the offline
verifier and `borderledger check` share.

Reason codes are stable strings (docs/reason-codes.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.catalog import Catalog, Snapshot
from api.registrations import Registrations
from ledger.batch import batch_id_of, item_key_of
from ledger.errors import InvalidInput, InvalidSignature
from ledger.merkle import item_salt, leaf_hash
from ledger.models import Status
from ledger.scanned import Scanned
from ledger.tags import TagDomain, recover_signer, tag_digest
from ledger.verdicts import (
    FindingFacts,
    Pending,
    Reason,
    Verdict,
    decide,
    signer_reason,
    status_reason,
    summary,
    with_findings,
)


@dataclass
class Judgement:
    verdict: Verdict
    reasons: list[Reason]
    scanned: Scanned
    batch_id: str | None = None
    holder: str | None = None
    signer: str | None = None
    proof: dict[str, Any] | None = None
    expiry: str | None = None
    index: dict[str, Any] = field(default_factory=dict)
    product: dict[str, Any] = field(default_factory=dict)
    #: Set when the batch is enrolled here but not indexed yet (verdict PENDING).
    pending: Pending | None = None

    @property
    def summary(self) -> str:
        return summary(self.verdict, pending=self.pending)

    def conclude(self, findings: list[FindingFacts]) -> tuple[Verdict, str]:
        """The verdict and summary the officer is shown once the scan's detector findings
        are weighed (`ledger.verdicts.with_findings`)."""
        verdict = with_findings(self.verdict, findings)
        return verdict, summary(verdict, findings=findings, pending=self.pending)


def verify(
    catalog: Catalog,
    scanned: Scanned,
    *,
    stale_after: float = 30.0,
    now: datetime | None = None,
    registrations: Registrations | None = None,
) -> Judgement:
    """Judge `scanned` against the index snapshot (no RPC, no per-request queries).

    Only when the GTIN or lot is unknown to the index are `registrations` asked (the
    database, briefly cached): a batch enrolled here whose registration the index has not
    reached yet is PENDING, not suspect."""
    snap = catalog.snapshot()
    reasons: list[Reason] = []
    index = _index_info(snap, stale_after, now)
    if index["stale"]:
        reasons.append(Reason.INDEX_STALE)
    judgement = Judgement(Verdict.COUNTERFEIT_SUSPECT, reasons, scanned, index=index)

    candidates = snap.batches_by_gtin.get(scanned.gtin, [])
    if not candidates:
        if not _pending(registrations, scanned, snap, judgement):
            reasons.insert(0, Reason.GTIN_UNKNOWN)
        return judgement
    # The product's rights holder is the one its GTIN is bound to now (a reassigned GTIN's
    # earlier batches keep their own holder, whose keys sign their tags).
    owner = snap.owner_of(scanned.gtin) or candidates[0].holder
    holder = snap.holders.get(owner)
    judgement.holder = candidates[0].holder
    judgement.product = {
        "gtin": scanned.gtin,
        "rightsHolder": {
            "address": owner,
            "name": holder.name if holder else None,
            "recordation": holder.recordation if holder else None,
            "revokedAt": holder.revoked_at if holder else None,
        },
    }
    if scanned.lot is not None:
        batch = snap.batches.get("0x" + batch_id_of(scanned.gtin, scanned.lot).hex())
        if batch is None:
            if not _pending(registrations, scanned, snap, judgement):
                reasons.insert(0, Reason.BATCH_UNKNOWN)
            return judgement
        candidates = [batch]

    # Membership: find the batch whose tree holds this serial's salted leaf.
    found = None
    verifiable = False
    for batch in candidates:
        provable = catalog.provable(batch.batch_id)
        if provable is None:
            continue
        verifiable = True
        salt = item_salt(provable.secret, scanned.gtin, scanned.serial)
        leaf = leaf_hash(scanned.gtin, scanned.serial, salt)
        try:
            proof = provable.tree.proof(leaf)
        except KeyError:
            continue
        found = (batch, salt, leaf, proof, provable.expiry)
        break
    batch = found[0] if found else candidates[0]
    judgement.batch_id = batch.batch_id
    if found:
        _, salt, leaf, proof, expiry = found
        judgement.expiry = expiry
        judgement.proof = {
            "registry": batch.registry_address or snap.registry,
            "chainId": snap.chain_id,
            "batchId": batch.batch_id,
            "root": batch.root,
            "leaf": "0x" + leaf.hex(),
            "salt": "0x" + salt.hex(),
            "merkleProof": ["0x" + p.hex() for p in proof],
            "leafEncoding": ["string", "string", "bytes32"],
            "batchRegistrationTx": batch.tx_hash,
            "batchRegistrationBlock": batch.block_number,
            "batchRegistrationTime": batch.registered_at,
            "signer": None,
        }
        reasons.append(Reason.SERIAL_IN_BATCH)
    elif verifiable:
        reasons.insert(0, Reason.SERIAL_UNKNOWN)
    elif scanned.signature is None:
        reasons.append(Reason.SERIAL_NOT_VERIFIABLE)

    if scanned.signature is not None and scanned.lot is not None:
        _judge_signature(
            snap,
            scanned,
            batch.registry_address or snap.registry,
            batch.holder,
            batch.registered_at,
            judgement,
        )
    elif scanned.signature is None:
        reasons.append(Reason.SIGNATURE_MISSING)

    status, batch_level = _status(snap, batch.batch_id, batch.status, scanned)
    flagged = status_reason(status, batch_level)
    if flagged is not None:
        reasons.append(flagged)

    judgement.verdict = decide(reasons, status)
    if judgement.proof is None and judgement.signer is not None:
        judgement.proof = {
            "registry": batch.registry_address or snap.registry,
            "chainId": snap.chain_id,
            "batchId": batch.batch_id,
            "root": batch.root,
            "batchRegistrationTx": batch.tx_hash,
            "batchRegistrationBlock": batch.block_number,
            "batchRegistrationTime": batch.registered_at,
        }
    if judgement.proof is not None:
        judgement.proof["signer"] = judgement.signer
    return judgement


def _pending(
    registrations: Registrations | None, scanned: Scanned, snap: Snapshot, judgement: Judgement
) -> bool:
    """Make `judgement` PENDING when the batch is enrolled here and its registration is live
    but not indexed yet; False when it is not (the caller names the unknown)."""
    if registrations is None:
        return False
    enrolled, block = registrations.lookup(scanned.gtin, scanned.lot, snap.index_block)
    if not enrolled:
        return False
    judgement.reasons.insert(0, Reason.REGISTRATION_PENDING)
    judgement.pending = Pending(block, snap.index_block)
    judgement.verdict = decide(judgement.reasons, Status.ACTIVE)
    return True


def _judge_signature(
    snap: Snapshot,
    scanned: Scanned,
    registry: str,
    holder: str,
    registered_at: int,
    judgement: Judgement,
) -> None:
    """Tags are signed for the EIP-712 domain of the registry holding their batch (an old
    batch's tags name the registry an upgrade replaced)."""
    assert scanned.signature is not None and scanned.lot is not None
    reasons = judgement.reasons
    domain = TagDomain(snap.chain_id, registry)
    try:
        signer = recover_signer(
            tag_digest(domain.separator, scanned.gtin, scanned.serial, scanned.lot),
            scanned.signature,
        )
    except InvalidSignature:
        reasons.insert(0, Reason.SIGNATURE_INVALID)
        return
    judgement.signer = signer
    holder_row = snap.holders.get(holder)
    revoked = holder_row.revoked_at if holder_row is not None else None
    reason = signer_reason(snap.signers.get(signer), holder, registered_at, revoked)
    if reason == Reason.SIGNATURE_VALID:
        reasons.append(reason)
    else:
        reasons.insert(0, reason)


def _status(
    snap: Snapshot, batch_id: str, batch_status: int, scanned: Scanned
) -> tuple[Status, bool]:
    key = "0x" + item_key_of(scanned.gtin, scanned.serial).hex()
    item = snap.item_statuses.get((batch_id, key), 0)
    if item != Status.ACTIVE:
        return Status(item), False
    return Status(batch_status), True


def _index_info(snap: Snapshot, stale_after: float, now: datetime | None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    updated = snap.updated_at
    if updated is not None and updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)  # SQLite hands datetimes back naive
    age = (now - updated).total_seconds() if updated else None
    return {
        "block": snap.index_block,
        "headBlock": snap.head_block,
        "updatedAt": updated.isoformat() if updated else None,
        "stale": age is None or age > stale_after,
    }


__all__ = ["InvalidInput", "Judgement", "Scanned", "verify"]
