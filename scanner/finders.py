"""Find QR finder patterns in a photo, and repaint one that a sticker or a finger hides.

zxing-cpp locates a QR code by its three finder patterns (the 7x7-module squares in three
corners) and gives up when one is covered, even though the code's error correction could
restore the data modules under the cover. When a photo shows two finder patterns of the
same size, the third lies where the geometry of a square code puts it: at one of six places
(the two found are a side of the square with the corner at either end and the code on
either side, or a diagonal with the code on either side). `places` lists them; the decoder
paints a clean finder pattern (and its white separator) at each in turn and, where zxing
then locates a code but cannot read it (a photo taken at an angle, where the square is
not a parallelogram), at places a few modules beside it (`nudges`).

Finder patterns are found the classic way: rows of the binarized image are scanned for runs
dark-light-dark-light-dark in the proportions 1:1:3:1:1, and each hit is confirmed by the
same proportions down its column; hits a few modules apart are one pattern.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

#: Each run may differ from its share of the pattern's width by this share of a module.
TOLERANCE = 0.6
#: Finder patterns narrower than this (pixels, 7 modules) are noise.
MIN_WIDTH = 10
#: At most this many row hits are checked down their column (a noisy photo has thousands).
MAX_CHECKS = 400
#: At most this many candidate patterns are paired (the largest clusters first).
MAX_FINDERS = 6
#: At most this many pairs of patterns are tried.
MAX_PAIRS = 3


@dataclass(frozen=True, slots=True)
class Finder:
    """A finder pattern's centre and module size (pixels), and how many scan lines hit it."""

    x: float
    y: float
    module: float
    hits: int


