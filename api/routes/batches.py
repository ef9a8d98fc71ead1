"""Batches: enrollment (JSON or CSV), reading, tag downloads, status changes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import threading
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from api.crypto import unseal
from api.deps import CurrentOrg, GatewayDep, SessionDep, require
from api.detection import normalized_policy
from api.enrollment import (
    batch_out,
    domain_of,
    enroll_and_register,
    serials_of,
    submit_enrollment,
    tagging_job,
)
from api.errors import PayloadTooLarge
from api.gateway import Gateway
from api.labels import tags_csv, tags_pdf, tags_zip
from api.models import (
    BatchTree,
    GatewayBatch,
    IndexedBatch,
    Organization,
    PendingWrite,
    Role,
)
from api.outbox import enqueue
from api.schemas import BatchCreate, BatchOut, ErrorOut, JobAccepted, StatusChange, WriteOut
from ledger.batch import BatchInput, item_key_of
from ledger.errors import (
    BatchNotFound,
    Conflict,
    InvalidBatchFile,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from ledger.merkle import item_salt, leaf_hash
from ledger.models import Status
from ledger.tags import TagDomain

router = APIRouter(prefix="/v1", tags=["batches"])
_BATCH_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_ENROLLING = threading.Lock()
ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorOut} for c in (401, 403, 404, 409, 413, 422, 503)
}
_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": BatchCreate.model_json_schema()},
            "text/csv": {"schema": {"type": "string"}, "example": "serial\nSN001\nSN002\n"},
        },
    }
}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"upload is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes")
    return bytes(body)


def _parse_batch(
    raw: bytes, content_type: str, gtin: str | None, lot: str | None, expiry: str | None
) -> tuple[BatchInput, dict[str, Any] | None]:
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


@router.post(
    "/batches",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchOut,
    responses={200: {"model": BatchOut}, 202: {"model": JobAccepted}, **ERRORS},
    openapi_extra=_BODY_DOC,
)
async def create_batch(
    request: Request,
    org: CurrentOrg,
    gateway: GatewayDep,
    gtin: Annotated[str | None, Query(max_length=14, description="for CSV uploads")] = None,
    lot: Annotated[str | None, Query(max_length=20, description="for CSV uploads")] = None,
    expiry: Annotated[
        str | None, Query(pattern=r"^[0-9]{6}$", description="YYMMDD, for CSV uploads")
    ] = None,
) -> JSONResponse:
    """Enroll a batch (rights holders). 201 when new, 200 when the same batch was already
    enrolled (idempotent retry), 202 with a job id for large batches. Registration on chain
    is queued if the chain is unreachable and submitted when it is back."""
    require(org, Role.RIGHTS_HOLDER)
    raw = await _read_body(request, gateway.settings.max_upload_bytes)
    # Parsing a large upload, enrolling and waiting for the chain block: off the event loop
    # (in the threadpool), so verifications served by the same process are not held up; one
    # enrollment at a time per process, as when this ran on the loop.
    content_type = request.headers.get("content-type", "")

    def create() -> JSONResponse:
        with _ENROLLING:
            return _create_batch(gateway, org, raw, content_type, gtin, lot, expiry)

    return await run_in_threadpool(create)


def _create_batch(
    gateway: Gateway,
    org: Organization,
    raw: bytes,
    content_type: str,
    gtin: str | None,
    lot: str | None,
    expiry: str | None,
) -> JSONResponse:
    batch, policy = _parse_batch(raw, content_type, gtin, lot, expiry)
    del raw  # a large upload's bytes are not needed once parsed
    if policy is not None:  # refused (422) before anything is stored or a job is started
        policy = normalized_policy(gateway.detection.registry, policy)
    if len(batch) > gateway.settings.sync_enroll_limit:
        job_id = submit_enrollment(gateway, org, batch, policy)
        accepted = JobAccepted(jobId=job_id, batchId="0x" + batch.batch_id.hex())
        return JSONResponse(accepted.model_dump(), status_code=202)
    return _enroll_now(gateway, org, batch, policy, domain_of(gateway))


def _enroll_now(
    gateway: Gateway,
    org: Organization,
    batch: BatchInput,
    policy: dict[str, Any] | None,
    domain: TagDomain,
) -> JSONResponse:
    out, created = enroll_and_register(gateway, org, batch, policy, domain)
    return JSONResponse(json.loads(out.model_dump_json()), status_code=201 if created else 200)


def _own_batch(
    session: Session, org: Organization, batch_id: str, *, read: bool = False
) -> GatewayBatch:
    well_formed = _BATCH_ID.fullmatch(batch_id) is not None
    batch = session.get(GatewayBatch, batch_id.lower()) if well_formed else None
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id} enrolled through this gateway")
    readers = (Role.ADMIN, Role.AUDITOR) if read else (Role.ADMIN,)
    if batch.organization_id != org.id and org.role not in readers:
        raise PermissionDenied(f"batch {batch_id} belongs to another organization")
    return batch


@router.get("/batches/{batch_id}", response_model=BatchOut, responses=ERRORS)
def get_batch(batch_id: str, org: CurrentOrg, session: SessionDep) -> BatchOut:
    """A batch: identity, root, registration on chain and status."""
    batch = _own_batch(session, org, batch_id, read=True)
    write = session.exec(
        select(PendingWrite).where(PendingWrite.idempotency_key == f"register:{batch.batch_id}")
    ).first()
    return batch_out(batch, write, session.get(IndexedBatch, batch.batch_id))


@router.get(
    "/batches/{batch_id}/tags",
    responses={
        200: {"content": {"text/csv": {}, "application/zip": {}, "application/pdf": {}}},
        **ERRORS,
    },
)
def get_tags(
    batch_id: str,
    org: CurrentOrg,
    session: SessionDep,
    gateway: GatewayDep,
    format: Annotated[
        str,
        Query(pattern="^(csv|zip|pdf)$", description="csv, zip (QR PNG+SVG) or pdf (label sheet)"),
    ] = "csv",
) -> Response:
    """The batch's signed tags: CSV of URIs, ZIP of QR codes, or a printable PDF label sheet."""
    require(org, Role.RIGHTS_HOLDER, Role.ADMIN)
    batch = _own_batch(session, org, batch_id)
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
        domain_of(gateway),
        gateway.settings.resolver_host,
    )
    serials = serials_of(serials_z)
    name = f"{batch.gtin}-{batch.lot}"
    if format == "csv":
        return StreamingResponse(
            tags_csv(job, serials),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if len(serials) > 10_000:
        raise InvalidInput(
            f"{format} downloads are limited to 10,000 tags; use format=csv for {len(serials)}"
        )
    if format == "zip":
        return Response(
            tags_zip(job, serials),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
        )
    return Response(
        tags_pdf(job, serials, title=f"GTIN {batch.gtin} lot {batch.lot}"),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )


@router.post(
    "/batches/{batch_id}/status", status_code=202, response_model=WriteOut, responses=ERRORS
)
def change_status(
    batch_id: str,
    body: StatusChange,
    org: CurrentOrg,
    session: SessionDep,
    gateway: GatewayDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="retry-safe key")
    ] = None,
) -> WriteOut:
    """Recall, report stolen, destroy or decommission one item (`serial`) or the whole batch.
    The change goes on chain (queued while the chain is unreachable)."""
    require(org, Role.RIGHTS_HOLDER, Role.ADMIN)
    batch = _own_batch(session, org, batch_id)
    owner = session.get(Organization, batch.organization_id)
    assert owner is not None and owner.id is not None
    new = Status.parse(body.status)
    # A client's key is scoped to its organization (and hashed to fit the column), so it can
    # neither collide with another organization's key nor name the gateway's own writes.
    key = (
        f"status:{org.id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
        if idempotency_key
        else f"status:{uuid.uuid4()}"
    )
    if body.serial is None:
        payload: dict[str, Any] = {"batch_id": batch.batch_id, "status": int(new)}
        kind = "set_batch_status"
    else:
        tree = session.get(BatchTree, batch.batch_id)
        provable = gateway.catalog.provable(batch.batch_id)
        assert tree is not None and provable is not None
        salt = item_salt(
            unseal(gateway.settings.secret_key, batch.secret_encrypted), batch.gtin, body.serial
        )
        try:
            proof = provable.tree.proof(leaf_hash(batch.gtin, body.serial, salt))
        except KeyError:
            raise NotFound(f"serial {body.serial!r} is not in batch {batch.batch_id}") from None
        payload = {
            "gtin": batch.gtin,
            "lot": batch.lot,
            "serial": body.serial,
            "salt": "0x" + salt.hex(),
            "proof": ["0x" + p.hex() for p in proof],
            "status": int(new),
            "item_key": "0x" + item_key_of(batch.gtin, body.serial).hex(),
        }
        kind = "set_item_status"
    write = enqueue(session, owner.id, kind, payload, key)
    if write.kind != kind or write.payload != payload:
        raise Conflict("this Idempotency-Key was already used for another status change")
    session.commit()
    assert write.id is not None
    gateway.writer.process(only=write.id)
    session.expire_all()
    fresh = session.get(PendingWrite, write.id)
    assert fresh is not None
    return WriteOut.of(fresh)
