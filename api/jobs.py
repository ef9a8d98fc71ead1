"""Background jobs that outlive the gateway process that accepted them.

A job is a `Job` row plus its input, both in the database: kind-specific parameters in
`params`, an item list (an enrollment's serials) in `JobInput` chunks. Storing the input is
what makes a job restartable; keeping it in the database rather than in files under one
gateway's data directory is what lets *any* gateway process sharing that database pick it up.

Life of a job:

1. `submit` stores the row and its input in the caller's transaction (all or nothing).
2. A `JobRunner` (one thread per gateway process) claims a queued job with a lease —
   ``SELECT … FOR UPDATE SKIP LOCKED`` then a conditional UPDATE on PostgreSQL, the conditional
   UPDATE alone on SQLite, as `api.webhooks` claims deliveries — and runs the handler
   registered for its kind. A heartbeat thread extends the lease and stores progress.
3. A runner that dies (SIGKILL, power loss) stops heartbeating; once its lease has expired
   any runner claims the job again and runs it again, so handlers must be idempotent: the
   enrollment handler resumes after the last input chunk an earlier attempt finished (its
   output is stored with the chunk), finds a batch already stored by an earlier attempt, and
   the outbox's idempotency key keeps its registration to one transaction.
4. `cancel` and `retry` are conditional UPDATEs too. A cancelled job's runner notices at its
   next heartbeat. A handler calls `JobContext.commit` in the transaction that makes its
   work visible: that fails if the lease was lost (another runner or a cancel took the job)
   and, once it succeeds, the job can no longer be cancelled.

A process stopping gracefully (SIGTERM) hands its job back (queued, attempt not counted) at
the handler's next progress report, so another process continues without waiting for the
lease to expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.models import Job, JobInput, JobStatus, utcnow
from ledger.errors import BorderLedgerError, Conflict

log = logging.getLogger("borderledger.jobs")

#: Items per stored input chunk: the tagging unit of `ledger.issuance`.
INPUT_CHUNK = 10_000
ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
RETRYABLE = (JobStatus.FAILED.value, JobStatus.CANCELLED.value)


def _update_jobs() -> Any:
    """An UPDATE of jobs that leaves loaded rows alone (callers refresh what they show)."""
    return update(Job).execution_options(synchronize_session=False)


def _update_held(context: JobContext) -> Any:
    """An UPDATE of the running job `context` that only applies while this runner holds it."""
    return _update_jobs().where(
        col(Job.id) == context.id,
        col(Job.claim_token) == context.token,
        col(Job.status) == JobStatus.RUNNING.value,
    )


class JobStopped(Exception):
    """Raised inside a handler when its runner must stop: the lease was lost (another
    runner has the job, or it was cancelled) or the process is shutting down."""


@dataclass
class Claim:
    """A job this runner holds the lease on."""

    id: str
    kind: str
    organization_id: int
    params: dict[str, Any]
    total: int
    attempt: int
    token: str


@dataclass
class JobContext(Claim):
    """What a handler gets: the claimed job, its stored input and a way to report progress."""

    engine: Engine
    stopping: threading.Event
    lost: threading.Event = field(default_factory=threading.Event)
    done: int = 0

    def items(self) -> Iterator[str]:
        """The stored item list, in order, read one chunk at a time."""
        seq = -1
        while True:
            with Session(self.engine) as session:
                row = session.exec(
                    select(JobInput)
                    .where(JobInput.job_id == self.id, col(JobInput.seq) > seq)
                    .order_by(col(JobInput.seq))
                    .limit(1)
                ).first()
            if row is None:
                return
            seq = row.seq
            yield from zlib.decompress(row.data).decode().split("\n")

    def chunks(self) -> list[tuple[int, int, bytes | None]]:
        """(seq, items, stored output or None) of every input chunk, in order."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(JobInput.seq, JobInput.count, JobInput.output)
                .where(JobInput.job_id == self.id)
                .order_by(col(JobInput.seq))
            ).all()
        return [(seq, count, output) for seq, count, output in rows]

    def store_output(self, seq: int, output: bytes) -> None:
        """Keep what this attempt made of chunk `seq`, for the attempts after it. Outputs
        must be deterministic (a stale runner may store the same chunk again)."""
        with Session(self.engine) as session:
            session.execute(
                update(JobInput)
                .where(col(JobInput.job_id) == self.id, col(JobInput.seq) == seq)
                .values(output=output)
                .execution_options(synchronize_session=False)
            )
            session.commit()

    def check(self) -> None:
        """Raise `JobStopped` if the handler must stop now."""
        if self.lost.is_set():
            raise JobStopped(f"job {self.id}: lease lost (cancelled, or taken by another runner)")
        if self.stopping.is_set():
            raise JobStopped(f"job {self.id}: the gateway is stopping")

    def advance(self, items: int) -> None:
        """`items` more are done (stored by the next heartbeat); stops the handler if needed."""
        self.done += items
        self.check()

    def commit(self, session: Session) -> None:
        """In the caller's transaction, before it commits: confirm this runner still holds
        the job and mark it past its point of no return (no cancel from now on). Raises
        `JobStopped` when the lease is lost; the caller's transaction must then roll back."""
        result = session.execute(
            _update_jobs()
            .where(
                col(Job.id) == self.id,
                col(Job.claim_token) == self.token,
                col(Job.status) == JobStatus.RUNNING.value,
            )
            .values(cancellable=False, updated_at=utcnow())
        )
        if getattr(result, "rowcount", 0) != 1:
            self.lost.set()
            raise JobStopped(f"job {self.id}: lease lost before its work was stored")


