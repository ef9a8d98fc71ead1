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

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from sqlmodel import select as select_model

from api import jobs
from api.case_models import Case, CaseAction, CaseClock, CaseHolder, CaseLine, CaseNotice
from api.custody import store as log_store
from api.models import Alert, Job, WebhookEndpoint, utcnow
from api.services import rollup, statistics
from api.services.cases import APPLIED, utc
from api.webhook_delivery import new_delivery
from cases.machine import expire
from cases.profiles import get_profile
from custody import entries
from ledger.errors import Conflict

log = logging.getLogger("borderledger.cases")

CLOCK_JOB = "case_clocks"
#: Clocks marked per transaction: small enough to keep locks short, large enough that
#: 10,000 clocks falling due at once take a few dozen transactions.
CHUNK = 1000
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
    query = select_model(CaseClock.id, CaseClock.due_at).where(
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


_CASES = Case.__table__  # type: ignore[attr-defined]
_CLOCKS = CaseClock.__table__  # type: ignore[attr-defined]
_ACTIONS = CaseAction.__table__  # type: ignore[attr-defined]
_NOTICES = CaseNotice.__table__  # type: ignore[attr-defined]
_LINES = CaseLine.__table__  # type: ignore[attr-defined]
_ALERTS = Alert.__table__  # type: ignore[attr-defined]


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
    connection = session.connection()
    clocks = _clock_rows(connection, won)
    cases = _case_rows(connection, {c["case_pk"] for c in clocks})
    _notices(session, clocks, cases, "reminder", now)
    return len(won)


def _clock_rows(connection: Any, ids: list[int]) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(_CLOCKS).where(_CLOCKS.c.id.in_(ids)).order_by(_CLOCKS.c.due_at, _CLOCKS.c.id)
    )
    return [dict(r._mapping) for r in rows]


#: What the clock job reads of a case (not its details, lines or parties: a chunk of 1,000
#: expiries reads 1,000 cases).
_CASE_COLUMNS = (
    "id",
    "case_id",
    "agency_id",
    "profile",
    "state",
    "stage",
    "flags",
    "outcome",
    "outcome_at",
    "version",
    "port",
)


def _case_rows(connection: Any, pks: set[int]) -> dict[int, dict[str, Any]]:
    rows = connection.execute(
        select(*(_CASES.c[name] for name in _CASE_COLUMNS)).where(_CASES.c.id.in_(list(pks)))
    )
    return {int(r.id): dict(r._mapping) for r in rows}


