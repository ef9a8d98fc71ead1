"""Batches: enrollment (JSON or CSV), reading, tag downloads, status changes.
The logic is `api.services.batches` and `api.enrollment` (large enrollments run as jobs)."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import audit
from api.deps import GatewayDep, HolderDep, HolderOrAdminDep, ReaderDep, SessionDep
from api.detection import normalized_policy
from api.enrollment import batch_out, domain_of, enroll_and_register, submit_enrollment
from api.gateway import Gateway
from api.label_jobs import request_label_file
from api.labels import tags_csv, tags_pdf, tags_zip
from api.models import Organization
from api.principal import Principal
from api.routes.jobs import job_public
from api.schemas import (
    BatchCreate,
    BatchPublic,
    BatchStatusUpdate,
    ErrorResponse,
    JobAccepted,
    JobPublic,
    WritePublic,
)
from api.services import batches
from api.uploads import read_body
from ledger.batch import BatchInput
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


@router.post(
    "/batches",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchPublic,
    responses={200: {"model": BatchPublic}, 202: {"model": JobAccepted}, **ERRORS},
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

    return await run_in_threadpool(
        enroll_upload, gateway, principal, raw, content_type, gtin, lot, expiry
    )


def enroll_upload(
    gateway: Gateway,
    principal: Principal,
    raw: bytes,
    content_type: str,
    gtin: str | None,
    lot: str | None,
    expiry: str | None,
) -> JSONResponse:
    """An uploaded batch enrolled (201/200) or its job started (202), audited; the API's
    answer. Shared with the rights holder's upload page (`api.pages.batches`), whose form
    works without JavaScript, so both take the same path. Blocking: call it off the loop."""
    with _ENROLLING:
        org = principal.organization
        answer = _create_batch(gateway, org, raw, content_type, gtin, lot, expiry)
    if answer.status_code in (201, 202):  # 200: the same batch again, nothing enrolled
        batch_id = json.loads(bytes(answer.body)).get("batchId")
        audit.record_now(gateway.engine, principal, "batch.enroll", batch_id)
    return answer


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


@router.get("/batches/{batch_id}", response_model=BatchPublic, responses=ERRORS)
def get_batch(batch_id: str, principal: ReaderDep, session: SessionDep) -> BatchPublic:
    """A batch: identity, root, registration on chain and status (its holder, admins and
    auditors)."""
    batch = batches.own_batch(session, principal, batch_id, read=True)
    return batch_out(batch, *batches.registration(session, batch))


@router.get(
    "/batches/{batch_id}/tags",
    responses={
        200: {"content": {"text/csv": {}, "application/zip": {}, "application/pdf": {}}},
        202: {
            "model": JobPublic,
            "description": "a ZIP or PDF above the synchronous limit: the label-file job "
            "(the same one each time); GET /v1/jobs/{id}/file once it is done",
        },
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
    """The batch's signed tags: CSV of URIs, ZIP of QR codes, or a printable PDF label sheet.
    A ZIP or PDF of more than `sync_label_limit` tags is made by a background job: 202 with
    the job (asking again returns the same job), its file at GET /v1/jobs/{id}/file."""
    batch = batches.own_batch(session, principal, batch_id)
    name = f"{batch.gtin}-{batch.lot}"
    if format != "csv" and batch.item_count > gateway.settings.sync_label_limit:
        label_job = request_label_file(gateway, batch, format)
        return JSONResponse(
            json.loads(job_public(label_job).model_dump_json()),
            status_code=202,
            headers={"Location": f"/v1/jobs/{label_job.id}"},
        )
    job, serials = batches.tags(session, gateway, batch)
    if format == "csv":
        return StreamingResponse(
            tags_csv(job, serials),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
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