def binarize(gray: Image.Image) -> NDArray[np.bool_]:
    """Dark pixels (True): darker than the mean of their neighbourhood by a margin.

    OpenCV's box filter (edges replicated, as Pillow's BoxBlur does): 0.3 ms where Pillow's
    took 2 on an 800x600 photo; the means differ by a grey level at most, on 2 % of pixels
    (Pillow rounds between its two passes), and 1,200 bench photos read the same codes."""
    pixels = np.asarray(gray)
    radius = max(8, min(gray.size) // 30)
    local = cv2.blur(pixels, (2 * radius + 1,) * 2, borderType=cv2.BORDER_REPLICATE)
    # A light blur first: sensor noise would otherwise break runs into many short ones.
    smooth = cv2.blur(pixels, (3, 3), borderType=cv2.BORDER_REPLICATE)
    return np.asarray(smooth.astype(np.int16) < local.astype(np.int16) - 8)


#: A cell of `_patterns`' input that belongs to no line (the padding after a short one).
_PAD = 2


def _patterns(
    lines: NDArray[np.int8],
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Every dark-light-dark-light-dark run sequence in the proportions 1:1:3:1:1 along the
    rows of `lines` (1 dark, 0 light, _PAD after a line's end): the row, the sequence's
    centre and its module, in row-major order.

    All rows at once: a row at a time was 300 numpy calls for the rows of a photo and up to
    MAX_CHECKS more for the columns confirming them (30 ms of a 40 ms finder search)."""
    width = lines.shape[1]
    starts_mask = np.ones(lines.shape, dtype=bool)
    starts_mask[:, 1:] = lines[:, 1:] != lines[:, :-1]
    rows, starts = np.nonzero(starts_mask)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = width
    last_of_row = np.ones(rows.size, dtype=bool)
    last_of_row[:-1] = rows[1:] != rows[:-1]
    ends[last_of_row] = width
    lengths = ends - starts
    colours = lines[rows, starts]
    empty = np.empty(0, dtype=np.float64)
    if rows.size < 5:
        return np.empty(0, dtype=np.intp), empty, empty
    count = rows.size - 4
    window = np.stack([lengths[k : k + count] for k in range(5)], axis=1)
    usable = (rows[:count] == rows[4:]) & (colours[:count] == 1)
    for k in range(5):
        usable &= colours[k : k + count] != _PAD
    total = window.sum(axis=1)
    module = total / 7.0
    expected = np.array([1, 1, 3, 1, 1], dtype=np.float64)
    error = np.abs(window - module[:, None] * expected[None, :])
    ok = usable & (total >= MIN_WIDTH) & np.all(error <= TOLERANCE * module[:, None] * 1.5, axis=1)
    ok &= np.abs(window[:, 2] - 3 * module) <= TOLERANCE * module * 2
    found = np.flatnonzero(ok)
    return rows[found], starts[found] + total[found] / 2, module[found]


def _confirmed(
    dark: NDArray[np.bool_],
    xs: NDArray[np.intp],
    ys: NDArray[np.intp],
    modules: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """For each row hit (x, y, module): the column through it also crosses 1:1:3:1:1 around
    y, within 6 modules (each hit's stretch of its column is a row of one array)."""
    height = dark.shape[0]
    reach = (modules * 6).astype(np.intp) + 2
    tops = np.maximum(0, ys - reach)
    bottoms = np.minimum(height, ys + reach + 1)
    spans = bottoms - tops
    offsets = np.arange(int(spans.max()))
    inside = offsets[None, :] < spans[:, None]
    where = np.minimum(tops[:, None] + offsets[None, :], height - 1)
    segments = np.where(inside, dark[where, xs[:, None]], _PAD).astype(np.int8)
    hit, centre, size = _patterns(segments)
    near = (np.abs(tops[hit] + centre - ys[hit]) <= modules[hit] * 1.5) & (
        np.abs(size - modules[hit]) <= modules[hit] * 0.5
    )
    confirmed = np.zeros(xs.size, dtype=bool)
    confirmed[hit[near]] = True
    return confirmed


def _hits(dark: NDArray[np.bool_], step: int) -> list[tuple[float, float, float]]:
    """(x, y, module) of each 1:1:3:1:1 crossing of every `step`-th row that its column
    confirms, in row-major order; only the first MAX_CHECKS crossings are checked (a noisy
    photo has thousands)."""
    rows, centres, modules = _patterns(dark[::step].astype(np.int8))
    rows, centres, modules = rows[:MAX_CHECKS], centres[:MAX_CHECKS], modules[:MAX_CHECKS]
    if not rows.size:
        return []
    ys = rows * step
    ok = _confirmed(dark, centres.astype(np.intp), ys, modules)
    return [
        (float(c), float(y), float(m))
        for c, y, m in zip(centres[ok], ys[ok], modules[ok], strict=True)
    ]


def find_finders(dark: NDArray[np.bool_], step: int = 2) -> list[Finder]:
    """Finder patterns in a binarized image, the most often hit first."""
    hits = _hits(dark, step)
    clusters: list[list[tuple[float, float, float]]] = []
    for hit in hits:
        for cluster in clusters:
            cx, cy, cm = cluster[-1]
            if abs(hit[0] - cx) <= 2 * cm and abs(hit[1] - cy) <= 2 * cm + step:
                cluster.append(hit)
                break
        else:
            clusters.append([hit])
    finders = [
        Finder(
            float(np.mean([h[0] for h in c])),
            float(np.mean([h[1] for h in c])),
            float(np.mean([h[2] for h in c])),
            len(c),
        )
        for c in clusters
        if len(c) >= 2
    ]
    return sorted(finders, key=lambda f: -f.hits)[:MAX_FINDERS]


Vector = tuple[float, float]


def third_finder_places(a: Finder, b: Finder) -> Iterator[tuple[Vector, Vector, Vector]]:
    """(centre, x axis, y axis) of each place the missing third pattern could be."""
    dx, dy = b.x - a.x, b.y - a.y
    px, py = -dy, dx  # a perpendicular of the same length
    side = (dx, dy), (px, py)
    for sign in (1, -1):
        yield (a.x + sign * px, a.y + sign * py), *side  # the corner at a
        yield (b.x + sign * px, b.y + sign * py), *side  # the corner at b
        diagonal = ((dx + px) / 2, (dy + py) / 2), ((dx - px) / 2, (dy - py) / 2)
        yield ((a.x + b.x + sign * px) / 2, (a.y + b.y + sign * py) / 2), *diagonal


def _square(centre: Vector, ux: Vector, uy: Vector, half: float) -> list[Vector]:
    cx, cy = centre
    return [
        (cx + sx * half * ux[0] + sy * half * uy[0], cy + sx * half * ux[1] + sy * half * uy[1])
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]


def paint_finder(
    image: Image.Image, centre: Vector, ux: Vector, uy: Vector, module: float, dark: int
) -> None:
    """Draw a finder pattern (with its white separator) centred at `centre`, its sides
    along the unit vectors `ux` and `uy`."""
    draw = ImageDraw.Draw(image)
    for half, fill in ((4.5, 255), (3.5, dark), (2.5, 255), (1.5, dark)):
        draw.polygon(_square(centre, ux, uy, half * module), fill=fill)


@dataclass(frozen=True, slots=True)
class Place:
    """A crop of the photo around a code with a missing finder pattern, and where (in the
    crop) and how the missing pattern would sit."""

    crop: Image.Image
    offset: tuple[int, int]
    centre: Vector
    ux: Vector
    uy: Vector
    module: float
    ink: int
    #: The centres of the two patterns found (in the photo).
    finders: tuple[Vector, Vector] = ((0.0, 0.0), (0.0, 0.0))

    def painted(self, nudge: tuple[float, float] = (0.0, 0.0)) -> Image.Image:
        """The crop with the pattern painted, moved by `nudge` modules along the axes."""
        crop = self.crop.copy()
        ox, oy = nudge
        centre = (
            self.centre[0] + (ox * self.ux[0] + oy * self.uy[0]) * self.module,
            self.centre[1] + (ox * self.ux[1] + oy * self.uy[1]) * self.module,
        )
        paint_finder(crop, centre, self.ux, self.uy, self.module, self.ink)
        return crop


def _ink(pixels: NDArray[np.uint8]) -> int:
    """`int(np.percentile(pixels, 5))` (the grey of the ink), read off the histogram: the
    same number in a tenth of the time (np.percentile sorts 480,000 pixels)."""
    cumulative = np.bincount(pixels.ravel(), minlength=256).cumsum()
    position = 0.05 * (pixels.size - 1)
    below = int(position)
    t = position - below
    a = float(np.searchsorted(cumulative, below, side="right"))
    b = float(np.searchsorted(cumulative, min(below + 1, pixels.size - 1), side="right"))
    # numpy's linear interpolation, the same way round (from the nearer end)
    return int(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)


def places(gray: Image.Image) -> Iterator[Place]:
    """Where a third finder pattern may be missing: for pairs of patterns of about the same
    size (most often crossed first: real patterns are crossed by many scan lines, phantoms
    in the data by few), each of the six places the geometry allows."""
    dark = binarize(gray)
    finders = find_finders(dark)
    pixels = np.asarray(gray)
    ink = _ink(pixels)
    pairs = []
    for i, a in enumerate(finders):
        for b in finders[i + 1 :]:
            ratio = a.module / b.module
            distance = math.hypot(b.x - a.x, b.y - a.y) / ((a.module + b.module) / 2)
            if 0.7 <= ratio <= 1.4 and 14 <= distance <= 180:
                pairs.append((-min(a.hits, b.hits), distance, a, b))
    pairs.sort(key=lambda p: (p[0], p[1]))
    width, height = gray.size
    for _, _, a, b in pairs[:MAX_PAIRS]:
        module = (a.module + b.module) / 2
        for centre, vx, vy in third_finder_places(a, b):
            if not (0 <= centre[0] < width and 0 <= centre[1] < height):
                continue
            nx, ny = math.hypot(*vx), math.hypot(*vy)
            ux, uy = (vx[0] / nx, vx[1] / nx), (vy[0] / ny, vy[1] / ny)
            # The code's fourth corner completes a parallelogram with the three centres;
            # which completion depends on which is the corner: take all three.
            points = [(a.x, a.y), (b.x, b.y), centre]
            corners = points + [
                (p[0] + q[0] - r[0], p[1] + q[1] - r[1])
                for p, q, r in (
                    (points[0], points[1], points[2]),
                    (points[1], points[2], points[0]),
                    (points[0], points[2], points[1]),
                )
            ]
            pad = module * 8
            box = (
                max(0, int(min(c[0] for c in corners) - pad)),
                max(0, int(min(c[1] for c in corners) - pad)),
                min(width, int(max(c[0] for c in corners) + pad)),
                min(height, int(max(c[1] for c in corners) + pad)),
            )
            local = (centre[0] - box[0], centre[1] - box[1])
            yield Place(
                gray.crop(box),
                (box[0], box[1]),
                local,
                ux,
                uy,
                module,
                ink,
                ((a.x, a.y), (b.x, b.y)),
            )


def nudges(reach: int = 3) -> list[tuple[float, float]]:
    """Offsets (modules) around a place, nearest first, the place itself excluded: seen at
    an angle a square is not a parallelogram, so the pattern may be a few modules off."""
    grid = [(x, y) for x in range(-reach, reach + 1) for y in range(-reach, reach + 1)]
    return sorted((p for p in grid if p != (0, 0)), key=lambda p: (p[0] ** 2 + p[1] ** 2, p))