def _expire(session: Session, ids: list[int], now: datetime) -> int:
    """Expire the clocks `ids` this call wins: notices, alerts, webhook deliveries, each
    case's flag and state (the profile's `expire` map), the clocks the new state stops, one
    system action per expiry, logged. Batched statements: 10,000 expiries in seconds."""
    won = _mark(
        session,
        ids,
        {"status": "expired", "expired_at": now},
        col(CaseClock.status) == "running",
    )
    if not won:
        return 0
    connection = session.connection()
    clocks = _clock_rows(connection, won)
    cases = _case_rows(connection, {c["case_pk"] for c in clocks})
    _notices(session, clocks, cases, "expired", now)
    before = {pk: (case["state"], case["version"]) for pk, case in cases.items()}
    actions: list[dict[str, Any]] = []
    pending: list[log_store.Pending] = []
    stops: dict[tuple[str, str], list[int]] = {}
    for clock in clocks:
        case = cases[clock["case_pk"]]
        profile = get_profile(case["profile"])
        state = case["state"]
        after = expire(profile, clock["name"], state) or state
        case["flags"] = [*case["flags"], f"{clock['name']}_expired"]
        case["state"] = after
        outcome = profile.outcomes.get(after)
        if outcome is not None and after != state:
            case["outcome"] = outcome
            case["outcome_at"] = case["outcome_at"] or now
        if after != state:
            stops.setdefault((case["profile"], after), []).append(case["id"])
        action_id = str(uuid.uuid5(_NAMESPACE, f"case-clock:{clock['id']}:action"))
        record = {
            "case_id": case["case_id"],
            "action_id": action_id,
            "action": f"expire:{clock['name']}",
            "status": APPLIED,
            "by": "system",
            "actor": "system:clock",
            "organization_id": None,
            "state_before": state,
            "state_after": after,
            "stage": case["stage"],
            "approved_by": None,
            "params": None,
            "at": entries.iso_utc(now),
        }
        pending.append(
            log_store.Pending(entries.CASE, action_id, record, [entries.case_key(case["case_id"])])
        )
        actions.append(
            {
                "action_id": action_id,
                "case_pk": case["id"],
                "idempotency_key": f"clock:{clock['id']}:expired",
                "action": record["action"],
                "by": "system",
                "actor": "system:clock",
                "organization_id": None,
                "params": {},
                "salt": None,
                "status": APPLIED,
                "state_before": state,
                "state_after": after,
                "stage_after": case["stage"],
                "approved_by": None,
                "record": record,
                "created_at": now,
                "applied_at": now,
            }
        )
    for (profile_id, after), pks in stops.items():
        stop = [r.name for r in get_profile(profile_id).clocks.values() if after not in r.runs_in]
        connection.execute(
            update(_CLOCKS)
            .where(
                _CLOCKS.c.case_pk.in_(pks),
                _CLOCKS.c.name.in_(stop),
                _CLOCKS.c.status == "running",
            )
            .values(status="stopped", stopped_at=now)
        )
    decided = [pk for pk, case in cases.items() if case["outcome"] is not None]
    rollup.subtract(connection, decided)  # in again below, as the cases count now
    changed = _update_cases(
        connection,
        [
            {
                "pk": pk,
                "old_version": before[pk][1],
                "new_state": case["state"],
                "new_flags": case["flags"],
                "new_outcome": case["outcome"],
                "new_outcome_at": case["outcome_at"],
                "new_version": before[pk][1] + 1,
            }
            for pk, case in cases.items()
        ],
        now,
    )
    if changed != len(cases):  # an officer acted meanwhile: this chunk again
        raise Conflict("a case changed while its clock ran out")
    if decided:  # the lines' copies of the outcome, for the statistics: one UPDATE … FROM
        statistics.bump(connection)
        connection.execute(
            update(_LINES)
            .where(_LINES.c.case_pk == _CASES.c.id, _CASES.c.id.in_(decided))
            .values(outcome=_CASES.c.outcome, outcome_at=_CASES.c.outcome_at)
        )
        rollup.add(connection, decided)
    indexes = log_store.append(connection, pending)
    for action, index in zip(actions, indexes, strict=True):
        action["log_index"] = index
    connection.execute(insert(_ACTIONS), actions)
    if connection.dialect.name != "postgresql":  # there, the cases' UPDATE did it
        refresh_next_due(connection, list(cases))
    return len(won)


#: The new state of each case a chunk of expiries changes, as one statement on PostgreSQL:
#: the chunk's columns as arrays, unnested side by side; `next_due_at` from the clocks still
#: running (the ones the new states stop are stopped before).
_UPDATE_CASES_PG = text(
    """
    UPDATE cases SET state = change.state, flags = change.flags::json,
        outcome = change.outcome, outcome_at = change.outcome_at,
        version = change.version, updated_at = :now,
        next_due_at = (
            SELECT min(clocks.due_at) FROM case_clocks AS clocks
            WHERE clocks.case_pk = cases.id AND clocks.status = 'running'
        )
    FROM (
        SELECT unnest(CAST(:pks AS bigint[])) AS pk,
               unnest(CAST(:old_versions AS integer[])) AS old_version,
               unnest(CAST(:states AS text[])) AS state,
               unnest(CAST(:flags AS text[])) AS flags,
               unnest(CAST(:outcomes AS text[])) AS outcome,
               unnest(CAST(:outcome_ats AS timestamp[])) AS outcome_at,
               unnest(CAST(:versions AS integer[])) AS version
    ) AS change
    WHERE cases.id = change.pk AND cases.version = change.old_version
    """
)


