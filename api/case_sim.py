"""Bulk loading of simulated cases (`borderledger simulate cases`, `bench cases`).

Rows go in with explicit ids through Core `executemany` in chunks (no ORM objects): a
simulated year of ~20,000 seizures and ~26,000 lines loads in seconds on SQLite and
PostgreSQL alike. PostgreSQL's id sequences are moved past the ids used afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session
from sqlmodel import select as select_model

from api.case_models import Case, CaseClock, CaseLine
from api.models import Organization, Role
from api.services import rollup, statistics
from cases.simulate import SimulatedYear, cases_by_index

CHUNK = 5_000
_CASES = Case.__table__  # type: ignore[attr-defined]
_LINES = CaseLine.__table__  # type: ignore[attr-defined]
_CLOCKS = CaseClock.__table__  # type: ignore[attr-defined]
#: The state a simulated seizure ends in, per outcome.
STATE_OF = {"seized": "seized", "destroyed": "destroyed", "abandoned": "abandoned"}


def simulated_agency(engine: Engine, name: str = "Simulated customs agency") -> int:
    """The customs organization simulated cases belong to (created once)."""
    with Session(engine) as session:
        org = session.exec(select_model(Organization).where(Organization.name == name)).first()
        if org is None:
            org = Organization(name=name, role=Role.CUSTOMS)
            session.add(org)
            session.commit()
            session.refresh(org)
        assert org.id is not None
        return int(org.id)


def _next_id(connection: Connection, table: Any) -> int:
    return int(connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _chunks(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fix_sequences(connection: Connection, tables: Iterable[str]) -> None:
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )


def case_row(case_pk: int, agency_id: int, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A `cases` row of a simulated seizure (totals filled in by the caller)."""
    outcome = data.get("outcome")
    return {
        "id": case_pk,
        "case_id": str(uuid.UUID(int=(case_pk << 32) | (agency_id & 0xFFFFFFFF), version=4)),
        "agency_id": agency_id,
        "profile": "us-copyright" if data.get("right") == "copyright" else "us-trademark",
        "jurisdiction": "US",
        "calendar": "US",
        "timezone": "America/New_York",
        "state": data.get("state") or STATE_OF.get(outcome or "", outcome or "presented"),
        "stage": "post_seizure" if outcome else "none",
        "outcome": outcome,
        "outcome_at": data.get("outcome_at"),
        "perishable": False,
        "flags": [],
        "extensions": {},
        "source": "simulated",
        "source_ref": None,
        "reference": "",
        "mode": data["mode"],
        "port": data["port"],
        "origin": data.get("origin"),
        "departure": None,
        "right": data.get("right", "trademark"),
        "hs_code": None,
        "description": "",
        "currency": "USD",
        "quantity": 0,
        "msrp_cents": 0,
        "line_count": 0,
        "details": {},
        "presented_at": data["presented_at"],
        "opened_at": data["presented_at"],
        "next_due_at": data.get("next_due_at"),
        "version": 0,
        "updated_at": now,
    }


def insert_year(engine: Engine, year: SimulatedYear, agency_id: int) -> dict[str, int]:
    """Store a simulated year; returns what was stored (seizures, lines, quantity, MSRP)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        case_pk, line_pk = _next_id(connection, _CASES), _next_id(connection, _LINES)
        first_pk = case_pk
        cases, lines = [], []
        for data, its_lines in cases_by_index(year):
            row = case_row(case_pk, agency_id, data, now)
            for line in its_lines:
                lines.append(
                    {
                        "id": line_pk,
                        "case_pk": case_pk,
                        "category": line["category"],
                        "right": row["right"],
                        "gtin": None,
                        "description": "",
                        "quantity": line["quantity"],
                        "unit_msrp_cents": line["unit_msrp_cents"],
                        "msrp_cents": line["msrp_cents"],
                        "agency_id": agency_id,
                        "origin": row["origin"],
                        "mode": row["mode"],
                        "port": row["port"],
                        "outcome": row["outcome"],
                        "outcome_at": row["outcome_at"],
                    }
                )
                line_pk += 1
                row["quantity"] += line["quantity"]
                row["msrp_cents"] += line["msrp_cents"]
                row["line_count"] += 1
            cases.append(row)
            case_pk += 1
        for chunk in _chunks(cases):
            connection.execute(_CASES.insert(), chunk)
        for chunk in _chunks(lines):
            connection.execute(_LINES.insert(), chunk)
        _fix_sequences(connection, ("cases", "case_lines"))
        rollup.add(connection, first_pk=first_pk)
        statistics.bump(connection)
    return year.totals()


def insert_open_cases(
    engine: Engine, agency_id: int, cases: list[dict[str, Any]], clocks: list[dict[str, Any]]
) -> None:
    """Open cases with running clocks (`bench cases`): `clocks` refer to a case by its
    position in `cases` (`case_index`)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        case_pk, clock_pk = _next_id(connection, _CASES), _next_id(connection, _CLOCKS)
        rows = []
        for offset, data in enumerate(cases):
            rows.append(case_row(case_pk + offset, agency_id, data, now))
        clock_rows = []
        for offset, clock in enumerate(clocks):
            clock_rows.append(
                {
                    "id": clock_pk + offset,
                    "case_pk": case_pk + clock["case_index"],
                    "name": clock["name"],
                    "days": clock["days"],
                    "unit": clock["unit"],
                    "started_at": clock["started_at"],
                    "due_day": clock["due_day"],
                    "due_at": clock["due_at"],
                    "remind_at": clock["remind_at"],
                    "status": "running",
                    "reminded_at": None,
                    "expired_at": None,
                    "stopped_at": None,
                }
            )
        for chunk in _chunks(rows):
            connection.execute(_CASES.insert(), chunk)
        for chunk in _chunks(clock_rows):
            connection.execute(_CLOCKS.insert(), chunk)
        _fix_sequences(connection, ("cases", "case_clocks"))
