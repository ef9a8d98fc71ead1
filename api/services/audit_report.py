"""An item's custody audit as a PDF report (`GET /audit/items/{gtin}/{serial}/report.pdf`).

The report lists the item, its product, and each entry of its timeline with time, place, what
happened and its proof status. The status is not the gateway's word: the timeline is audited
with `custody.chainview.audit_on_chain`, the very checks `borderledger audit` runs (leaf
recomputed from the shown record, inclusion proof to a checkpoint whose root is read from the
chain, the item's chain of entries, the enrollment, the status changes' transactions). A row
edited in the database therefore reads "not verified" here exactly as on the command line.

It is checked through the gateway's own RPC connection, so it says what the chain says to
this deployment; an auditor who trusts no one runs `borderledger audit` (or the timeline page)
against a node of their own, and gets the same answer for an honest chain. The report says
so on its first page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from api.case_documents import _Pdf
from api.gateway import Gateway
from api.principal import Principal
from api.services import custody
from custody.audit import AuditReport, Check
from custody.chainview import audit_on_chain

#: What each entry's proof status reads in the report (the command line's words).
WORDS = {"verified": "verified", "failed": "not verified", "pending": "pending"}


def entry_status(report: AuditReport, entry: dict[str, Any]) -> tuple[str, str]:
    """(state word, why) of one timeline entry: "not verified" if any check about it failed
    (its proof, or a gap in the item's history right before it), else its proof's state."""
    checks: list[Check] = report.of_entry(int(entry["logIndex"]))
    if not checks:
        return WORDS["failed"], "not audited"
    failed = [c for c in checks if c.state == "failed"]
    chosen = failed[0] if failed else checks[0]
    return WORDS[chosen.state], chosen.detail


def place_of(gateway: Gateway, entry: dict[str, Any]) -> str:
    """Where the entry happened: a scan's port, a custody event's business location or read
    point (as the UN/LOCODE it names when the registry knows it), with the place's name."""
    record = entry.get("record") or {}
    code: str | None = None
    uri: str | None = None
    if entry.get("kind") == "scan":
        code = record.get("location")
    elif entry.get("kind") == "epcis":
        event = record.get("event") or {}
        for field in ("bizLocation", "readPoint"):
            value = event.get(field)
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                uri = value["id"]
                code = gateway.custody.locations.resolve(uri)
                if code:
                    break
    if not code:
        return uri or "-"
    registry = gateway.custody.locations.registry
    if code in registry:
        return f"{code} {registry.get(code).name}"
    return code


def _when(text: object) -> str:
    if not isinstance(text, str):
        return "-"
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def build(
    gateway: Gateway, session: Session, principal: Principal, gtin: str, serial: str
) -> tuple[dict[str, Any], AuditReport]:
    """The item's timeline as `principal` may read it (404 / 422 as the custody API) and its
    audit against the chain."""
    timeline = custody.timeline(gateway, session, principal, gtin, serial, epcis=False)
    report = audit_on_chain(timeline, gateway.settings.rpc_url)
    return timeline, report


def render(gateway: Gateway, timeline: dict[str, Any], report: AuditReport) -> bytes:
    """The PDF of an audited timeline."""
    item = timeline["item"]
    log = timeline["log"]
    pdf = _Pdf()
    pdf.set_title(f"Custody audit {item['gtin']} / {item['serial']}")
    pdf.set_creator("BorderLedger")
    pdf.add_page()
    pdf.para("Custody audit report", 16, "B")
    pdf.para(f"Item: GTIN {item['gtin']}, serial {item['serial']}", 10)
    pdf.para(_product(gateway, item["gtin"]), 10)
    pdf.para(f"Made: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}", 9)
    pdf.para(
        f"Chain {log.get('chainId')}, registry {log.get('registry')}, log of "
        f"{log.get('size')} entries anchored by {log.get('agency') or 'no agency'}",
        9,
    )
    summary = report.to_dict()
    verdict = "ALL VERIFIED" if report.ok else "AUDIT FAILED"
    pdf.ln(2)
    pdf.para(
        f"{verdict}: {summary['verified']} checks verified, {summary['failed']} not verified, "
        f"{summary['pending']} pending",
        12,
        "B",
    )
    pdf.para(
        "Each proof was checked by the gateway against the chain through its own node, with "
        "the checks of `borderledger audit`. To trust no one, run `borderledger audit "
        f"{item['gtin']} {item['serial']} --rpc <your node>` against your own node.",
        8,
    )
    pdf.ln(3)
    pdf.para("Entries", 12, "B")
    entries = timeline.get("entries") or []
    if not entries:
        pdf.para("No custody entry recorded for this item.", 10)
    else:
        _entries_table(pdf, gateway, entries, report)
    pdf.ln(3)
    pdf.para("Enrollment, status changes and the log", 12, "B")
    for check in report.checks:
        if check.log_index is None:
            pdf.para(f"{check.subject}: {WORDS[check.state]} - {check.detail}", 9)
    alerts = timeline.get("alerts") or []
    if alerts:
        pdf.ln(3)
        pdf.para("Alerts (the detector's, not log entries)", 12, "B")
        for alert in alerts:
            pdf.para(
                f"{_when(alert.get('createdAt'))} {alert.get('rule')} at "
                f"{alert.get('location') or '-'}: {alert.get('severity')}, {alert.get('status')}",
                9,
            )
    return bytes(pdf.output())


def _product(gateway: Gateway, gtin: str) -> str:
    snap = gateway.catalog.snapshot()
    owner = snap.owner_of(gtin)
    holder = snap.holders.get(owner) if owner else None
    if holder is None:
        return "Product: no rights holder bound to this GTIN"
    recordation = f", recordation {holder.recordation}" if holder.recordation else ""
    return f"Product: GTIN {gtin} of {holder.name or owner}{recordation}"


#: The entries table's columns (mm; the page's width between margins) and titles.
COLUMNS = ((30.0, "Time"), (30.0, "Place"), (62.0, "What"), (52.0, "Proof"))
#: line height and vertical padding of a cell (mm); `cell` pads it sideways (c_margin)
LINE, PAD_Y = 4.0, 0.5


def _wrapped(pdf: _Pdf, text: str, width: float) -> list[str]:
    """`text` broken into lines of at most `width` mm at the current font, at spaces (a
    word longer than a line is cut)."""
    lines: list[str] = []
    current = ""
    for word in pdf.text_of(text).split():
        candidate = f"{current} {word}" if current else word
        if pdf.get_string_width(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while pdf.get_string_width(current) > width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and pdf.get_string_width(current[:cut]) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    return [*lines, current] if current or not lines else lines


def _table_row(pdf: _Pdf, cells: tuple[str, ...], heading: bool = False) -> None:
    """One ruled row, as tall as its longest cell; a new page (and the headings again) when
    it does not fit."""
    pdf.set_font(pdf.family, "B" if heading else "", 8)
    wrapped = [
        _wrapped(pdf, text, width - 2 * pdf.c_margin)
        for text, (width, _) in zip(cells, COLUMNS, strict=True)
    ]
    height = max(len(lines) for lines in wrapped) * LINE + 2 * PAD_Y
    if not heading and pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
        _table_row(pdf, tuple(title for _, title in COLUMNS), heading=True)
        pdf.set_font(pdf.family, "", 8)
    x, top = pdf.l_margin, pdf.get_y()
    for lines, (width, _) in zip(wrapped, COLUMNS, strict=True):
        pdf.rect(x, top, width, height, style="DF" if heading else "D")
        for i, text in enumerate(lines):
            pdf.set_xy(x, top + PAD_Y + i * LINE)
            pdf.cell(width, LINE, text)
        x += width
    pdf.set_xy(pdf.l_margin, top + height)


def _entries_table(
    pdf: _Pdf, gateway: Gateway, entries: list[dict[str, Any]], report: AuditReport
) -> None:
    """Time, place, what and proof of each entry, a ruled row each. Laid out here, not with
    fpdf's `table`: that breaks every cell's text twice (to size the row, then to draw it),
    measuring the line again at each character, ~2 s of a 100-entry report; here each word
    is measured once."""
    pdf.set_fill_color(226, 236, 226)
    pdf.set_draw_color(0, 0, 0)
    _table_row(pdf, tuple(title for _, title in COLUMNS), heading=True)
    for entry in entries:
        word, why = entry_status(report, entry)
        withheld = bool(entry.get("withheld"))
        _table_row(
            pdf,
            (
                "withheld" if withheld else _when(entry.get("time")),
                "-" if withheld else place_of(gateway, entry),
                f"#{entry['logIndex']} {entry.get('summary') or ''}",
                f"{word}: {why}",
            ),
        )
