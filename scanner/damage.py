"""Synthetic photos of labels with realistic damage, for tests and `borderledger bench scan`.

A label is a white sticker with a code (a QR of a tag, or a GS1 DataMatrix) and a few lines
of text, pasted on a cardboard-coloured, slightly uneven background and photographed: every
photo gets a small random tilt and JPEG compression. One damage type is then applied at one
level (mild, moderate, severe). Everything is deterministic for a given seed.

Damage levels are meant to resemble what an officer's handheld sees:

================  ==========================  ===========================  ======================
damage            mild                        moderate                     severe
================  ==========================  ===========================  ======================
rotation          ±15°                        ±40°                         ±85° (any angle)
blur              Gaussian r=1.0 px           r=1.6 px                     r=2.6 px
noise             sd 15 grey levels           sd 35                        sd 60
perspective       corners moved 6 %           12 %                         20 %
glare             highlight 45 % opaque       65 %                         85 %
low_resolution    ~2.6 px per module          ~1.9 px per module           ~1.3 px per module
low_contrast      65 % of the range           30 % of the range            12 % of the range
================  ==========================  ===========================  ======================
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import zxingcpp
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from ledger.qr import render_png
from scanner.payload import format_hri

DAMAGE_TYPES = (
    "rotation",
    "blur",
    "noise",
    "perspective",
    "glare",
    "low_resolution",
    "low_contrast",
)
LEVELS = ("mild", "moderate", "severe")
Level = Literal["mild", "moderate", "severe"]
CodeKind = Literal["qr", "datamatrix"]

#: Pixels per module when the label is rendered (before any damage).
MODULE_PX = 4


def render_datamatrix(pairs: list[tuple[str, str]], module_px: int = MODULE_PX) -> Image.Image:
    """A GS1 DataMatrix (FNC1 first) holding the element string `pairs`, as an L image."""
    barcode = zxingcpp.create_barcode(
        format_hri(pairs), zxingcpp.BarcodeFormat.DataMatrix, gs1=True
    )
    return _zxing_image(zxingcpp.write_barcode_to_image(barcode, scale=module_px))


def render_ean13(digits: str, scale: int = 3) -> Image.Image:
    """An EAN-13 retail barcode (a code from another system, for tests)."""
    barcode = zxingcpp.create_barcode(digits, zxingcpp.BarcodeFormat.EAN13)
    return _zxing_image(zxingcpp.write_barcode_to_image(barcode, scale=scale))


def _zxing_image(image: object) -> Image.Image:
    view = memoryview(image)  # type: ignore[arg-type]
    shape = view.shape
    assert shape is not None
    height, width = shape[0], shape[1]
    return Image.frombytes("L", (width, height), view.tobytes())


def render_qr(data: str, module_px: int = MODULE_PX) -> Image.Image:
    return Image.open(io.BytesIO(render_png(data, box_size=module_px))).convert("L")


def render_label(code: Image.Image, lines: list[str]) -> Image.Image:
    """A white label: the code on the left, text lines on the right."""
    text_width = 210
    width = code.width + text_width + 30
    height = max(code.height, 16 * len(lines)) + 20
    label = Image.new("L", (width, height), 250)
    label.paste(code, (10, 10))
    draw = ImageDraw.Draw(label)
    for i, line in enumerate(lines):
        draw.text((code.width + 20, 14 + 16 * i), line[:32], fill=20)
    return label


@dataclass(frozen=True, slots=True)
class Photo:
    """One synthetic photo: JPEG bytes and what it should decode to."""

    jpeg: bytes
    damage: str
    level: str
    expected: tuple[str, ...]  # payload texts, as classify() will read them


def _background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    tone = rng.randint(120, 190)
    base = Image.new("RGB", size, (tone, int(tone * 0.85), int(tone * 0.65)))
    # Uneven light: a soft vertical gradient.
    shade = Image.linear_gradient("L").resize(size).point(lambda v: int(v * 0.25))
    return ImageChops.subtract(base, Image.merge("RGB", (shade, shade, shade)))


def photograph(
    labels: list[Image.Image], rng: random.Random, canvas: tuple[int, int] = (800, 600)
) -> Image.Image:
    """Place labels on a background with a small tilt each (a hand-held shot)."""
    photo = _background(rng, canvas)
    x = 20
    for label in labels:
        tilt = rng.uniform(-4, 4)
        rotated = label.rotate(tilt, Image.Resampling.BICUBIC, expand=True, fillcolor=0)
        mask = Image.new("L", label.size, 255).rotate(tilt, expand=True)
        y = rng.randint(10, max(10, canvas[1] - rotated.height - 10))
        photo.paste(Image.merge("RGB", (rotated,) * 3), (x, y), mask)
        x += rotated.width + 20
    return photo


def _fill(image: Image.Image) -> tuple[int, ...]:
    pixel = image.getpixel((0, 0))
    return tuple(pixel) if isinstance(pixel, tuple) else (int(pixel or 0),) * 3


def _rotation(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    limit = {"mild": 15, "moderate": 40, "severe": 85}[level]
    angle = rng.uniform(limit * 0.6, limit) * rng.choice((-1, 1))
    return image.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=_fill(image))


def _blur(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    radius = {"mild": 1.0, "moderate": 1.6, "severe": 2.6}[level] * rng.uniform(0.9, 1.1)
    return image.filter(ImageFilter.GaussianBlur(radius))


def _noise(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    sigma = {"mild": 15, "moderate": 35, "severe": 60}[level]
    # Seeded noise (Image.effect_noise uses the C library's unseeded rand()): the mean of two
    # uniform fields is triangular with sd 255/sqrt(24) = 52; scale it to the wanted sd.
    size = image.size
    first = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    second = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    scale = sigma / 52.0
    noise = ImageChops.add(first, second, 2.0).point(lambda v: int(128 + (v - 128) * scale))
    channels = [ImageChops.add(band, noise, 1.0, -128) for band in image.split()]
    return Image.merge(image.mode, channels)


def _perspective(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    amount = {"mild": 0.06, "moderate": 0.12, "severe": 0.20}[level]
    w, h = image.size
    # Where each output corner samples the input: corners pushed outwards by random amounts,
    # so the scene shrinks unevenly (a label seen at an angle) and nothing is cropped away.
    corners: list[tuple[float, float]] = [(0, 0), (w, 0), (w, h), (0, h)]
    moved = [
        (
            x + (1 if x else -1) * rng.uniform(0.2, 1) * amount * w,
            y + (1 if y else -1) * rng.uniform(0.2, 1) * amount * h,
        )
        for x, y in corners
    ]
    coefficients = _perspective_coefficients(corners, moved)
    return image.transform(
        image.size,
        Image.Transform.PERSPECTIVE,
        coefficients,
        Image.Resampling.BICUBIC,
        fillcolor=_fill(image),
    )


def _perspective_coefficients(
    dst: list[tuple[float, float]], src: list[tuple[float, float]]
) -> tuple[float, ...]:
    """The 8 coefficients mapping output points `dst` to input points `src` (PIL's convention),
    solved by Gaussian elimination (no numpy needed)."""
    rows: list[list[float]] = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, v])
    n = 8
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col and rows[r][col]:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return tuple(rows[i][n] / rows[i][i] for i in range(n))


def _glare(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    strength = {"mild": 0.45, "moderate": 0.65, "severe": 0.85}[level]
    w, h = image.size
    radius = rng.uniform(0.25, 0.35) * min(w, h)
    cx, cy = rng.uniform(0.2, 0.5) * w, rng.uniform(0.3, 0.7) * h
    # A soft white highlight: a blurred ellipse blended over the photo.
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse(
        (cx - radius, cy - radius * 0.7, cx + radius, cy + radius * 0.7),
        fill=int(255 * strength),
    )
    mask = mask.filter(ImageFilter.GaussianBlur(radius / 3))
    white = Image.new(image.mode, image.size, (255,) * len(image.getbands()))
    return Image.composite(white, image, mask)


def _low_resolution(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    module = {"mild": 2.6, "moderate": 1.9, "severe": 1.3}[level] * rng.uniform(0.95, 1.05)
    factor = module / MODULE_PX
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR)


def _low_contrast(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    span = {"mild": 0.65, "moderate": 0.30, "severe": 0.12}[level]
    base = rng.uniform(60, 200 - 255 * span * 0.5)
    return image.point(lambda v: int(base + v * span))


DAMAGE: dict[str, Callable[[Image.Image, str, random.Random], Image.Image]] = {
    "rotation": _rotation,
    "blur": _blur,
    "noise": _noise,
    "perspective": _perspective,
    "glare": _glare,
    "low_resolution": _low_resolution,
    "low_contrast": _low_contrast,
}


def damage(image: Image.Image, kind: str, level: str, rng: random.Random) -> Image.Image:
    """Apply damage `kind` at `level` to a photo."""
    if kind not in DAMAGE:
        raise ValueError(f"damage {kind!r}: choose one of {', '.join(DAMAGE_TYPES)}")
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: choose mild, moderate or severe")
    return DAMAGE[kind](image, level, rng)


def to_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def label_for(text: str, kind: CodeKind, pairs: list[tuple[str, str]] | None = None) -> Image.Image:
    """A label holding `text` as a QR code, or `pairs` as a GS1 DataMatrix."""
    if kind == "qr":
        code = render_qr(text)
    else:
        assert pairs is not None
        code = render_datamatrix(pairs)
    lines = [f"({ai}) {value}" for ai, value in pairs or []] or ["Scan to verify"]
    return render_label(code, lines)


def synth_photo(
    codes: list[tuple[str, CodeKind, list[tuple[str, str]] | None]],
    kind: str,
    level: str,
    seed: int,
) -> Photo:
    """One photo of one label per entry of `codes` ((text, "qr"|"datamatrix", GS1 pairs)),
    damaged by `kind` at `level`. `expected` holds each code's decoded text (the raw element
    string for a DataMatrix)."""
    from scanner.payload import encode_element_string

    rng = random.Random(seed)
    labels = [label_for(text, code_kind, pairs) for text, code_kind, pairs in codes]
    width = max(800, sum(label.width + 30 for label in labels) + 20)
    photo = photograph(labels, rng, (width, 600))
    photo = damage(photo, kind, level, rng)
    expected = tuple(
        text if code_kind == "qr" else encode_element_string(pairs or [])
        for text, code_kind, pairs in codes
    )
    return Photo(to_jpeg(photo, rng.randint(70, 90)), kind, level, expected)
