"""Label photos made without `scanner.damage`: a second opinion for `bench scan`.

The decoder's fallbacks were tuned on `scanner.damage`'s photos, so a rate measured only on
them partly grades the tuning. These scenes share none of its code: the code image comes
from zxing-cpp's writer (not the `qrcode` package), is scaled by whole modules with numpy,
laid on a label, and projected into a scene by a homography sampled here (bilinear, numpy)
for a camera tilted about a random axis; then optics and sensor effects are applied as numpy
arrays in the order a phone applies them: a thumb or a sticker over a corner of the code,
a specular highlight, uneven exposure, defocus (box blur, repeated) or motion blur, shot
noise growing with the signal, and a JPEG of random quality. Several at once, always.

The officer frames the code (it fills 30-50 % of the frame's width), so the label's
text may leave the frame. `moderate`: tilt up to 35°, 2-3 effects of moderate strength; `severe`: tilt up to 50°, 3-4
effects, each stronger. Deterministic for a seed.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
import zxingcpp
from numpy.typing import NDArray
from PIL import Image

from scanner.payload import encode_element_string, format_hri

Array = NDArray[np.float64]
LEVELS = ("moderate", "severe")


@dataclass(frozen=True, slots=True)
class Scene:
    jpeg: bytes
    level: str
    effects: tuple[str, ...]
    expected: str


def _modules(text: str, datamatrix: bool) -> Array:
    """The code as a 0/1 array, one element per module (1 = dark), quiet zone included."""
    if datamatrix:
        barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.DataMatrix, gs1=True)
    else:
        barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    image = zxingcpp.write_barcode_to_image(barcode, scale=1)
    pixels = np.asarray(memoryview(image)).astype(np.float64)  # type: ignore[arg-type]
    return np.pad(1.0 - pixels / 255.0, 2)


def _label(modules: Array, module_px: int, rng: random.Random) -> Array:
    """Paper (reflectance ~0.9) with the code on it and some printed lines beside it."""
    code = np.kron(modules, np.ones((module_px, module_px)))
    ink = rng.uniform(0.04, 0.12)
    paper = rng.uniform(0.82, 0.95)
    h, w = code.shape
    label = np.full((h + 16, w + int(w * 1.2)), paper)
    label[8 : 8 + h, 8 : 8 + w] = paper - code * (paper - ink)
    for i in range(4):  # text lines as dashes of ink
        y = 14 + i * max(8, h // 5)
        for x in range(w + 20, label.shape[1] - 10, 9):
            if y + 3 < label.shape[0] and rng.random() < 0.8:
                label[y : y + 3, x : x + 6] = ink + 0.1
    return label


def _homography(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> Array:
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    solution = np.linalg.solve(np.array(rows), np.array(rhs))
    return np.append(solution, 1.0).reshape(3, 3)


def _project(label: Array, scene: Array, quad: list[tuple[float, float]]) -> NDArray[np.bool_]:
    """Paint `label` into `scene` where its corners land on `quad`; returns the mask."""
    h, w = label.shape
    inverse = _homography(quad, [(0, 0), (w - 1, 0), (w - 1, h - 1), (0, h - 1)])
    ys, xs = np.mgrid[0 : scene.shape[0], 0 : scene.shape[1]].astype(np.float64)
    denominator = inverse[2, 0] * xs + inverse[2, 1] * ys + inverse[2, 2]
    u = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]) / denominator
    v = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]) / denominator
    inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    u0 = np.clip(np.floor(u).astype(int), 0, w - 2)
    v0 = np.clip(np.floor(v).astype(int), 0, h - 2)
    fu, fv = np.clip(u - u0, 0, 1), np.clip(v - v0, 0, 1)
    sample = (
        label[v0, u0] * (1 - fu) * (1 - fv)
        + label[v0, u0 + 1] * fu * (1 - fv)
        + label[v0 + 1, u0] * (1 - fu) * fv
        + label[v0 + 1, u0 + 1] * fu * fv
    )
    scene[inside] = sample[inside]
    return np.asarray(inside)


def _box_blur(image: Array, radius: int, axis: int | None = None) -> Array:
    out = image
    for ax in (0, 1) if axis is None else (axis,):
        kernel = np.ones(2 * radius + 1) / (2 * radius + 1)
        out = np.apply_along_axis(np.convolve, ax, out, kernel, mode="same")
    return out


def scene(uri: str, pairs: list[tuple[str, str]] | None, level: str, seed: int) -> Scene:
    """One photo of one label: a QR of `uri`, or a GS1 DataMatrix of `pairs` when given."""
    rng = random.Random(seed)
    severe = level == "severe"
    if pairs:
        modules = _modules(format_hri(pairs), True)
        expected = encode_element_string(pairs)
    else:
        modules = _modules(uri, False)
        expected = uri
    module_px = rng.choice((3, 4, 4, 5))
    label = _label(modules, module_px, rng)
    size = (480, 640)
    tone = rng.uniform(0.25, 0.6)
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    background = tone + 0.1 * np.sin(xs / rng.uniform(20, 60)) * np.cos(ys / rng.uniform(30, 90))
    picture = background.copy()

    # Camera: the officer frames the code (30-50 % of the frame's width), the label's plane
    # tilted by up to 35° (50° severe) about a random axis, seen through a lens of focal
    # length 0.8 frame widths (a phone's), and turned in the frame.
    h, w = label.shape
    code_w = modules.shape[1] * module_px
    code_h = modules.shape[0] * module_px
    origin = (8 + code_w / 2, 8 + code_h / 2)
    scale = rng.uniform(0.3, 0.5) * size[1] / code_w
    tilt = math.radians(rng.uniform(10, 50 if severe else 35))
    axis = rng.uniform(0, math.pi)
    turn = math.radians(rng.uniform(-25, 25))
    focal = 0.8 * size[1]

    def camera(x: float, y: float) -> tuple[float, float]:
        px, py = (x - origin[0]) * scale, (y - origin[1]) * scale
        px, py = (
            px * math.cos(turn) - py * math.sin(turn),
            px * math.sin(turn) + py * math.cos(turn),
        )
        ax, ay = math.cos(axis), math.sin(axis)
        along = px * ax + py * ay
        cx, cy = px - along * ax, py - along * ay
        sx = cx + along * math.cos(tilt) * ax
        sy = cy + along * math.cos(tilt) * ay
        factor = focal / (focal + along * math.sin(tilt))
        return sx * factor, sy * factor

    corners = [camera(x, y) for x, y in ((0, 0), (w, 0), (w, h), (0, h))]
    code_corners = [
        camera(x, y)
        for x, y in ((8, 8), (8 + code_w, 8), (8 + code_w, 8 + code_h), (8, 8 + code_h))
    ]
    # The code in the frame, 20 px from its edges, somewhere near the middle.
    fit = min(
        1.0,
        (size[1] / 2 - 20) / max(abs(x) for x, _ in code_corners),
        (size[0] / 2 - 20) / max(abs(y) for _, y in code_corners),
    )
    room_x = size[1] / 2 - 20 - fit * max(abs(x) for x, _ in code_corners)
    room_y = size[0] / 2 - 20 - fit * max(abs(y) for _, y in code_corners)
    shift = (
        size[1] / 2 + rng.uniform(-1, 1) * min(60.0, room_x),
        size[0] / 2 + rng.uniform(-1, 1) * min(60.0, room_y),
    )
    corners = [(shift[0] + x * fit, shift[1] + y * fit) for x, y in corners]
    corner_points = [(shift[0] + x * fit, shift[1] + y * fit) for x, y in code_corners]
    _project(label, picture, corners)

    effects = ["thumb", "sticker", "highlight", "dim", "defocus", "motion", "grain"]
    chosen = rng.sample(effects, rng.randint(3, 4) if severe else rng.randint(2, 3))
    if "thumb" in chosen and "sticker" in chosen:
        chosen.remove("sticker")
    strength = 1.6 if severe else 1.0
    code_side = math.dist(corner_points[0], corner_points[1])
    if "thumb" in chosen or "sticker" in chosen:
        cx, cy = rng.choice(corner_points)
        centre_x = sum(p[0] for p in corner_points) / 4
        centre_y = sum(p[1] for p in corner_points) / 4
        inward = (centre_x - cx, centre_y - cy)
        norm = math.hypot(*inward) or 1.0
        reach = code_side * rng.uniform(0.05, 0.09) * strength
        tip = (cx + inward[0] / norm * reach, cy + inward[1] / norm * reach)
        if "thumb" in chosen:
            # An ellipse whose tip is at `tip`, its long axis pointing away from the code.
            length, width = code_side * 0.9, code_side * rng.uniform(0.25, 0.32)
            ux, uy = -inward[0] / norm, -inward[1] / norm
            mx, my = tip[0] + ux * length / 2, tip[1] + uy * length / 2
            a = ((xs - mx) * ux + (ys - my) * uy) / (length / 2)
            b = (-(xs - mx) * uy + (ys - my) * ux) / (width / 2)
            inside = a**2 + b**2 <= 1
            picture[inside] = rng.uniform(0.45, 0.8) * (1 - 0.25 * b[inside] ** 2)
        else:
            half = code_side * rng.uniform(0.18, 0.25)
            ox, oy = tip[0] - inward[0] / norm * half, tip[1] - inward[1] / norm * half
            inside = (np.abs(xs - ox) <= half) & (np.abs(ys - oy) <= half)
            picture[inside] = rng.uniform(0.7, 0.95)
    if "highlight" in chosen:
        hx = rng.uniform(0.3, 0.7) * size[1]
        hy = rng.uniform(0.3, 0.7) * size[0]
        sigma = rng.uniform(40, 90)
        peak = rng.uniform(0.35, 0.6) * strength
        picture = picture + peak * np.exp(-((xs - hx) ** 2 + (ys - hy) ** 2) / (2 * sigma**2))
    if "dim" in chosen:
        vignette = 1 - 0.5 * ((xs / size[1] - 0.5) ** 2 + (ys / size[0] - 0.5) ** 2)
        picture = picture * rng.uniform(0.3, 0.45) / strength**0.5 * vignette
    if "defocus" in chosen:
        radius = 1 if not severe else 2
        for _ in range(2):
            picture = _box_blur(picture, radius)
    if "motion" in chosen:
        picture = _box_blur(picture, 2 if not severe else 3, axis=rng.randrange(2))
    np_rng = np.random.default_rng(seed)
    grain = 0.015 + (0.03 * strength if "grain" in chosen else 0.0)
    picture = picture + np_rng.normal(0, 1, picture.shape) * grain * np.sqrt(
        np.clip(picture, 0, None) + 0.05
    )
    rgb = np.clip(picture, 0, 1)[..., None] * np.array([1.0, 0.97, 0.9])
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(45, 85))
    return Scene(buffer.getvalue(), level, tuple(sorted(chosen)), expected)
