"""Case clocks: reminders before a deadline runs out, and what happens when it has.

Clocks are rows (`CaseClock`) with a due instant and a reminder instant; nothing waits in a
process's memory. The work is done by `case_clocks` jobs from the persistent job table
(`api.jobs`): `ClockScheduler` (a thread in every gateway process) submits one per agency
that has clocks due and no such job queued or running, at start-up and every
`case_clock_interval` seconds, so a gateway that was down catches up on everything that fell
due meanwhile as soon as any process is back.

Each reminder and each expiry is stored once, whoever runs it and however often: a clock is
marked by a conditional UPDATE (`reminded_at IS NULL`, `status = 'running'`) and only the
winner of that update stores the notice (unique per clock and kind), the alert (its id is
derived from the clock) and, for an expiry, the change of the case (flag, state per the
profile's `expire` map, custody log entry) — all in the transaction of the mark.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api import jobs
from api.case_models import Case, CaseAction, CaseClock, CaseHolder, CaseNotice
from api.models import Alert, Job, WebhookEndpoint, utcnow
from api.services.cases import APPLIED, _log, _record, _refresh_next_due, utc
from api.webhook_delivery import new_delivery
from cases.machine import expire
from cases.profiles import get_profile
from ledger.errors import Conflict

log = logging.getLogger("borderledger.cases")

CLOCK_JOB = "case_clocks"
#: Clocks marked per transaction: small enough to keep locks short, large enough that
#: 10,000 clocks falling due at once take a few dozen transactions.
CHUNK = 500
_NAMESPACE = uuid.UUID("5b0f6a52-7d0e-4c55-9a61-2f3c1d6e8b11")
EVENT_REMINDER, EVENT_EXPIRED = "case.clock.reminder", "case.clock.expired"


@dataclass
class Processed:
    reminders: int = 0
    expiries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"reminders": self.reminders, "expiries": self.expiries}


def alert_id_of(clock_id: int) -> str:
    """The expiry alert's id: derived from the clock, so a second run cannot add another."""
    return str(uuid.uuid5(_NAMESPACE, f"case-clock:{clock_id}:expired"))


def _due(now: datetime, agency_id: int | None) -> Any:
    query = select(CaseClock.id, CaseClock.due_at).where(
        CaseClock.status == "running",
        or_(
            col(CaseClock.due_at) <= now,
            and_(col(CaseClock.reminded_at).is_(None), col(CaseClock.remind_at) <= now),
        ),
    )
    if agency_id is not None:
        query = query.join(Case, col(Case.id) == col(CaseClock.case_pk)).where(
            Case.agency_id == agency_id
        )
    return query.order_by(col(CaseClock.due_at)).limit(CHUNK)


