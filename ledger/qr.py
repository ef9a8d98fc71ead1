"""QR codes for tags, as PNG (for label printers) and SVG (for artwork), error correction M.

Level M restores up to ~15% of damaged modules, the usual choice for printed labels; Q or H
can be asked for when labels are expected to be scuffed.

The `qrcode` library computes the module matrix (`matrix`); drawing is ours: a 1-bit image
packed row by row (`packed`) is what PNGs and PDF label sheets are made of, so a label costs
one matrix and a few hundred bytes of bit packing, not one drawn rectangle per module
through PIL.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
import numpy.typing as npt
import qrcode
import qrcode.constants
from PIL import Image

ErrorCorrection = Literal["M", "Q", "H"]
_LEVELS = {
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
#: Quiet zone, in modules, on each side (the standard's minimum).
BORDER = 4


def matrix(data: str, level: ErrorCorrection = "M") -> npt.NDArray[np.bool_]:
    """The QR module matrix holding `data` (True = dark), without the quiet zone: the
    `qrcode` library's own (its version choice, data encoding, error correction and mask)."""
    if level not in _LEVELS:
        raise ValueError(f"error correction {level!r}: choose M, Q or H")
    code = qrcode.QRCode(error_correction=_LEVELS[level], border=0)
    code.add_data(data)
    code.make(fit=True)
    return np.array(code.get_matrix(), dtype=bool)


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
