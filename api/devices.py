"""Officers' devices and the scans they made offline.

A customs agency registers each handheld's Ed25519 public key (`register_device`); the device
queues signed scan records while it has no connection and sends them later to
POST /v1/scans/sync (`sync_scans`). Each record is judged like an online scan: the same
`api.verification.verify`, the same scan table, the same detector, with the time the device
read the code, so a scan synced hours late still lands in the right place in the item's
history (a clone seen online in Shanghai and offline in Rotterdam ten minutes apart is found
whichever arrives first).

Exactly-once: the scan id is claimed by inserting the scan row (unique `scan_id`) in its own
transaction before the detector sees it; a retried or concurrent sync of the same record loses
that insert and is answered `duplicate`, so nothing is stored or detected twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.audit import scan_actor
from api.custody.store import append_scans
from api.gateway import Gateway
from api.models import Device, Organization, Role, ScanEvent, User
from api.principal import Principal
from api.scoping import scope_of
from api.verification import Scanned, verify
from detector import Scan
from detector.findings import finding_facts
from ledger.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ledger.scan_record import (
    ScanRecord,
    check_signature,
    decode_public_key,
    device_id_of,
    encode_public_key,
    parse_record,
)
from ledger.verdicts import FindingFacts, Reason, finding_reasons

log = logging.getLogger("borderledger.devices")

#: A device clock may run this far ahead of the gateway's before a scan is refused as "future".
CLOCK_SKEW = timedelta(minutes=5)


def register_device(session: Session, org: Organization, name: str, public_key: str) -> Device:
    """Register a device key for `org` (idempotent: the same key again by the same agency
    returns the existing device). A key registered by another agency, or revoked, is a 409."""
    name = name.strip()
    if not name:
        raise InvalidInput("name: give the device a name (1-100 characters)")
    key, raw = decode_public_key(public_key)
    device_id = device_id_of(raw)
    existing = session.exec(select(Device).where(Device.device_id == device_id)).first()
    if existing is not None:
        if existing.organization_id != org.id:
            raise Conflict(f"device {device_id} is registered to another organization")
        if existing.revoked_at is not None:
            raise Conflict(f"device {device_id} was revoked; initialise a new key on the device")
        return existing
    assert org.id is not None
    device = Device(
        device_id=device_id,
        organization_id=org.id,
        name=name,
        public_key=encode_public_key(key),
    )
    session.add(device)
    try:
        session.commit()
    except IntegrityError:  # the same key registered concurrently: answer as a retry would
        session.rollback()
        return register_device(session, org, name, public_key)
    session.refresh(device)
    return device


def list_devices(session: Session, principal: Principal, limit: int | None = None) -> list[Device]:
    """The agency's devices (an admin sees every device), oldest first, at most `limit`."""
    query = scope_of(principal, Role.ADMIN).confine(
        select(Device).order_by(col(Device.id)), Device.organization_id
    )
    assert query is not None
    return list(session.exec(query.limit(limit)).all())


def device_of(session: Session, principal: Principal, device_id: str) -> Device:
    """A device of the caller's agency (any device for an admin); 404 for one the caller
    cannot see."""
    device = session.exec(select(Device).where(Device.device_id == device_id)).first()
    if device is None or not scope_of(principal, Role.ADMIN).allows(device.organization_id):
        raise NotFound(f"no device {device_id!r} registered to {principal.organization.name!r}")
    return device


def revoke_device(session: Session, principal: Principal, device_id: str) -> Device:
    """Revoke a device (idempotent): its later syncs are refused, scans already synced stay."""
    device = device_of(session, principal, device_id)
    if device.revoked_at is None:
        device.revoked_at = datetime.now(UTC)
        session.add(device)
        session.commit()
        session.refresh(device)
    return device


def syncing_device(session: Session, org: Organization, device_id: str) -> Device:
    """The device a sync comes from: registered to the calling agency and not revoked (403)."""
    device = session.exec(select(Device).where(Device.device_id == device_id)).first()
    if device is None or device.organization_id != org.id:
        raise PermissionDenied(
            f"device {device_id!r} is not registered to {org.name!r}: register its public key "
            "with POST /v1/devices first"
        )
    if device.revoked_at is not None:
        raise PermissionDenied(f"device {device_id!r} was revoked; its scans are not accepted")
    return device


