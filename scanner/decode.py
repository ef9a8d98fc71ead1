"""Decode barcodes from photos with zxing-cpp, retrying harder images with clean-ups.

A first pass runs zxing-cpp on the image as it is (it already tries rotations by 90°,
inverted codes and downscaled copies), or on a 2x upscale of a tiny image, with every
barcode format. Photos of labels taken in bad light at a port often
fail that pass, so the fallbacks below run in order, cheapest first, until one finds a code:

1. grayscale with a contrast stretch (low contrast, glare)
2. a global-histogram binarizer instead of zxing's local-average one (noise, glare)
3. a 2x (or 3x) upscale of a small image (low resolution, blur)
4. a sharpened copy (blur)
5. a median-filtered copy (speckle noise)
6. a fixed-threshold binarization at the image's median (uneven light)
7. a downscale of a huge photo (a 12-megapixel phone photo of a small code)
8. a 45° rotation (heavily rotated DataMatrix, whose finder pattern zxing handles less well)

Fallbacks look for QR and DataMatrix only. Several codes in one picture are all returned
when one pass finds them all (zxing finds every code of a pass); once a pass finds a code the
later passes are skipped, so a second, harder-to-read code in the same picture can be missed
(the benchmark counts such an image as a failure).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from ledger.errors import InvalidInput

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
#: Photos larger than this (longest side, pixels) get a downscaled pass.
HUGE_SIDE = 2000
#: Images smaller than this (longest side, pixels) get an upscaled pass.
SMALL_SIDE = 900
#: Images smaller than this (longest side, pixels) are read upscaled in the first pass.
TINY_SIDE = 600
#: Decompression-bomb guard: refuse images over this many pixels.
MAX_PIXELS = 80_000_000


@dataclass(frozen=True, slots=True)
class DecodedCode:
    """One code found in an image: its text, symbology (e.g. "QRCode"), the ISO 15424
    symbology identifier (`]Q1`, `]d2` for GS1 DataMatrix, ...), and the pass that found it."""

    text: str
    format: str
    symbology_id: str = field(default="", compare=False)
    gs1: bool = field(default=False, compare=False)
    strategy: str = field(default="as-is", compare=False)


def decode_image_bytes(data: bytes, name: str = "image") -> list[DecodedCode]:
    """All codes in an encoded image (PNG, JPEG, ...); raises InvalidInput if it is not one."""
    return decode_image(open_image(data, name))


def open_image(data: bytes, name: str = "image") -> Image.Image:
    """Decode image bytes (applying the EXIF orientation of phone photos)."""
    if not data:
        raise InvalidInput(f"{name}: empty file, not an image")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise InvalidInput(
                f"{name}: {image.width}x{image.height} pixels is too large to decode"
            )
        if image.format == "JPEG":
            image.draft("L", image.size)  # decode JPEG straight to grayscale: 2-3x faster
        image.load()
        transposed = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"{name}: not a readable image ({exc})") from None
    return transposed if transposed is not None else image


def decode_file(path: Path) -> list[DecodedCode]:
    """All codes in the image file at `path`; InvalidInput names the file when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    return decode_image_bytes(data, str(path))


#: The fallback passes look for the 2D codes tags and medicine packs carry; the first pass
#: reads every format, so that codes from other systems (an EAN-13) are reported as such.
MATRIX_FORMATS = (
    zxingcpp.BarcodeFormat.QRCode,
    zxingcpp.BarcodeFormat.MicroQRCode,
    zxingcpp.BarcodeFormat.DataMatrix,
)


def _read(image: Image.Image, strategy: str, **options: Any) -> list[DecodedCode]:
    if not strategy.startswith("as-is"):
        options = {"formats": MATRIX_FORMATS, "try_invert": False, **options}
    found = zxingcpp.read_barcodes(image, text_mode=zxingcpp.TextMode.Plain, **options)
    codes = []
    for r in found:
        if not r.valid:
            continue
        ident = r.symbology_identifier
        gs1 = r.content_type == zxingcpp.ContentType.GS1
        codes.append(DecodedCode(r.text, r.format.name, ident, gs1, strategy))
    return codes


