"""The trust bundle the gateway signs for offline scanners (GET /v1/trust-bundle).

Everything a scanner needs to judge a tag without network, cut from the chain index at one
block: rights holders and the GTINs they own, signer keys with their add/revoke times,
batches (root, holder, registration time/block/tx, status), items whose status is not
active, and the route policies of batches enrolled here. It carries no salts, Merkle trees or
serial lists: those would let anyone holding a bundle learn which serials are genuine (see
docs/formats.md, "Why the salt"), so an offline scanner cannot prove membership.

The tables are read in one transaction (REPEATABLE READ on PostgreSQL; SQLite's read
transaction is a snapshot), so the bundle never mixes two index states. The time of the
index block is asked of the chain once per block and remembered; with the chain down it
is taken from an event in that block, else left null and the scanner ages the bundle by
`issuedAt` alone.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, col, select

from api.gateway import Gateway
from api.models import (
    ChainLog,
    GatewayBatch,
    IndexedBatch,
    IndexedGtinBinding,
    IndexedItemStatus,
    IndexedPrefixBinding,
    IndexedRightsHolder,
    IndexedSigner,
    IndexedStatusChange,
    IndexerState,
)
from ledger.errors import ChainError, InvalidInput, KeystoreError
from ledger.models import Status
from ledger.trustbundle import PAYLOAD_FORMAT, sign_bundle, signing_key

log = logging.getLogger("borderledger.trust")

_block_times: dict[tuple[str, int, str | None], int] = {}
_block_times_lock = threading.Lock()


def gateway_signing_key(gateway: Gateway) -> Ed25519PrivateKey:
    """The gateway's bundle key. A malformed `BORDERLEDGER_BUNDLE_SIGNING_KEY` is the
    operator's problem, not the caller's: it is a `KeystoreError` (503), never a 422."""
    settings = gateway.settings
    try:
        return signing_key(settings.secret_key, settings.bundle_signing_key)
    except InvalidInput as exc:
        raise KeystoreError(f"signing key not available: {exc}") from None


def _status_name(value: int) -> str:
    return Status(value).name.lower()


def _block_time(gateway: Gateway, session: Session, state: IndexerState) -> int | None:
    if state.last_block < 0:
        return None
    cache_key = (state.registry_address, state.last_block, state.last_block_hash)
    with _block_times_lock:
        if cache_key in _block_times:
            return _block_times[cache_key]
    found: int | None = None
    try:
        block = gateway.indexer.w3.eth.get_block(state.last_block)
        found = int(block["timestamp"])
    except Exception as exc:  # chain unreachable: fall back to the index's own record
        log.info("block time of %d from the chain failed: %s", state.last_block, exc)
        entry = session.exec(
            select(ChainLog).where(ChainLog.block_number == state.last_block).limit(1)
        ).first()
        if entry is None:
            return None
        return entry.block_timestamp
    with _block_times_lock:
        if len(_block_times) > 1024:
            _block_times.clear()
        _block_times[cache_key] = found
    return found


def build_payload(gateway: Gateway, now: float | None = None) -> dict[str, Any]:
    """The bundle's payload (unsigned), from one consistent read of the index."""
    with Session(gateway.engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        state = session.get(IndexerState, 1)
        if state is None:
            raise ChainError("the gateway has not indexed the chain yet: try again shortly")
        holders = session.exec(select(IndexedRightsHolder)).all()
        bindings = session.exec(select(IndexedGtinBinding)).all()
        prefix_bindings = session.exec(select(IndexedPrefixBinding)).all()
        signers = session.exec(select(IndexedSigner)).all()
        batches = session.exec(select(IndexedBatch)).all()
        items = session.exec(
            select(IndexedItemStatus).where(IndexedItemStatus.status != Status.ACTIVE)
        ).all()
        changes = session.exec(select(IndexedStatusChange).order_by(col(IndexedStatusChange.id)))
        changed_at: dict[tuple[str, str | None], int] = {}
        for change in changes:
            changed_at[(change.batch_id, change.item_key)] = change.block_timestamp
        enrolled = {
            b.batch_id: (b.expiry, b.route_policy) for b in session.exec(select(GatewayBatch)).all()
        }
        block_time = _block_time(gateway, session, state)
        checked_at = state.updated_at

    # A holder's GTINs: those bound to it now, and those of its batches (a reassigned GTIN's
    # earlier batches stay its previous holder's).
    gtins: dict[str, set[str]] = {}
    for batch in batches:
        gtins.setdefault(batch.holder, set()).add(batch.gtin)
    for binding in bindings:
        gtins.setdefault(binding.holder, set()).add(binding.gtin)
    return {
        "format": PAYLOAD_FORMAT,
        "chainId": state.chain_id,
        "registry": state.registry_address,
        "previousRegistries": [
            r for r in (state.registries or "").split(",") if r and r != state.registry_address
        ],
        "issuedAt": int(now if now is not None else time.time()),
        "index": {
            "block": state.last_block,
            "blockHash": state.last_block_hash,
            "blockTime": block_time,
            "headBlock": state.head_block,
            "checkedAt": int(checked_at.timestamp()) if checked_at else None,
        },
        "holders": [
            {
                "address": h.address,
                "name": h.name,
                "recordation": h.recordation,
                "revokedAt": h.revoked_at,
                "gtins": sorted(gtins.get(h.address, ())),
                "boundGtins": sorted(b.gtin for b in bindings if b.holder == h.address),
                "boundPrefixes": sorted(b.prefix for b in prefix_bindings if b.holder == h.address),
            }
            for h in sorted(holders, key=lambda h: h.address)
        ],
        "signers": [
            {
                "address": s.address,
                "holder": s.holder,
                "addedAt": s.added_at,
                "revokedAt": s.revoked_at,
            }
            for s in sorted(signers, key=lambda s: s.address)
        ],
        "batches": [
            {
                "batchId": b.batch_id,
                "gtin": b.gtin,
                "lot": b.lot,
                "root": b.root,
                "holder": b.holder,
                "itemCount": b.item_count,
                "registeredAt": b.registered_at,
                "block": b.block_number,
                "tx": b.tx_hash,
                "registry": b.registry_address or state.registry_address,
                "status": _status_name(b.status),
                "statusChangedAt": changed_at.get((b.batch_id, None)) if b.status else None,
                "expiry": enrolled[b.batch_id][0] if b.batch_id in enrolled else None,
                "routePolicy": enrolled[b.batch_id][1] if b.batch_id in enrolled else None,
            }
            for b in sorted(batches, key=lambda b: (b.gtin, b.lot))
        ],
        "items": [
            {
                "batchId": i.batch_id,
                "itemKey": i.item_key,
                "status": _status_name(i.status),
                "changedAt": changed_at.get((i.batch_id, i.item_key)),
                "block": i.block_number,
                "tx": i.tx_hash,
            }
            for i in sorted(items, key=lambda i: (i.batch_id, i.item_key))
        ],
    }


def signed_bundle(gateway: Gateway) -> dict[str, Any]:
    """The envelope served by GET /v1/trust-bundle."""
    return sign_bundle(build_payload(gateway), gateway_signing_key(gateway))