def process_due(
    engine: Engine,
    now: datetime | None = None,
    agency_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Processed:
    """Raise every reminder and expiry due at `now` (of one agency, or all), in chunks."""
    done = Processed()
    while True:
        at = now or utcnow()
        with Session(engine, expire_on_commit=False) as session:
            rows = session.exec(_due(at, agency_id)).all()
            if not rows:
                return done
            expiring = [cid for cid, due in rows if utc(due) <= at]
            reminding = [cid for cid, due in rows if utc(due) > at]
            try:
                reminded = _remind(session, reminding, at)
                expired = _expire(session, expiring, at)
                session.commit()
            except Conflict:
                session.rollback()
                continue
            done.reminders += reminded
            done.expiries += expired
        if progress is not None:
            progress(len(rows))


def _mark(session: Session, ids: list[int], values: dict[str, Any], *where: Any) -> list[int]:
    """Mark clocks `ids` (those still matching `where`); the ids this call won."""
    if not ids:
        return []
    won = session.execute(
        update(CaseClock)
        .where(col(CaseClock.id).in_(ids), *where)
        .values(**values)
        .returning(col(CaseClock.id))
        .execution_options(synchronize_session=False)
    )
    return [int(r[0]) for r in won]


def _remind(session: Session, ids: list[int], now: datetime) -> int:
    won = _mark(
        session,
        ids,
        {"reminded_at": now},
        col(CaseClock.reminded_at).is_(None),
        col(CaseClock.status) == "running",
    )
    if not won:
        return 0
    clocks = session.exec(select(CaseClock).where(col(CaseClock.id).in_(won))).all()
    cases = _cases(session, {c.case_pk for c in clocks})
    _notices(session, clocks, cases, "reminder", now)
    return len(won)


def _expire(session: Session, ids: list[int], now: datetime) -> int:
    won = _mark(
        session,
        ids,
        {"status": "expired", "expired_at": now},
        col(CaseClock.status) == "running",
    )
    if not won:
        return 0
    clocks = session.exec(
        select(CaseClock).where(col(CaseClock.id).in_(won)).order_by(col(CaseClock.due_at))
    ).all()
    cases = _cases(session, {c.case_pk for c in clocks})
    _notices(session, clocks, cases, "expired", now)
    logged: list[tuple[CaseAction, dict[str, Any]]] = []
    for clock in clocks:
        case = cases[clock.case_pk]
        profile = get_profile(case.profile)
        after = expire(profile, clock.name, case.state) or case.state
        flags = [*case.flags, f"{clock.name}_expired"]
        values: dict[str, Any] = {
            "flags": flags,
            "state": after,
            "version": case.version + 1,
            "updated_at": now,
        }
        outcome = profile.outcomes.get(after)
        if outcome is not None and after != case.state:
            values["outcome"] = outcome
            if case.outcome_at is None:
                values["outcome_at"] = now
        row = CaseAction(
            action_id=str(uuid.uuid5(_NAMESPACE, f"case-clock:{clock.id}:action")),
            case_pk=clock.case_pk,
            idempotency_key=f"clock:{clock.id}:expired",
            action=f"expire:{clock.name}",
            by="system",
            actor="system:clock",
            params={},
            status=APPLIED,
            state_before=case.state,
            state_after=after,
            stage_after=case.stage,
            created_at=now,
            applied_at=now,
        )
        changed = session.execute(
            update(Case)
            .where(col(Case.id) == case.id, col(Case.version) == case.version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if getattr(changed, "rowcount", 0) != 1:  # an officer acted meanwhile: next round
            raise Conflict(f"case {case.case_id} changed while its clock ran out")
        for name, value in values.items():
            setattr(case, name, value)
        session.add(row)
        if after != row.state_before:
            # clocks that do not run in the new state stop with the change
            stop = [r.name for r in profile.clocks.values() if after not in r.runs_in]
            session.execute(
                update(CaseClock)
                .where(
                    col(CaseClock.case_pk) == case.id,
                    col(CaseClock.name).in_(stop),
                    col(CaseClock.status) == "running",
                )
                .values(status="stopped", stopped_at=now)
                .execution_options(synchronize_session=False)
            )
        logged.append((row, _record(case, row, now)))
    session.flush()
    _log(session, logged)
    for case in cases.values():
        _refresh_next_due(session, case)
    return len(won)


def _cases(session: Session, pks: set[int]) -> dict[int, Case]:
    rows = session.exec(select(Case).where(col(Case.id).in_(pks))).all()
    return {c.id: c for c in rows if c.id is not None}


def _notices(
    session: Session,
    clocks: Any,
    cases: dict[int, Case],
    kind: str,
    now: datetime,
) -> None:
    """The officer's inbox notice, the officers' alert (expiries) and the rights holders'
    webhook deliveries, which carry only what every stage discloses (case, clock, due)."""
    holders: dict[int, list[int]] = {}
    for case_pk, org in session.exec(
        select(CaseHolder.case_pk, CaseHolder.organization_id).where(
            col(CaseHolder.case_pk).in_(list(cases))
        )
    ).all():
        holders.setdefault(case_pk, []).append(org)
    orgs = {o for os in holders.values() for o in os}
    endpoints = (
        set(
            session.exec(
                select(WebhookEndpoint.organization_id).where(
                    col(WebhookEndpoint.organization_id).in_(orgs)
                )
            ).all()
        )
        if orgs
        else set()
    )
    for clock in clocks:
        case = cases[clock.case_pk]
        due = utc(clock.due_at)
        session.add(
            CaseNotice(
                clock_id=clock.id,
                case_pk=clock.case_pk,
                agency_id=case.agency_id,
                kind=kind,
                clock=clock.name,
                due_at=due,
                created_at=now,
            )
        )
        if kind == "expired":
            session.add(
                Alert(
                    alert_id=alert_id_of(clock.id),
                    rule="case_clock",
                    reason_code="CASE_DEADLINE_EXPIRED",
                    severity="high",
                    gtin="",
                    location=case.port,
                    evidence=[case.case_id, clock.name],
                    detail=f"case {case.case_id}: {clock.name} ran out at {due.isoformat()}",
                    created_at=now,
                    updated_at=now,
                )
            )
        for org in holders.get(case.id or 0, []):
            if org in endpoints:
                session.add(
                    new_delivery(
                        org,
                        EVENT_REMINDER if kind == "reminder" else EVENT_EXPIRED,
                        None,
                        {
                            "caseId": case.case_id,
                            "clock": clock.name,
                            "dueAt": due.isoformat(),
                            "dueDay": clock.due_day,
                        },
                    )
                )


# ------------------------------------------------------------------------------- the jobs


def run_clock_job(engine: Engine, job: jobs.JobContext) -> dict[str, Any]:
    """The `case_clocks` job: everything due for the job's agency, now."""

    def progress(count: int) -> None:
        job.advance(count)

    return process_due(engine, agency_id=job.organization_id, progress=progress).as_dict()


def schedule(engine: Engine, now: datetime | None = None) -> list[str]:
    """Submit a clock job for each agency with clocks due and none queued or running."""
    now = now or utcnow()
    with Session(engine) as session:
        agencies = set(
            session.exec(
                select(Case.agency_id)
                .join(CaseClock, col(CaseClock.case_pk) == col(Case.id))
                .where(
                    CaseClock.status == "running",
                    or_(
                        col(CaseClock.due_at) <= now,
                        and_(
                            col(CaseClock.reminded_at).is_(None),
                            col(CaseClock.remind_at) <= now,
                        ),
                    ),
                )
                .distinct()
            ).all()
        )
        if not agencies:
            return []
        busy = set(
            session.exec(
                select(Job.organization_id).where(
                    Job.kind == CLOCK_JOB, col(Job.status).in_(jobs.ACTIVE)
                )
            ).all()
        )
        submitted = []
        for agency in sorted(agencies - busy):
            submitted.append(jobs.submit(session, agency, CLOCK_JOB, {}, total=0).id)
        session.commit()
    return submitted


class ClockScheduler(threading.Thread):
    """Submits clock jobs at start-up (the catch-up after downtime) and every `interval`."""

    def __init__(self, engine: Engine, runner: jobs.JobRunner, interval: float) -> None:
        super().__init__(name="case-clocks", daemon=True)
        self.engine, self.runner, self.interval = engine, runner, interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if schedule(self.engine):
                    self.runner.wake()
            except Conflict:
                pass
            except Exception:  # a database blip must not end the thread
                log.exception("case clocks: scheduling failed; trying again")
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
