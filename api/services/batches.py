"""Batches for the routes: parsing uploads, the batches a caller may act on, their
registration state, tag downloads and status changes (enrollment itself: `api.enrollment`)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from api import audit
from api.crypto import unseal
from api.enrollment import domain_of, refuse_retired, serials_of, tagging_job
from api.gateway import Gateway
from api.models import BatchTree, GatewayBatch, IndexedBatch, Organization, PendingWrite, Role
from api.outbox import enqueue
from api.principal import Principal
from api.schemas import BatchCreate
from api.scoping import scope_of, view_of
from ledger.batch import BatchInput, item_key_of
from ledger.errors import (
    BatchNotFound,
    Conflict,
    InvalidBatchFile,
    InvalidInput,
    NotFound,
)
from ledger.issuance import TaggingJob
from ledger.merkle import item_salt, leaf_hash
from ledger.models import Status

_BATCH_ID = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_batch(
    raw: bytes, content_type: str, gtin: str | None, lot: str | None, expiry: str | None
) -> tuple[BatchInput, dict[str, Any] | None]:
    """A batch upload (JSON, or CSV with `gtin`, `lot` and `expiry` as columns or given
    here) and its route policy; 422 naming the first problem."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidBatchFile("the CSV upload is not UTF-8") from None
        # newline="" as the csv module asks: CR, LF and CRLF line ends, CR inside quotes.
        # Rows are read one at a time (a 1,000,000-line upload held as lists of fields would
        # cost ~130 MB more), and `del text` lets the decoded copy go once it is parsed.
        rows = csv.reader(io.StringIO(text, newline=""))
        del text
        try:
            top = next(rows, None)
            if top is None or "serial" not in [h.strip().lower() for h in top]:
                raise InvalidBatchFile("the CSV needs a header row with a 'serial' column")
            header = [h.strip().lower() for h in top]
            col = {
                name: header.index(name)
                for name in ("serial", "gtin", "lot", "expiry")
                if name in header
            }
            values: dict[str, str | None] = {"gtin": gtin, "lot": lot, "expiry": expiry}
            serials = []
            for number, row in enumerate(rows, start=2):
                if not row or not any(v.strip() for v in row):
                    continue
                if len(row) != len(header):
                    raise InvalidBatchFile(
                        f"CSV line {number}: {len(row)} fields, header has {len(header)}"
                    )
                serials.append(row[col["serial"]].strip())
                for name in ("gtin", "lot", "expiry"):
                    if name in col:
                        value = row[col[name]].strip()
                        if values[name] is None:
                            values[name] = value
                        elif values[name] != value:
                            raise InvalidBatchFile(
                                f"CSV line {number}: {name} {value!r} differs; a batch is one lot of one GTIN"
                            )
        except csv.Error as exc:
            raise InvalidBatchFile(f"the CSV upload is malformed: {exc}") from None
        if values["gtin"] is None or values["lot"] is None:
            raise InvalidBatchFile("give gtin and lot as CSV columns or query parameters")
        return BatchInput.create(
            values["gtin"], values["lot"], serials, values["expiry"] or None
        ), None
    if kind in ("application/json", ""):
        try:
            body = BatchCreate.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InvalidInput(f"{where}: {first['msg']}") from None
        return BatchInput.create(body.gtin, body.lot, body.serials, body.expiry), body.route_policy
    raise InvalidInput(f"content type {kind!r}: send application/json or text/csv")


def own_batch(
    session: Session, principal: Principal, batch_id: str, *, read: bool = False
) -> GatewayBatch:
    """A batch enrolled through this gateway that the caller may act on: its own, any for an
    admin; when only reading it, also those of the holders an auditor was granted. Another
    party's batch is not found, as an unknown one is."""
    well_formed = _BATCH_ID.fullmatch(batch_id) is not None
    batch = session.get(GatewayBatch, batch_id.lower()) if well_formed else None
    if batch is not None:
        if read:
            visible = view_of(session, principal).reads_holder(batch.organization_id)
        else:
            visible = scope_of(principal, Role.ADMIN).allows(batch.organization_id)
        if visible:
            return batch
    raise BatchNotFound(f"no batch {batch_id} enrolled through this gateway")