@dataclass
class SyncResult:
    """What became of one queued scan."""

    index: int
    status: str  # accepted | duplicate | rejected
    scan_id: str | None = None
    reason: str | None = None  # why a scan was rejected (stable code)
    message: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "position": self.index,
            "scanId": self.scan_id,
            "status": self.status,
        }
        if self.reason is not None:
            out["reason"] = self.reason
            out["message"] = self.message
        out.update(self.answer)
        return out


class _Rejected(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def sync_scans(
    gateway: Gateway,
    org: Organization,
    device: Device,
    items: list[tuple[str, str]],
    now: datetime | None = None,
    principal: Principal | None = None,
) -> list[SyncResult]:
    """Check, store and judge a batch of (record text, signature) from `device`.

    Each scan is answered on its own: a bad one is rejected with a reason and the rest of the
    batch still goes through. Each stored scan names who made it: the user a schema 3 or 4
    record names, when that is a user of the organization, else the `principal` that synced
    it; a schema 4 record's shipment reference is kept on the row (scans group by it)."""
    now = now or datetime.now(UTC)
    key, _ = decode_public_key(device.public_key)
    checked: list[tuple[int, ScanRecord, str, str] | SyncResult] = []
    for index, (text, signature) in enumerate(items):
        if not check_signature(key, text, signature):
            checked.append(
                SyncResult(
                    index,
                    "rejected",
                    _scan_id_hint(text),
                    "SIGNATURE_INVALID",
                    "the signature does not match the record and the device's key",
                )
            )
            continue
        try:
            record = parse_record(text)
            _check(gateway, device, record, now)
        except InvalidInput as exc:
            checked.append(
                SyncResult(index, "rejected", _scan_id_hint(text), "RECORD_INVALID", str(exc))
            )
            continue
        except _Rejected as exc:
            checked.append(
                SyncResult(index, "rejected", _scan_id_hint(text), exc.reason, exc.message)
            )
            continue
        checked.append((index, record, text, signature))

    ids = [c[1].scan_id for c in checked if not isinstance(c, SyncResult)]
    with Session(gateway.engine) as session:
        known = {
            row[0]: row[1]
            for row in session.exec(
                select(ScanEvent.scan_id, ScanEvent.signed_record).where(
                    col(ScanEvent.scan_id).in_(ids)
                )
            ).all()
        }
    results: list[SyncResult] = []
    for item in checked:
        if isinstance(item, SyncResult):
            results.append(item)
            continue
        index, record, text, signature = item
        if record.scan_id in known:
            results.append(_duplicate(index, record, text, known[record.scan_id]))
            continue
        actor = _actor(gateway, org, record, principal)
        results.append(_judge(gateway, org, device, index, record, text, signature, actor))
    return results


def _actor(
    gateway: Gateway, org: Organization, record: ScanRecord, principal: Principal | None
) -> dict[str, Any]:
    """The actor columns of a synced scan (see `sync_scans`)."""
    if record.user is not None:
        with Session(gateway.engine) as session:
            user = session.exec(select(User).where(User.email == record.user.lower())).first()
        if user is not None and user.organization_id == org.id:
            return {"actor_kind": "user", "actor_id": user.id, "actor_name": user.email}
    return scan_actor(principal) if principal is not None else {}


def _scan_id_hint(text: str) -> str | None:
    """The scanId of a record that could not be accepted, when it can be read at all."""
    try:
        return parse_record(text).scan_id
    except InvalidInput:
        return None


def _check(gateway: Gateway, device: Device, record: ScanRecord, now: datetime) -> None:
    if record.device_id != device.device_id:
        raise _Rejected(
            "DEVICE_MISMATCH",
            f"record names device {record.device_id}, the batch comes from {device.device_id}",
        )
    if record.scanned_at > now + CLOCK_SKEW:
        raise _Rejected(
            "SCANNED_IN_FUTURE",
            f"scannedAt {record.scanned_at.isoformat()} is later than the gateway's clock "
            f"({now.isoformat()}) by more than {int(CLOCK_SKEW.total_seconds())} s",
        )
    if record.location is not None and record.location not in gateway.detection.registry:
        raise _Rejected(
            "LOCATION_UNKNOWN",
            f"location {record.location!r} is not a UN/LOCODE in the location registry",
        )


def _duplicate(index: int, record: ScanRecord, text: str, stored: str | None) -> SyncResult:
    if stored == text:
        return SyncResult(index, "duplicate", record.scan_id, answer={"origin": "offline"})
    return SyncResult(
        index,
        "rejected",
        record.scan_id,
        "SCAN_ID_CONFLICT",
        "a different scan with this scanId is already recorded",
    )


def _scanned(record: ScanRecord) -> Scanned:
    if record.tag is not None:
        return Scanned.from_tag(record.tag)
    assert record.gtin is not None and record.serial is not None
    return Scanned.from_fields(record.gtin, record.serial, record.lot)


def _judge(
    gateway: Gateway,
    org: Organization,
    device: Device,
    index: int,
    record: ScanRecord,
    text: str,
    signature: str,
    actor: dict[str, Any],
) -> SyncResult:
    try:
        scanned = _scanned(record)
    except InvalidInput as exc:
        return SyncResult(index, "rejected", record.scan_id, "CODE_INVALID", str(exc))
    judgement = verify(
        gateway.catalog,
        scanned,
        stale_after=gateway.settings.stale_after_seconds,
        registrations=gateway.registrations,
    )
    reasons = [r.value for r in judgement.reasons]
    row = {
        "scan_id": record.scan_id,
        "organization_id": org.id,
        "gtin": scanned.gtin,
        "lot": scanned.lot,
        "serial": scanned.serial,
        "batch_id": judgement.batch_id,
        "input_kind": scanned.kind,
        "location": record.location,
        "latitude": None,
        "longitude": None,
        "scanned_at": record.scanned_at,
        "recorded_at": datetime.now(UTC),
        "verdict": judgement.verdict.value,
        "reasons": reasons,
        "index_block": judgement.index["block"],
        "origin": "offline",
        "device_id": device.device_id,
        "offline_verdict": record.offline_verdict_name,
        "signed_record": text,
        "signature": signature,
        "shipment": record.shipment,
        **actor,
    }
    # Claim the scan id first: the loser of a concurrent retry stops here, before the detector.
    try:
        with gateway.engine.begin() as connection:
            connection.execute(insert(ScanEvent.__table__), [row])  # type: ignore[attr-defined]
    except IntegrityError:
        with Session(gateway.engine) as session:
            stored = session.exec(
                select(ScanEvent.signed_record).where(ScanEvent.scan_id == record.scan_id)
            ).first()
        return _duplicate(index, record, text, stored)

    findings: list[dict[str, Any]] = []
    facts: list[FindingFacts] = []
    if record.location is not None:
        in_batch = Reason.SERIAL_IN_BATCH in judgement.reasons
        found = gateway.detection.ingest(
            gateway.catalog.snapshot(),
            Scan(
                record.scan_id,
                scanned.gtin,
                scanned.serial,
                record.location,
                record.scanned_at.timestamp(),
                judgement.batch_id if in_batch else None,
            ),
            raised_by=org.id,
        )
        findings = [f.to_dict() for f in found]
        added = finding_reasons(reasons, (f.alert.alert_class for f in found))
        if added:
            reasons = reasons + added
        facts = finding_facts((f.alert for f in found), gateway.detection.registry)
    # A late clone is answered as one: the verdict weighs the findings, as on /v1/verify.
    verdict, summary = judgement.conclude(facts)
    # The custody log records the scan as it finally stands (with the detector's reasons and
    # the verdict they make), in the transaction that writes them: an entry never disagrees
    # with its row.
    with gateway.engine.begin() as connection:
        if reasons != row["reasons"] or verdict.value != row["verdict"]:
            connection.execute(
                update(ScanEvent)
                .where(col(ScanEvent.scan_id) == record.scan_id)
                .values(reasons=reasons, verdict=verdict.value)
            )
        append_scans(connection, [{**row, "reasons": reasons, "verdict": verdict.value}])
    offline = record.offline_verdict_name
    answer = {
        "origin": "offline",
        "verdict": verdict.value,
        "summary": summary,
        "reasons": reasons,
        "item": {"gtin": scanned.gtin, "lot": scanned.lot, "serial": scanned.serial},
        "batchId": judgement.batch_id,
        "index": judgement.index,
        "scannedAt": record.scanned_at.isoformat(),
        "location": record.location,
        "findings": findings,
        "offlineVerdict": offline,
        "verdictDisagrees": offline is not None and offline != verdict.value,
    }
    return SyncResult(index, "accepted", record.scan_id, answer=answer)
