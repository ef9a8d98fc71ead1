"""QR codes for tags, as PNG (for label printers) and SVG (for artwork), error correction M.

Level M restores up to ~15% of damaged modules, the usual choice for printed labels; Q or H
can be asked for when labels are expected to be scuffed.
"""

from __future__ import annotations

import io
from typing import Literal

import qrcode
import qrcode.constants
import qrcode.image.svg

ErrorCorrection = Literal["M", "Q", "H"]
_LEVELS = {
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}


def _code(data: str, level: ErrorCorrection) -> qrcode.QRCode:
    if level not in _LEVELS:
        raise ValueError(f"error correction {level!r}: choose M, Q or H")
    code = qrcode.QRCode(error_correction=_LEVELS[level], box_size=4, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code


def render_png(data: str, level: ErrorCorrection = "M", box_size: int = 4) -> bytes:
    """PNG bytes of a QR code holding `data` (4 px per module, 4-module quiet zone)."""
    code = _code(data, level)
    code.box_size = box_size
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


def render_svg(data: str, level: ErrorCorrection = "M") -> bytes:
    """SVG bytes of a QR code holding `data` (one path, scalable for artwork)."""
    image = _code(data, level).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
