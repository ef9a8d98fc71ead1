"""Re-read a DataMatrix whose L-shaped finder a sticker, a finger or a highlight breaks.

zxing-cpp finds a DataMatrix by tracing its solid L (the left and bottom edges) and gives
up when a corner of it is covered, even when only one or two modules are: Reed-Solomon
error correction would restore the data under the cover, but the symbol is never located.
So the symbol is located here without the L, by its outline, and redrawn clean:

1. dark pixels (adaptive threshold) closed into blobs; a blob that is a dense, convex-ish
   quadrilateral is a candidate symbol. Its outline is the convex hull simplified to four
   corners; a hull with a fifth corner (a corner cut off by the occluder) has its shortest
   edge dropped and its neighbours extended to meet where the corner was.
2. the quadrilateral is warped flat (a perspective warp, so a photo at an angle works too)
   and sampled on the module grid of each symbol size (ISO/IEC 16022 squares, rectangles
   and the rectangular extensions) whose shape and module size fit the outline;
3. the L and the timing edges are painted in each orientation the shape allows, the grid
   is rendered as a clean image, and zxing reads it. A wrong size or orientation does not
   pass the error correction; only a full DataMatrix read counts. zxing reads the grids
   whose edges already look most like an L and timing edges;
4. where none reads, the best two that fit well are read sharpened (`SHARP_READS`); where
   none reads still but the best nearly fits, that outline gets each corner in turn put
   where the other three say it is (a finger cut it short), and the first such outline of
   a photo is refined: its corners moved while the edges fit better (`_refined`).

OpenCV (headless) does the thresholding, blobs, hulls and warps: 10-40 ms a photo, and only
on photos the cheaper passes (and, on a second label, the second look's) did not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

# The images here are small: OpenCV's thread pool would only compete with the decoding
# processes (one per core) for the same cores.
cv2.setNumThreads(1)

#: (rows, columns) of every DataMatrix ECC 200 symbol: squares, rectangles, and DMRE.
SIZES: tuple[tuple[int, int], ...] = (
    *((n, n) for n in (10, 12, 14, 16, 18, 20, 22, 24, 26, 32, 36, 40, 44, 48, 52, 64)),
    (8, 18), (8, 32), (12, 26), (12, 36), (16, 36), (16, 48),
    (8, 48), (8, 64), (8, 80), (8, 96), (8, 120), (8, 144), (12, 64), (12, 88), (16, 64),
    (20, 36), (20, 44), (20, 64), (22, 48), (24, 48), (24, 64), (26, 40), (26, 48), (26, 64),
)  # fmt: skip
#: Modules this many pixels wide (in the photo) or narrower are not sampled reliably.
MIN_MODULE = 1.6
#: The largest module looked for (pixels).
MAX_MODULE = 14.0
#: At most this many candidate outlines per photo (the largest first).
MAX_CANDIDATES = 4
#: Pixels per module of the redrawn symbol, and its quiet zone (modules).
DRAW_SCALE = 4
#: Outlines grown by these many pixels in turn (thresholding eats edge pixels).
GROW = (0.0, 1.0, 2.0)
#: zxing reads at most this many redrawn grids per outline, the best-scored first.
MAX_READS = 8
#: A symbol's share of dark modules lies between these (its data is scrambled).
DARK_SHARE = (0.3, 0.7)
QUIET = 2
#: An outline whose best grid matches at least this share of the L and timing edges is
#: refined (a symbol the blur or the angle kept from reading; text or paper match less):
#: on a deblurred photo,
REFINE_FROM = 0.9
#: ... and on the photo as it is, from this share. A sharp symbol's outline a pixel or two
#: wide of it (a finger's shadow beside its L) samples a grid that fits 0.85-0.9 and reads
#: once refined (issue 11: a moderate `handheld` DataMatrix of a bench run; 3 of 900
#: moderate pack photos); on 2,900 bench photos it read that one more and cost ~1 % CPU.
PLAIN_REFINE_FROM = 0.85
#: An outline none of whose grids reads but whose best fits at least this share of the L
#: and timing edges gets each corner in turn put where the other three say it is
#: (`_read_completed`): 8 of 59 moderate pack photos of a DataMatrix no pass read (a finger
#: over a corner of a small rectangle) read so, 5 from 0.85; nothing more from 0.65.
COMPLETE_FROM = 0.75
#: ... when the corners lie at least this many pixels from where the others put them (all
#: four lie equally far: less, and the outline is a parallelogram already),
COMPLETE_OFF = 2.0
#: ... and zxing reads the best-scored this many of the four grids.
COMPLETE_READS = 2
#: The refinement's steps (pixels), coarse first, and at most this many sweeps of the
#: eight coordinates each (noise lets a fit creep on and on).
REFINE_STEPS = (2.0, 1.0, 0.5)
REFINE_SWEEPS = 4
#: The sharpenings (see `sample`) the refined grid is read with, in turn.
SHARPEN = (0.0, 1.0, 2.0)
#: Where none of an outline's best grids reads as sampled, the best SHARP_READS of them
#: that fit the L and timing edges from SHARP_FROM are read sharpened (SHARPEN's others)
#: before a corner is put back: a blurred symbol with a finger or a sticker over its L
#: greys its lone modules across the cut, and its outline, cut by the cover, is worse
#: refined (issue 11: 4 of 50 unread moderate `combined` pack photos read so, and 4 of the
#: 18 covered ones unread in 1,200 photos of a day's tags; on one of them the plain grid
#: had 42 modules wrong, sharpened 13).
SHARP_READS = 2
SHARP_FROM = 0.8
#: An outline none of whose grids reads but whose best fits the L and timing edges this
#: well is handed back (`reads`' `near`): the caller may read it again from its own crop.
NEAR_FROM = 0.9

#: A pixel is ink when darker than this percentage (tried in turn: a finger is darker than
#: half the paper and, merged with a code, hides its outline) of the brightest paper near it.
INK_SHARES = (40, 28)
#: The closing (pixels) that merges a code's modules into one blob, for each share.
CLOSINGS = (5, 7)
#: ... of the paper within this window (pixels): small, so that the background beside a
#: label (darker than half the paper too) is dark only in a thin band, not merged with a code.
PAPER_WINDOW = 9
#: A finger over a symbol's corner that reaches the label's edge joins the symbol's blob to
#: that thin band: the symbol is then part of the label's outline, never a candidate of its
#: own. The first share's blobs are also opened by this many pixels, which cuts the band
#: and frees the symbol; outlines found only so rank after the others (OPENED_RANK). On
#: 2,400 bench photos: 6 more DataMatrix codes read (moderate 4, mild 2), 0 misreads.
OPENING = 11
OPENED_RANK = 2

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]
Grid = NDArray[np.bool_]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A quadrilateral that may be a DataMatrix: corners in order round the outline, the
    first edge (corner 0 to 1) along the longer side."""

    quad: Quad
    long: float
    short: float


