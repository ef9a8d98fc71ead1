"""Chain of custody for the routes: capture, an item's timeline (within the caller's view), the log's checkpoints and consistency proofs, and the places agencies
register. The work itself is `api.custody`; this is what a caller may ask of it."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from api.custody import Reader
from api.custody.locations import NewLocation
from api.custody.timeline import matches_log
from api.gateway import Gateway
from api.models import Checkpoint, CustodyLocation
from api.principal import Principal
from api.schemas import LocationCreate
from api.scoping import alert_clause, reads_gtin, scanned_item, view_of
from api.verification import Scanned
from custody.log import proof_to_hex
from ledger.errors import InvalidEpcisDocument, InvalidInput, NotFound


def capture(gateway: Gateway, principal: Principal, raw: bytes) -> dict[str, Any]:
    """Capture an EPCIS document sent as `raw` bytes (422 with the problems when it is not
    a JSON object; the schema check is `api.custody`'s)."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEpcisDocument(
            f"the body is not JSON: {exc}", [f"$: not JSON: {exc}"]
        ) from None
    if not isinstance(document, dict):
        raise InvalidEpcisDocument(
            "an EPCIS document is a JSON object", ["$: an EPCIS document is a JSON object"]
        )
    return gateway.custody.capture(document, principal.organization_id)


def _reader(session: Session, principal: Principal, gtin: str, serial: str) -> Reader:
    """What of the item's timeline `principal` reads (404 when nothing: see `timeline`)."""
    scanned = Scanned.from_fields(gtin, serial)  # 422 on a bad GTIN or serial
    view = view_of(session, principal)
    if not reads_gtin(session, view, scanned.gtin):
        raise NotFound(f"no item {scanned.gtin}/{scanned.serial} among the products you may read")
    if view.agency and not scanned_item(
        session, view.organization_id, scanned.gtin, scanned.serial
    ):
        return Reader(view.organization_id, alert_clause(session, view))
    return Reader()


def item_epcis(
    gateway: Gateway, session: Session, principal: Principal, gtin: str, serial: str
) -> dict[str, Any]:
    """The item's whole history as an EPCIS 2.0 document, within the caller's view (the
    timeline's rule: entries the caller may not read are left out)."""
    reader = _reader(session, principal, gtin, serial)
    return gateway.custody.item_epcis(gtin, serial, reader=reader)


def timeline(
    gateway: Gateway, session: Session, principal: Principal, gtin: str, serial: str, epcis: bool
) -> dict[str, Any]:
    """An item's chain of custody, as far as the caller's view reaches (`api.scoping`).

    Admins (and auditors granted every holder) read every item's in full; rights holders
    (and auditors granted named holders) the items of their GTINs, in full, any other item
    is not found (404). A customs agency reads any item's: in full once it scanned the item,
    otherwise the entries it recorded itself, the others withheld (leaf hash and proof only),
    and only the alerts its view holds."""
    reader = _reader(session, principal, gtin, serial)
    return gateway.custody.timeline(gtin, serial, epcis=epcis, reader=reader)


def checkpoints(
    gateway: Gateway, session: Session, status: str | None, limit: int
) -> dict[str, Any]:
    """The log's size and the anchoring agency's checkpoints, newest first."""
    agency = gateway.custody.anchorer.agency_address()
    query = select(Checkpoint)
    if agency is not None:
        query = query.where(Checkpoint.agency == agency)
    if status is not None:
        query = query.where(Checkpoint.status == status)
    rows = session.exec(query.order_by(col(Checkpoint.size).desc()).limit(limit)).all()
    snap = gateway.catalog.snapshot()
    mirror = gateway.custody.mirror
    size = mirror.catch_up()
    return {
        "agency": agency,
        "registry": snap.registry,
        "chainId": snap.chain_id,
        "size": size,
        "checkpoints": [
            {
                "agency": r.agency,
                "size": r.size,
                "root": r.root,
                "status": r.status,
                "txHash": r.tx_hash,
                "blockNumber": r.block_number,
                "error": r.error,
                "matchesLog": matches_log(mirror, r),
            }
            for r in rows
        ],
    }


def consistency(gateway: Gateway, from_size: int, to_size: int) -> dict[str, Any]:
    """An RFC 9162 consistency proof between two sizes of the log, with both roots."""
    mirror = gateway.custody.mirror
    size = mirror.catch_up()
    if not 0 <= from_size <= to_size <= size:
        raise InvalidInput(
            f"sizes must satisfy 0 <= from ({from_size}) <= to ({to_size}) <= {size}"
        )
    return {
        "from": from_size,
        "to": to_size,
        "fromRoot": "0x" + mirror.log.root(from_size).hex(),
        "toRoot": "0x" + mirror.log.root(to_size).hex(),
        "proof": proof_to_hex(mirror.log.consistency_proof(from_size, to_size)),
    }


def add_location(gateway: Gateway, principal: Principal, body: LocationCreate) -> CustodyLocation:
    """Register or update (idempotent) a place."""
    return gateway.custody.locations.add(
        NewLocation(
            body.unlocode, body.name, body.country, body.latitude, body.longitude, tuple(body.glns)
        ),
        principal.organization_id,
    )
