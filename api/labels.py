"""Tag downloads: CSV of URIs, a ZIP of QR codes, a printable PDF label sheet.

Tags are re-derived from the stored serials, batch secret and signer key (signatures are
deterministic), so the gateway stores one tree per batch, not a million URIs.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from fpdf import FPDF

from chain.enroll import qr_file_stem
from ledger.issuance import TAGS_CSV_HEADER, TaggingJob, tag_chunk
from ledger.qr import render_png, render_svg

CHUNK = 5_000


def _rows(job: TaggingJob, serials: list[str]) -> Iterator[tuple[str, str]]:
    for start in range(0, len(serials), CHUNK):
        part = serials[start : start + CHUNK]
        lines = tag_chunk(job, part).csv_lines.splitlines()
        for serial, line in zip(part, lines, strict=True):
            yield serial, line.rsplit(",", 1)[1]


def tags_csv(job: TaggingJob, serials: list[str]) -> Iterator[bytes]:
    yield TAGS_CSV_HEADER.encode()
    for start in range(0, len(serials), CHUNK):
        yield tag_chunk(job, serials[start : start + CHUNK]).csv_lines.encode()


def tags_zip(job: TaggingJob, serials: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for serial, uri in _rows(job, serials):
            stem = qr_file_stem(serial)
            archive.writestr(f"png/{stem}.png", render_png(uri))
            archive.writestr(f"svg/{stem}.svg", render_svg(uri))
    return buffer.getvalue()


def tags_pdf(job: TaggingJob, serials: list[str], title: str) -> bytes:
    """A4 sheet, 4 by 7 labels of 50 by 38 mm: QR code (M), GTIN, lot and serial in text."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=6)
    cols, rows, width, height, left, top = 4, 7, 50.0, 38.0, 5.0, 10.0
    for index, (serial, uri) in enumerate(_rows(job, serials)):
        slot = index % (cols * rows)
        if slot == 0:
            pdf.add_page()
            pdf.set_xy(left, 3)
            pdf.cell(0, 4, title)
        x = left + (slot % cols) * width
        y = top + (slot // cols) * height
        pdf.image(io.BytesIO(render_png(uri, box_size=6)), x=x + 1, y=y + 1, w=28, h=28)
        pdf.set_xy(x + 30, y + 3)
        pdf.multi_cell(19, 3, f"(01) {job.gtin}\n(10) {job.lot}\n(21) {serial}")
    return bytes(pdf.output())