#: A handler runs one job and returns its result (stored in `Job.result`). It raises a
#: `BorderLedgerError` for a failure the job's owner must see (the job fails, retryable).
Handler = Callable[[JobContext], dict[str, Any]]


def submit(
    session: Session,
    organization_id: int,
    kind: str,
    params: dict[str, Any],
    items: Iterable[str] = (),
    total: int | None = None,
) -> Job:
    """Store a job and its item list in the caller's transaction (the caller commits and
    then wakes the runner). Items must not contain newlines."""
    job = Job(
        id=str(uuid.uuid4()), organization_id=organization_id, kind=kind, params=params, total=0
    )
    session.add(job)
    session.flush()
    count, seq, chunk = 0, 0, []
    for item in items:
        chunk.append(item)
        if len(chunk) == INPUT_CHUNK:
            _store_chunk(session, job.id, seq, chunk)
            count, seq, chunk = count + len(chunk), seq + 1, []
    if chunk:
        _store_chunk(session, job.id, seq, chunk)
        count += len(chunk)
    job.total = total if total is not None else count
    session.add(job)
    session.flush()
    return job


def _store_chunk(session: Session, job_id: str, seq: int, items: list[str]) -> None:
    text = "\n".join(items)
    if len(text.split("\n")) != len(items):
        raise ValueError("job input items must not contain newlines")
    session.add(
        JobInput(job_id=job_id, seq=seq, count=len(items), data=zlib.compress(text.encode(), 1))
    )
    session.flush()


def cancel(session: Session, job: Job) -> Job:
    """Cancel a queued or running job (a running one stops at its next heartbeat).
    Cancelling a cancelled job again changes nothing; a finished job, or one past its point of
    no return, is a `Conflict`."""
    if job.status == JobStatus.CANCELLED.value:
        return job
    now = utcnow()
    result = session.execute(
        _update_jobs()
        .where(
            col(Job.id) == job.id,
            col(Job.status).in_(ACTIVE),
            col(Job.cancellable).is_(True),
        )
        .values(
            status=JobStatus.CANCELLED.value,
            claim_token=None,
            claimed_until=None,
            error="cancelled",
            finished_at=now,
            updated_at=now,
        )
    )
    session.commit()
    session.refresh(job)
    if getattr(result, "rowcount", 0) != 1 and job.status != JobStatus.CANCELLED.value:
        if job.status in ACTIVE:
            raise Conflict(f"job {job.id} has stored its work and can no longer be cancelled")
        raise Conflict(f"job {job.id} is {job.status}; only queued or running jobs are cancelled")
    return job