def _intersect(a: Point, b: Point, c: Point, d: Point) -> Point | None:
    """Where line a-b meets line c-d (None when nearly parallel)."""
    x1, y1 = a
    x2, y2 = b
    x3, y3 = c
    x4, y4 = d
    den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
    if abs(den) < 1e-6:
        return None
    t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / den
    return (x1 + t * (x2 - x1), y1 + t * (y2 - y1))


def _four_corners(hull: NDArray[Any]) -> list[Point] | None:
    """The hull as a quadrilateral: simplified to 4 corners, or 5 with the cut-off corner
    restored (the shortest edge dropped, its neighbours extended to meet)."""
    perimeter = cv2.arcLength(hull, True)
    for share in (0.02, 0.035, 0.05):
        approx = cv2.approxPolyDP(hull, share * perimeter, True).reshape(-1, 2)
        points = [(float(x), float(y)) for x, y in approx]
        if len(points) == 4:
            return points
        if len(points) == 5:
            edges = [
                np.hypot(
                    points[(i + 1) % 5][0] - points[i][0], points[(i + 1) % 5][1] - points[i][1]
                )
                for i in range(5)
            ]
            i = int(np.argmin(edges))
            corner = _intersect(
                points[(i - 1) % 5], points[i], points[(i + 1) % 5], points[(i + 2) % 5]
            )
            if corner is None:
                continue
            kept = [points[(i + k) % 5] for k in range(2, 5)]  # i+2, i+3, i+4
            return [corner, *kept]
    return None


