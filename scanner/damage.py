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
shake             a straight smear 3.5 px     5.5 px                       9 px
                  long at any angle
noise             sd 15 grey levels           sd 35                        sd 60
perspective       corners moved 6 %           12 %                         30 % (strong keystone)
glare             highlight 45 % opaque       65 %                         94 %, over the code,
                                                                           + a clipped core
low_resolution    ~2.6 px per module          ~1.9 px per module           ~1.3 px per module
low_contrast      65 % of the range           30 % of the range            12 % of the range
occlusion         sticker/finger over 10 %    12 % of the symbol's side,   22 %, over a
                  of a corner with no finder  over a finder pattern        finder pattern
curvature         code spans 50° of a bottle  80°                          110°
combined          perspective + 1 other,      perspective + 2 others       strong perspective
                  all mild                    (blur, noise, glare, low     (keystone) + 2 others,
                                              light, occlusion), moderate  one of them severe
handheld          perspective + occlusion +   moderate angle and cover     keystone + moderate
                  glare + blur, all mild      (a finder's corner) + mild   cover and glare +
                                              glare and blur               mild blur
bottle            curvature 50° + mild angle  curvature 80° + mild angle   curvature 80° +
                  + 2.6 px per module         + 2.6 px per module          moderate angle + mild
                                                                           blur, 2.6 px/module
================  ==========================  ===========================  ======================

`combined`, `handheld` and `bottle` are what phone photos do: damages stack in the order light and optics apply them
(occlusion or the curve on the label, then the camera's angle, the highlight, focus blur, the
sensor's resolution, low light, sensor noise, and a harsher JPEG). Occlusion and curvature act on the label, which knows
where its code is (`code_box`); the rest on the whole photo.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import zxingcpp
from numpy.typing import NDArray
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from ledger.qr import render_png
from scanner.payload import format_hri

DAMAGE_TYPES = (
    "rotation",
    "blur",
    "shake",
    "noise",
    "perspective",
    "glare",
    "low_resolution",
    "low_contrast",
    "occlusion",
    "curvature",
    "combined",
    "handheld",
    "bottle",
)
#: Damage types made of several damages at once, the way a phone's photo stacks them (the
#: first generator had `combined` alone; `bench scan --types` runs the others without them).
STACKED = frozenset({"combined", "handheld", "bottle"})
#: Damages done to the label itself (it knows where its code is), before it is photographed.
LABEL_DAMAGE = frozenset({"occlusion", "curvature"})
LEVELS = ("mild", "moderate", "severe")
Level = Literal["mild", "moderate", "severe"]
CodeKind = Literal["qr", "datamatrix"]
#: A rectangle (left, top, right, bottom) in pixels.
Box = tuple[int, int, int, int]

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
        rotated = label.convert("RGB").rotate(
            tilt, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0)
        )
        mask = Image.new("L", label.size, 255).rotate(tilt, expand=True)
        y = rng.randint(10, max(10, canvas[1] - rotated.height - 10))
        photo.paste(rotated, (x, y), mask)
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


#: Length (pixels) of a hand's shake during the exposure, by level: a straight smear at a
#: random angle (a phone held in one hand at 1/30 s indoors). Each spreads a point as far
#: as `blur` does at the same level: a smear L px long has a standard deviation of
#: L / sqrt(12), here 1.0, 1.6 and 2.6 px.
SHAKE_PX = {"mild": 3.5, "moderate": 5.5, "severe": 9.0}


def shake_kernel(length: float, angle: float) -> NDArray[np.float32]:
    """The point spread of a straight shake `length` pixels long at `angle` (radians): the
    segment sampled finely, each sample split bilinearly over its four pixels."""
    size = 2 * math.ceil(length / 2) + 3  # odd, with room for both ends' bilinear split
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    for t in np.linspace(-length / 2, length / 2, 8 * size):
        x, y = centre + t * math.cos(angle), centre + t * math.sin(angle)
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for dx, dy, weight in (
            (0, 0, (1 - fx) * (1 - fy)),
            (1, 0, fx * (1 - fy)),
            (0, 1, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                kernel[y0 + dy, x0 + dx] += weight
    kernel /= kernel.sum()
    return kernel


def _shake(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    length = SHAKE_PX[level] * rng.uniform(0.9, 1.1)
    kernel = shake_kernel(length, rng.uniform(0, math.pi))
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    smeared = cv2.filter2D(pixels, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return Image.fromarray(np.clip(smeared + 0.5, 0, 255).astype(np.uint8))


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
    w, h = image.size
    corners: list[tuple[float, float]] = [(0, 0), (w, 0), (w, h), (0, h)]
    if level == "severe":
        moved = _keystone(corners, w, h, rng)
    else:
        amount = {"mild": 0.06, "moderate": 0.12}[level]
        # Where each output corner samples the input: corners pushed outwards by random
        # amounts, so the scene shrinks unevenly (a label seen at an angle) and nothing is
        # cropped away.
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


def _keystone(
    corners: list[tuple[float, float]], w: int, h: int, rng: random.Random
) -> list[tuple[float, float]]:
    """A strong oblique view: one side of the scene shrinks to ~55-65 % of the other (the
    camera some 45-55° off the label's normal), in a random direction."""
    near = rng.uniform(0.55, 0.65)
    pad = (1 - near) / 2 / near  # the far side's corners move outwards this share of the side
    side = rng.randrange(4)  # which side is far from the camera: top, right, bottom, left
    jitter = [rng.uniform(0.02, 0.06) for _ in range(8)]
    moved = []
    for i, (x, y) in enumerate(corners):
        dx = (1 if x else -1) * jitter[2 * i] * w
        dy = (1 if y else -1) * jitter[2 * i + 1] * h
        far = {0: y == 0, 1: x == w, 2: y == h, 3: x == 0}[side]
        if far and side in (0, 2):
            dx += (1 if x else -1) * pad * w
        elif far:
            dy += (1 if y else -1) * pad * h
        moved.append((x + dx, y + dy))
    return moved


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
    strength = {"mild": 0.45, "moderate": 0.65, "severe": 0.94}[level]
    w, h = image.size
    radius = rng.uniform(0.25, 0.35) * min(w, h)
    cx, cy = rng.uniform(0.2, 0.5) * w, rng.uniform(0.3, 0.7) * h
    if level == "severe":
        # The sheen washes over the code (labels sit at the left of the photo): what is
        # left of the print under it is a few grey levels of contrast.
        cx = rng.uniform(0.08, 0.3) * w
    # A soft white highlight: a blurred ellipse blended over the photo.
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse(
        (cx - radius, cy - radius * 0.7, cx + radius, cy + radius * 0.7),
        fill=int(255 * strength),
    )
    mask = mask.filter(ImageFilter.GaussianBlur(radius / 3))
    if level == "severe":
        # A specular highlight: a small clipped core (pure white, nothing readable under it)
        # inside the broad sheen, as a glossy label under a lamp gives.
        core = rng.uniform(0.025, 0.04) * min(w, h)
        ox, oy = rng.uniform(-0.5, 0.5) * radius, rng.uniform(-0.3, 0.3) * radius
        spot = Image.new("L", image.size, 0)
        ImageDraw.Draw(spot).ellipse(
            (cx + ox - core * 1.6, cy + oy - core, cx + ox + core * 1.6, cy + oy + core), fill=255
        )
        mask = ImageChops.lighter(mask, spot.filter(ImageFilter.GaussianBlur(core / 4)))
    white = Image.new(image.mode, image.size, (255,) * len(image.getbands()))
    return Image.composite(white, image, mask)


def _low_light(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    """A dim scene: the exposure drops and the camera's gain lifts the sensor noise."""
    gain = {"mild": 0.6, "moderate": 0.42, "severe": 0.28}[level] * rng.uniform(0.9, 1.1)
    dark = image.point(lambda v: int(8 + v * gain))
    return _noise(dark, "mild", rng)


def _low_resolution(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    module = {"mild": 2.6, "moderate": 1.9, "severe": 1.3}[level] * rng.uniform(0.95, 1.05)
    factor = module / MODULE_PX
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR)


def _low_contrast(image: Image.Image, level: str, rng: random.Random) -> Image.Image:
    span = {"mild": 0.65, "moderate": 0.30, "severe": 0.12}[level]
    base = rng.uniform(60, 200 - 255 * span * 0.5)
    return image.point(lambda v: int(base + v * span))


_SKIN = ((224, 172, 140), (198, 140, 108), (141, 96, 70), (240, 200, 175))
_STICKERS = ((246, 246, 240), (250, 222, 70), (255, 150, 60), (120, 200, 240))


def _occlusion(
    image: Image.Image, box: Box, level: str, rng: random.Random, code: CodeKind = "qr"
) -> Image.Image:
    """A sticker or a finger over part of the code, reaching a share of the symbol's side in
    from one corner: a corner without a finder pattern when mild, a finder pattern's corner
    (QR: top left, top right, bottom left; DataMatrix: the corners of its L) else."""
    image = image.convert("RGB")
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    depth = {"mild": 0.10, "moderate": 0.12, "severe": 0.22}[level] * side
    depth *= rng.uniform(0.9, 1.1)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    finder = [0, 1, 3] if code == "qr" else [0, 2, 3]
    if level == "mild":
        corner = rng.choice([i for i in range(4) if i not in finder])
    else:
        corner = rng.choice(finder)
    cx, cy = corners[corner]
    inward = (1 if corner in (0, 3) else -1, 1 if corner in (0, 1) else -1)
    # The point the occluder reaches: `depth` in from the corner along the diagonal.
    tip = (cx + inward[0] * depth, cy + inward[1] * depth)
    draw_on = image.copy()
    draw = ImageDraw.Draw(draw_on)
    if rng.random() < 0.5:
        colour = rng.choice(_STICKERS)
        reach = depth * 2 + side * 0.3  # the sticker runs well past the code's corner
        ax, ay = tip
        bx, by = tip[0] - inward[0] * reach, tip[1] - inward[1] * reach * rng.uniform(0.6, 1)
        draw.rectangle((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)), fill=colour)
        return draw_on
    # A fingertip: a long ellipse pointing at the tip from outside, softly out of focus.
    colour = rng.choice(_SKIN)
    width = side * rng.uniform(0.28, 0.36)
    length = side * 1.2
    angle = math.atan2(-inward[1], -inward[0]) + rng.uniform(-0.35, 0.35)
    ux, uy = math.cos(angle), math.sin(angle)
    centre = (tip[0] + ux * length / 2, tip[1] + uy * length / 2)
    points = []
    for k in range(48):
        t = 2 * math.pi * k / 48
        a, b = math.cos(t) * length / 2, math.sin(t) * width / 2
        points.append((centre[0] + a * ux - b * uy, centre[1] + a * uy + b * ux))
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon(points, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, side * 0.012)))
    shade = rng.uniform(0.75, 1.0)
    skin = Image.new("RGB", image.size, tuple(int(c * shade) for c in colour))
    return Image.composite(skin, image, mask)


def _curvature(image: Image.Image, box: Box, level: str, rng: random.Random) -> Image.Image:
    """The label wrapped round a bottle (vertical axis) and seen from the front: columns
    compress towards the edges as cos(angle) and darken with the light falling off."""
    span = math.radians({"mild": 50, "moderate": 80, "severe": 110}[level])
    x0, _, x1, _ = box
    radius = (x1 - x0) / span
    centre = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0)
    w, h = image.size
    limit = math.radians(85)
    left = max(-limit, (0 - centre) / radius)
    right = min(limit, (w - centre) / radius)
    out_left = radius * math.sin(left)
    out_w = max(1, round(radius * (math.sin(right) - math.sin(left))))
    mesh = []
    step = 3
    for ox in range(0, out_w, step):

        def source(px: float) -> float:
            s = max(-1.0, min(1.0, (px + out_left) / radius))
            return centre + radius * math.asin(s)

        a, b = source(ox), source(min(out_w, ox + step))
        mesh.append(((ox, 0, min(out_w, ox + step), h), (a, 0, a, h, b, h, b, 0)))
    rgb = image.convert("RGB")
    wrapped = rgb.transform((out_w, h), Image.Transform.MESH, mesh, Image.Resampling.BICUBIC)
    # Light falls off towards the bottle's sides.
    falloff = Image.new("L", (out_w, 1))
    falloff.putdata(
        [
            int(
                255
                * (0.55 + 0.45 * math.cos(math.asin(max(-1.0, min(1.0, (x + out_left) / radius)))))
            )
            for x in range(out_w)
        ]
    )
    shade = falloff.resize((out_w, h))
    return ImageChops.multiply(wrapped, Image.merge("RGB", (shade,) * 3))


#: The order damages happen in: on the label, then the camera's angle, the light, focus,
#: the sensor's resolution, exposure and noise.
ORDER = (
    "occlusion",
    "curvature",
    "perspective",
    "glare",
    "blur",
    "shake",
    "low_resolution",
    "low_light",
    "noise",
)

#: `handheld`: a label shot in a hurry at a desk, all four damages at once: at an angle, a
#: thumb or a sticker over part of the code (a finder pattern's corner from moderate on),
#: a lamp's highlight, slightly out of focus. The level is the photo's: moderate stacks the
#: moderate angle and cover with mild glare and blur (each of the four moderate is beyond
#: the severe photo of the first generator's `combined`); severe steps two of the four up:
#: a keystone and moderate glare (with the severe cover and moderate blur too, 0 of 20
#: photos decoded: no reader's photo, a photo to retake).
HANDHELD = {
    "mild": (("occlusion", "mild"), ("perspective", "mild"), ("glare", "mild"), ("blur", "mild")),
    "moderate": (
        ("occlusion", "moderate"),
        ("perspective", "moderate"),
        ("glare", "mild"),
        ("blur", "mild"),
    ),
    "severe": (
        ("occlusion", "moderate"),
        ("perspective", "severe"),
        ("glare", "moderate"),
        ("blur", "mild"),
    ),
}
#: `bottle`: a label round a bottle or a can, shot from arm's length: the curve at the level,
#: a small code on the sensor (low resolution) and a slight angle; severe adds a moderate
#: angle and focus blur (110° of curve or 1.9 px per module on top: 0 of 20 decoded).
BOTTLE = {
    "mild": (("curvature", "mild"), ("perspective", "mild"), ("low_resolution", "mild")),
    "moderate": (
        ("curvature", "moderate"),
        ("perspective", "mild"),
        ("low_resolution", "mild"),
    ),
    "severe": (
        ("curvature", "moderate"),
        ("perspective", "moderate"),
        ("blur", "mild"),
        ("low_resolution", "mild"),
    ),
}


def steps_of(kind: str, level: str, rng: random.Random) -> list[tuple[str, str]]:
    """The (damage, level) steps of one photo of `kind` at `level`, in the order they
    happen (`combined` draws its own; a single damage is one step)."""
    if kind == "combined":
        return _combination(level, rng)
    if kind == "handheld":
        return list(HANDHELD[level])
    if kind == "bottle":
        return list(BOTTLE[level])
    return [(kind, level)]


def _combination(level: str, rng: random.Random) -> list[tuple[str, str]]:
    """The damages of one `combined` photo, in the order they happen."""
    others = rng.sample(
        ["blur", "noise", "glare", "low_light", "occlusion"], 1 if level == "mild" else 2
    )
    steps = [("perspective", "mild" if level == "mild" else "moderate")]
    steps += [(kind, "mild" if level == "mild" else "moderate") for kind in others]
    if level == "severe":
        # A strong oblique view (the keystone) and one of the others severe as well: what
        # a hurried shot of a glossy or covered label at a desk gives.
        steps[0] = ("perspective", "severe")
        i = 1 + rng.randrange(len(steps) - 1)
        steps[i] = (steps[i][0], "severe")
    return sorted(steps, key=lambda step: ORDER.index(step[0]))


DAMAGE: dict[str, Callable[[Image.Image, str, random.Random], Image.Image]] = {
    "rotation": _rotation,
    "blur": _blur,
    "shake": _shake,
    "noise": _noise,
    "perspective": _perspective,
    "glare": _glare,
    "low_resolution": _low_resolution,
    "low_contrast": _low_contrast,
    "low_light": _low_light,
}


def damage(
    image: Image.Image,
    kind: str,
    level: str,
    rng: random.Random,
    box: Box | None = None,
    code: CodeKind = "qr",
) -> Image.Image:
    """Apply damage `kind` at `level` to a photo, or to a label for occlusion and curvature
    (`box`: where its `code` is; by default the bounds of its dark pixels). `combined` on a
    whole photo leaves occlusion out (it needs a label), `handheld` and `bottle` their
    label's damages too."""
    if kind not in DAMAGE_TYPES and kind not in DAMAGE:
        raise ValueError(f"damage {kind!r}: choose one of {', '.join(DAMAGE_TYPES)}")
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: choose mild, moderate or severe")
    if kind in LABEL_DAMAGE:
        if box is None:
            box = image.convert("L").point(lambda v: 255 if v < 100 else 0).getbbox()
            box = box or (0, 0, image.width, image.height)
        if kind == "occlusion":
            return _occlusion(image, box, level, rng, code)
        return _curvature(image, box, level, rng)
    if kind in STACKED:
        for step_kind, step_level in steps_of(kind, level, rng):
            if step_kind not in LABEL_DAMAGE:
                image = DAMAGE[step_kind](image, step_level, rng)
        return image
    return DAMAGE[kind](image, level, rng)


def to_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def label_for(text: str, kind: CodeKind, pairs: list[tuple[str, str]] | None = None) -> Image.Image:
    """A label holding `text` as a QR code, or `pairs` as a GS1 DataMatrix."""
    return label_with_box(text, kind, pairs)[0]


def label_with_box(
    text: str, kind: CodeKind, pairs: list[tuple[str, str]] | None = None
) -> tuple[Image.Image, Box]:
    """`label_for`, and where the code's symbol (its dark modules' bounds) is on the label."""
    if kind == "qr":
        code = render_qr(text)
    else:
        assert pairs is not None
        code = render_datamatrix(pairs)
    lines = [f"({ai}) {value}" for ai, value in pairs or []] or ["Scan to verify"]
    bounds = ImageOps.invert(code).getbbox() or (0, 0, code.width, code.height)
    # render_label pastes the code at (10, 10).
    return render_label(code, lines), (
        bounds[0] + 10,
        bounds[1] + 10,
        bounds[2] + 10,
        bounds[3] + 10,
    )


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
    boxed = [label_with_box(text, code_kind, pairs) for text, code_kind, pairs in codes]
    steps = steps_of(kind, level, rng)
    labels = []
    for (label, box), (_, code_kind, _) in zip(boxed, codes, strict=True):
        for step_kind, step_level in steps:
            if step_kind in LABEL_DAMAGE:
                label = damage(label, step_kind, step_level, rng, box, code_kind)
        labels.append(label)
    width = max(800, sum(label.width + 30 for label in labels) + 20)
    photo = photograph(labels, rng, (width, 600))
    for step_kind, step_level in steps:
        if step_kind not in LABEL_DAMAGE:
            photo = damage(photo, step_kind, step_level, rng)
    quality = rng.randint(70, 90) if kind not in STACKED else rng.randint(55, 75)
    expected = tuple(
        text if code_kind == "qr" else encode_element_string(pairs or [])
        for text, code_kind, pairs in codes
    )
    return Photo(to_jpeg(photo, quality), kind, level, expected)
