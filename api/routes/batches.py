"""Batches: enrollment (JSON or CSV), reading, tag downloads, status changes, jobs.
The logic is `api.services.batches`; the enrollment jobs are started from here."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import GatewayDep, HolderDep, HolderOrAdminDep, ReaderDep, SessionDep
from api.detection import normalized_policy
from api.enrollment import enroll
from api.gateway import Gateway
from api.labels import tags_csv, tags_pdf, tags_zip
from api.models import GatewayBatch, IndexedBatch, Job, Organization, PendingWrite, utcnow
from api.schemas import (
    BatchCreate,
    BatchPublic,
    BatchStatusUpdate,
    ErrorResponse,
    JobPublic,
    WritePublic,
)
from api.services import batches
from api.uploads import read_body
from ledger.batch import BatchInput
from ledger.errors import InvalidInput
from ledger.models import Status
from ledger.tags import TagDomain

router = APIRouter(prefix="/v1", tags=["batches"])
_ENROLLING = threading.Lock()
ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorResponse} for c in (401, 403, 404, 409, 413, 422, 503)
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


def _batch_out(
    batch: GatewayBatch, write: PendingWrite | None, indexed: IndexedBatch | None = None
) -> BatchPublic:
    return BatchPublic(
        batchId=batch.batch_id,
        gtin=batch.gtin,
        lot=batch.lot,
        expiry=batch.expiry,
        count=batch.item_count,
        root=batch.root,
        metadataHash=batch.metadata_hash,
        signer=batch.signer,
        registration=(write.status.value if write else "queued"),
        txHash=(write.tx_hash if write else None) or (indexed.tx_hash if indexed else None),
        block=(write.block_number if write else None)
        or (indexed.block_number if indexed else None),
        error=write.error if write else None,
        status=Status(indexed.status).name.lower() if indexed else None,
        reorgs=write.reorgs if write else 0,
    )


@router.post(
    "/batches",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchPublic,
    responses={200: {"model": BatchPublic}, 202: {"model": BatchPublic}, **ERRORS},
    openapi_extra=_BODY_DOC,
)
async def create_batch(
    request: Request,
    principal: HolderDep,
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
    raw = await read_body(request, gateway.settings.max_upload_bytes)
    # Parsing a large upload, enrolling and waiting for the chain block: off the event loop
    # (in the threadpool), so verifications served by the same process are not held up; one
    # enrollment at a time per process, as when this ran on the loop.
    content_type = request.headers.get("content-type", "")

    def create() -> JSONResponse:
        with _ENROLLING:
            org = principal.organization
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
    batch, policy = batches.parse_batch(raw, content_type, gtin, lot, expiry)
    del raw  # a large upload's bytes are not needed once parsed
    if policy is not None:  # refused (422) before anything is stored or a job is started
        policy = normalized_policy(gateway.detection.registry, policy)
    domain = batches.tag_domain(gateway)
    if len(batch) > gateway.settings.sync_enroll_limit:
        job_id = _start_job(gateway, org, batch, policy, domain)
        return JSONResponse(
            {"jobId": job_id, "batchId": "0x" + batch.batch_id.hex(), "status": "queued"},
            status_code=202,
        )
    return _enroll_now(gateway, org, batch, policy, domain)


def _enroll_now(
    gateway: Gateway,
    org: Organization,
    batch: BatchInput,
    policy: dict[str, Any] | None,
    domain: TagDomain,
) -> JSONResponse:
    out, created = _enroll_and_register(gateway, org, batch, policy, domain)
    return JSONResponse(json.loads(out.model_dump_json()), status_code=201 if created else 200)


def _enroll_and_register(
    gateway: Gateway,
    org: Organization,
    batch: BatchInput,
    policy: dict[str, Any] | None,
    domain: TagDomain,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[BatchPublic, bool]:
    """Store the batch and its queued registration, try to submit it now, and describe the
    result (registration done, or still queued if the chain is unreachable)."""
    with Session(gateway.engine, expire_on_commit=False) as session:
        outcome = enroll(
            session,
            org,
            batch,
            secret_key=gateway.settings.secret_key,
            domain=domain,
            route_policy=policy,
            registry=gateway.detection.registry,
            workers=workers,
            progress=progress,
        )
        session.commit()
        write_id = outcome.write.id
    assert write_id is not None
    gateway.writer.process(only=write_id)
    with Session(gateway.engine) as session:
        return _batch_out(outcome.batch, session.get(PendingWrite, write_id)), outcome.created


def _start_job(
    gateway: Gateway,
    org: Organization,
    batch: BatchInput,
    policy: dict[str, Any] | None,
    domain: TagDomain,
) -> str:
    assert org.id is not None
    job_id = str(uuid.uuid4())  # not job.id after the commit: the instance is expired then
    job = Job(id=job_id, organization_id=org.id, kind="enroll", total=len(batch))
    with Session(gateway.engine) as session:
        session.add(job)
        session.commit()

    def run() -> None:
        done = 0

        def progress(items: int) -> None:
            nonlocal done
            done += items
            if done % 100_000 < items or done == len(batch):
                _update_job(gateway, job_id, status="running", done=done)

        try:
            out, _ = _enroll_and_register(gateway, org, batch, policy, domain, 2, progress)
            result = json.loads(out.model_dump_json())
            _update_job(gateway, job_id, status="done", done=len(batch), result=result)
        except Exception as exc:
            _update_job(gateway, job_id, status="failed", error=str(exc))

    threading.Thread(target=run, name=f"job-{job_id}", daemon=True).start()
    return job_id


def _update_job(gateway: Gateway, job_id: str, **changes: Any) -> None:
    with Session(gateway.engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        for key, value in changes.items():
            setattr(job, key, value)
        job.updated_at = utcnow()
        session.add(job)
        session.commit()


@router.get("/jobs/{job_id}", response_model=JobPublic, responses=ERRORS)
def get_job(job_id: str, principal: ReaderDep, session: SessionDep) -> JobPublic:
    """Progress and result of a background job."""
    job = batches.job_of(session, principal, job_id)
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=job.status,
        done=job.done,
        total=job.total,
        result=job.result,
        error=job.error,
    )


@router.get("/batches/{batch_id}", response_model=BatchPublic, responses=ERRORS)
def get_batch(batch_id: str, principal: ReaderDep, session: SessionDep) -> BatchPublic:
    """A batch: identity, root, registration on chain and status (its holder, admins and
    auditors)."""
    batch = batches.own_batch(session, principal, batch_id, read=True)
    return _batch_out(batch, *batches.registration(session, batch))


@router.get(
    "/batches/{batch_id}/tags",
    responses={
        200: {"content": {"text/csv": {}, "application/zip": {}, "application/pdf": {}}},
        **ERRORS,
    },
)
def get_tags(
    batch_id: str,
    principal: HolderOrAdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    format: Annotated[
        str,
        Query(pattern="^(csv|zip|pdf)$", description="csv, zip (QR PNG+SVG) or pdf (label sheet)"),
    ] = "csv",
) -> Response:
    """The batch's signed tags: CSV of URIs, ZIP of QR codes, or a printable PDF label sheet."""
    batch = batches.own_batch(session, principal, batch_id)
    job, serials = batches.tags(session, gateway, batch)
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
    "/batches/{batch_id}/status", status_code=202, response_model=WritePublic, responses=ERRORS
)
def change_status(
    batch_id: str,
    body: BatchStatusUpdate,
    principal: HolderOrAdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="retry-safe key")
    ] = None,
) -> WritePublic:
    """Recall, report stolen, destroy or decommission one item (`serial`) or the whole batch.
    The change goes on chain (queued while the chain is unreachable)."""
    batch = batches.own_batch(session, principal, batch_id)
    write = batches.change_status(
        session, gateway, principal, batch, body.status, body.serial, idempotency_key
    )
    return WritePublic.of(write)
