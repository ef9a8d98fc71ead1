"""The seizure statistics' rollup table (`case_stats_rollup`): seizures, lines, quantity and
MSRP summed by month, agency and every dimension, so a year's statistics read a few thousand
rows, not every line of the year (100,000 cases: ~650 ms a query before, a few ms now).

Kept exactly, in the caller's transaction: whoever changes a case's outcome (an officer's
action, a clock running out, a simulated year) calls `subtract(pks)` before and `add(pks)`
after; both read the cases' current rows through the same expressions as the statistics'
full scan (`api.services.statistics.scan`), so the rollup always equals a recomputation —
tested on random action sequences, on SQLite and PostgreSQL. `rebuild` recomputes it whole
(the migration back-fills with it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from api.case_models import Case, CaseLine, CaseStatsRollup

NOT_SEIZED = ("released",)
CASE_DIMENSIONS = ("outcome", "origin", "mode", "port")
#: grain → the line dimensions a rollup row splits by
GRAINS: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("category",),
    2: ("right",),
    3: ("category", "right"),
}
KEY = ("grain", "month", "agency_id", *CASE_DIMENSIONS, "category", "right")
MEASURES = ("seizures", "lines", "quantity", "msrp_cents")

_CASES: Any = Case.__table__  # type: ignore[attr-defined]
_LINES: Any = CaseLine.__table__  # type: ignore[attr-defined]
ROLLUP: Any = CaseStatsRollup.__table__  # type: ignore[attr-defined]


def month_of(connection: Connection, column: Any) -> Any:
    """'YYYY-MM' of a stored time, the same expression on SQLite and PostgreSQL."""
    if connection.dialect.name == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(column, literal_column("'YYYY-MM'"))


def grain_of(by: list[str] | set[str]) -> int:
    return ("category" in by) + 2 * ("right" in by)


def _contributions(
    connection: Connection, cases: Any, lines: Any
) -> dict[tuple[Any, ...], list[int]]:
    """What the seized cases selected by `cases` (a condition on `cases.id`) and `lines` (the
    same on `case_lines.case_pk`) add to each rollup row."""
    out: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for grain, line_dims in GRAINS.items():
        t = (_LINES if line_dims else _CASES).c
        dims = [month_of(connection, t.outcome_at), t.agency_id, *(t[d] for d in CASE_DIMENSIONS)]
        dims += [t[d] for d in line_dims]
        if line_dims:
            measures = [
                func.count(func.distinct(t.case_pk)),
                func.count(),
                func.coalesce(func.sum(t.quantity), 0),
                func.coalesce(func.sum(t.msrp_cents), 0),
            ]
            where = lines
        else:
            measures = [
                func.count(),
                func.coalesce(func.sum(t.line_count), 0),
                func.coalesce(func.sum(t.quantity), 0),
                func.coalesce(func.sum(t.msrp_cents), 0),
            ]
            where = cases
        query = (
            select(*dims, *measures)
            .where(t.outcome.is_not(None), t.outcome.not_in(NOT_SEIZED))
            .group_by(*dims)
        )
        if where is not None:
            query = query.where(where)
        for row in connection.execute(query):
            month, agency, outcome, origin, mode, port, *rest = row
            split = dict(zip(line_dims, rest[: len(line_dims)], strict=True))
            key = (
                grain,
                month or "",
                int(agency),
                outcome,
                origin or "",
                mode,
                port,
                split.get("category", ""),
                split.get("right", ""),
            )
            acc = out[key]
            for i, value in enumerate(rest[len(line_dims) :]):
                acc[i] += int(value)
    return out


def _apply(connection: Connection, deltas: dict[tuple[Any, ...], list[int]], sign: int) -> None:
    rows = [
        {
            **dict(zip(KEY, key, strict=True)),
            **{m: sign * v for m, v in zip(MEASURES, values, strict=True)},
        }
        for key, values in deltas.items()
        if any(values)
    ]
    if not rows:
        return
    dialect: Any = sqlite if connection.dialect.name == "sqlite" else postgresql
    statement = dialect.insert(ROLLUP)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={m: ROLLUP.c[m] + statement.excluded[m] for m in MEASURES},
    )
    connection.execute(statement, rows)


def _where(pks: list[int] | None, first_pk: int | None) -> tuple[Any, Any]:
    if pks is not None:
        return _CASES.c.id.in_(pks), _LINES.c.case_pk.in_(pks)
    if first_pk is not None:
        return _CASES.c.id >= first_pk, _LINES.c.case_pk >= first_pk
    return None, None


def add(connection: Connection, pks: list[int] | None = None, first_pk: int | None = None) -> None:
    """Add what cases `pks` (or every case from `first_pk` on) now count for."""
    if pks is not None and not pks:
        return
    _apply(connection, _contributions(connection, *_where(pks, first_pk)), 1)


def subtract(connection: Connection, pks: list[int]) -> None:
    """Take out what cases `pks` count for now (before their outcome changes)."""
    if pks:
        _apply(connection, _contributions(connection, *_where(pks, None)), -1)


def rebuild(connection: Connection) -> None:
    """The whole rollup recomputed from the cases and their lines."""
    connection.execute(delete(ROLLUP))
    add(connection)


def month_bounds(start: datetime | None, end: datetime | None) -> tuple[str, str] | None:
    """The range as months ('' and '9999-12' when open), or None when a bound falls inside
    a month (the rollup cannot cut a month: the statistics scan the lines then)."""
    bounds = []
    for moment, open_value in ((start, ""), (end, "9999-12")):
        if moment is None:
            bounds.append(open_value)
            continue
        at = moment.astimezone(UTC) if moment.tzinfo else moment
        if (at.day, at.hour, at.minute, at.second, at.microsecond) != (1, 0, 0, 0, 0):
            return None
        bounds.append(at.strftime("%Y-%m"))
    return bounds[0], bounds[1]


def query(
    connection: Connection, by: list[str], months: tuple[str, str], agency: int | None
) -> list[tuple[Any, ...]]:
    """(group values…, seizures, lines, quantity, msrp) per group, from the rollup; the
    period is the month. Open ranges include cases without an outcome time."""
    t = ROLLUP.c
    columns = {"period": t.month, **{d: t[d] for d in (*CASE_DIMENSIONS, "category", "right")}}
    keys = [columns[b] for b in by]
    sums = [func.sum(t[m]) for m in MEASURES]
    start, end = months
    conditions = [t.grain == grain_of(by)]
    if start:
        conditions.append(t.month >= start)
    if end != "9999-12":
        conditions.append(and_(t.month < end, t.month != ""))
    if agency is not None:
        conditions.append(t.agency_id == agency)
    statement = select(*keys, *sums).where(*conditions).having(func.sum(t.seizures) > 0)
    if keys:
        statement = statement.group_by(*keys)
    out = []
    for row in connection.execute(statement):
        values = [
            (None if v == "" else v) if b in ("origin", "period") else v
            for b, v in zip(by, row[: len(by)], strict=True)
        ]
        out.append((*values, *(int(v) for v in row[len(by) :])))
    return out