def _gray(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent pixels count as white paper, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L")


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    method = Image.Resampling.BICUBIC if factor > 1 else Image.Resampling.BOX
    return image.resize(size, method)


def _median_threshold(image: Image.Image) -> Image.Image:
    histogram = image.histogram()
    half, total = sum(histogram) / 2, 0
    level = 128
    for level, count in enumerate(histogram):  # noqa: B007 - level is used after the loop
        total += count
        if total >= half:
            break
    # Labels are mostly white: the median is paper, so threshold a bit below it.
    cut = max(16, min(240, level - 40))
    return image.point(lambda v: 255 if v > cut else 0)


def _passes(gray: Image.Image) -> Iterator[tuple[str, Callable[[], list[DecodedCode]]]]:
    longest = max(gray.size)
    stretched = ImageOps.autocontrast(gray, cutoff=1)
    if longest < TINY_SIDE:
        # A low-resolution photo: look at a 2x upscale first, or a second code in the picture
        # (found only upscaled) would be missed once the first pass finds one.
        yield "as-is-upscaled", lambda: _read(_scaled(gray, 2.0), "as-is-upscaled")
    yield "as-is", lambda: _read(gray, "as-is")
    yield "contrast", lambda: _read(stretched, "contrast")
    yield (
        "global-binarizer",
        lambda: _read(stretched, "global-binarizer", binarizer=zxingcpp.Binarizer.GlobalHistogram),
    )
    if longest < SMALL_SIDE:
        factor = 3.0 if longest < SMALL_SIDE / 2 else 2.0
        yield "upscale", lambda: _read(_scaled(stretched, factor), "upscale")
    yield (
        "sharpen",
        lambda: _read(stretched.filter(ImageFilter.UnsharpMask(3, 200, 2)), "sharpen"),
    )
    yield "median", lambda: _read(stretched.filter(ImageFilter.MedianFilter(5)), "median")
    yield "threshold", lambda: _read(_median_threshold(stretched), "threshold")
    if longest > HUGE_SIDE:
        yield "downscale", lambda: _read(_scaled(stretched, 1600 / longest), "downscale")
    yield (
        "rotate45",
        lambda: _read(
            stretched.rotate(45, Image.Resampling.BICUBIC, expand=True, fillcolor=255), "rotate45"
        ),
    )


def decode_image(image: Image.Image, strategies: Iterable[str] | None = None) -> list[DecodedCode]:
    """All codes zxing-cpp finds in `image`, trying the fallbacks until one finds any.

    `strategies` limits the passes (by name, e.g. `["as-is"]`), for measuring them.
    """
    gray = _gray(image)
    wanted = None if strategies is None else set(strategies)
    for name, attempt in _passes(gray):
        if wanted is not None and name not in wanted:
            continue
        codes = attempt()
        if codes:
            return _unique(codes)
    return []


def _unique(codes: list[DecodedCode]) -> list[DecodedCode]:
    seen: set[tuple[str, str]] = set()
    result = []
    for code in codes:
        if (code.text, code.format) not in seen:
            seen.add((code.text, code.format))
            result.append(code)
    return result


# ---------------------------------------------------------------------------- files & folders


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files given, and image files (by suffix) in folders given, recursively, sorted.
    A path that does not exist raises InvalidInput."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise InvalidInput(
                    f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(f"{path}: no such file or folder")
    return files


@dataclass(frozen=True, slots=True)
class FileResult:
    """The codes found in one file, or why none could be."""

    path: Path
    codes: list[DecodedCode]
    error: str | None = None


def decode_files(paths: Iterable[Path]) -> Iterator[FileResult]:
    """Decode each file; a corrupt file or one without a code is reported, not raised."""
    for path in paths:
        try:
            codes = decode_file(path)
        except InvalidInput as exc:
            yield FileResult(path, [], str(exc))
            continue
        if not codes:
            yield FileResult(path, [], f"{path}: no barcode found in the image")
        else:
            yield FileResult(path, codes)
