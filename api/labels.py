"""Tag downloads: CSV of URIs, a ZIP of QR codes, a printable PDF label sheet.

Tags are re-derived from the stored serials, batch secret and signer key (signatures are
deterministic), so the gateway stores one tree per batch, not a million URIs.

ZIP and PDF files are written to a file object, `chunk` labels at a time: the ZIP entry by
entry (`zipfile` streams to the file), the PDF page by page by a small PDF writer of our own
(fpdf2 keeps a whole document in memory until its end, ~250 kB per page of labels). Whatever
the batch's size, memory holds one chunk of tags and one page. Small files are made this way
into memory by the download route; large ones by the `labels` job (`api.label_jobs`) into a
file under the gateway's home.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from fpdf.fonts import CORE_FONTS_CHARWIDTHS

from chain.enroll import qr_file_stem
from ledger.issuance import TAGS_CSV_HEADER, TaggingJob, tag_chunk
from ledger.qr import matrix, packed, png_of, svg_of

CHUNK = 5_000
#: Called after each chunk of labels with how many it held (progress; may raise to stop).
Progress = Callable[[int], None]


def _rows(job: TaggingJob, serials: list[str], chunk: int) -> Iterator[list[tuple[str, str]]]:
    """(serial, uri) pairs, `chunk` at a time: only one chunk of tags exists at once."""
    for start in range(0, len(serials), chunk):
        part = serials[start : start + chunk]
        lines = tag_chunk(job, part).csv_lines.splitlines()
        yield [(serial, line.rsplit(",", 1)[1]) for serial, line in zip(part, lines, strict=True)]


def tags_csv(job: TaggingJob, serials: list[str]) -> Iterator[bytes]:
    yield TAGS_CSV_HEADER.encode()
    for start in range(0, len(serials), CHUNK):
        yield tag_chunk(job, serials[start : start + CHUNK]).csv_lines.encode()


def write_zip(
    job: TaggingJob,
    serials: list[str],
    out: BinaryIO,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> None:
    """A ZIP of png/<stem>.png and svg/<stem>.svg per tag, written entry by entry. PNGs are
    stored (already deflated), SVGs deflated."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for rows in _rows(job, serials, chunk):
            for serial, uri in rows:
                stem = qr_file_stem(serial)
                modules = matrix(uri)
                archive.writestr(f"png/{stem}.png", png_of(modules), zipfile.ZIP_STORED)
                archive.writestr(f"svg/{stem}.svg", svg_of(modules))
            if progress is not None:
                progress(len(rows))


def tags_zip(job: TaggingJob, serials: list[str]) -> bytes:
    buffer = io.BytesIO()
    write_zip(job, serials, buffer)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ PDF

_PT = 72 / 25.4  # points per mm
_PAGE_W, _PAGE_H = 595.28, 841.89  # A4, points
_WIDTHS = CORE_FONTS_CHARWIDTHS["helvetica"]
#: Sheet layout (mm): 4 by 7 labels of 50 by 38, QR 28 mm square, text column 19 mm wide.
_COLS, _ROWS, _LABEL_W, _LABEL_H, _LEFT, _TOP = 4, 7, 50.0, 38.0, 5.0, 10.0
_QR_MM, _TEXT_MM, _FONT_PT = 28.0, 19.0, 6.0


