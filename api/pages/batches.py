"""A rights holder's batch pages (docs/batches-pages.md): its batches with their registration
on chain, a CSV upload whose enrollment job is followed to "on chain", each batch's details,
statuses (with a confirmation naming exactly what changes) and label files, and "check a
product" (a brand verifies its own goods in markets).

The pages call the API's own services (`api.routes.batches.enroll_upload`,
`api.services.batches`, `api.label_jobs`, `api.services.verify`), so their rules and
messages are the API's. Every form works without JavaScript; with it, the upload is the
file streamed as the body of POST /v1/batches (never read into the page's memory) with its
progress shown, and job progress is polled by htmx."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, func, select
from starlette.datastructures import UploadFile

from api import jobs, users
from api.enrollment import ENROLL_JOB
from api.label_jobs import FORMATS, job_id_for, request_label_file
from api.models import (
    GatewayBatch,
    IndexedBatch,
    IndexedItemStatus,
    Job,
    JobStatus,
    PendingWrite,
    Role,
    WriteStatus,
)
from api.pages.i18n import translations
from api.pages.kit import (
    VERDICT_WORDS,
    checked_form,
    error_page,
    gateway_of,
    page,
    refused_csrf,
    require,
)
from api.schemas import VerifyRequest
from api.services import batches as batch_service
from api.services.verify import answer_scan
from ledger.errors import BorderLedgerError, NotFound
from ledger.models import Status

router = APIRouter(include_in_schema=False)
REFUSAL = "These pages are for rights holders: your organization's batches and products."
PAGE_SIZE = 20
#: The statuses a holder may set, in the order the form offers them.
STATUSES = ("recalled", "stolen", "destroyed", "decommissioned", "active")
STATUS_KINDS = ("set_batch_status", "set_item_status")
_UPLOAD_CHUNK = 1 << 20
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _holder(request: Request) -> users.SignedIn | Response:
    return require(request, kinds=(Role.RIGHTS_HOLDER,), refusal=REFUSAL)


def _is_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@dataclass(frozen=True)
class Registration:
    """A chain write as a person reads it: its state word, block, transaction and reason."""

    state: str  # queued | sent | on chain | failed
    block: int | None
    tx_hash: str | None
    error: str | None

    @classmethod
    def of(cls, write: PendingWrite | None, indexed: IndexedBatch | None = None) -> Registration:
        if write is None:
            if indexed is not None:  # registered through another gateway: the index says so
                return cls("on chain", indexed.block_number, indexed.tx_hash, None)
            return cls("queued", None, None, None)
        words = {
            WriteStatus.QUEUED: "queued",
            WriteStatus.SENT: "sent",
            WriteStatus.DONE: "on chain",
            WriteStatus.FAILED: "failed",
        }
        return cls(words[write.status], write.block_number, write.tx_hash, write.error)


def _batch_row(
    batch: GatewayBatch, write: PendingWrite | None, indexed: IndexedBatch | None
) -> dict[str, Any]:
    return {
        "id": batch.batch_id,
        "gtin": batch.gtin,
        "lot": batch.lot,
        "expiry": batch.expiry,
        "count": batch.item_count,
        "created": batch.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "registration": Registration.of(write, indexed),
        "status": Status(indexed.status).name.lower() if indexed else None,
    }


@router.get("/batches", response_class=HTMLResponse)
def batches_page(request: Request) -> Response:
    """The organization's batches, newest first, `PAGE_SIZE` a page; uploads still being
    enrolled (or failed) above them."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    asked = request.query_params.get("page", "1")
    number = max(1, min(int(asked), 100_000)) if asked.isdigit() and len(asked) < 7 else 1
    org_id = who.principal.organization_id
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        total = session.exec(
            select(func.count())
            .select_from(GatewayBatch)
            .where(GatewayBatch.organization_id == org_id)
        ).one()
        rows = session.exec(
            select(GatewayBatch)
            .where(GatewayBatch.organization_id == org_id)
            .order_by(col(GatewayBatch.created_at).desc(), col(GatewayBatch.batch_id))
            .offset((number - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        ids = [b.batch_id for b in rows]
        writes = {
            w.idempotency_key: w
            for w in session.exec(
                select(PendingWrite).where(
                    col(PendingWrite.idempotency_key).in_([f"register:{i}" for i in ids])
                )
            ).all()
        }
        indexed = {
            b.batch_id: b
            for b in session.exec(select(IndexedBatch).where(col(IndexedBatch.batch_id).in_(ids)))
        }
        uploads = session.exec(
            select(Job)
            .where(
                Job.organization_id == org_id,
                Job.kind == ENROLL_JOB,
                col(Job.status).in_(
                    [JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.FAILED.value]
                ),
            )
            .order_by(col(Job.created_at).desc())
            .limit(10)
        ).all()
    shaped = [
        _batch_row(b, writes.get(f"register:{b.batch_id}"), indexed.get(b.batch_id)) for b in rows
    ]
    return page(
        request,
        who,
        "batches.html",
        batches=shaped,
        uploads=[_job_view(j) for j in uploads],
        page_number=number,
        total=total,
        more=number * PAGE_SIZE < total,
    )


# -- upload ------------------------------------------------------------------------------


@router.get("/batches/new", response_class=HTMLResponse)
def new_batch(request: Request) -> Response:
    who = _holder(request)
    if isinstance(who, Response):
        return who
    return _upload_form(request, who, {})


def _upload_form(
    request: Request,
    who: users.SignedIn,
    form: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    limit = gateway_of(request).settings.max_upload_bytes
    return page(
        request,
        who,
        "batch_new.html",
        status_code,
        form={k: form.get(k, "") for k in ("gtin", "lot", "expiry")},
        error=error,
        limit_mb=limit // (1024 * 1024),
    )


@router.post("/batches/new", response_class=HTMLResponse)
async def upload_batch(request: Request) -> Response:
    """The upload form without JavaScript: a multipart form (the file, GTIN, lot, expiry)
    enrolled as POST /v1/batches does; a large batch goes to its job's progress page."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    gateway = gateway_of(request)
    limit = gateway.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        return _upload_form(
            request,
            who,
            {},
            f"The file is larger than the limit of {limit // (1024 * 1024)} MB.",
            413,
        )
    try:
        form = await request.form(max_files=1, max_fields=10)
    except Exception:  # a malformed multipart body (starlette's parser says why)
        return _upload_form(
            request, who, {}, "The upload could not be read: send the form again.", 400
        )
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    if not users.csrf_matches(who.csrf_token, fields.get("csrf_token")):
        return refused_csrf(request, who.user.language)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _upload_form(request, who, fields, "Choose a CSV file of serials.", 422)
    raw = bytearray()
    while chunk := await upload.read(_UPLOAD_CHUNK):
        raw += chunk
        if len(raw) > limit:
            return _upload_form(
                request,
                who,
                fields,
                f"The file is larger than the limit of {limit // (1024 * 1024)} MB.",
                413,
            )
    await form.close()
    # Imported here: `api.routes` includes the pages' router, so a module-level import of
    # it from a page module is circular when `api.pages` is imported first.
    from api.routes.batches import enroll_upload

    try:
        answer = await run_in_threadpool(
            enroll_upload,
            gateway,
            who.principal,
            bytes(raw),
            "text/csv",
            fields.get("gtin") or None,
            fields.get("lot") or None,
            fields.get("expiry") or None,
        )
    except BorderLedgerError as exc:
        return _upload_form(request, who, fields, str(exc), 422)
    body = json.loads(bytes(answer.body))
    if answer.status_code == 202:
        return RedirectResponse(f"/batches/jobs/{body['jobId']}", status_code=303)
    return RedirectResponse(f"/batches/{body['batchId']}", status_code=303)


def _job_view(job: Job, registration: Registration | None = None) -> dict[str, Any]:
    """An enrollment job as its progress reads: the stage, the numbers, whether to poll."""
    done, total = job.done, max(job.total, 1)
    result = job.result or {}
    batch_id = result.get("batchId") if isinstance(result, dict) else None
    polling = job.status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
    if job.status == JobStatus.QUEUED.value:
        stage = "waiting"
    elif job.status == JobStatus.RUNNING.value:
        stage = "tagging" if done < job.total else "registering"
    elif job.status == JobStatus.DONE.value:
        stage = "registering"
        if registration is not None:
            stage = {"on chain": "on chain", "failed": "failed"}.get(
                registration.state, "registering"
            )
        polling = stage == "registering"
    else:
        stage = job.status  # failed | cancelled
    return {
        "id": job.id,
        "status": job.status,
        "stage": stage,
        "done": min(done, job.total),
        "total": total,
        "percent": min(100, (100 * done) // total),
        "error": job.error,
        "batch_id": batch_id,
        "gtin": job.params.get("gtin"),
        "lot": job.params.get("lot"),
        "registration": registration,
        "polling": polling,
    }


@router.get("/batches/jobs/{job_id}", response_class=HTMLResponse)
def enrollment_job(request: Request, job_id: str) -> Response:
    """An upload's enrollment job: tagging progress, then its batch's registration until it
    is on chain (block and transaction). htmx polls the fragment; without JavaScript the
    page reloads itself while the job runs."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        # not a job id at all (a NUL, which PostgreSQL refuses in a query): not found
        job = session.get(Job, job_id) if _JOB_ID.fullmatch(job_id) else None
        if (
            job is None
            or job.kind != ENROLL_JOB
            or job.organization_id != who.principal.organization_id
        ):
            return error_page(
                request, who.user.language, 404, "Not found", "No such upload of your organization."
            )
        registration = None
        batch_id = (job.result or {}).get("batchId")
        if job.status == JobStatus.DONE.value and isinstance(batch_id, str):
            batch = session.get(GatewayBatch, batch_id)
            if batch is not None:
                registration = Registration.of(*batch_service.registration(session, batch))
    view = _job_view(job, registration)
    template = "_batch_job.html" if _is_fragment(request) else "batch_job.html"
    return page(request, who, template, job=view)


# -- one batch ---------------------------------------------------------------------------


def _own(session: Session, who: users.SignedIn, batch_id: str) -> GatewayBatch | None:
    """The organization's batch, or None (another holder's batch is not found, as an unknown
    one is)."""
    try:
        batch = batch_service.own_batch(session, who.principal, batch_id)
    except NotFound:
        return None
    return batch if batch.organization_id == who.principal.organization_id else None


def _not_found(request: Request, who: users.SignedIn) -> HTMLResponse:
    return error_page(
        request, who.user.language, 404, "Not found", "No such batch of your organization."
    )


def _write_view(write: PendingWrite) -> dict[str, Any]:
    payload = write.payload
    status = Status(int(str(payload.get("status", 0)))).name
    return {
        "id": write.id,
        "what": (
            f"item {payload.get('serial')}" if write.kind == "set_item_status" else "whole batch"
        ),
        "status": status,
        "registration": Registration.of(write),
        "when": write.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _status_writes(session: Session, batch: GatewayBatch) -> list[dict[str, Any]]:
    """The batch's status changes, newest first (the batch's, and its items' by GTIN+lot)."""
    rows = session.exec(
        select(PendingWrite)
        .where(
            PendingWrite.organization_id == batch.organization_id,
            col(PendingWrite.kind).in_(STATUS_KINDS),
        )
        .order_by(col(PendingWrite.id).desc())
        .limit(500)
    ).all()
    mine = [
        w
        for w in rows
        if w.payload.get("batch_id") == batch.batch_id
        or (w.payload.get("gtin") == batch.gtin and w.payload.get("lot") == batch.lot)
    ]
    return [_write_view(w) for w in mine[:20]]


def _label_view(
    request: Request, session: Session, batch: GatewayBatch, fmt: str
) -> dict[str, Any]:
    """A label file of the batch: a direct download at or under the synchronous limit;
    above it, its job (none yet, running with progress, done with the download, failed)."""
    direct = batch.item_count <= gateway_of(request).settings.sync_label_limit
    view: dict[str, Any] = {"format": fmt, "direct": direct, "job": None}
    if not direct:
        job = session.get(Job, job_id_for(batch.batch_id, fmt))
        if job is not None:
            view["job"] = {
                "id": job.id,
                "status": job.status,
                "done": job.done,
                "total": max(job.total, 1),
                "percent": min(100, (100 * job.done) // max(job.total, 1)),
                "error": job.error,
            }
    return view


def _labels(request: Request, session: Session, batch: GatewayBatch) -> dict[str, Any]:
    views = [_label_view(request, session, batch, fmt) for fmt in FORMATS]
    polling = any(
        v["job"] and v["job"]["status"] in (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
        for v in views
    )
    return {"files": views, "polling": polling, "batch_id": batch.batch_id}


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, batch_id: str, write: int | None = None) -> Response:
    who = _holder(request)
    if isinstance(who, Response):
        return who
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        batch = _own(session, who, batch_id)
        if batch is None:
            return _not_found(request, who)
        return _batch_view(request, who, session, batch, just_written=write)


@router.get("/batches/{batch_id}/labels", response_class=HTMLResponse)
def labels_page(request: Request, batch_id: str) -> Response:
    """The batch's label files: the section of the batch page (htmx polls it while a job
    runs), or a page of its own (where the order form leads without JavaScript)."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        batch = _own(session, who, batch_id)
        if batch is None:
            return _not_found(request, who)
        row = _batch_row(batch, *batch_service.registration(session, batch))
        labels = _labels(request, session, batch)
    template = "_labels.html" if _is_fragment(request) else "batch_labels.html"
    return page(request, who, template, batch=row, labels=labels)


@router.post("/batches/{batch_id}/labels", response_class=HTMLResponse)
async def order_labels(request: Request, batch_id: str) -> Response:
    """Order a label file (PDF or ZIP) above the synchronous limit: its job is started (the
    same job when ordered again; a failed or cancelled one is run again)."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    fmt = form.get("format", "")
    gateway = gateway_of(request)
    with Session(gateway.engine, expire_on_commit=False) as session:
        batch = _own(session, who, batch_id)
        if batch is None:
            return _not_found(request, who)
        if fmt not in FORMATS:
            return error_page(request, who.user.language, 422, "Label file", "Choose PDF or ZIP.")
        job = request_label_file(gateway, batch, fmt)
        if job.status in (JobStatus.FAILED.value, JobStatus.CANCELLED.value):
            # another request may have queued it again meanwhile: that run is the one
            with contextlib.suppress(BorderLedgerError):
                jobs.retry(session, job)
            gateway.jobs.wake()
    if _is_fragment(request):
        return labels_page(request, batch_id)
    return RedirectResponse(f"/batches/{batch_id}/labels", status_code=303)


# -- statuses ----------------------------------------------------------------------------


def _change_words(batch: GatewayBatch, status: str, serial: str | None, language: str) -> str:
    """Exactly what a status change will do, in the words (and language) the confirmation
    shows."""
    _ = translations(language).gettext
    values = {
        "n": f"{batch.item_count:,}",
        "lot": batch.lot,
        "serial": serial,
        "status": status.upper(),
    }
    if serial is None:
        return _("Mark all %(n)s items of lot %(lot)s as %(status)s") % values
    return _("Mark item serial %(serial)s of lot %(lot)s as %(status)s") % values


def _status_request(
    request: Request, who: users.SignedIn, batch: GatewayBatch, form: dict[str, str]
) -> tuple[str, str | None] | HTMLResponse:
    """The change the form asks for (status, serial or None for the whole batch), or the
    batch page again with the message."""
    status = form.get("status", "").strip().lower()
    scope = form.get("scope", "batch")
    serial = form.get("serial", "").strip() if scope == "item" else None
    problem = None
    if status not in STATUSES:
        problem = "Choose a status."
    elif scope == "item" and not serial:
        problem = "Give the serial of the item to change, or choose the whole batch."
    elif serial is not None and not batch_service.holds_serial(gateway_of(request), batch, serial):
        problem = f"Serial {serial} is not in lot {batch.lot}."
    if problem is not None:
        return _batch_error(request, who, batch, problem)
    return status, serial


def _batch_error(
    request: Request, who: users.SignedIn, batch: GatewayBatch, problem: str
) -> HTMLResponse:
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        return _batch_view(request, who, session, batch, problem=problem)


def _batch_view(
    request: Request,
    who: users.SignedIn,
    session: Session,
    batch: GatewayBatch,
    *,
    problem: str | None = None,
    just_written: Any = None,
) -> HTMLResponse:
    """The batch page: its registration, latest item statuses, status writes and label
    files; with `problem`, the status form's error instead of the item list (422)."""
    row = _batch_row(batch, *batch_service.registration(session, batch))
    items = [] if problem is not None else _item_rows(session, batch)
    return page(
        request,
        who,
        "batch.html",
        200 if problem is None else 422,
        batch=row,
        items=items,
        writes=_status_writes(session, batch),
        labels=_labels(request, session, batch),
        statuses=STATUSES,
        status_error=problem,
        just_written=just_written,
    )


def _item_rows(session: Session, batch: GatewayBatch) -> list[dict[str, Any]]:
    """The batch's 50 latest item status changes, newest first."""
    items = session.exec(
        select(IndexedItemStatus)
        .where(IndexedItemStatus.batch_id == batch.batch_id)
        .order_by(col(IndexedItemStatus.block_number).desc())
        .limit(50)
    ).all()
    return [
        {"item_key": i.item_key, "status": Status(i.status).name.lower(), "block": i.block_number}
        for i in items
    ]


@router.post("/batches/{batch_id}/status/confirm", response_class=HTMLResponse)
async def confirm_status(request: Request, batch_id: str) -> Response:
    """The confirmation step: names exactly what will change; nothing is written yet. It
    carries an idempotency key, so confirming twice (a retry, a double click) is one change."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    with Session(gateway_of(request).engine, expire_on_commit=False) as session:
        batch = _own(session, who, batch_id)
    if batch is None:
        return _not_found(request, who)
    asked = await run_in_threadpool(_status_request, request, who, batch, form)
    if isinstance(asked, HTMLResponse):
        return asked
    status, serial = asked
    return page(
        request,
        who,
        "batch_status_confirm.html",
        batch_id=batch.batch_id,
        words=_change_words(batch, status, serial, who.user.language),
        status=status,
        serial=serial or "",
        scope="item" if serial else "batch",
        key=str(uuid.uuid4()),
    )


@router.post("/batches/{batch_id}/status", response_class=HTMLResponse)
async def change_status(request: Request, batch_id: str) -> Response:
    """The confirmed change: queued and submitted (as POST /v1/batches/{id}/status), then
    the batch page showing the write's state."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    gateway = gateway_of(request)
    with Session(gateway.engine, expire_on_commit=False) as session:
        batch = _own(session, who, batch_id)
    if batch is None:
        return _not_found(request, who)
    asked = await run_in_threadpool(_status_request, request, who, batch, form)
    if isinstance(asked, HTMLResponse):
        return asked
    status, serial = asked
    key = form.get("key", "").strip()[:100] or None

    def write() -> int:
        with Session(gateway.engine, expire_on_commit=False) as session:
            own = session.get(GatewayBatch, batch.batch_id)
            assert own is not None
            done = batch_service.change_status(
                session, gateway, who.principal, own, status, serial, key
            )
            assert done.id is not None
            return done.id

    try:
        write_id = await run_in_threadpool(write)
    except BorderLedgerError as exc:
        return _batch_error(request, who, batch, str(exc))
    return RedirectResponse(f"/batches/{batch_id}?write={write_id}#writes", status_code=303)


# -- check a product ---------------------------------------------------------------------

CHECK_FIELDS = ("gtin", "serial", "lot", "tag")


@router.get("/check", response_class=HTMLResponse)
def check_page(request: Request) -> Response:
    who = _holder(request)
    if isinstance(who, Response):
        return who
    return page(request, who, "check.html", form=dict.fromkeys(CHECK_FIELDS, ""))


@router.post("/check", response_class=HTMLResponse)
async def check_product(request: Request) -> Response:
    """A brand checks one of its products (typed, a pasted tag URL, or a label's photo read
    in the browser): the verify service's verdict and reasons. Another brand's product is
    refused with a message, as /v1/verify refuses it (404)."""
    who = _holder(request)
    if isinstance(who, Response):
        return who
    form = await checked_form(request, who)
    if isinstance(form, Response):
        return form
    fields = {k: form.get(k, "").strip() for k in CHECK_FIELDS}
    error = result = None
    status_code = 200
    try:
        tag = fields["tag"] or None
        body = VerifyRequest(
            tag=tag,
            gtin=None if tag else fields["gtin"] or None,
            serial=None if tag else fields["serial"] or None,
            lot=None if tag else fields["lot"] or None,
        )
        answer = orjson.loads(await answer_scan(gateway_of(request), who.principal, body))
        word, tone = VERDICT_WORDS.get(answer["verdict"], (answer["verdict"], "neutral"))
        result = {**answer, "word": word, "tone": tone}
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "form"
        error, status_code = (
            f"{where}: {first.get('msg', 'invalid')}".replace("Value error, ", ""),
            422,
        )
    except NotFound as exc:
        error = (
            f"Not one of your products: {exc}. You can check only your organization's own "
            "products; another brand's product is checked by that brand or by customs."
        )
        status_code = 404
    except BorderLedgerError as exc:
        error, status_code = str(exc), 422
    # A verdict shown: the tag is cleared, so typing the next GTIN and serial checks those.
    shown = {**fields, "tag": ""} if result is not None else fields
    return page(request, who, "check.html", status_code, form=shown, result=result, error=error)
