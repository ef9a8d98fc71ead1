"""`borderledger bench cases`: 100,000 cases on SQLite and PostgreSQL.

Per database, in a fresh database (SQLite file in a temporary directory, a fresh PostgreSQL
schema dropped afterwards):

- load 100,000 cases: a simulated year of seizures (closed, with lines) plus open cases
  whose clocks run (`open_cases`, among them `due_clocks` clocks already due);
- the officer's case list by next deadline (`api.services.cases.list_cases`, 50 a page,
  queried and shaped as the route answers it, without HTTP): p50/p95 over `runs` pages at
  varying offsets;
- a year's statistics grouped by three dimensions (category, origin, mode), uncached (from
  the rollup table, checked equal to the full scan): p50/p95 and CPU time;
- the clock job on `due_clocks` clocks that fell due at once: seconds, and a check that each
  expiry stored exactly one notice and one alert (a second run stores nothing).
"""

from __future__ import annotations

import contextlib
import os
import statistics as stats
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from api import case_clocks
from api.case_models import CaseNotice
from api.case_sim import insert_open_cases, insert_year, simulated_agency
from api.db import make_engine
from api.migrate import upgrade
from api.models import Alert, Organization, Role
from api.principal import Actor, Principal
from api.services import statistics
from api.services.cases import list_cases
from bench.verify import DEFAULT_POSTGRES_URL, _postgres_schema
from cases.simulate import YearShape, fiscal_year, simulate_year
from ledger.config import Settings

TARGETS = {"list_p95_ms": 50.0, "statistics_p95_ms": 200.0, "clocks_seconds": 10.0}


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


@contextlib.contextmanager
def _database(kind: str, postgres_url: str) -> Iterator[tuple[str, str | None]]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-cases-") as folder:
            yield f"sqlite:///{Path(folder) / 'cases.db'}", None
    else:
        with _postgres_schema(postgres_url) as schema:
            yield Settings(database_url=postgres_url).sqlalchemy_url, schema