def _ordered(points: list[Point]) -> Quad:
    """Corners clockwise on screen, starting so that the first edge is the longer side."""
    centre = np.mean(points, axis=0)
    points = sorted(points, key=lambda p: np.arctan2(p[1] - centre[1], p[0] - centre[0]))
    a = np.hypot(points[1][0] - points[0][0], points[1][1] - points[0][1])
    b = np.hypot(points[2][0] - points[1][0], points[2][1] - points[1][1])
    if b > a:
        points = points[1:] + points[:1]
    return (points[0], points[1], points[2], points[3])


def candidates(gray: NDArray[np.uint8]) -> list[Candidate]:
    """Outlines in the photo that may be DataMatrix symbols, the largest first."""
    found: list[tuple[float, int, Candidate]] = []
    # Ink is darker than half the paper around it; the background beside a label and most
    # stickers and fingers are not (an adaptive threshold would outline the label itself).
    paper = cv2.dilate(
        gray, cv2.getStructuringElement(cv2.MORPH_RECT, (PAPER_WINDOW, PAPER_WINDOW))
    )
    blobs: list[tuple[NDArray[Any], int]] = []
    opened: list[NDArray[Any]] = []
    for share, close in zip(INK_SHARES, CLOSINGS, strict=True):
        dark = np.where(gray.astype(np.int16) * 100 < paper.astype(np.int16) * share, 255, 0)
        dark = dark.astype(np.uint8)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (close, close))
        merged = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, kernel)
        blobs += [(contour, 0) for contour in _outer(merged)]
        if share == INK_SHARES[0]:
            opening = cv2.getStructuringElement(cv2.MORPH_RECT, (OPENING, OPENING))
            opened = _outer(cv2.morphologyEx(merged, cv2.MORPH_OPEN, opening))
    # The opened blobs last: an outline both ways keeps its rank among the others.
    for contour, after in [*blobs, *((contour, OPENED_RANK) for contour in opened)]:
        area = cv2.contourArea(contour)
        if area < 400:
            continue
        hull = cv2.convexHull(contour)
        if area / max(cv2.contourArea(hull), 1.0) < 0.7:
            continue
        corners = _four_corners(hull)
        if corners is None:
            continue
        fitted = _fitted(_ordered(corners), contour.reshape(-1, 2).astype(np.float64))
        # Also the smallest rectangle round the blob: right for a photo taken square on,
        # whatever an occluder did to the sides' fit.
        box = [(float(x), float(y)) for x, y in cv2.boxPoints(cv2.minAreaRect(contour))]
        for rank, quad in enumerate((fitted, _ordered(box))):
            if any(_near(quad, c.quad) for _, _, c in found):
                continue
            long = float(np.hypot(quad[1][0] - quad[0][0], quad[1][1] - quad[0][1]))
            short = float(np.hypot(quad[2][0] - quad[1][0], quad[2][1] - quad[1][1]))
            if short >= 8 * MIN_MODULE and long / short <= 20:
                found.append((area, rank + after, Candidate(quad, long, short)))
    found.sort(key=lambda f: (f[1], -f[0]))
    return [c for _, _, c in found[: MAX_CANDIDATES * 2]]


def _outer(mask: NDArray[Any]) -> list[NDArray[Any]]:
    """The outer boundaries of `mask`'s blobs at every depth (a code sits inside the outline
    of its label)."""
    contours, tree = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if tree is None:
        return []
    return [c for c, node in zip(contours, tree[0], strict=True) if int(node[3]) == -1]


def _fitted(quad: Quad, points: NDArray[np.float64]) -> Quad:
    """`quad` with each side refitted (least squares) to the outline's points along it:
    corners of a simplified hull sit on jagged pixels, and a corner cut off by an occluder
    is where the fitted sides meet, not where the outline turns."""
    lines = []
    for i in range(4):
        a, b = np.array(quad[i]), np.array(quad[(i + 1) % 4])
        along = b - a
        length = float(np.hypot(*along))
        if length < 1:
            return quad
        unit = along / length
        rel = points - a
        t = rel @ unit
        off = np.abs(rel[:, 0] * unit[1] - rel[:, 1] * unit[0])
        near = (off <= 3) & (t > 0.1 * length) & (t < 0.9 * length)
        if near.sum() < 4:
            lines.append((quad[i], quad[(i + 1) % 4]))
            continue
        vx, vy, x0, y0 = cv2.fitLine(points[near].astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01)
        p0 = (float(x0[0]), float(y0[0]))
        lines.append((p0, (p0[0] + float(vx[0]) * 100, p0[1] + float(vy[0]) * 100)))
    corners = []
    for i in range(4):
        corner = _intersect(*lines[(i - 1) % 4], *lines[i])
        if corner is None:
            return quad
        corners.append(corner)
    return (corners[0], corners[1], corners[2], corners[3])


