"""The decoder's fast numerics give exactly what the plain numpy they replaced gave.

The finder-pattern search scans every row of a photo at once (it scanned one row, then one
column, at a time: 30 of a finder repair's 40 ms), the ink grey and the DataMatrix repair's
percentiles skip np.percentile's general machinery, and the DataMatrix edge score no longer
redraws the L for every grid it scores; the finder search's local threshold is OpenCV's
box filter, not Pillow's (which rounds between its passes: checked within that rounding).
Each is checked here against the straightforward version it replaced, kept below as the
reference, on generated images and grids.
"""

from __future__ import annotations

import math
import random

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from scanner import datamatrix, decode, finders
from scanner.finders import MAX_CHECKS, MIN_WIDTH, TOLERANCE


def _runs(line: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    change = np.flatnonzero(line[1:] != line[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [line.size])))
    return starts, lengths


def _pattern_at(
    starts: NDArray[np.int64], lengths: NDArray[np.int64], dark_first: bool
) -> list[tuple[float, float]]:
    found: list[tuple[float, float]] = []
    if lengths.size < 5:
        return found
    window = np.lib.stride_tricks.sliding_window_view(lengths, 5)
    first = 0 if dark_first else 1
    window = window[first::2]
    total = window.sum(axis=1)
    module = total / 7.0
    expected = np.array([1, 1, 3, 1, 1], dtype=np.float64)
    error = np.abs(window - module[:, None] * expected[None, :])
    ok = (total >= MIN_WIDTH) & np.all(error <= TOLERANCE * module[:, None] * 1.5, axis=1)
    ok &= np.abs(window[:, 2] - 3 * module) <= TOLERANCE * module * 2
    for i in np.flatnonzero(ok):
        index = first + 2 * int(i)
        found.append((int(starts[index]) + float(total[i]) / 2, float(module[i])))
    return found


def _confirms(dark: NDArray[np.bool_], x: int, y: int, module: float) -> bool:
    reach = int(module * 6) + 2
    top, bottom = max(0, y - reach), min(dark.shape[0], y + reach + 1)
    column = dark[top:bottom, x]
    starts, lengths = _runs(column)
    for centre, size in _pattern_at(starts, lengths, bool(column[0])):
        if abs(top + centre - y) <= module * 1.5 and abs(size - module) <= module * 0.5:
            return True
    return False


def reference_hits(dark: NDArray[np.bool_], step: int = 2) -> list[tuple[float, float, float]]:
    """The row hits confirmed down their column, one row and one column at a time."""
    hits: list[tuple[float, float, float]] = []
    checks = 0
    for y in range(0, dark.shape[0], step):
        row = dark[y]
        starts, lengths = _runs(row)
        for centre, module in _pattern_at(starts, lengths, bool(row[0])):
            checks += 1
            if checks > MAX_CHECKS:
                break
            if _confirms(dark, int(centre), y, module):
                hits.append((centre, float(y), module))
    return hits


def _finder_scene(seed: int) -> NDArray[np.bool_]:
    """Finder patterns of random sizes at random places over noise: many hits, phantoms
    among them, patterns cut by the image's edges."""
    rng = random.Random(seed)
    width, height = rng.randint(40, 300), rng.randint(40, 300)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 6)):
        module = rng.uniform(1.5, 8)
        x, y = rng.uniform(-10, width), rng.uniform(-10, height)
        for half, fill in ((3.5, 0), (2.5, 255), (1.5, 0)):
            draw.rectangle(
                (x - half * module, y - half * module, x + half * module, y + half * module),
                fill=fill,
            )
    pixels = np.asarray(image).copy()
    noise = np.random.default_rng(seed).random(pixels.shape) < rng.uniform(0, 0.08)
    pixels[noise] = 255 - pixels[noise]
    return pixels < 128


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_finder_scan_of_all_rows_at_once_finds_what_one_row_at_a_time_found(
    seed: int,
) -> None:
    dark = _finder_scene(seed)
    assert finders._hits(dark, 2) == reference_hits(dark)


@settings(max_examples=100, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 60), st.integers(1, 60))))
def test_the_finder_scan_agrees_on_any_binary_image(dark: NDArray[np.bool_]) -> None:
    assert finders._hits(dark, step=1) == reference_hits(dark, step=1)


def test_the_finder_scan_stops_checking_at_the_cap() -> None:
    # 15 x 15 finder patterns: about 700 row crossings, over MAX_CHECKS, each confirmed
    finder = np.zeros((7, 7), dtype=bool)
    finder[[0, -1], :] = finder[:, [0, -1]] = True
    finder[2:5, 2:5] = True
    tile = np.kron(np.pad(finder, 1), np.ones((2, 2), dtype=bool))
    dark = np.tile(tile, (15, 15))
    rows, _, _ = finders._patterns(dark[::2].astype(np.int8))
    assert rows.size > MAX_CHECKS
    hits = finders._hits(dark, 2)
    assert len(hits) > 100 and hits == reference_hits(dark)


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 80))))
def test_the_ink_grey_is_numpys_5th_percentile(pixels: NDArray[np.uint8]) -> None:
    assert finders._ink(pixels) == int(np.percentile(pixels, 5))


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        elements=st.floats(0, 255, allow_nan=False),
    )
)
def test_the_module_cut_percentiles_are_numpys(cells: NDArray[np.float64]) -> None:
    assert datamatrix._percentiles(cells, 5, 95) == [
        float(v) for v in np.percentile(cells, (5, 95))
    ]