def _open_cases(
    count: int, due: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open detentions, each with one running clock: `due` of them already past due, the rest
    due over the next 30 days (so the list has something to order)."""
    cases, clocks = [], []
    for i in range(count):
        presented = now - timedelta(days=1 + i % 20)
        due_at = (
            now - timedelta(minutes=1 + i % 600)
            if i < due
            else now + timedelta(hours=1 + (i * 7919) % 720)
        )
        cases.append(
            {
                "mode": ("express", "mail", "cargo")[i % 3],
                "port": ("USLAX", "USJFK", "USCVG")[i % 3],
                "origin": ("CN", "HK")[i % 2],
                "right": "trademark",
                "state": "detained",
                "outcome": None,
                "presented_at": presented,
                "next_due_at": due_at,
            }
        )
        clocks.append(
            {
                "case_index": i,
                "name": "notice",
                "days": 5,
                "unit": "business",
                "started_at": presented,
                "due_day": due_at.date().isoformat(),
                "due_at": due_at,
                "remind_at": due_at - timedelta(days=1),
            }
        )
    return cases, clocks


def run_one(
    kind: str, total: int, open_cases: int, due: int, runs: int, postgres_url: str
) -> dict[str, Any]:
    now = datetime.now(UTC)
    with _database(kind, postgres_url) as (url, schema):
        engine = make_engine(url, schema)
        try:
            upgrade(engine)
            agency = simulated_agency(engine)
            started = time.perf_counter()
            closed = total - open_cases
            year = simulate_year(
                2023,
                YearShape(seizures=closed, items=closed * 1160, msrp_cents=closed * 12_400_000),
            )
            insert_year(engine, year, agency)
            cases, clocks = _open_cases(open_cases, due, now)
            insert_open_cases(engine, agency, cases, clocks)
            load_seconds = time.perf_counter() - started

            with Session(engine, expire_on_commit=False) as session:
                org = session.get(Organization, agency)
                assert org is not None and org.role == Role.CUSTOMS
                principal = Principal(org, Actor("api_key", 0, "bench"))
                list_ms, list_cpu_ms = [], []
                for run in range(runs):
                    t, c = time.perf_counter(), time.process_time()
                    page = list_cases(session, principal, None, False, 50, (run % 10) * 50)
                    list_cpu_ms.append((time.process_time() - c) * 1000)
                    list_ms.append((time.perf_counter() - t) * 1000)
                    assert len(page) == 50
                first = list_cases(session, principal, None, False, 50, 0)
                assert first[0]["nextDueAt"] <= first[-1]["nextDueAt"]

            start, end = fiscal_year(2023)
            three = ["category", "origin", "mode"]
            stats_ms, uncached_ms, uncached_cpu_ms = [], [], []
            with engine.connect() as connection:
                scan_ms = []
                for by in (three, ["origin", "mode", "port"]):
                    t = time.perf_counter()
                    statistics.scan(connection, None, by, start, end)
                    scan_ms.append(round((time.perf_counter() - t) * 1000, 2))
                for run in range(runs):  # uncached: the rollup read each time
                    by = three if run % 2 == 0 else ["origin", "mode", "port"]
                    t, c = time.perf_counter(), time.process_time()
                    uncached = statistics.compute(connection, None, by, start, end)
                    uncached_cpu_ms.append((time.process_time() - c) * 1000)
                    uncached_ms.append((time.perf_counter() - t) * 1000)
                    if run < 2:  # the rollup's answer is the full scan's, exactly
                        assert uncached == statistics.scan(connection, None, by, start, end)
                for _ in range(runs):
                    t = time.perf_counter()
                    answer = statistics.seizures(connection, None, three, start, end)
                    stats_ms.append((time.perf_counter() - t) * 1000)
            seizures = answer["totals"]["seizures"]

            load_before_clocks = _loadavg()
            t, c = time.perf_counter(), time.process_time()
            done = case_clocks.process_due(engine, now=now)
            clock_seconds = time.perf_counter() - t
            clock_cpu_seconds = time.process_time() - c
            again = case_clocks.process_due(engine, now=now)
            with engine.connect() as connection:
                notices = connection.execute(
                    select(func.count())
                    .select_from(CaseNotice.__table__)  # type: ignore[attr-defined]
                    .where(col(CaseNotice.kind) == "expired")
                ).scalar_one()
                alerts = connection.execute(
                    select(func.count())
                    .select_from(Alert.__table__)  # type: ignore[attr-defined]
                    .where(col(Alert.rule) == "case_clock")
                ).scalar_one()
            return {
                "database": kind,
                "cases": total,
                "load_seconds": round(load_seconds, 2),
                "list_by_next_deadline_ms": {
                    "p50": round(stats.median(list_ms), 2),
                    "p95": _p(list_ms, 0.95),
                    "cpu_ms_p50": round(stats.median(list_cpu_ms), 2),
                    "runs": runs,
                },
                "statistics_3_dimensions_ms": {
                    "p50": round(stats.median(uncached_ms), 2),
                    "p95": _p(uncached_ms, 0.95),
                    "cpu_ms_p50": round(stats.median(uncached_cpu_ms), 2),
                    "runs": runs,
                    "seizures_in_year": seizures,
                    "cached_p50": round(stats.median(stats_ms), 2),
                    "cached_p95": _p(stats_ms, 0.95),
                    "full_scan_ms": scan_ms,
                    "note": "p50/p95: uncached, from the rollup table (category,origin,mode and "
                    "origin,mode,port alternately); cached_*: the process cache while no "
                    "outcome changes; full_scan_ms: the same two queries over every line "
                    "(what the rollup equals, checked)",
                    "groups": len(answer["rows"]),
                },
                "clocks_due_at_once": {
                    "clocks": due,
                    "seconds": round(clock_seconds, 2),
                    "cpu_seconds_gateway": round(clock_cpu_seconds, 2),
                    "expiries": done.expiries,
                    "reminders": done.reminders,
                    "second_run_expiries": again.expiries,
                    "notices_stored": int(notices),
                    "alerts_stored": int(alerts),
                    "each_once": done.expiries == due == int(notices) == int(alerts)
                    and again.expiries == 0,
                    "load_average_before": load_before_clocks,
                },
            }
        finally:
            engine.dispose()


def run_cases_bench(
    databases: list[str],
    total: int = 100_000,
    open_cases: int = 20_000,
    due: int = 10_000,
    runs: int = 40,
    postgres_url: str = DEFAULT_POSTGRES_URL,
) -> dict[str, Any]:
    load_before = _loadavg()
    results = [run_one(kind, total, open_cases, due, runs, postgres_url) for kind in databases]
    targets_met = all(
        r["list_by_next_deadline_ms"]["p95"] <= TARGETS["list_p95_ms"]
        and r["statistics_3_dimensions_ms"]["p95"] <= TARGETS["statistics_p95_ms"]
        and r["clocks_due_at_once"]["seconds"] <= TARGETS["clocks_seconds"]
        and r["clocks_due_at_once"]["each_once"]
        for r in results
    )
    return {
        "bench": "cases",
        "targets": TARGETS,
        "results": results,
        "targets_met": targets_met,
        "load_average_before": load_before,
        "load_average_after": _loadavg(),
        "cpus": os.cpu_count(),
    }