def _near(a: Quad, b: Quad) -> bool:
    return all(abs(p[0] - q[0]) + abs(p[1] - q[1]) < 6 for p, q in zip(a, b, strict=True))


def sizes_for(candidate: Candidate) -> Iterator[tuple[int, int]]:
    """Symbol sizes (rows along the short side, columns along the long one) that fit the
    outline's shape and give a plausible module size."""
    ratio = candidate.long / candidate.short
    for rows, cols in SIZES:
        if not 0.75 <= (cols / rows) / ratio <= 1.33:
            continue
        module = candidate.short / rows
        if MIN_MODULE <= module <= MAX_MODULE:
            yield rows, cols


def sample(gray: NDArray[np.uint8], quad: Quad, rows: int, cols: int, sharpen: float = 0.0) -> Grid:
    """The symbol warped flat and read on a rows x cols grid: True where a module is dark.

    `sharpen`: each module's grey pushed this many times its difference from the mean of
    the 3x3 modules round it before the threshold. Focus blur greys a lone dark module
    among light ones (and a lone light one among dark) towards the other side of a
    threshold over the whole symbol; its neighbours' mean says which way it leans."""
    cells, cut = _module_greys(gray, quad, rows, cols)
    if sharpen:
        local = cv2.blur(cells, (3, 3), borderType=cv2.BORDER_REPLICATE)
        cells = cells + sharpen * (cells - local)
    return np.asarray(cells < cut)


def _module_greys(
    gray: NDArray[np.uint8], quad: Quad, rows: int, cols: int
) -> tuple[NDArray[np.float64], float]:
    """The symbol in `quad` warped flat: each module's grey (the mean of its centre 3x3
    pixels) and the dark/light cut between the 5th and 95th percentiles of those greys."""
    k = 5
    target = np.array([(0, 0), (cols * k, 0), (cols * k, rows * k), (0, rows * k)], np.float32)
    matrix = cv2.getPerspectiveTransform(np.array(quad, np.float32), target)
    flat = cv2.warpPerspective(gray, matrix, (cols * k, rows * k), flags=cv2.INTER_LINEAR)
    # The sums of each module's centre 3x3 pixels by OpenCV's box filter (exact integers in
    # single precision), divided as numpy's mean divides: the same greys as
    # `flat.reshape(rows, k, cols, k)[:, 1:4, :, 1:4].mean(axis=(1, 3))` in a fifth of the
    # time (a repair samples thousands of grids; that mean was 40 % of its time).
    sums = cv2.boxFilter(flat, cv2.CV_32F, (3, 3), normalize=False)[2::k, 2::k]
    cells = sums.astype(np.float64) / 9.0
    lo, hi = _percentiles(cells, 5, 95)
    return cells, float((lo + hi) / 2)


def _percentiles(values: NDArray[np.float64], *shares: float) -> list[float]:
    """`np.percentile(values, shares)` (linear), without its per-call overhead: a DataMatrix
    repair samples a few thousand grids of a few hundred modules each, and numpy's general
    percentile took a third of its time."""
    flat = values.ravel()
    last = flat.size - 1
    positions = [share / 100 * last for share in shares]
    kth = sorted({i for p in positions for i in (int(p), min(int(p) + 1, last))})
    ordered = np.partition(flat, kth)
    out = []
    for position in positions:
        below = int(position)
        a, b = float(ordered[below]), float(ordered[min(below + 1, last)])
        t = position - below
        # numpy's interpolation, the same way round (from the nearer end)
        out.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)
    return out


def with_finder(grid: Grid) -> Grid:
    """`grid` with the L (left column, bottom row) solid and the timing edges (top row,
    right column) alternating, as ISO/IEC 16022 draws them."""
    rows, cols = grid.shape
    fixed = grid.copy()
    fixed[:, 0] = True
    fixed[-1, :] = True
    fixed[0, :] = np.arange(cols) % 2 == 0
    fixed[:, -1] = (rows - 1 - np.arange(rows)) % 2 == 0
    return fixed