def retry(session: Session, job: Job) -> Job:
    """Queue a failed or cancelled job again, from its stored input, with a fresh attempt
    budget (a job that failed after storing its work stays uncancellable). A queued, running
    or finished job is a `Conflict`."""
    now = utcnow()
    result = session.execute(
        _update_jobs()
        .where(col(Job.id) == job.id, col(Job.status).in_(RETRYABLE))
        .values(
            status=JobStatus.QUEUED.value,
            attempts=0,
            done=0,
            error=None,
            result=None,
            finished_at=None,
            updated_at=now,
        )
    )
    session.commit()
    session.refresh(job)
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(f"job {job.id} is {job.status}; only failed or cancelled jobs are retried")
    return job


class JobRunner:
    """Claims and runs jobs, one at a time per gateway process, any number per database.

    `handlers` maps each job kind to its handler: the registry later kinds plug into. Run
    as a thread (`start`), or pass by pass (`run_once`, for tests)."""

    def __init__(
        self,
        engine: Engine,
        handlers: Mapping[str, Handler],
        *,
        lease_seconds: float = 30.0,
        max_attempts: int = 5,
        poll_interval: float = 1.0,
    ) -> None:
        self.engine = engine
        self.handlers = dict(handlers)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        #: Heartbeats (and progress writes) come this often: a few per lease.
        self.heartbeat_interval = min(1.0, lease_seconds / 3)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:100]
        self.stopping = threading.Event()
        self.wake_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one job at a time in this process
        self._thread_lock = threading.Lock()

    # -------------------------------------------------------------------------- claiming

    def claim(self) -> Claim | None:
        """Take the lease on the oldest job that is queued, or running under an expired
        lease (its runner died). A job whose runners died `max_attempts` times fails."""
        now = utcnow()
        expired = and_(
            col(Job.status) == JobStatus.RUNNING.value,
            or_(col(Job.claimed_until).is_(None), col(Job.claimed_until) < now),
        )
        claimable = or_(col(Job.status) == JobStatus.QUEUED.value, expired)
        with Session(self.engine) as session:
            query = (
                select(Job)
                .where(claimable, col(Job.kind).in_(list(self.handlers)))
                .order_by(col(Job.created_at), col(Job.id))
                .limit(5)
            )
            if self.engine.dialect.name == "postgresql":
                # Jobs another runner is claiming right now are skipped, not waited for.
                query = query.with_for_update(skip_locked=True)
            candidates = [
                (j.id, j.kind, j.organization_id, dict(j.params), j.total, j.attempts)
                for j in session.exec(query).all()
            ]
            for job_id, kind, organization_id, params, total, attempts in candidates:
                token = str(uuid.uuid4())
                if attempts >= self.max_attempts:
                    session.execute(
                        _update_jobs()
                        .where(col(Job.id) == job_id, claimable)
                        .values(
                            status=JobStatus.FAILED.value,
                            claim_token=None,
                            claimed_until=None,
                            error=f"gave up after {attempts} attempts: the gateway "
                            "processes running it stopped without finishing",
                            finished_at=now,
                            updated_at=now,
                        )
                    )
                    continue
                # The conditional UPDATE is the claim on SQLite (writers are serialised); on
                # PostgreSQL the row is already locked by FOR UPDATE and this just marks it.
                result = session.execute(
                    _update_jobs()
                    .where(col(Job.id) == job_id, claimable)
                    .values(
                        status=JobStatus.RUNNING.value,
                        claim_token=token,
                        claimed_until=now + self.lease,
                        claimed_by=self.name,
                        attempts=col(Job.attempts) + 1,
                        done=0,
                        started_at=now,
                        updated_at=now,
                    )
                )
                if getattr(result, "rowcount", 0) != 1:
                    continue
                session.commit()
                return Claim(job_id, kind, organization_id, params, total, attempts + 1, token)
            session.commit()
        return None

    def heartbeat(self, context: JobContext) -> bool:
        """Extend the lease and store progress; False (and `context.lost` set) when the
        lease is gone."""
        now = utcnow()
        with Session(self.engine) as session:
            result = session.execute(
                _update_held(context).values(
                    claimed_until=now + self.lease,
                    done=min(context.done, context.total),
                    updated_at=now,
                )
            )
            session.commit()
        if getattr(result, "rowcount", 0) != 1:
            context.lost.set()
            return False
        return True

    def _finish(self, context: JobContext, **values: Any) -> bool:
        """Record the outcome under this runner's claim token (nothing if the lease is lost).
        A finished job's stored input is deleted with it."""
        now = utcnow()
        values = {
            "claim_token": None,
            "claimed_until": None,
            "updated_at": now,
            **values,
        }
        with Session(self.engine) as session:
            result = session.execute(_update_held(context).values(**values))
            recorded = getattr(result, "rowcount", 0) == 1
            if recorded and values.get("status") == JobStatus.DONE.value:
                session.execute(delete(JobInput).where(col(JobInput.job_id) == context.id))
            session.commit()
        return recorded

    # --------------------------------------------------------------------------- running

    def run_once(self) -> bool:
        """Claim one job and run it to its end; False when none was claimable."""
        with self._lock:
            if self.stopping.is_set():
                return False
            claim = self.claim()
            if claim is None:
                return False
            self.run(claim)
            return True

    def run(self, claim: Claim) -> None:
        context = JobContext(**vars(claim), engine=self.engine, stopping=self.stopping)
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(self.heartbeat_interval):
                try:
                    if not self.heartbeat(context):
                        return
                except Exception as exc:  # a database hiccup: try again at the next beat
                    log.warning("job %s: heartbeat failed: %s", context.id, exc)

        heart = threading.Thread(target=beat, name=f"job-heartbeat-{claim.id[:8]}", daemon=True)
        heart.start()
        try:
            result = self.handlers[claim.kind](context)
        except JobStopped as exc:
            beating.set()
            heart.join()
            if not context.lost.is_set():  # shutting down: hand the job back, uncounted
                self._finish(
                    context,
                    status=JobStatus.QUEUED.value,
                    attempts=col(Job.attempts) - 1,
                    done=0,
                )
            log.info("%s", exc)
            return
        except BorderLedgerError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("job %s (%s) failed", claim.id, claim.kind)
            error = f"{type(exc).__name__}: {exc}"
        else:
            beating.set()
            heart.join()
            now = utcnow()
            if not self._finish(
                context,
                status=JobStatus.DONE.value,
                done=claim.total,
                result=result,
                error=None,
                finished_at=now,
            ):
                log.warning("job %s: lease lost before its result was recorded", claim.id)
            return
        beating.set()
        heart.join()
        self._finish(
            context, status=JobStatus.FAILED.value, error=error[:2000], finished_at=utcnow()
        )

    # ---------------------------------------------------------------------------- thread

    def start(self) -> None:
        """Run jobs in a thread until `stop`."""
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self.stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name="borderledger-jobs", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """Look for work now (after a submit), not at the next poll. Without a running
        thread (a gateway started without background work), run what is queued in a
        short-lived thread."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.wake_event.set()
            return
        threading.Thread(target=self._drain, name="borderledger-jobs-once", daemon=True).start()

    def _drain(self) -> None:
        try:
            while self.run_once():
                pass
        except Exception as exc:
            log.warning("job pass failed: %s", exc)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            ran = False
            try:
                ran = self.run_once()
            except Exception as exc:
                log.warning("job pass failed: %s", exc)
            if not ran:
                self.wake_event.wait(self.poll_interval)
                self.wake_event.clear()

    def stop(self, timeout: float = 60) -> None:
        """Stop claiming; a running job is handed back at its next progress report."""
        self.stopping.set()
        self.wake_event.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        # A short-lived drain thread holds the lock while it runs: wait for it too.
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