def _pdf_text(text: str) -> bytes:
    """A PDF literal string (WinAnsi; characters outside Latin-1 become '?')."""
    raw = text.encode("latin-1", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _fit(text: str, size: float, width_mm: float) -> float:
    """The font size (at most `size`) at which `text` fits `width_mm` in Helvetica."""
    units = sum(_WIDTHS.get(ch, 556) for ch in text)
    fits = width_mm * _PT * 1000 / units if units else size
    return min(size, fits)


class PdfWriter:
    """A minimal PDF 1.4 writer that streams: objects are written as they are made and
    only their offsets (and the page list) are kept; the page tree, cross-reference table
    and trailer come at `close`. Object 1 is the catalog, 2 the page tree, 3 Helvetica."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.offsets: dict[int, int] = {}
        self.pages: list[int] = []
        self.next_id = 4
        self.position = 0
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        self._object(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        self._object(
            3,
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        )

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)

    def _object(self, number: int, body: bytes, stream: bytes | None = None) -> None:
        self.offsets[number] = self.position
        if stream is None:
            self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
        else:
            self._write(b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\n" % (number, body, stream))

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def image(self, side: int, bits: bytes) -> int:
        """A 1-bit image XObject (`bits` packed rows, 1 = dark); returns its object number."""
        number = self.new_id()
        data = zlib.compress(bits, 6)
        self._object(
            number,
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 1 /Decode [1 0] /Interpolate false /Filter /FlateDecode "
            b"/Length %d >>" % (side, side, len(data)),
            data,
        )
        return number

    def page(self, content: bytes, images: list[int]) -> None:
        """A page drawing `content` with images /I0… (object numbers `images`)."""
        data = zlib.compress(content, 6)
        stream_id, page_id = self.new_id(), self.new_id()
        self._object(stream_id, b"<< /Filter /FlateDecode /Length %d >>" % len(data), data)
        xobjects = b" ".join(b"/I%d %d 0 R" % (i, n) for i, n in enumerate(images))
        self._object(
            page_id,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font "
            b"<< /F1 3 0 R >> /XObject << %s >> >> /Contents %d 0 R >>"
            % (_PAGE_W, _PAGE_H, xobjects, stream_id),
        )
        self.pages.append(page_id)

    def close(self) -> None:
        kids = b" ".join(b"%d 0 R" % p for p in self.pages)
        self._object(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self.pages)))
        start = self.position
        count = self.next_id
        lines = [b"xref\n0 %d\n" % count, b"0000000000 65535 f \n"]
        lines += [b"%010d 00000 n \n" % self.offsets[n] for n in range(1, count)]
        self._write(b"".join(lines))
        self._write(
            b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, start)
        )


def _label(slot: int, serial: str, gtin: str, lot: str) -> bytes:
    """Content drawing label `slot` of a page: its QR image /I<slot> and its text."""
    x = _LEFT + (slot % _COLS) * _LABEL_W
    y = _TOP + (slot // _COLS) * _LABEL_H
    size = _QR_MM * _PT
    ops = [
        b"q %.3f 0 0 %.3f %.3f %.3f cm /I%d Do Q"
        % (size, size, (x + 1) * _PT, _PAGE_H - (y + 1 + _QR_MM) * _PT, slot)
    ]
    lines = ["(01)", gtin, "(10)", lot, "(21)", serial]
    for number, text in enumerate(lines):
        font = _fit(text, _FONT_PT, _TEXT_MM)
        baseline = _PAGE_H - (y + 4 + 3 * number) * _PT
        ops.append(
            b"BT /F1 %.2f Tf %.3f %.3f Td %s Tj ET"
            % (font, (x + 30) * _PT, baseline, _pdf_text(text))
        )
    return b"\n".join(ops)


def write_pdf(
    job: TaggingJob,
    serials: list[str],
    out: BinaryIO,
    title: str,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> None:
    """A4 sheets of 4 by 7 labels of 50 by 38 mm: QR code (M, as a 1-bit image, crisp at
    any print resolution), GTIN, lot and serial in text. Written page by page."""
    pdf = PdfWriter(out)
    per_page = _COLS * _ROWS
    content: list[bytes] = []
    images: list[int] = []

    def flush() -> None:
        if images:
            pdf.page(b"\n".join(content), images)
            content.clear()
            images.clear()

    for rows in _rows(job, serials, chunk):
        for serial, uri in rows:
            if not images:
                content.append(
                    b"BT /F1 6 Tf %.3f %.3f Td %s Tj ET"
                    % (_LEFT * _PT, _PAGE_H - 6 * _PT, _pdf_text(title))
                )
            side, bits = packed(matrix(uri))
            content.append(_label(len(images), serial, job.gtin, job.lot))
            images.append(pdf.image(side, bits))
            if len(images) == per_page:
                flush()
        if progress is not None:
            progress(len(rows))
    flush()
    pdf.close()


def tags_pdf(job: TaggingJob, serials: list[str], title: str) -> bytes:
    buffer = io.BytesIO()
    write_pdf(job, serials, buffer, title)
    return buffer.getvalue()