def turns(rows: int, cols: int) -> tuple[int, ...]:
    """The quarter turns a grid may lie at: rectangles upright or upside down; squares in
    all 4."""
    return (0, 1, 2, 3) if rows == cols else (0, 2)


def orientations(grid: NDArray[Any]) -> Iterator[NDArray[Any]]:
    """The grid as it may lie (`turns`)."""
    for turn in turns(*grid.shape):
        yield np.rot90(grid, turn)


def render(grid: Grid) -> NDArray[np.uint8]:
    """A clean picture of `grid` (dark modules black on white, with a quiet zone)."""
    padded = np.pad(grid, QUIET)
    pixels = np.where(padded, 0, 255).astype(np.uint8)
    return pixels.repeat(DRAW_SCALE, 0).repeat(DRAW_SCALE, 1)


def grown(quad: Quad, pixels: float) -> Quad:
    """`quad` with each side moved outwards by `pixels`: thresholding loses the outer
    half-pixel of edge modules, which over 64 modules shifts the grid by a module."""
    corners = []
    for i in range(4):
        here, before, after = quad[i], quad[(i - 1) % 4], quad[(i + 1) % 4]
        x, y = here
        for other in (before, after):
            dx, dy = here[0] - other[0], here[1] - other[1]
            norm = max(float(np.hypot(dx, dy)), 1e-6)
            x, y = x + dx / norm * pixels, y + dy / norm * pixels
        corners.append((x, y))
    return (corners[0], corners[1], corners[2], corners[3])


def reads(
    gray: NDArray[np.uint8],
    read: Callable[[NDArray[np.uint8]], list[T]],
    refine_from: float | None = None,
    near: list[Quad] | None = None,
) -> Iterator[tuple[T, Quad]]:
    """Each symbol `read` (zxing on a clean picture, answering what it decodes) finds once
    the outlines in `gray` are resampled and their finder patterns redrawn. `refine_from`:
    the first outline none of whose grids reads but whose best grid fits this share of the
    L and timing edges is refined (`_read_refined`; once: on photos nothing reads it is in
    vain). None: no outline is refined. `near`, if given, collects the outlines left unread
    whose best grid fits from NEAR_FROM."""
    refine_at = refine_from
    for candidate in candidates(gray):
        found, best = _read_candidate(gray, candidate, read)
        if found:
            yield found[0], candidate.quad
        else:
            if refine_at is not None and best is not None and best[0] >= refine_at:
                refine_at = None  # one outline refined at most
                again = _read_refined(gray, best, read)
                if again is not None:
                    yield again, candidate.quad
                    continue
            if near is not None and best is not None and best[0] >= NEAR_FROM:
                near.append(candidate.quad)


#: The best grid of an outline: its edges' fit, the (grown) outline, rows and columns.
Fit = tuple[float, Quad, int, int]


def _read_candidate(
    gray: NDArray[np.uint8], candidate: Candidate, read: Callable[[NDArray[np.uint8]], list[T]]
) -> tuple[list[T], Fit | None]:
    """Every fitting size, growth and orientation is scored by how well the grid's edges
    already look like an L and timing edges (an occluder spoils a few modules, a wrong size
    or turn about half); zxing reads only the best few, then (`SHARP_FROM`) the best
    `SHARP_READS` sharpened, then (`COMPLETE_FROM`) the best grid's outline with a corner a
    finger cut short put back. What it read (one symbol at most), or else the best grid's
    fit."""
    scored: list[tuple[float, int, Grid, int, Fit]] = []
    quads = [grown(candidate.quad, pixels) for pixels in GROW]
    for rows, cols in sizes_for(candidate):
        for quad in quads:
            grid = sample(gray, quad, rows, cols)
            if not DARK_SHARE[0] < grid.mean() < DARK_SHARE[1]:
                continue  # the inside of a label, a text block: not a symbol's mix
            for turn, score in turn_matches(grid):
                scored.append((score, len(scored), grid, turn, (score, quad, rows, cols)))
    scored.sort(key=lambda s: (-s[0], s[1]))
    found = _read_best([(grid, turn) for _, _, grid, turn, _ in scored[:MAX_READS]], read)
    if found:
        return found, None
    sharp = [
        (sample(gray, quad, rows, cols, sharpen), turn)
        for score, _, _, turn, (_, quad, rows, cols) in scored[:SHARP_READS]
        if score >= SHARP_FROM
        for sharpen in SHARPEN[1:]
    ]
    found = _read_best(sharp, read)
    if found:
        return found, None
    if scored and scored[0][0] >= COMPLETE_FROM:
        found = _read_completed(gray, scored[0][4], read)
        if found:
            return found, None
    return [], scored[0][4] if scored else None


