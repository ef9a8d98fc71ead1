"""The seizure statistics page (customs agencies and the registry admin): seizures, lines,
quantity and MSRP by product category, origin, mode of transport, type of right, outcome,
port and period, each a chart (Chart.js, bundled: static/statistics.js) beside its table, the
table being what a screen reader and a CSV reader get.

Filters are whole months (`from`, `to` inclusive), so every answer comes from the rollup
(`api.services.rollup`); the form works without script and through htmx (only the results
are swapped). The figures are the API's (`api.services.statistics.seizures`), scoped the same
way: an agency sees its own seizures, the registry admin every agency's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlmodel import Session

from api import users
from api.models import Role
from api.pages.kit import gateway_of, page, require_officer
from api.services import rollup, statistics

router = APIRouter(include_in_schema=False)
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
#: The page's sections, in the order the agencies' reports print them.
SECTIONS = ("category", "origin", "mode", "right", "outcome", "port", "period")
TITLES = {
    "category": "By product category",
    "origin": "By economy of origin",
    "mode": "By mode of transport",
    "right": "By type of right",
    "outcome": "By outcome",
    "port": "By port",
    "period": "By period",
}
MEASURES = {
    "seizures": "Seizures",
    "lines": "Lines",
    "quantity": "Quantity",
    "msrpCents": "MSRP value",
}
#: The first column's heading in each table.
HEADS = {
    "category": "Category",
    "origin": "Origin",
    "mode": "Mode",
    "right": "Right",
    "outcome": "Outcome",
    "port": "Port",
    "period": "Period",
}
PERIODS = {"month": "Month", "quarter": "Quarter", "year": "Year", "fiscal_year": "Fiscal year"}


@dataclass
class Filters:
    """The form as typed (shown back) and as understood."""

    start: str
    end: str
    by: str
    period: str
    measure: str


#: The filters' messages, whole (each is a msgid of the catalogs).
BAD_MONTH = {
    "From": "From: give a month as YYYY-MM (for example 2023-10).",
    "To": "To: give a month as YYYY-MM (for example 2023-10).",
}
BAD_RANGE = "To: the last month comes after the first."


def _month_start(text: str, field: str) -> datetime:
    found = MONTH.match(text)
    if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2100:
        raise ValueError(BAD_MONTH[field])
    return datetime(int(found.group(1)), int(found.group(2)), 1, tzinfo=UTC)


def _next_month(moment: datetime) -> datetime:
    return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)


def _default_range(connection: Any, signed_in: users.SignedIn) -> tuple[str, str]:
    """The US fiscal year of the latest seizure in view (October to September), or this
    one's."""
    t = rollup.ROLLUP.c
    query = select(func.max(t.month)).where(t.grain == 0, t.seizures > 0, t.month != "")
    if signed_in.principal.role == Role.CUSTOMS:
        query = query.where(t.agency_id == signed_in.principal.organization_id)
    latest = connection.execute(query).scalar() or datetime.now(UTC).strftime("%Y-%m")
    year, month = int(latest[:4]), int(latest[5:7])
    fiscal = year + (month >= 10)
    return f"{fiscal - 1}-10", f"{fiscal}-09"


def _format(value: int, measure: str) -> str:
    return f"{value / 100:,.2f}" if measure == "msrpCents" else f"{value:,}"


def _label(value: Any) -> str:
    if value is None or value == "":
        return "Unknown"
    text = str(value)
    return text.replace("_", " ").capitalize() if text.islower() else text


def _results(
    request: Request, signed_in: users.SignedIn, query: dict[str, str]
) -> tuple[Filters, dict[str, Any]]:
    """The filters and what the page shows for them; `error` when the filters are wrong."""
    with Session(gateway_of(request).engine) as session:
        connection = session.connection()
        default_start, default_end = _default_range(connection, signed_in)
        filters = Filters(
            start=query.get("from", "").strip()[:7] or default_start,
            end=query.get("to", "").strip()[:7] or default_end,
            by=query.get("by", "") if query.get("by", "") in SECTIONS else "",
            period=query.get("period", "month")
            if query.get("period", "month") in PERIODS
            else "month",
            measure=query.get("measure", "msrpCents")
            if query.get("measure", "msrpCents") in MEASURES
            else "msrpCents",
        )
        try:
            start = _month_start(filters.start, "From")
            end = _next_month(_month_start(filters.end, "To"))
            if end <= start:
                raise ValueError(BAD_RANGE)
        except ValueError as exc:
            return filters, {"error": str(exc)}
        shown = [filters.by] if filters.by else list(SECTIONS)
        sections = []
        totals: dict[str, Any] = {}
        for dimension in shown:
            answer = statistics.seizures(
                connection, signed_in.principal, [dimension], start, end, filters.period
            )
            totals = answer["totals"]
            rows = answer["rows"]
            if dimension == "period":
                rows = sorted(rows, key=lambda r: str(r["group"]["period"]))
            sections.append(
                {
                    "dimension": dimension,
                    "title": TITLES[dimension],
                    "rows": [
                        {
                            "label": _label(r["group"][dimension]),
                            "cells": {m: _format(int(r[m]), m) for m in MEASURES},
                            "values": {m: int(r[m]) for m in MEASURES},
                        }
                        for r in rows
                    ],
                    "totals": {m: _format(int(answer["totals"][m]), m) for m in MEASURES},
                    "csv": "/v1/statistics/seizures?"
                    + urlencode(
                        {
                            "by": dimension,
                            "from": start.isoformat(),
                            "to": end.isoformat(),
                            "period": filters.period,
                            "format": "csv",
                        }
                    ),
                }
            )
    csv_all = "/v1/statistics/seizures?" + urlencode(
        {
            "by": ",".join(SECTIONS),
            "from": start.isoformat(),
            "to": end.isoformat(),
            "format": "csv",
        }
    )
    return filters, {
        "sections": sections,
        "summary": {m: _format(int(totals.get(m, 0)), m) for m in MEASURES},
        "csv_all": csv_all,
    }


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(request: Request) -> Response:
    officer = require_officer(request)
    if isinstance(officer, Response):
        return officer
    filters, results = _results(request, officer, dict(request.query_params))
    status = 422 if "error" in results else 200
    partial = request.headers.get("hx-request") == "true"
    return page(
        request,
        officer,
        "_statistics_results.html" if partial else "statistics.html",
        status if not partial else 200,
        filters=filters,
        sections_all=SECTIONS,
        titles=TITLES,
        heads=HEADS,
        measures=MEASURES,
        periods=PERIODS,
        org=officer.principal.organization,
        scope_all=officer.principal.role != Role.CUSTOMS,
        **results,
    )