def registration(
    session: Session, batch: GatewayBatch
) -> tuple[PendingWrite | None, IndexedBatch | None]:
    """The batch's queued registration and, once indexed, its state on chain."""
    write = session.exec(
        select(PendingWrite).where(PendingWrite.idempotency_key == f"register:{batch.batch_id}")
    ).first()
    return write, session.get(IndexedBatch, batch.batch_id)


def tags(session: Session, gateway: Gateway, batch: GatewayBatch) -> tuple[TaggingJob, list[str]]:
    """What signs the batch's tags, and its serials."""
    owner = session.get(Organization, batch.organization_id)
    # Only the serials: the tree's nodes (64 MB for 1,000,000 items) are not needed here.
    serials_z = session.exec(
        select(BatchTree.serials_z).where(BatchTree.batch_id == batch.batch_id)
    ).first()
    assert owner is not None and serials_z is not None
    job = tagging_job(
        batch,
        owner,
        gateway.settings.secret_key,
        domain_of(gateway, batch.batch_id),
        gateway.settings.resolver_host,
    )
    return job, serials_of(serials_z)


def holds_serial(gateway: Gateway, batch: GatewayBatch, serial: str) -> bool:
    """Whether `serial` is an item of `batch` (its leaf is in the batch's tree), checked as
    a status change checks it, so a page can refuse a wrong serial before confirming."""
    provable = gateway.catalog.provable(batch.batch_id)
    if provable is None or not serial or len(serial) > 20:
        return False
    salt = item_salt(
        unseal(gateway.settings.secret_key, batch.secret_encrypted), batch.gtin, serial
    )
    try:
        provable.tree.proof(leaf_hash(batch.gtin, serial, salt))
    except KeyError:
        return False
    return True


def change_status(
    session: Session,
    gateway: Gateway,
    principal: Principal,
    batch: GatewayBatch,
    status: str,
    serial: str | None,
    idempotency_key: str | None,
) -> PendingWrite:
    """Queue (and try to submit now) a status change of one item or the whole batch; its
    write as it stands afterwards. The same Idempotency-Key again is the same change."""
    owner = session.get(Organization, batch.organization_id)
    assert owner is not None and owner.id is not None
    new = Status.parse(status)
    refuse_retired(session, session.get(IndexedBatch, batch.batch_id))
    # A client's key is scoped to its organization (and hashed to fit the column), so it can
    # neither collide with another organization's key nor name the gateway's own writes.
    key = (
        f"status:{principal.organization_id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
        if idempotency_key
        else f"status:{uuid.uuid4()}"
    )
    if serial is None:
        payload: dict[str, Any] = {"batch_id": batch.batch_id, "status": int(new)}
        kind = "set_batch_status"
    else:
        tree = session.get(BatchTree, batch.batch_id)
        provable = gateway.catalog.provable(batch.batch_id)
        assert tree is not None and provable is not None
        salt = item_salt(
            unseal(gateway.settings.secret_key, batch.secret_encrypted), batch.gtin, serial
        )
        try:
            proof = provable.tree.proof(leaf_hash(batch.gtin, serial, salt))
        except KeyError:
            raise NotFound(f"serial {serial!r} is not in batch {batch.batch_id}") from None
        payload = {
            "gtin": batch.gtin,
            "lot": batch.lot,
            "serial": serial,
            "salt": "0x" + salt.hex(),
            "proof": ["0x" + p.hex() for p in proof],
            "status": int(new),
            "item_key": "0x" + item_key_of(batch.gtin, serial).hex(),
        }
        kind = "set_item_status"
    write = enqueue(session, owner.id, kind, payload, key)
    if write.kind != kind or write.payload != payload:
        raise Conflict("this Idempotency-Key was already used for another status change")
    audit.record(
        session,
        principal,
        "status.change",
        batch.batch_id if serial is None else f"{batch.gtin}/{serial}",
        {"batchId": batch.batch_id, "serial": serial, "status": new.name.lower()},
    )
    session.commit()
    assert write.id is not None
    gateway.writer.process(only=write.id)
    session.expire_all()
    fresh = session.get(PendingWrite, write.id)
    assert fresh is not None
    return fresh
