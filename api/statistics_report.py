"""The seizure statistics of one year as a PDF, laid out like the tables agencies publish:
CBP's fiscal-year IPR statistics (summary; by product category with lines and MSRP and their
shares; by economy of origin; by mode of transport) and the EU customs IPR report (by type of
right, by outcome), then by port and by month.

Every figure comes from `api.services.statistics.compute` (the rollup), the same numbers as
the JSON and CSV answers, so the report is tested by reading its text back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

StatisticsOf = Callable[[list[str]], dict[str, Any]]

#: (title, dimension, columns) per table, in the order agencies print them
TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("By product category", "category", ("lines", "lines%", "quantity", "msrp", "msrp%")),
    ("By economy of origin", "origin", ("seizures", "seizures%", "quantity", "msrp", "msrp%")),
    ("By mode of transport", "mode", ("seizures", "seizures%", "quantity", "msrp", "msrp%")),
    ("By type of right", "right", ("seizures", "lines", "quantity", "msrp", "msrp%")),
    ("By outcome", "outcome", ("seizures", "seizures%", "quantity", "msrp", "msrp%")),
    ("By port", "port", ("seizures", "seizures%", "quantity", "msrp", "msrp%")),
    ("By month", "period", ("seizures", "lines", "quantity", "msrp", "msrp%")),
)
HEADINGS = {
    "seizures": "Seizures",
    "seizures%": "% of seizures",
    "lines": "Lines",
    "lines%": "% of lines",
    "quantity": "Quantity",
    "msrp": "MSRP value",
    "msrp%": "% of MSRP",
}
FIRST = {
    "category": "Product category",
    "origin": "Economy of origin",
    "mode": "Mode of transport",
    "right": "Type of right",
    "outcome": "Outcome",
    "port": "Port",
    "period": "Month",
}
KEYS = {"seizures": "seizures", "lines": "lines", "quantity": "quantity", "msrp": "msrpCents"}


def label(value: Any) -> str:
    """A dimension's value as printed ('watches_jewelry' → 'Watches jewelry'); Latin-1 only
    (the core PDF fonts)."""
    if value is None or value == "":
        return "Unknown"
    text = str(value)
    if text.islower():
        text = text.replace("_", " ").capitalize()
    return text.encode("latin-1", "replace").decode("latin-1")


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _cell(row: dict[str, Any], totals: dict[str, Any], column: str) -> str:
    if column.endswith("%"):
        key = KEYS[column[:-1]]
        return _share(int(row[key]), int(totals[key]))
    if column == "msrp":
        return money(int(row["msrpCents"]))
    return f"{int(row[KEYS[column]]):,}"


def build(
    statistics_of: StatisticsOf, title: str, scope: str, start: datetime, end: datetime
) -> bytes:
    """The report: `statistics_of(by)` answers like `statistics.compute` for the year."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(title)
    pdf.set_creator("BorderLedger")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, label(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    last = end - timedelta(days=1)
    period = f"{start.day} {start:%B %Y} to {last.day} {last:%B %Y}, by date of the first outcome"
    pdf.multi_cell(0, 5, f"{label(scope)}. {period}.", new_x="LMARGIN", new_y="NEXT")
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    pdf.multi_cell(
        0,
        5,
        "A seizure is one shipment whose goods were not released; a line is one product under "
        f"one right. MSRP: the manufacturer's suggested retail price. Generated {made}.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    totals = statistics_of([])["totals"]
    _table(
        pdf,
        "Summary",
        ("", "Total"),
        [
            ("Seizures", f"{int(totals['seizures']):,}"),
            ("Lines", f"{int(totals['lines']):,}"),
            ("Quantity (items)", f"{int(totals['quantity']):,}"),
            ("MSRP value", money(int(totals["msrpCents"]))),
        ],
    )
    for heading, dimension, columns in TABLES:
        answer = statistics_of([dimension])
        rows = answer["rows"]
        if dimension == "period":
            rows = sorted(rows, key=lambda r: str(r["group"]["period"]))
        body = [
            (label(r["group"][dimension]), *(_cell(r, totals, c) for c in columns)) for r in rows
        ]
        body.append(("Total", *(_cell(answer["totals"], totals, c) for c in columns)))
        _table(pdf, heading, (FIRST[dimension], *(HEADINGS[c] for c in columns)), body)
    out: bytes = bytes(pdf.output())
    return out


def _table(pdf: FPDF, heading: str, header: tuple[str, ...], body: list[tuple[str, ...]]) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    first = 50 if len(header) > 2 else 60
    rest = (pdf.epw - first) / max(1, len(header) - 1) if len(header) > 2 else 40
    with pdf.table(
        col_widths=(first, *([rest] * (len(header) - 1))),
        width=int(first + rest * (len(header) - 1)),
        text_align=("LEFT", *(["RIGHT"] * (len(header) - 1))),
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 230, 240)),
        line_height=5,
        align="LEFT",
    ) as table:
        for line in (header, *body):
            row = table.row()
            for value in line:
                row.cell(value)
