"""The audit report's entries table, laid out by the gateway (api/services/audit_report.py):
each word measured once, not fpdf's table that re-measured each line at every character
(seconds for a 100-entry report). The wrapping keeps every word, fits each line in its column
and cuts only a word longer than a line; a row is as tall as its longest cell."""

from __future__ import annotations

from api.case_documents import _Pdf
from api.services.audit_report import COLUMNS, LINE, PAD_Y, _table_row, _wrapped


def _pdf() -> _Pdf:
    pdf = _Pdf()
    pdf.add_page()
    pdf.set_font(pdf.family, "", 8)
    return pdf


def test_wrapping_keeps_every_word_within_the_column() -> None:
    pdf = _pdf()
    text = "not verified: the shown record does not hash into checkpoint 99: changed since logged"
    lines = _wrapped(pdf, text, 50.0)
    assert len(lines) > 1
    assert " ".join(lines).split() == text.split()
    assert all(pdf.get_string_width(line) <= 50.0 for line in lines)
    long = "0x" + "ab" * 32  # a hash is wider than a narrow column: cut, nothing lost
    cut = _wrapped(pdf, long, 20.0)
    assert len(cut) > 1 and "".join(cut) == long
    assert all(pdf.get_string_width(line) <= 20.0 for line in cut)
    assert _wrapped(pdf, "", 20.0) == [""]


def test_a_row_is_as_tall_as_its_longest_cell_and_breaks_to_a_new_page() -> None:
    pdf = _pdf()
    top = pdf.get_y()
    _table_row(pdf, ("2026-11-06 14:12 UTC", "-", "#1 " + "word " * 40, "verified"))
    tall = pdf.get_y() - top
    lines = len(_wrapped(pdf, "#1 " + "word " * 40, COLUMNS[2][0] - 2 * pdf.c_margin))
    assert lines > 2 and abs(tall - (lines * LINE + 2 * PAD_Y)) < 1e-6
    for _ in range(80):  # more rows than a page holds: a second page, headings repeated
        _table_row(pdf, ("t", "p", "w", "proof"))
    assert pdf.page_no() >= 2 and pdf.get_y() < pdf.page_break_trigger