def _naive_utc(moment: datetime | None) -> datetime | None:
    """As the timestamp columns hold it: UTC without a zone."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _update_cases(connection: Any, changes: list[dict[str, Any]], now: datetime) -> int:
    """Each case's new state, flags, outcome and version where its version is still the one
    read; how many were updated. PostgreSQL: one statement for the chunk (a statement per
    case was most of the time of 10,000 expiries); SQLite: executemany, which runs
    in-process."""
    if not changes:
        return 0
    if connection.dialect.name == "postgresql":
        result = connection.execute(
            _UPDATE_CASES_PG,
            {
                "now": _naive_utc(now),
                "pks": [c["pk"] for c in changes],
                "old_versions": [c["old_version"] for c in changes],
                "states": [c["new_state"] for c in changes],
                "flags": [json.dumps(c["new_flags"]) for c in changes],
                "outcomes": [c["new_outcome"] for c in changes],
                "outcome_ats": [_naive_utc(c["new_outcome_at"]) for c in changes],
                "versions": [c["new_version"] for c in changes],
            },
        )
        return int(result.rowcount)
    result = connection.execute(
        update(_CASES)
        .where(_CASES.c.id == bindparam("pk"), _CASES.c.version == bindparam("old_version"))
        .values(
            state=bindparam("new_state"),
            flags=bindparam("new_flags"),
            outcome=bindparam("new_outcome"),
            outcome_at=bindparam("new_outcome_at"),
            version=bindparam("new_version"),
            updated_at=now,
        ),
        changes,
    )
    return int(result.rowcount)


def refresh_next_due(connection: Any, pks: list[int]) -> None:
    """`next_due_at` of cases `pks` from their running clocks, in one statement (the
    correlated subquery reads ix_case_clocks_case_status_due)."""
    soonest = (
        select(func.min(_CLOCKS.c.due_at))
        .where(_CLOCKS.c.case_pk == _CASES.c.id, _CLOCKS.c.status == "running")
        .scalar_subquery()
    )
    connection.execute(update(_CASES).where(_CASES.c.id.in_(pks)).values(next_due_at=soonest))


def _notices(
    session: Session,
    clocks: list[dict[str, Any]],
    cases: dict[int, dict[str, Any]],
    kind: str,
    now: datetime,
) -> None:
    """The officer's inbox notice, the officers' alert (expiries) and the rights holders'
    webhook deliveries, which carry only what every stage discloses (case, clock, due)."""
    connection = session.connection()
    holders: dict[int, list[int]] = {}
    for case_pk, org in connection.execute(
        select(col(CaseHolder.case_pk), col(CaseHolder.organization_id)).where(
            col(CaseHolder.case_pk).in_(list(cases))
        )
    ):
        holders.setdefault(case_pk, []).append(org)
    orgs = {o for os in holders.values() for o in os}
    endpoints = (
        set(
            session.exec(
                select_model(WebhookEndpoint.organization_id).where(
                    col(WebhookEndpoint.organization_id).in_(orgs)
                )
            ).all()
        )
        if orgs
        else set()
    )
    notices, alerts = [], []
    for clock in clocks:
        case = cases[clock["case_pk"]]
        due = utc(clock["due_at"])
        notices.append(
            {
                "clock_id": clock["id"],
                "case_pk": case["id"],
                "agency_id": case["agency_id"],
                "kind": kind,
                "clock": clock["name"],
                "due_at": due,
                "created_at": now,
            }
        )
        if kind == "expired":
            alerts.append(
                {
                    "alert_id": alert_id_of(clock["id"]),
                    "rule": "case_clock",
                    "reason_code": "CASE_DEADLINE_EXPIRED",
                    "severity": "high",
                    "batch_id": None,
                    "gtin": "",
                    "serial": None,
                    "location": case["port"],
                    "evidence": [case["case_id"], clock["name"]],
                    "detail": f"case {case['case_id']}: {clock['name']} ran out at {due.isoformat()}",
                    "status": "open",
                    "note": None,
                    "organization_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for org in holders.get(case["id"], []):
            if org in endpoints:
                session.add(
                    new_delivery(
                        org,
                        EVENT_REMINDER if kind == "reminder" else EVENT_EXPIRED,
                        None,
                        {
                            "caseId": case["case_id"],
                            "clock": clock["name"],
                            "dueAt": due.isoformat(),
                            "dueDay": clock["due_day"],
                        },
                    )
                )
    # executemany: psycopg pipelines the rows (a multi-row INSERT of a chunk's thousands of
    # parameters was slower to build and parse)
    connection.execute(insert(_NOTICES), notices)
    if alerts:
        connection.execute(insert(_ALERTS), alerts)


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
                select_model(Case.agency_id)
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
                select_model(Job.organization_id).where(
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
