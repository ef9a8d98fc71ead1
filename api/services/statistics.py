"""Seizure statistics, in the shape customs agencies publish them (CBP's annual IPR
statistics, the EU's customs IPR report): seizures (cases, i.e. shipments), lines (one
product under one right), quantity and MSRP value, grouped by any of category, origin, mode,
right, outcome, port and period.

A seizure is a case with an outcome other than release, counted in the period of its first
outcome (`outcome_at`). Grouping by a line's dimension (category, right) joins the lines; a
seizure with lines in two categories counts once in each category and once in the totals.
Periods are grouped by month in SQL (the same expression on SQLite and PostgreSQL) and
rolled up to quarters, years or US fiscal years (October to September) here, since a case
falls in exactly one month.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from api.case_models import Case, CaseLine, CaseStatsVersion
from api.models import Role
from api.principal import Principal
from api.services import rollup
from ledger.errors import InvalidInput

DIMENSIONS = ("category", "origin", "mode", "right", "outcome", "port", "period")
PERIODS = ("month", "quarter", "year", "fiscal_year")
LINE_DIMENSIONS = {"category", "right"}
NOT_SEIZED = rollup.NOT_SEIZED


def parse_by(text: str) -> list[str]:
    by = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [b for b in by if b not in DIMENSIONS]
    if unknown:
        raise InvalidInput(f"by: unknown dimension {unknown[0]!r}; known: {', '.join(DIMENSIONS)}")
    if len(set(by)) != len(by):
        raise InvalidInput("by: a dimension is named twice")
    return by


def _roll(month: str | None, period: str) -> str | None:
    if month is None or period == "month":
        return month
    year, mon = int(month[:4]), int(month[5:7])
    if period == "quarter":
        return f"{year}-Q{(mon - 1) // 3 + 1}"
    if period == "fiscal_year":
        return f"FY{year + (mon >= 10)}"
    return str(year)


_VERSION = CaseStatsVersion.__table__  # type: ignore[attr-defined]
_CACHE: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 256


def bump(connection: Connection) -> None:
    """In the caller's transaction: seizure outcomes changed; cached answers are stale."""
    changed = connection.execute(
        update(_VERSION).where(_VERSION.c.id == 1).values(version=_VERSION.c.version + 1)
    )
    if changed.rowcount == 0:
        connection.execute(insert(_VERSION).values(id=1, version=1))


def _version(connection: Connection) -> int:
    value = connection.execute(select(_VERSION.c.version).where(_VERSION.c.id == 1)).scalar()
    return int(value or 0)


def seizures(
    connection: Connection,
    principal: Principal | None,
    by: list[str],
    start: datetime | None,
    end: datetime | None,
    period: str = "month",
) -> dict[str, Any]:
    """`compute`, answered from this process's cache while no outcome changed since (one
    primary-key read of `case_stats_version` per request)."""
    agency = (
        principal.organization_id
        if principal is not None and principal.role == Role.CUSTOMS
        else None
    )
    key = (connection.engine, agency, tuple(by), start, end, period)
    version = _version(connection)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    answer = compute(connection, principal, by, start, end, period)
    with _CACHE_LOCK:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = (version, answer)
    return answer


def compute(
    connection: Connection,
    principal: Principal | None,
    by: list[str],
    start: datetime | None,
    end: datetime | None,
    period: str = "month",
) -> dict[str, Any]:
    """Rows (one per group, largest MSRP value first) and totals: from the rollup table
    when the range is whole months (any range the page and the report ask for), else by
    scanning the cases or lines (`scan`)."""
    _check(start, end, period)
    months = rollup.month_bounds(start, end)
    if months is None:
        return scan(connection, principal, by, start, end, period)
    agency = _agency(principal)
    found = rollup.query(connection, by, months, agency)
    if not by and not found:
        found = [(0, 0, 0, 0)]
    return _answer(
        by, found, period, start, end, lambda: compute(connection, principal, [], start, end)
    )


def _agency(principal: Principal | None) -> int | None:
    if principal is not None and principal.role == Role.CUSTOMS:
        return principal.organization_id
    return None


