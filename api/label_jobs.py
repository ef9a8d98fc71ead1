"""Label files (ZIP of QR codes, PDF label sheets) for batches above the synchronous limit.

Above `Settings.sync_label_limit` tags, a ZIP or PDF download is a `labels` job of
`api.jobs`: the runner writes the file to ``<home>/labels/<job id>.<format>.part``,
`Settings.label_chunk` labels at a time (`api.labels` streams entries and pages, so memory
holds one chunk whatever the batch's size), reports progress after each chunk, and renames
the file into place when it is complete; the download (GET /v1/jobs/{id}/file) streams it.

Idempotent: the job's id is derived from the batch and the format (a UUID 5), so asking
again — from any gateway process sharing the database — finds the same job, whatever its
state. A cancelled or failed job is run again with POST /v1/jobs/{id}/retry, as any job; an
attempt always starts the file afresh (a partial file from a dead runner is overwritten), so
running it twice is harmless. The file lives in one gateway's home: deployments running
several gateway hosts give them a shared home (or route downloads to the host that made it).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api import jobs
from api.labels import write_pdf, write_zip
from api.models import GatewayBatch, Job, JobStatus
from ledger.errors import Conflict, NotFound

if TYPE_CHECKING:
    from api.gateway import Gateway

LABEL_JOB = "labels"
FORMATS = {"zip": "application/zip", "pdf": "application/pdf"}
_NAMESPACE = uuid.UUID("7f1c3c0e-5a52-4b1b-9d1e-6c1b7a4e2f10")


def label_dir(gateway: Gateway) -> Path:
    return gateway.settings.home / "labels"


def job_id_for(batch_id: str, format: str) -> str:
    """The one job id of a batch's label file in `format`."""
    return str(uuid.uuid5(_NAMESPACE, f"{LABEL_JOB}:{batch_id.lower()}:{format}"))


def request_label_file(gateway: Gateway, batch: GatewayBatch, format: str) -> Job:
    """The label-file job of `batch` in `format`: the existing one, or a new one queued (the
    runner is woken). Two requests racing store one job (the id is the primary key)."""
    job_id = job_id_for(batch.batch_id, format)
    with Session(gateway.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        if job is not None:
            return job
        params: dict[str, Any] = {"batch_id": batch.batch_id, "format": format}
        job = Job(
            id=job_id,
            organization_id=batch.organization_id,
            kind=LABEL_JOB,
            params=params,
            total=batch.item_count,
        )
        session.add(job)
        try:
            session.commit()
        except IntegrityError:  # another request stored it first: that one is the job
            session.rollback()
            existing = session.get(Job, job_id)
            assert existing is not None
            return existing
    gateway.jobs.wake()
    return job


def run_label_job(gateway: Gateway, context: jobs.JobContext) -> dict[str, Any]:
    """The `labels` job: write the batch's label file, chunk by chunk, then move it into
    place. A stopped or failed attempt removes its partial file."""
    from api.services import batches  # the services import the gateway module

    batch_id, format = str(context.params["batch_id"]), str(context.params["format"])
    with Session(gateway.engine) as session:
        batch = session.get(GatewayBatch, batch_id)
        if batch is None:
            raise NotFound(f"batch {batch_id} is no longer stored")
        tagging, serials = batches.tags(session, gateway, batch)
        title = f"GTIN {batch.gtin} lot {batch.lot}"
    folder = label_dir(gateway)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{context.id}.{format}"
    partial = folder / f"{context.id}.{format}.part"
    chunk = gateway.settings.label_chunk
    try:
        with partial.open("wb") as out:
            if format == "zip":
                write_zip(tagging, serials, out, chunk, context.advance)
            else:
                write_pdf(tagging, serials, out, title, chunk, context.advance)
            out.flush()
            os.fsync(out.fileno())
        # The point of no return: the file goes into place only while this runner still
        # holds the job (a cancel, or another runner, wins otherwise; nothing is left).
        with Session(gateway.engine) as session:
            context.commit(session)
            session.commit()
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return {
        "batchId": batch_id,
        "format": format,
        "mediaType": FORMATS[format],
        "bytes": final.stat().st_size,
        "labels": len(serials),
    }


def label_file(gateway: Gateway, job: Job) -> tuple[Path, str, str]:
    """(path, media type, download name) of a finished label job's file; a `Conflict` while
    the job is not done or for a job that makes no file."""
    if job.kind != LABEL_JOB:
        raise Conflict(f"job {job.id} ({job.kind}) makes no file to download")
    if job.status != JobStatus.DONE.value:
        raise Conflict(f"job {job.id} is {job.status}; its file is ready once it is done")
    format = str(job.params["format"])
    path = label_dir(gateway) / f"{job.id}.{format}"
    if not path.is_file():
        raise NotFound(f"the file of job {job.id} is not on this gateway")
    with Session(gateway.engine) as session:
        batch = session.get(GatewayBatch, str(job.params["batch_id"]))
    name = f"{batch.gtin}-{batch.lot}" if batch is not None else job.id
    return path, FORMATS[format], f"{name}.{format}"
