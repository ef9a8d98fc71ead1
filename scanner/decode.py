"""Decode barcodes from images with zxing-cpp."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError

from ledger.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class DecodedCode:
    """One code found in an image: its text and symbology (e.g. "QRCode")."""

    text: str
    format: str


def decode_image_bytes(data: bytes) -> list[DecodedCode]:
    """All codes in an encoded image (PNG, JPEG, ...); raises InvalidInput if it is not one."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInput(f"not a readable image: {exc}") from None
    return decode_image(image)


def decode_image(image: Image.Image) -> list[DecodedCode]:
    """All codes zxing-cpp finds in `image`."""
    results = zxingcpp.read_barcodes(image.convert("L"))
    return [DecodedCode(r.text, r.format.name) for r in results if r.valid]


def decode_file(path: Path) -> list[DecodedCode]:
    return decode_image_bytes(path.read_bytes())
