"""Jobs as a caller may see them: its organization's, or every one for the registry admin.
Shared by /v1/jobs and the jobs pages, so both show and refuse the same."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from api.models import Job, Role
from api.principal import Principal
from api.scoping import scope_of
from ledger.errors import NotFound

_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def visible(session: Session, principal: Principal, job_id: str) -> Job:
    """The job, if the caller may see it (its organization's, or any for the registry
    admin); another organization's job is not found, as an unknown one is."""
    # Not a job id at all (e.g. a NUL byte, which PostgreSQL refuses in a query): not found.
    job = session.get(Job, job_id) if _JOB_ID.fullmatch(job_id) else None
    if job is None or not scope_of(principal, Role.ADMIN).allows(job.organization_id):
        raise NotFound(f"no job {job_id}")
    return job


def listed(
    session: Session,
    principal: Principal,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Job]:
    """Newest first: the caller's organization's jobs (the registry admin sees all)."""
    scope = scope_of(principal, Role.ADMIN)
    query = select(Job)
    if scope.organization_id is not None:
        query = query.where(Job.organization_id == scope.organization_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return list(
        session.exec(query.order_by(col(Job.created_at).desc(), col(Job.id)).limit(limit)).all()
    )