def _reference_edge_match(grid: NDArray[np.bool_]) -> float:
    fixed = datamatrix.with_finder(grid)
    edges = np.concatenate(
        (
            grid[:, 0] == fixed[:, 0],
            grid[-1, :] == fixed[-1, :],
            grid[0, :] == fixed[0, :],
            grid[:, -1] == fixed[:, -1],
        )
    )
    return float(edges.mean())


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(2, 40), st.integers(2, 40))))
def test_the_edge_score_is_the_share_of_edge_modules_the_redrawn_l_keeps(
    grid: NDArray[np.bool_],
) -> None:
    for turned in (grid, np.rot90(grid), np.rot90(grid, 2)):  # views, as orientations gives
        assert datamatrix.edge_match(turned) == _reference_edge_match(turned)


def _pillow_means(gray: Image.Image) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """The finder search's means as they were (Pillow's box blurs): each pixel's, lightly
    smoothed, and its neighbourhood's."""
    smooth = np.asarray(gray.filter(ImageFilter.BoxBlur(1)), dtype=np.int16)
    local = gray.filter(ImageFilter.BoxBlur(max(8, min(gray.size) // 30)))
    return smooth, np.asarray(local, dtype=np.int16)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(40, 300),
    st.integers(40, 300),
    st.integers(0, 2**32 - 1),
)
def test_the_finder_threshold_is_pillows_but_for_rounding(
    width: int, height: int, seed: int
) -> None:
    """OpenCV's box filter replaced Pillow's (which rounds between its two passes): on
    random images of blocks and noise, at most a pixel in 50 sits differently, and only
    where its grey is within two levels of the threshold."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1)).repeat(8, 0).repeat(8, 1)
    noisy = blocks[:height, :width] + rng.normal(0, 12, (height, width))
    gray = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    smooth, local = _pillow_means(gray)
    new, old = finders.binarize(gray), smooth < local - 8
    assert new.shape == old.shape
    assert (new != old).mean() <= 0.02
    margin = np.abs(smooth - (local - 8))
    assert (margin[new != old] <= 2).all()


@settings(max_examples=200, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(2, 40), st.integers(2, 40))))
def test_every_turns_edge_score_comes_from_one_comparison(grid: NDArray[np.bool_]) -> None:
    turned = list(datamatrix.orientations(grid))
    assert datamatrix.turn_matches(grid) == [
        (turn, datamatrix.edge_match(grid_turned))
        for turn, grid_turned in zip(datamatrix.turns(*grid.shape), turned, strict=True)
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(datamatrix.SIZES),
    st.lists(st.floats(-40, 40, allow_nan=False), min_size=8, max_size=8),
    st.integers(0, 2**32 - 1),
)
def test_the_module_greys_are_the_mean_of_each_modules_centre(
    size: tuple[int, int], jitter: list[float], seed: int
) -> None:
    """The box filter's sums divided by 9 are numpy's mean of the centre 3x3 of each
    module's 5x5 pixels in the warped symbol, to the last bit (and so the cut)."""
    rows, cols = size
    gray = np.random.default_rng(seed).integers(0, 256, (240, 320), dtype=np.uint8)
    x = [60 + jitter[0], 260 + jitter[1], 260 + jitter[2], 60 + jitter[3]]
    y = [50 + jitter[4], 50 + jitter[5], 190 + jitter[6], 190 + jitter[7]]
    quad = ((x[0], y[0]), (x[1], y[1]), (x[2], y[2]), (x[3], y[3]))
    k = 5
    target = np.array([(0, 0), (cols * k, 0), (cols * k, rows * k), (0, rows * k)], np.float32)
    matrix = cv2.getPerspectiveTransform(np.array(quad, np.float32), target)
    flat = cv2.warpPerspective(gray, matrix, (cols * k, rows * k), flags=cv2.INTER_LINEAR)
    reference = flat.reshape(rows, k, cols, k)[:, 1:4, :, 1:4].mean(axis=(1, 3))
    cells, cut = datamatrix._module_greys(gray, quad, rows, cols)
    assert np.array_equal(cells, reference)
    lo, hi = np.percentile(reference, (5, 95))
    assert cut == float((lo + hi) / 2)


def test_a_redrawn_symbol_is_each_module_a_block_of_pixels() -> None:
    grid = np.random.default_rng(3).integers(0, 2, (12, 26)).astype(bool)
    reference = np.kron(
        np.where(np.pad(grid, datamatrix.QUIET), 0, 255).astype(np.uint8),
        np.ones((datamatrix.DRAW_SCALE, datamatrix.DRAW_SCALE), np.uint8),
    )
    assert np.array_equal(datamatrix.render(grid), reference)


@settings(max_examples=300, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 120), st.integers(1, 120)),
        elements=st.floats(-4, 4, width=32, allow_nan=False),
    ),
    st.sampled_from([(1, 99), (5, 95), (0.5, 99.5)]),
)
def test_the_deblur_grey_range_is_numpys_percentiles(
    values: NDArray[np.float32], shares: tuple[float, float]
) -> None:
    assert decode._tail_percentiles(values, *shares) == [
        float(v) for v in np.percentile(values, shares)
    ]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(0.02, 2.0), (0.01, 2.0), (0.02, 2.5), (0.05, 1.5), (0.03, 2.0)]),
)
def test_a_deconvolution_is_the_plain_numpy_one(seed: int, setting: tuple[float, float]) -> None:
    """The deblur pass's Wiener filter, its transfer function kept per sigma and the grey
    range read off the tails, gives the very pixels of the formula it replaced."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 2, (40, 50)).repeat(6, 0).repeat(6, 1) * 180 + 40
    noisy = np.clip(blocks + rng.normal(0, 20, blocks.shape), 0, 255).astype(np.uint8)
    gray = Image.fromarray(cv2.GaussianBlur(noisy, (7, 7), 2))
    nsr, sigma = setting
    wiener = decode._Wiener(gray)
    wiener(0.02, sigma)  # a transfer function kept from an earlier call
    pixels = np.asarray(gray, dtype=np.float32) / np.float32(255.0)
    spectrum = cv2.dft(pixels, flags=cv2.DFT_COMPLEX_OUTPUT)
    fy = np.fft.fftfreq(pixels.shape[0]).astype(np.float32)[:, None]
    fx = np.fft.fftfreq(pixels.shape[1]).astype(np.float32)[None, :]
    otf = np.exp(np.float32(-2 * (np.pi * sigma) ** 2) * (fx**2 + fy**2))
    gain = otf / (otf**2 + np.float32(nsr))
    sharp = cv2.idft(spectrum * gain[:, :, None], flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    lo, hi = np.percentile(sharp, (1, 99))
    reference = (np.clip((sharp - lo) / max(float(hi - lo), 1e-6), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(wiener(nsr, sigma)), reference)


def _mesh_flattened(crop: Image.Image, centre: float, half: float, span: float) -> Image.Image:
    """The uncurl pass's flattening as it was: Pillow's mesh transform of 2-pixel strips."""
    radius = half / math.sin(span / 2)
    edge = math.radians(80)
    left = -min(edge, math.asin(min(1.0, centre / radius)))
    right = min(edge, math.asin(min(1.0, (crop.width - centre) / radius)))
    width = max(1, round(radius * (right - left)))
    mesh = []
    for x in range(0, width, 2):
        a = centre + radius * math.sin(left + x / radius)
        b = centre + radius * math.sin(left + min(width, x + 2) / radius)
        mesh.append(
            ((x, 0, min(width, x + 2), crop.height), (a, 0, a, crop.height, b, crop.height, b, 0))
        )
    return crop.transform(
        (width, crop.height), Image.Transform.MESH, mesh, Image.Resampling.BICUBIC
    )


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(40, 400),
    height=st.integers(8, 60),
    centre_share=st.floats(0.2, 0.8),
    half_share=st.floats(0.1, 0.45),
    span=st.sampled_from(decode.CURL_SPANS),
)
def test_uncurl_flattening_samples_where_its_map_and_the_old_mesh_do(
    width: int, height: int, centre_share: float, half_share: float, span: float
) -> None:
    """The uncurl pass's flattening (one OpenCV remap: Pillow's mesh transform took 7 ms a
    call) samples the crop where the mesh did and where its returned map says (the map
    zxing's outlines go back by, counting from a pixel's edge where OpenCV counts from its
    centre: half a pixel off at the code's edges before that was minded). On a crop whose
    value is its position (column + 1000 x row, in single precision: cubic interpolation
    keeps a plane), each result pixel reads where it came from, within 0.1 pixel (a
    quarter of one of the mesh's value)."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    crop = Image.fromarray(columns + 1000 * rows, mode="F")
    centre, half = width * centre_share, width * half_share
    flat, column = decode._flattened(crop, centre, half, math.radians(span))
    old = np.asarray(_mesh_flattened(crop, centre, half, math.radians(span)), dtype=np.float64)
    pixels = np.asarray(flat, dtype=np.float64)
    assert flat.size == (old.shape[1], height)
    for x in range(flat.width):
        source = column(x + 0.5) - 0.5  # the centre of result column x, in the crop
        if not 2 <= source <= width - 3:
            continue  # near the border the two pad differently
        expected = source + 1000 * np.arange(height)
        assert np.abs(pixels[:, x] - expected).max() <= 0.1, (x, source)
        # (the mesh drew the sine as straight 2-pixel strips: a tenth of a pixel off it)
        assert np.abs(pixels[:, x] - old[:, x]).max() <= 0.25, (x, source)