def _read_completed(
    gray: NDArray[np.uint8], best: Fit, read: Callable[[NDArray[np.uint8]], list[T]]
) -> list[T]:
    """The best grid's outline with one corner moved to where the other three put it (a
    parallelogram: a symbol in a photo is one, nearly), sampled on the same grid; zxing
    reads the best-scored few.

    A finger over a corner of a small rectangle (16x36 modules at 2-3 pixels each) joins
    the symbol's blob at that corner only: the hull there follows the finger's edge, the
    corner comes out several pixels short, and a grid drawn to it drifts by a module along
    the long side. The other three corners are the symbol's own."""
    _, quad, rows, cols = best
    # Each corner lies as far from where the other three put it (|q0 - q1 + q2 - q3|).
    off = quad[0][0] - quad[1][0] + quad[2][0] - quad[3][0]
    off_y = quad[0][1] - quad[1][1] + quad[2][1] - quad[3][1]
    if np.hypot(off, off_y) < COMPLETE_OFF:
        return []  # the outline is a parallelogram already
    scored: list[tuple[float, int, Grid, int]] = []
    for i in range(4):
        a, b, c = quad[(i - 1) % 4], quad[(i + 1) % 4], quad[(i + 2) % 4]
        moved = [*quad]
        moved[i] = (a[0] + b[0] - c[0], a[1] + b[1] - c[1])
        grid = sample(gray, (moved[0], moved[1], moved[2], moved[3]), rows, cols)
        if not DARK_SHARE[0] < grid.mean() < DARK_SHARE[1]:
            continue  # the moved corner took in paper or background
        for turn, score in turn_matches(grid):
            scored.append((score, len(scored), grid, turn))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return _read_best([(grid, turn) for _, _, grid, turn in scored[:COMPLETE_READS]], read)


def _read_best(
    grids: list[tuple[Grid, int]], read: Callable[[NDArray[np.uint8]], list[T]]
) -> list[T]:
    """The first symbol zxing reads among `grids` (each turned as given, its L and timing
    edges redrawn), best-scored first: one at most."""
    for grid, turn in grids:
        found = read(render(with_finder(np.rot90(grid, turn))))
        if found:
            return found[:1]
    return []


def _read_refined(
    gray: NDArray[np.uint8], best: Fit, read: Callable[[NDArray[np.uint8]], list[T]]
) -> T | None:
    """The best grid's outline moved corner by corner until its edges look most like an L
    and timing edges, then sampled plain and sharpened (`SHARPEN`).

    A blurred symbol at an angle (issue 11: moderate `combined` and `handheld` photos of a
    GS1 DataMatrix, an 8x64 rectangle) thresholds into an outline a pixel or two off at
    a corner: over 64 modules the grid drifts by half a module and a third of the modules
    come out wrong. The timing edge alternates every module, so it is matched only where
    the grid is aligned."""
    _, quad, rows, cols = best
    quad = _refined(gray, quad, rows, cols)
    for sharpen in SHARPEN:
        grid = sample(gray, quad, rows, cols, sharpen)
        turned = max(orientations(grid), key=edge_match)
        found = read(render(with_finder(turned)))
        if found:
            return found[0]
    return None


def _refined(gray: NDArray[np.uint8], quad: Quad, rows: int, cols: int) -> Quad:
    """`quad` with each corner coordinate moved by REFINE_STEPS pixels while that improves
    the edges' fit (coordinate ascent, coarse steps first). Each try samples only the edge
    modules' centres (`_Edges`): ~0.1 ms where a whole grid takes ~0.3 ms."""
    corners = [list(point) for point in quad]
    edges = _Edges(gray, quad, rows, cols)
    best = edges.fit(_quad(corners))
    for step in REFINE_STEPS:
        improved, sweeps = True, 0
        while improved and sweeps < REFINE_SWEEPS:
            improved, sweeps = False, sweeps + 1
            for corner in corners:
                for axis in (0, 1):
                    for move in (-step, step):
                        corner[axis] += move
                        score = edges.fit(_quad(corners))
                        if score > best:
                            best, improved = score, True
                            break
                        corner[axis] -= move
    return _quad(corners)


