"""Background jobs: list, read, cancel, retry (api.jobs runs them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from sqlmodel import Session

from api import jobs
from api.deps import GatewayDep, ReaderDep, SessionDep
from api.label_jobs import label_file
from api.models import Job
from api.openapi import DEFAULT_PAGE, PageLimit, errors
from api.principal import Principal
from api.schemas import ErrorResponse, JobPublic
from api.services import jobs as job_service

router = APIRouter(prefix="/v1", tags=["jobs"])
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorResponse} for c in (401, 404, 422)
}
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    c: {"model": ErrorResponse} for c in (401, 404, 409, 422)
}


def job_public(job: Job) -> JobPublic:
    return JobPublic(
        id=job.id,
        kind=job.kind,
        status=job.status,
        done=job.done,
        total=job.total,
        result=job.result,
        error=job.error,
        attempts=job.attempts,
        cancellable=job.cancellable,
        organizationId=job.organization_id,
        createdAt=job.created_at,
        updatedAt=job.updated_at,
        startedAt=job.started_at,
        finishedAt=job.finished_at,
    )


def _visible_job(session: Session, principal: Principal, job_id: str) -> Job:
    return job_service.visible(session, principal, job_id)


@router.get("/jobs", response_model=list[JobPublic], responses=READ_ERRORS)
def list_jobs(
    principal: ReaderDep,
    session: SessionDep,
    status: Literal["queued", "running", "done", "failed", "cancelled"] | None = None,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    limit: PageLimit = DEFAULT_PAGE,
) -> list[JobPublic]:
    """Newest first: the caller's organization's jobs (the registry admin sees all)."""
    rows = job_service.listed(session, principal, status, kind, limit)
    return [job_public(job) for job in rows]


@router.get("/jobs/{job_id}", response_model=JobPublic, responses=READ_ERRORS)
def get_job(job_id: str, principal: ReaderDep, session: SessionDep) -> JobPublic:
    """Progress and result of a background job."""
    return job_public(_visible_job(session, principal, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, responses=CHANGE_ERRORS)
def cancel_job(job_id: str, principal: ReaderDep, session: SessionDep) -> JobPublic:
    """Cancel a queued or running job; a running one stops within a heartbeat. 409 once
    the job has finished or stored its work (an enrollment whose batch is stored)."""
    return job_public(jobs.cancel(session, _visible_job(session, principal, job_id)))


@router.post("/jobs/{job_id}/retry", response_model=JobPublic, responses=CHANGE_ERRORS)
def retry_job(
    job_id: str, principal: ReaderDep, session: SessionDep, gateway: GatewayDep
) -> JobPublic:
    """Run a failed or cancelled job again from its stored input. 409 for any other job."""
    job = jobs.retry(session, _visible_job(session, principal, job_id))
    gateway.jobs.wake()
    return job_public(job)


@router.get(
    "/jobs/{job_id}/file",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/zip": {}, "application/pdf": {}},
            "description": "the file the job made, streamed",
        },
        **errors(401, 404, 409, 422),
    },
)
def get_job_file(
    job_id: str, principal: ReaderDep, session: SessionDep, gateway: GatewayDep
) -> FileResponse:
    """The file a finished label-file job made (ZIP or PDF), streamed from the gateway's
    home. 409 while the job is not done, or for a job that makes no file."""
    path, media_type, name = label_file(gateway, _visible_job(session, principal, job_id))
    return FileResponse(path, media_type=media_type, filename=name)
