"""QR codes for tags, as PNG (for label printers) and SVG (for artwork), error correction M.

Level M restores up to ~15% of damaged modules, the usual choice for printed labels; Q or H
can be asked for when labels are expected to be scuffed.

The `qrcode` library only computes the module matrix here (`matrix`); drawing is ours: a
1-bit image packed row by row (`packed`) is what PNGs and PDF label sheets are made of, so a
label costs one matrix and a few hundred bytes of bit packing, not one drawn rectangle per
module through PIL.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import qrcode
import qrcode.base
import qrcode.constants
import qrcode.LUT
import qrcode.util
from PIL import Image

ErrorCorrection = Literal["M", "Q", "H"]
_LEVELS = {
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
#: Quiet zone, in modules, on each side (the standard's minimum).
BORDER = 4


@dataclass(frozen=True)
class _Layout:
    """What every code of one version and level shares: where data modules go (in
    placement order), the function patterns (with the format bits light, as the library
    scores masks, and with each mask's real format bits) and the eight masks."""

    area: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    scored: npt.NDArray[np.bool_]
    final: tuple[npt.NDArray[np.bool_], ...]
    masks: tuple[npt.NDArray[np.bool_], ...]


@functools.lru_cache(maxsize=128)
def _layout(version: int, level: int) -> _Layout:
    n = version * 4 + 17
    code = qrcode.QRCode(version=version, error_correction=level, border=0)
    code.modules_count = n
    code.modules = [[None] * n for _ in range(n)]
    code.setup_position_probe_pattern(0, 0)
    code.setup_position_probe_pattern(n - 7, 0)
    code.setup_position_probe_pattern(0, n - 7)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    blank = [row[:] for row in code.modules]

    def functions(test: bool, mask: int) -> list[list[bool | None]]:
        code.modules = [row[:] for row in blank]
        code.setup_type_info(test, mask)
        if version >= 7:
            code.setup_type_number(test)
        modules: list[list[bool | None]] = code.modules
        return modules

    scored = functions(True, 0)
    area = np.array([[m is None for m in row] for row in scored])
    # The placement order of `QRCode.map_data`: two-column strips from the right, zigzag.
    rows: list[int] = []
    cols: list[int] = []
    inc, row = -1, n - 1
    for col in range(n - 1, 0, -2):
        if col <= 6:
            col -= 1
        while True:
            for c in (col, col - 1):
                if area[row, c]:
                    rows.append(row)
                    cols.append(c)
            row += inc
            if row < 0 or n <= row:
                row -= inc
                inc = -inc
                break
    i, j = np.indices((n, n))
    masks = (
        (i + j) % 2 == 0,
        i % 2 == 0,
        j % 3 == 0,
        (i + j) % 3 == 0,
        (i // 2 + j // 3) % 2 == 0,
        (i * j) % 2 + (i * j) % 3 == 0,
        ((i * j) % 2 + (i * j) % 3) % 2 == 0,
        ((i * j) % 3 + (i + j) % 2) % 2 == 0,
    )

    def boolean(modules: list[list[bool | None]]) -> npt.NDArray[np.bool_]:
        return np.array([[bool(m) for m in row] for row in modules])

    return _Layout(
        area=area,
        rows=np.array(rows, dtype=np.intp),
        cols=np.array(cols, dtype=np.intp),
        scored=boolean(scored),
        final=tuple(boolean(functions(False, k)) for k in range(8)),
        masks=masks,
    )


def _runs(modules: npt.NDArray[np.bool_]) -> int:
    """Penalty 1 along rows: each run of 5 or more same-coloured modules, its length - 2."""
    n = modules.shape[0]
    line = np.hstack([modules.astype(np.int8), np.full((n, 1), 2, dtype=np.int8)]).ravel()
    bounds = np.concatenate(([0], np.flatnonzero(line[1:] != line[:-1]) + 1, [line.size]))
    lengths = np.diff(bounds)
    return int((lengths[lengths >= 5] - 2).sum())


def _finders(modules: npt.NDArray[np.bool_]) -> int:
    """Penalty 3 along rows: 40 per 1:1:3:1:1 pattern with 4 light modules on one side
    (each 11-module window read as an 11-bit number)."""
    width = modules.shape[1] - 10
    window = np.zeros((modules.shape[0], width), dtype=np.int16)
    for t in range(11):
        window = (window << 1) | modules[:, t : t + width]
    return 40 * int(np.count_nonzero((window == 0b10111010000) | (window == 0b00001011101)))


def _penalty(modules: npt.NDArray[np.bool_]) -> int:
    """ISO/IEC 18004's mask penalty, computed as `qrcode.util.lost_point` does."""
    a = modules
    blocks = (a[:-1, :-1] == a[1:, :-1]) & (a[:-1, :-1] == a[:-1, 1:]) & (a[:-1, :-1] == a[1:, 1:])
    percent = float(a.sum()) / a.size
    return (
        _runs(a)
        + _runs(a.T)
        + 3 * int(blocks.sum())
        + _finders(a)
        + _finders(a.T)
        + int(abs(percent * 100 - 50) / 5) * 10
    )


@functools.lru_cache(maxsize=64)
def _generator_rows(ec_count: int) -> list[list[int]]:
    """For each byte value f: f times the generator's coefficients (after its leading 1)."""
    exp, log = qrcode.base.EXP_TABLE, qrcode.base.LOG_TABLE
    if ec_count in qrcode.LUT.rsPoly_LUT:
        generator = list(qrcode.LUT.rsPoly_LUT[ec_count])
    else:
        poly = qrcode.base.Polynomial([1], 0)
        for i in range(ec_count):
            poly = poly * qrcode.base.Polynomial([1, qrcode.base.gexp(i)], 0)
        generator = [poly[i] for i in range(len(poly))]
    tail = generator[1:]
    rows = [[0] * ec_count]
    for f in range(1, 256):
        rows.append([exp[(log[f] + log[g]) % 255] if g else 0 for g in tail])
    return rows


def _codewords(version: int, ec: int, data_list: list[qrcode.util.QRData]) -> list[int]:
    """`qrcode.util.create_data`, with the Reed-Solomon remainders computed by table-driven
    division instead of the library's polynomial objects (the same codewords)."""
    buffer = qrcode.util.BitBuffer()
    for data in data_list:
        buffer.put(data.mode, 4)
        buffer.put(len(data), qrcode.util.length_in_bits(data.mode, version))
        data.write(buffer)
    blocks = qrcode.base.rs_blocks(version, ec)
    bit_limit = sum(block.data_count * 8 for block in blocks)
    if len(buffer) > bit_limit:
        raise ValueError(f"code length overflow: {len(buffer)} > {bit_limit} bits")
    for _ in range(min(bit_limit - len(buffer), 4)):
        buffer.put_bit(False)
    if len(buffer) % 8:
        for _ in range(8 - len(buffer) % 8):
            buffer.put_bit(False)
    for i in range((bit_limit - len(buffer)) // 8):
        buffer.put(qrcode.util.PAD0 if i % 2 == 0 else qrcode.util.PAD1, 8)
    data_blocks: list[list[int]] = []
    ec_blocks: list[list[int]] = []
    offset = 0
    for block in blocks:
        dc = [0xFF & b for b in buffer.buffer[offset : offset + block.data_count]]
        offset += block.data_count
        ec_count = block.total_count - block.data_count
        rows = _generator_rows(ec_count)
        remainder = [0] * ec_count
        for byte in dc:
            row = rows[byte ^ remainder[0]]
            remainder = [r ^ m for r, m in zip([*remainder[1:], 0], row, strict=True)]
        data_blocks.append(dc)
        ec_blocks.append(remainder)
    out: list[int] = []
    for group in (data_blocks, ec_blocks):
        for i in range(max(len(b) for b in group)):
            out.extend(b[i] for b in group if i < len(b))
    return out


def matrix(data: str, level: ErrorCorrection = "M") -> npt.NDArray[np.bool_]:
    """The QR module matrix holding `data` (True = dark), without the quiet zone.

    The same matrix as `qrcode`'s `make(fit=True)` (its version choice, data encoding and
    mask scoring), ~8 times faster: the library places the data and scores each of the eight
    masks module by module in Python; here the data is placed once (the placement order is
    cached per version) and the masks are applied and scored with numpy."""
    if level not in _LEVELS:
        raise ValueError(f"error correction {level!r}: choose M, Q or H")
    ec = _LEVELS[level]
    code = qrcode.QRCode(error_correction=ec, border=0)
    code.add_data(data)
    code.best_fit()
    version = int(code.version)
    layout = _layout(version, ec)
    codewords = _codewords(version, ec, code.data_list)
    bits = np.unpackbits(np.frombuffer(bytes(codewords), dtype=np.uint8)).astype(bool)
    placed = np.zeros(layout.rows.size, dtype=bool)
    used = min(placed.size, bits.size)
    placed[:used] = bits[:used]
    unmasked = np.zeros(layout.area.shape, dtype=bool)
    unmasked[layout.rows, layout.cols] = placed
    best, lowest = 0, -1
    for k, mask in enumerate(layout.masks):
        score = _penalty(np.where(layout.area, unmasked ^ mask, layout.scored))
        if lowest < 0 or score < lowest:
            best, lowest = k, score
    return np.where(layout.area, unmasked ^ layout.masks[best], layout.final[best])


def packed(modules: npt.NDArray[np.bool_], *, dark_bit: int = 1) -> tuple[int, bytes]:
    """The matrix with its quiet zone as a 1-bit image, rows packed MSB first and padded to
    whole bytes: (side in modules, bytes). `dark_bit` is the bit value of a dark module."""
    image = np.pad(modules, BORDER, constant_values=False)
    if not dark_bit:
        image = ~image
    return image.shape[0], np.packbits(image, axis=1).tobytes()


def png_of(modules: npt.NDArray[np.bool_], box_size: int = 4) -> bytes:
    """PNG bytes of a matrix (`box_size` px per module, quiet zone included)."""
    side, bits = packed(modules, dark_bit=0)  # PIL mode "1": 0 is black
    image = Image.frombytes("1", (side, side), bits)
    if box_size != 1:
        image = image.resize((side * box_size, side * box_size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def svg_of(modules: npt.NDArray[np.bool_]) -> bytes:
    """SVG bytes of a matrix: one path of horizontal runs, scalable for artwork."""
    side = len(modules) + 2 * BORDER
    runs: list[str] = []
    for y, row in enumerate(modules.tolist()):
        x, n = 0, len(row)
        while x < n:
            if row[x]:
                start = x
                while x < n and row[x]:
                    x += 1
                runs.append(f"M{start + BORDER} {y + BORDER}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    mm = side * 0.1  # 1 mm per 10 modules, as qrcode's SVG images
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{mm:g}mm" height="{mm:g}mm" '
        f'viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>\n'
    ).encode()


def render_png(data: str, level: ErrorCorrection = "M", box_size: int = 4) -> bytes:
    """PNG bytes of a QR code holding `data` (4 px per module, 4-module quiet zone)."""
    return png_of(matrix(data, level), box_size)


def render_svg(data: str, level: ErrorCorrection = "M") -> bytes:
    """SVG bytes of a QR code holding `data` (one path, scalable for artwork)."""
    return svg_of(matrix(data, level))