def _check(start: datetime | None, end: datetime | None, period: str) -> None:
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("'to' must be after 'from'")


def scan(
    connection: Connection,
    principal: Principal | None,
    by: list[str],
    start: datetime | None,
    end: datetime | None,
    period: str = "month",
) -> dict[str, Any]:
    """`compute` from the cases or their lines themselves (what the rollup must equal)."""
    _check(start, end, period)
    lines = bool(LINE_DIMENSIONS & set(by))
    # By a line's dimension: the lines alone (they carry copies of the case's dimensions and
    # outcome), an index-only scan of ix_case_lines_statistics; otherwise the cases alone,
    # an index-only scan of ix_cases_statistics. No join either way.
    table: Any = CaseLine.__table__ if lines else Case.__table__  # type: ignore[attr-defined]
    t = table.c
    keys = [
        rollup.month_of(connection, t.outcome_at).label(b) if b == "period" else t[b].label(b)
        for b in by
    ]
    if lines:
        measures = [
            func.count(func.distinct(t.case_pk)).label("seizures"),
            func.count().label("lines"),
            func.coalesce(func.sum(t.quantity), 0).label("quantity"),
            func.coalesce(func.sum(t.msrp_cents), 0).label("msrp"),
        ]
    else:
        measures = [
            func.count().label("seizures"),
            func.coalesce(func.sum(t.line_count), 0).label("lines"),
            func.coalesce(func.sum(t.quantity), 0).label("quantity"),
            func.coalesce(func.sum(t.msrp_cents), 0).label("msrp"),
        ]
    query = select(*keys, *measures).select_from(table)
    query = query.where(t.outcome.is_not(None), t.outcome.not_in(NOT_SEIZED))
    if start is not None:
        query = query.where(t.outcome_at >= start)
    if end is not None:
        query = query.where(t.outcome_at < end)
    if principal is not None and principal.role == Role.CUSTOMS:
        query = query.where(t.agency_id == principal.organization_id)
    if keys:
        query = query.group_by(*keys)
    found = [tuple(row) for row in connection.execute(query)]
    return _answer(
        by, found, period, start, end, lambda: scan(connection, principal, [], start, end)
    )


def _answer(
    by: list[str],
    found: list[tuple[Any, ...]],
    period: str,
    start: datetime | None,
    end: datetime | None,
    totals: Any,
) -> dict[str, Any]:
    """Group rows (months rolled up to the period), sorted, with their totals (`totals()`
    when a line dimension makes the groups overlap)."""
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in found:
        values = list(row[: len(by)])
        if "period" in by:
            at = by.index("period")
            values[at] = _roll(values[at], period)
        acc = groups[tuple(values)]
        for i in range(4):
            acc[i] += int(row[len(by) + i])
    rows: list[dict[str, Any]] = [
        {
            "group": dict(zip(by, key, strict=True)),
            "seizures": v[0],
            "lines": v[1],
            "quantity": v[2],
            "msrpCents": v[3],
        }
        for key, v in groups.items()
    ]
    rows.sort(key=lambda r: (-r["msrpCents"], -r["seizures"], str(r["group"])))
    if LINE_DIMENSIONS & set(by):
        answer = totals()
        total = dict(answer["rows"][0]) if answer["rows"] else _sum([])
    else:
        total = _sum(rows)
    return {"by": by, "start": start, "end": end, "rows": rows, "totals": total}


def _sum(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {"group": {}, "seizures": 0, "lines": 0, "quantity": 0, "msrpCents": 0}
    for row in rows:
        for key in ("seizures", "lines", "quantity", "msrpCents"):
            out[key] += row[key]
    return out


def to_csv(answer: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*answer["by"], "seizures", "lines", "quantity", "msrp"])
    for row in [
        *answer["rows"],
        {**answer["totals"], "group": dict.fromkeys(answer["by"], "TOTAL")},
    ]:
        writer.writerow(
            [
                *(row["group"].get(b) or "" for b in answer["by"]),
                row["seizures"],
                row["lines"],
                row["quantity"],
                f"{row['msrpCents'] / 100:.2f}",
            ]
        )
    return out.getvalue()