class _Edges:
    """The edge modules of a rows x cols grid, sampled at their centres (bilinear) for any
    outline, thresholded where `sample` thresholds the grid in the first outline."""

    def __init__(self, gray: NDArray[np.uint8], quad: Quad, rows: int, cols: int) -> None:
        self.gray = gray
        self.shape = (rows, cols)
        ring = np.zeros((rows, cols), bool)
        ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
        self.rows, self.cols = np.nonzero(ring)
        self.centres = np.stack((self.cols + 0.5, self.rows + 0.5), axis=1).astype(np.float32)
        self.target = np.array([(0, 0), (cols, 0), (cols, rows), (0, rows)], np.float32)
        _, self.cut = _module_greys(gray, quad, rows, cols)

    def fit(self, quad: Quad) -> float:
        """edge_match of the grid in `quad`, its best turn."""
        back = cv2.getPerspectiveTransform(self.target, np.array(quad, np.float32))
        points = cv2.perspectiveTransform(self.centres[None], back)[0]
        xs = np.ascontiguousarray(points[:, 0]).reshape(1, -1)
        ys = np.ascontiguousarray(points[:, 1]).reshape(1, -1)
        values = cv2.remap(self.gray, xs, ys, cv2.INTER_LINEAR).ravel()
        grid = np.zeros(self.shape, bool)
        grid[self.rows, self.cols] = values < self.cut
        return max(score for _, score in turn_matches(grid))


def _quad(corners: list[list[float]]) -> Quad:
    a, b, c, d = ((float(x), float(y)) for x, y in corners)
    return (a, b, c, d)


def edge_match(grid: Grid) -> float:
    """The share of edge modules that already are what the L and timing edges need."""
    rows, cols = grid.shape
    left, bottom, top, right = _edges(rows, cols)
    matching = int(
        np.count_nonzero(grid[:, 0] == left)
        + np.count_nonzero(grid[-1, :] == bottom)
        + np.count_nonzero(grid[0, :] == top)
        + np.count_nonzero(grid[:, -1] == right)
    )
    return matching / float(2 * (rows + cols))


def turn_matches(grid: Grid) -> list[tuple[int, float]]:
    """(turn, edge_match(np.rot90(grid, turn))) for each turn `orientations` gives, all in
    one comparison: each turn's edge modules are the grid's own, taken in another order
    (`_turned_edges`). A repair scores tens of thousands of grids; turning each and scoring
    the turns one by one was a fifth of its time."""
    rows, cols = grid.shape
    picks, wanted = _turned_edges(rows, cols)
    matching = np.count_nonzero(grid.ravel()[picks] == wanted, axis=1)
    total = float(2 * (rows + cols))
    return [(turn, int(m) / total) for turn, m in zip(turns(rows, cols), matching, strict=True)]


@lru_cache(maxsize=256)
def _turned_edges(rows: int, cols: int) -> tuple[NDArray[np.intp], Grid]:
    """For each turn of a rows x cols grid (`orientations`), the flat indices of the modules
    on its left column, bottom row, top row and right column (as edge_match reads them),
    and what the redrawn L and timing edges put there."""
    index = np.arange(rows * cols).reshape(rows, cols)
    picks, wanted = [], []
    for turned in orientations(index):
        picks.append(np.concatenate((turned[:, 0], turned[-1, :], turned[0, :], turned[:, -1])))
        wanted.append(np.concatenate(_edges(*turned.shape)))
    return np.array(picks), np.array(wanted)


@lru_cache(maxsize=256)
def _edges(rows: int, cols: int) -> tuple[Grid, Grid, Grid, Grid]:
    """The left column, bottom row, top row and right column with_finder draws for a grid
    of this size (they depend on nothing else: edge_match scores thousands of grids)."""
    fixed = with_finder(np.zeros((rows, cols), dtype=bool))
    return fixed[:, 0], fixed[-1, :], fixed[0, :], fixed[:, -1]
