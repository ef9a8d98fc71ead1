"""Real zxing-cpp on rendered and damaged label photos."""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.scenes import scene
from ledger.digital_link import DigitalLink
from ledger.errors import InvalidInput
from scanner.damage import (
    DAMAGE_TYPES,
    LEVELS,
    damage,
    label_for,
    photograph,
    render_ean13,
    synth_photo,
    to_jpeg,
)
from scanner.decode import (
    FIRST_LOOK,
    decode_file,
    decode_files,
    decode_image,
    decode_image_bytes,
)
from scanner.payload import classify, encode_element_string

GTIN = "09506000134352"
PACK = [("01", GTIN), ("17", "281231"), ("10", "L7"), ("21", "SN0042")]


def tag(serial: str) -> str:
    return DigitalLink(GTIN, "L7", serial, os.urandom(65)).to_uri()


#: Damages of photos taken the way phones take them, checked on fixed codes below (a
#: random signature changes the QR code, and with it which photos are hard).
PHONE_DAMAGE = ("occlusion", "curvature", "combined", "handheld", "bottle")


@pytest.mark.parametrize("kind", [k for k in DAMAGE_TYPES if k not in PHONE_DAMAGE])
@pytest.mark.parametrize("code", ["qr", "datamatrix"])
def test_moderate_damage_decodes(kind: str, code: str) -> None:
    for seed in range(3):
        spec = (tag(f"S{seed}"), "qr", None) if code == "qr" else ("", "datamatrix", PACK)
        photo = synth_photo([spec], kind, "moderate", seed)  # type: ignore[list-item]
        texts = [c.text for c in decode_image_bytes(photo.jpeg)]
        assert list(photo.expected) == texts, (kind, seed)


def test_damage_is_deterministic_per_seed() -> None:
    spec = [(tag("S1"), "qr", None)]
    a = synth_photo(spec, "noise", "severe", 5)  # type: ignore[arg-type]
    b = synth_photo(spec, "noise", "severe", 5)  # type: ignore[arg-type]
    assert a.jpeg == b.jpeg
    with pytest.raises(ValueError, match="damage"):
        damage(Image.new("RGB", (10, 10)), "smudge", "mild", random.Random(0))
    assert set(LEVELS) == {"mild", "moderate", "severe"}


def test_several_codes_in_one_photo() -> None:
    uri = tag("S9")
    labels = [label_for(uri, "qr"), label_for("", "datamatrix", PACK)]
    photo = photograph(labels, random.Random(1), (1000, 500))
    codes = decode_image_bytes(to_jpeg(photo))
    by_format = {c.format: c for c in codes}
    assert set(by_format) == {"QRCode", "DataMatrix"}
    assert by_format["QRCode"].text == uri
    dm = by_format["DataMatrix"]
    assert dm.text == encode_element_string(PACK) and dm.gs1 and dm.symbology_id == "]d2"
    payload = classify(dm.text, dm.symbology_id, dm.gs1)
    assert (payload.kind, payload.serial, payload.lot) == ("gs1", "SN0042", "L7")


def test_a_huge_photo_and_a_tiny_one_decode() -> None:
    uri = tag("S3")
    photo = photograph([label_for(uri, "qr")], random.Random(2), (800, 600))
    huge = photo.resize((4000, 3000))
    assert [c.text for c in decode_image(huge)] == [uri]
    tiny = photo.resize((340, 255), Image.Resampling.BILINEAR)
    assert [c.text for c in decode_image(tiny)] == [uri]


def test_ean13_is_decoded_and_reported_as_foreign(tmp_path: Path) -> None:
    path = tmp_path / "ean.png"
    photograph([render_ean13("5901234123457")], random.Random(0), (600, 300)).save(path)
    codes = decode_file(path)
    assert [(c.text, c.format) for c in codes] == [("5901234123457", "EAN13")]
    payload = classify(codes[0].text, codes[0].symbology_id)
    assert payload.kind == "foreign" and "EAN-13" in payload.message


def test_image_without_a_code_and_corrupt_files_are_reported(tmp_path: Path) -> None:
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (640, 480), (200, 180, 150)).save(blank)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"corrupt\.png: not a readable image"):
        decode_file(corrupt)
    with pytest.raises(InvalidInput, match=r"empty\.jpg: empty file"):
        decode_file(empty)
    results = {r.path.name: r for r in decode_files([blank, corrupt, empty])}
    assert results["blank.jpg"].error == f"{blank}: no barcode found in the image"
    assert (
        results["corrupt.png"].error is not None and "corrupt.png" in results["corrupt.png"].error
    )
    assert all(not r.codes for r in results.values())


def test_transparent_png_decodes() -> None:
    uri = tag("S4")
    label = label_for(uri, "qr").convert("L")
    rgba = Image.new("RGBA", label.size, (0, 0, 0, 0))
    rgba.putalpha(label.point(lambda v: 255 - v))  # black modules opaque, paper transparent
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    assert [c.text for c in decode_image_bytes(buffer.getvalue())] == [uri]


def _clean_and_damaged(kind: str, level: str, code: str, seed: int) -> tuple[bytes, str, str]:
    """A photo of two labels: a clean QR, and a second code damaged by `kind` at `level`
    (damaged before it is photographed, so only that label is hard to read)."""
    rng = random.Random(seed)
    easy_text = DigitalLink(GTIN, "L1", f"E{seed}").to_uri()
    hard_text = DigitalLink(GTIN, "L1", f"H{seed}").to_uri()
    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", f"H{seed}")]
    easy = label_for(easy_text, "qr")
    hard = label_for(hard_text, "qr") if code == "qr" else label_for("", "datamatrix", pairs)
    hard = damage(hard.convert("RGB"), kind, level, rng).convert("L")
    photo = photograph([hard, easy], rng, (max(800, easy.width + hard.width + 80), 600))
    expected = hard_text if code == "qr" else encode_element_string(pairs)
    return to_jpeg(photo, 85), easy_text, expected


@pytest.mark.parametrize(
    ("kind", "code", "seed", "how"),
    [
        # zxing locates the DataMatrix but cannot read it in the whole photo: the crop can.
        ("low_resolution", "datamatrix", 12, "second-look-crop"),
        # not even located in the first pass: found by the next pass once the QR is masked.
        ("noise", "qr", 39, "second-look-contrast"),
    ],
)
def test_a_hard_second_code_is_not_lost_to_an_easy_first(
    kind: str, code: str, seed: int, how: str
) -> None:
    jpeg, easy, hard = _clean_and_damaged(kind, "severe", code, seed)
    image = Image.open(io.BytesIO(jpeg))
    first_only = decode_image(image, second_look=False)
    assert [c.text for c in first_only] == [easy]  # without the second look it is lost
    codes = {c.text: c for c in decode_image(image)}
    assert set(codes) == {easy, hard}
    assert codes[easy].strategy == "as-is" and codes[hard].strategy == how
    assert decode_image_bytes(jpeg) == decode_image(image)


def test_second_look_finds_nothing_that_is_not_there() -> None:
    """One code per photo, every damage type: the second look adds no phantom codes. (Fixed
    tags: a random signature makes a new QR code each run, and once in a while one whose
    photo is missed, which is not what this checks.)"""
    for i, kind in enumerate(DAMAGE_TYPES):
        photo = synth_photo([(fixed_tag(f"P{i}"), "qr", None)], kind, "moderate", 100 + i)
        codes = decode_image_bytes(photo.jpeg)
        assert [c.text for c in codes] == list(photo.expected)


def fixed_tag(serial: str) -> str:
    """A signed-looking tag with a fixed signature: the same photo on every run."""
    return DigitalLink(GTIN, "L7", serial, bytes(range(65))).to_uri()


def fixed_photo(kind: str, level: str, n: int) -> tuple[bytes, str]:
    spec = (fixed_tag(f"SN{n:05d}"), "qr", None)
    photo = synth_photo([spec], kind, level, n * 7919 + 3)  # type: ignore[list-item]
    return photo.jpeg, photo.expected[0]


# Each of these photos decoded with no pass before the pass named (checked against the
# decoder without it when the pass was added).
@pytest.mark.parametrize(
    ("kind", "level", "n", "how"),
    [
        # a finger over the top-right finder pattern
        ("occlusion", "moderate", 1, "finder-repair"),
        # a sticker over a whole finder pattern and the modules round it
        ("occlusion", "severe", 0, "finder-repair"),
        # the sheen of a glossy label washing out the top-left finder pattern
        ("glare", "severe", 4, "finder-repair"),
        # several damages at once: a sticker over a finder, the camera at an angle, glare
        ("combined", "moderate", 1, "finder-repair"),
        # a sticker over a finder, at an angle, in low light: found a module or two beside
        # where a square code would put it
        ("combined", "moderate", 13, "finder-repair"),
        # out of focus, at an angle, with sensor noise or in low light
        ("combined", "moderate", 22, "deblur"),
        ("combined", "moderate", 23, "deblur"),
        # a label round a bottle
        ("curvature", "moderate", 5, "uncurl"),
        ("curvature", "moderate", 8, "uncurl"),
        # a small photo of a bottle (519 x 389): uncurled at twice its size
        ("bottle", "moderate", 39, "uncurl"),
        ("bottle", "severe", 4, "uncurl"),
        # a label round a narrower bottle: uncurled as spanning 130 or 160 degrees
        ("curvature", "severe", 0, "uncurl"),
        ("curvature", "severe", 3, "uncurl"),
    ],
)
def test_hard_photos_decode_by_the_pass_made_for_them(
    kind: str, level: str, n: int, how: str
) -> None:
    jpeg, expected = fixed_photo(kind, level, n)
    codes = decode_image_bytes(jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(expected, how)]
    # The deblur pass ends with a finder repair of its own (on the sharpened photo).
    also = {"deblur"} if how == "finder-repair" else set()
    without = [s for s in _pass_names(jpeg) if s != how and s not in also]
    assert decode_image(Image.open(io.BytesIO(jpeg)), strategies=without) == []


def _pass_names(jpeg: bytes) -> list[str]:
    from scanner.decode import _gray, _passes

    return [name for name, _ in _passes(_gray(Image.open(io.BytesIO(jpeg))))]


def test_no_misreads_on_a_fixed_set_of_hard_photos() -> None:
    """Severe damage of every kind: whatever is decoded is the code's text, never another."""
    for i, kind in enumerate(DAMAGE_TYPES):
        jpeg, expected = fixed_photo(kind, "severe", 40 + i)
        texts = {c.text for c in decode_image_bytes(jpeg)}
        assert texts <= {expected}, kind


def test_damage_levels_of_the_new_kinds_are_deterministic() -> None:
    for kind in ("occlusion", "curvature", "combined", "handheld", "bottle"):
        for level in LEVELS:
            assert fixed_photo(kind, level, 3) == fixed_photo(kind, level, 3)


@pytest.mark.parametrize("kind", PHONE_DAMAGE)
def test_moderate_phone_damage_decodes(kind: str) -> None:
    for n in range(6):
        jpeg, expected = fixed_photo(kind, "moderate", n)
        assert [c.text for c in decode_image_bytes(jpeg)] == [expected], (kind, n)


def test_a_datamatrix_round_a_bottle_decodes() -> None:
    for seed in range(3):
        photo = synth_photo([("", "datamatrix", PACK)], "curvature", "moderate", seed)
        assert [c.text for c in decode_image_bytes(photo.jpeg)] == list(photo.expected)


def test_two_labels_each_with_a_covered_finder_pattern_are_both_read() -> None:
    """Finder repair goes on after the first code it reads (it used to stop there)."""
    specs = [
        (fixed_tag("A00001"), "qr", None),
        (fixed_tag("B00001"), "qr", None),
    ]
    photo = synth_photo(specs, "occlusion", "moderate", 104730)  # type: ignore[arg-type]
    codes = decode_image_bytes(photo.jpeg)
    assert sorted(c.text for c in codes) == sorted(photo.expected)
    assert {c.strategy for c in codes} == {"finder-repair"}


def _datamatrix_photo(kind: str, level: str, seed: int) -> tuple[bytes, str]:
    photo = synth_photo([("", "datamatrix", PACK)], kind, level, seed)
    return photo.jpeg, photo.expected[0]


# A sticker or a finger over a corner of the DataMatrix's L: zxing-cpp traces the L to find
# the symbol and read none of these (nor did any pass before the DataMatrix repair).
@pytest.mark.parametrize(
    ("kind", "level", "seed"),
    [
        ("occlusion", "moderate", 0),  # a corner of the L
        ("occlusion", "moderate", 2),
        ("occlusion", "moderate", 4),
        ("occlusion", "severe", 3),  # 22 % of the side
        ("occlusion", "mild", 0),  # the corner where the timing edges meet
        # several damages at once: a sticker over the L, the camera at an angle, glare or
        # low light
        ("combined", "moderate", 0),
        ("combined", "moderate", 5),
        # a finger over the corner, reaching the label's edge: the symbol's blob joined the
        # dark band round the label and was never an outline of its own
        ("occlusion", "mild", 17),
        ("occlusion", "moderate", 12),
        ("handheld", "moderate", 35),
        ("combined", "moderate", 58),
    ],
)
def test_a_datamatrix_with_its_l_covered_decodes(kind: str, level: str, seed: int) -> None:
    jpeg, expected = _datamatrix_photo(kind, level, seed)
    codes = decode_image_bytes(jpeg)
    assert [(c.text, c.strategy, c.gs1, c.symbology_id) for c in codes] == [
        (expected, "datamatrix-repair", True, "]d2")
    ]
    names = _pass_names(jpeg)
    before = names[: names.index("datamatrix-repair")]
    assert decode_image(Image.open(io.BytesIO(jpeg)), strategies=before) == []


def test_a_covered_and_blurred_datamatrix_decodes_refined_or_sharpened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sticker over the L and focus blur at once. The photo's own DataMatrix repair
    refines the outline, which nearly fits, and reads it; without that refinement the
    outline reads only on the deblurred photo (tagged `deblur`), not as sampled on the
    blurred one."""
    import scanner.datamatrix as dm

    jpeg, expected = _datamatrix_photo("combined", "moderate", 6)
    assert [(c.text, c.strategy) for c in decode_image_bytes(jpeg)] == [
        (expected, "datamatrix-repair")
    ]
    photo = Image.open(io.BytesIO(jpeg))
    assert [c.text for c in decode_image(photo, strategies=["datamatrix-repair"])] == [expected]
    monkeypatch.setattr(dm, "PLAIN_REFINE_FROM", 1.01)  # no refinement on the blurred photo
    assert [(c.text, c.strategy) for c in decode_image_bytes(jpeg)] == [(expected, "deblur")]
    assert decode_image(photo, strategies=["datamatrix-repair"]) == []


def test_a_fixed_set_of_combined_damage_photos_decodes() -> None:
    """Several damages at once, the way phone photos combine them (perspective with two of
    blur, noise, glare, low light and a sticker or finger over a finder pattern), QR and
    DataMatrix: 30 fixed photos, never a wrong text. The decoder before the DataMatrix
    repair read 17 of them; 9 QR codes blurred and noisy at once are still not read."""
    read = 0
    for n in range(30):
        if n % 3 == 2:
            jpeg, expected = _datamatrix_photo("combined", "moderate", 100 + n)
        else:
            jpeg, expected = fixed_photo("combined", "moderate", 100 + n)
        texts = [c.text for c in decode_image_bytes(jpeg)]
        assert set(texts) <= {expected}, n  # never a misread
        read += texts == [expected]
    assert read >= 21


def test_the_datamatrix_repair_finds_no_code_that_is_not_there() -> None:
    """Label text, a QR code and plain paper redrawn with an L are no DataMatrix: the repair
    must find nothing rather than something (a wrong size or turn fails error correction)."""
    from scanner.decode import _datamatrix_repair

    for i, kind in enumerate(("noise", "blur", "glare")):
        photo = photograph([label_for(tag(f"N{i}"), "qr")], random.Random(i), (800, 600))
        damaged = damage(photo, kind, "severe", random.Random(i))
        assert _datamatrix_repair(damaged.convert("L")).codes == []


def _signed(serial: str, n: int) -> str:
    """A tag with a fixed signature of its own per photo (the same photo on every run)."""
    return DigitalLink(GTIN, "L7", serial, bytes((n * 7 + k) % 256 for k in range(65))).to_uri()


@pytest.mark.parametrize(
    ("n", "kind", "level", "seed"),
    [
        # blurred, a finder covered, at an angle: the uncurl pass read "7560"
        (7, "combined", "moderate", 7_000_236),
        # a tiny, blurred photo: the first look read "32"
        (212, "low_resolution", "severe", 212_001_041),
    ],
)
def test_no_micro_qr_code_out_of_noise(n: int, kind: str, level: str, seed: int) -> None:
    """Noise arranges itself into a Micro QR code (one finder pattern, a few characters);
    no label prints one, so none is ever reported."""
    spec = (_signed(f"SN{n:06d}", n), "qr", None)
    photo = synth_photo([spec], kind, level, seed)  # type: ignore[list-item]
    texts = {c.text for c in decode_image_bytes(photo.jpeg)}
    assert texts <= set(photo.expected)


# Several moderate damages at once (combined, moderate), none of which any pass read
# before the pass named: dim light with sensor noise at an angle (denoise: a smoothed
# local threshold); a finger or sticker over a finder pattern of a label out of focus at
# an angle (deblur: finder repair on the sharpened photo); blur
# with noise or in dim light (deblur: a less damped deconvolution, or a damped one binarized
# by a local threshold).
@pytest.mark.parametrize(
    ("n", "how"),
    [
        (26, "denoise"),  # low light + noise
        (34, "denoise"),
        (44, "denoise"),
        (17, "deblur"),  # occlusion + blur
        (29, "deblur"),
        (68, "deblur"),
        (5, "deblur"),  # blur + noise
        (63, "deblur"),
        (47, "deblur"),  # blur + low light
        # (A DataMatrix with occlusion and blur, n 67, read only by the deblur pass before,
        # now reads earlier, its grid sharpened: see the test of SHARP_READS.)
    ],
)
def test_combined_moderate_damage_decodes(
    n: int, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scanner.decode as decode

    serial = f"SN{n:06d}"
    spec = (_signed(serial, n), "qr", None)
    seed = 1_000_003 * n + 215
    photo = synth_photo([spec], "combined", "moderate", seed)  # type: ignore[list-item]
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], how)]
    # The deblur pass ends with the denoise pass's threshold of its own (after deblurring).
    also = {"deblur"} if how == "denoise" else set()
    without = [s for s in _pass_names(photo.jpeg) if s != how and s not in also]
    # (The repairs' look at a noisy photo smoothed, NOISY, reads two of the denoise
    # pass's photos as well: the same smoothing, another way in.)
    monkeypatch.setattr(decode, "NOISY", math.inf)
    assert decode_image(Image.open(io.BytesIO(photo.jpeg)), strategies=without) == []


def test_a_photo_stops_at_its_budget() -> None:
    """No pass starts once a photo has used its CPU budget: an unreadable photo costs a
    bounded share of a folder's scan."""
    jpeg, _ = fixed_photo("blur", "severe", 0)
    image = Image.open(io.BytesIO(jpeg))
    started = time.process_time()
    assert decode_image(image, budget=0.0) == []
    spent_at_once = time.process_time() - started
    started = time.process_time()
    assert decode_image(image) == []
    assert spent_at_once < (time.process_time() - started) / 3


def test_the_budget_also_cuts_a_pass_of_several_attempts() -> None:
    """Deblur is one pass of seven attempts (100-480 ms on a photo nothing reads): once the
    photo's budget is spent, no further attempt of it starts either."""
    import scanner.decode as decoding

    ran: list[int] = []

    def attempt(n: int) -> Callable[[], Any]:
        def run() -> Any:
            ran.append(n)
            return decoding._Found([], [])

        return run

    token = decoding._deadline.set(time.process_time() - 1)  # already spent
    try:
        decoding._first(attempt(1), attempt(2), attempt(3))
    finally:
        decoding._deadline.reset(token)
    assert ran == [1]
    decoding._first(attempt(4), attempt(5))  # no photo under way: no deadline
    assert ran == [1, 4, 5]


def test_the_deconvolution_is_numpys_to_a_grey_level() -> None:
    """The Wiener deconvolution through OpenCV's single-precision transform gives the picture
    numpy's double-precision transform gave."""
    import numpy as np

    import scanner.decode as decoding

    jpeg, _ = fixed_photo("blur", "severe", 0)
    gray = Image.open(io.BytesIO(jpeg)).convert("L")
    pixels = np.asarray(gray, dtype=np.float32) / np.float32(255.0)
    fy = np.fft.fftfreq(pixels.shape[0])[:, None]
    fx = np.fft.rfftfreq(pixels.shape[1])[None, :]
    otf = np.exp(-2 * (np.pi * decoding.DEBLUR_SIGMA) ** 2 * (fx**2 + fy**2))
    sharp = np.fft.irfft2(
        np.fft.rfft2(pixels) * otf / (otf**2 + decoding.DEBLUR_NSR), s=pixels.shape
    )
    lo, hi = np.percentile(sharp, (1, 99))
    want = (np.clip((sharp - lo) / (hi - lo), 0, 1) * 255).astype(np.int16)
    got = np.asarray(decoding._Wiener(gray)(decoding.DEBLUR_NSR), dtype=np.int16)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 2 and np.abs(got - want).mean() < 1


def test_a_photo_the_first_look_reads_is_never_contrast_stretched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The later passes' contrast stretch is made when one first needs it (1.7 ms of an easy
    photo's ~6 ms, made again for each crop and masked copy of the second look)."""
    from PIL import ImageOps

    stretched: list[object] = []
    real = ImageOps.autocontrast

    def counting(image: Image.Image, *args: Any, **kwargs: Any) -> Image.Image:
        stretched.append(image)
        out: Image.Image = real(image, *args, **kwargs)
        return out

    monkeypatch.setattr(ImageOps, "autocontrast", counting)
    photo = synth_photo([(tag("SN1"), "qr", None)], "rotation", "mild", 3)
    codes = decode_image(Image.open(io.BytesIO(photo.jpeg)), second_look=False)
    assert [c.strategy for c in codes] == ["as-is"] and stretched == []
    hard = decode_image(Image.open(io.BytesIO(fixed_photo("blur", "severe", 0)[0])), budget=0.05)
    assert hard == [] and stretched  # a later pass still gets its stretch


def _two_labels(n: int, datamatrix_first: bool, kind: str) -> tuple[bytes, tuple[str, ...]]:
    """A photo of two labels (a DataMatrix and a QR tag), as `bench scan` makes image `n`."""
    sig = hashlib.sha512(str(2 * n + 1).encode()).digest() + b"\x1b"
    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", f"SN{2 * n:06d}")]
    qr = (DigitalLink(GTIN, "L1", f"SN{2 * n + 1:06d}", sig[:65]).to_uri(), "qr", None)
    dm = ("", "datamatrix", pairs)
    if not datamatrix_first:
        sig = hashlib.sha512(str(2 * n).encode()).digest() + b"\x1b"
        qr = (DigitalLink(GTIN, "L1", f"SN{2 * n:06d}", sig[:65]).to_uri(), "qr", None)
        pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", f"SN{2 * n + 1:06d}")]
        dm = ("", "datamatrix", pairs)
    specs = [dm, qr] if datamatrix_first else [qr, dm]
    photo = synth_photo(specs, kind, "moderate", 1_000_003 * n + 7)  # type: ignore[arg-type]
    return photo.jpeg, photo.expected


@pytest.mark.parametrize(
    ("n", "datamatrix_first", "kind", "how"),
    [
        # One label read by a fallback that also located the other, covered, label's code:
        # the second look repairs its finder pattern on the photo with the first painted over.
        (32, True, "handheld", ["contrast", "second-look-finder-repair"]),
        # The second label's code round a bottle, located but unread: its crop uncurled.
        (57, False, "bottle", ["as-is-upscaled", "second-look-crop"]),
    ],
)
def test_a_second_label_located_but_unread_is_looked_at_again(
    n: int, datamatrix_first: bool, kind: str, how: list[str]
) -> None:
    """Two-label phone photos the decoder read one code of (issue 11): a located but unread
    code is evidence of another label, looked at again even after a fallback pass."""
    jpeg, expected = _two_labels(n, datamatrix_first, kind)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [c.strategy for c in codes] == how


@pytest.mark.parametrize("kind", ["handheld", "bottle"])
def test_phone_damage_levels_are_ordered(kind: str) -> None:
    """A level names the whole photo: each step of a stacked damage is at most the photo's
    level, and severe is harder than moderate in at least one step."""
    from scanner.damage import steps_of

    rank = {level: i for i, level in enumerate(LEVELS)}
    steps = {level: steps_of(kind, level, random.Random(0)) for level in LEVELS}
    for level, chosen in steps.items():
        assert all(rank[step] <= rank[level] for _, step in chosen), (level, chosen)
    for lower, higher in (("mild", "moderate"), ("moderate", "severe")):
        low = dict(steps[lower])
        assert any(rank[lv] > rank[low.get(k, "mild")] for k, lv in steps[higher]), higher


def _bottle_tag(n: int) -> tuple[bytes, str]:
    """A QR tag round a bottle (moderate: 80° of curve, a slight angle, 2.6 px per module),
    with a fixed signature of its own: the same photo on every run."""
    sig = hashlib.sha512(f"{n}-0".encode()).digest() + b"\x1b"
    uri = DigitalLink(GTIN, "L1", f"SN{2 * n:06d}", sig[:65]).to_uri()
    photo = synth_photo([(uri, "qr", None)], "bottle", "moderate", 1_000_003 * n + 7)
    return photo.jpeg, photo.expected[0]


@pytest.mark.parametrize("n", [1, 38, 61, 98])
def test_a_bottle_code_beside_a_phantom_outline_is_uncurled(n: int) -> None:
    """zxing traces the label's edge and the photo's border as a DataMatrix spanning the
    photo and locates the curved QR code inside it: the code's spot is its own, not a
    duplicate of the phantom's (which, dropped with it, left uncurl nothing to flatten)."""
    from scanner.decode import _real_misses

    jpeg, expected = _bottle_tag(n)
    assert [(c.text, c.strategy) for c in decode_image_bytes(jpeg)] == [(expected, "uncurl")]
    phantom = ((0.0, 400.0), (0.0, 0.0), (500.0, 0.0), (500.0, 400.0))
    code = ((40.0, 80.0), (150.0, 80.0), (150.0, 190.0), (40.0, 190.0))
    twin = ((42.0, 82.0), (152.0, 82.0), (152.0, 192.0), (42.0, 192.0))
    assert _real_misses([code, phantom, twin], [], nested=True) == [phantom, code]
    assert _real_misses([code, phantom, twin], []) == [phantom]


@pytest.mark.parametrize("n", [118, 141])
def test_a_blurred_qr_code_in_dim_light_reads_less_damped(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blur in dim light (moderate `combined`): the deblur pass's upscaled read, damped for
    noise (UPSCALED_NSR), misses; in a photo that dim (its paper under DIM_PAPER) the first,
    less damped deconvolution read at twice its size reads it (issue 11: 4 of 13 such QR codes
    unread in 1,200 photos). Without it, nothing does."""
    import scanner.decode as decode

    serial = f"SN{n:06d}"
    spec = (_signed(serial, n), "qr", None)
    seed = 1_000_003 * n + 215
    photo = synth_photo([spec], "combined", "moderate", seed)  # type: ignore[list-item]
    assert decode._percentile(Image.open(io.BytesIO(photo.jpeg)).convert("L"), 0.99) < 200
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "deblur")]
    monkeypatch.setattr(decode, "DIM_PAPER", 0)
    assert decode_image_bytes(photo.jpeg) == []


def test_a_blurred_datamatrix_at_an_angle_decodes_once_its_outline_is_refined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A GS1 DataMatrix (an 8x64 rectangle) behind a sticker, at an angle and out of focus
    (combined, moderate): its outline thresholds a pixel or two off at a corner, which over
    64 modules shifts the grid by half a module. Moved corner by corner until the grid's
    L and timing edges fit, and sampled sharpened, it reads on the deblurred photo; its
    best grids as found, read sharpened (SHARP_READS), read it too."""
    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", "SN000074")]
    photo = synth_photo([("", "datamatrix", pairs)], "combined", "moderate", 1_000_003 * 37 + 7)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "deblur")]
    import scanner.datamatrix as dm

    # Refined alone (no grid read sharpened before it), it reads ...
    monkeypatch.setattr(dm, "SHARP_READS", 0)
    assert [c.strategy for c in decode_image_bytes(photo.jpeg)] == ["deblur"]
    # ... as it does sharpened alone (SHARP_READS, not refined) ...
    monkeypatch.undo()
    monkeypatch.setattr(dm, "_read_refined", lambda *args: None)
    assert [c.strategy for c in decode_image_bytes(photo.jpeg)] == ["deblur"]
    # ... and with neither it does not.
    monkeypatch.setattr(dm, "SHARP_READS", 0)
    assert decode_image_bytes(photo.jpeg) == []


@pytest.mark.parametrize(("n", "damage"), [(109, "handheld"), (119, "handheld"), (67, "combined")])
def test_a_datamatrix_outline_a_pixel_off_is_refined_on_the_photo_as_it_is(
    n: int, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A moderate DataMatrix whose outline, thresholded with a finger's shadow or a
    sticker beside its L, lies a pixel or two wide of the symbol: its best grid fits the L
    and timing edges at 0.85-0.9, short of the deblurred photo's threshold, and read as
    sampled it fails. The DataMatrix repair of the photo as it is refines such an outline
    too (from PLAIN_REFINE_FROM): unread before (issue 11; 3 of 900 moderate pack photos,
    and one of a bench run's two moderate misses)."""
    import scanner.datamatrix as dm
    import scanner.decode as decode

    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMO3F7A21"), ("21", f"D{n:011d}")]
    photo = synth_photo([("", "datamatrix", pairs)], damage, "moderate", 1_000_003 * n + 215)
    # The refinement alone (two of these also read with a corner put back, see below; one
    # with its grids sharpened).
    monkeypatch.setattr(dm, "COMPLETE_FROM", 1.01)
    monkeypatch.setattr(dm, "SHARP_READS", 0)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "datamatrix-repair")]
    # No outline refined on the photo as it is (as before): unread. (Nor deblurred again
    # on its own crop, RECROP_MAX, which reads two of these by another way.)
    monkeypatch.setattr(dm, "PLAIN_REFINE_FROM", 1.01)
    monkeypatch.setattr(decode, "RECROP_MAX", 0)
    assert decode_image_bytes(photo.jpeg) == []


@pytest.mark.parametrize(
    ("n", "damage", "first"),
    [
        (20, "handheld", "deblur"),
        (163, "handheld", "deblur"),
        (150, "occlusion", "datamatrix-repair"),
        (231, "combined", "datamatrix-repair"),
    ],
)
def test_a_datamatrix_corner_a_finger_cuts_short_is_put_back(
    n: int, damage: str, first: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finger over a corner of a small GS1 DataMatrix rectangle (16x36 modules of 2-3
    pixels): the symbol's outline follows the finger's edge at that corner, a grid drawn
    to it drifts by a module, and no pass read it (issue 11: 59 of 900 moderate pack
    photos unread, 8 of them read so). With the corner where the other three put it, the
    grid reads; without (`COMPLETE_FROM` above any fit), nothing does."""
    import scanner.datamatrix as dm
    import scanner.decode as decode

    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMO3F7A21"), ("21", f"D{n:011d}")]
    photo = synth_photo([("", "datamatrix", pairs)], damage, "moderate", 1_000_003 * n + 215)
    # Read on the photo as it is where its black point is far from black (UNSTRETCHED_FROM);
    # else (and before that look) on the deblurred photo, where the repair puts the corner
    # back as well.
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], first)]
    monkeypatch.setattr(decode, "UNSTRETCHED_FROM", 256)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "deblur")]
    monkeypatch.setattr(dm, "COMPLETE_FROM", 1.01)
    monkeypatch.setattr(decode, "RECROP_MAX", 0)  # (its own crop deblurred reads one too)
    assert decode_image_bytes(photo.jpeg) == []


@pytest.mark.parametrize("n", [234, 241, 326, 442])
def test_a_covered_blurred_datamatrix_reads_from_its_grid_sharpened(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DataMatrix out of focus with a finger or a sticker over its L (moderate
    `combined`): focus blur greys its lone modules across the cut between dark and light,
    and the outline the cover cuts short is worse refined. Its best grids, sampled
    sharpened (each module pushed from the mean of its neighbours), read; plain, refined or
    with a corner put back, none does (issue 11: 4 of 50 unread moderate pack photos)."""
    import scanner.datamatrix as dm
    import scanner.decode as decode

    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMO3F7A21"), ("21", f"D{n:011d}")]
    photo = synth_photo([("", "datamatrix", pairs)], "combined", "moderate", 1_000_003 * n + 215)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "deblur")]
    monkeypatch.setattr(dm, "SHARP_READS", 0)
    monkeypatch.setattr(decode, "RECROP_MAX", 0)  # (its own crop deblurred reads one too)
    assert decode_image_bytes(photo.jpeg) == []


def test_a_covered_blurred_datamatrix_reads_sharpened_before_it_is_deblurred(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DataMatrix with a cover and blur (moderate `combined`) that only the deblur pass
    read: its grid read sharpened, the photo's own DataMatrix repair reads it first."""
    import scanner.datamatrix as dm

    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", "SN000067")]
    photo = synth_photo([("", "datamatrix", pairs)], "combined", "moderate", 1_000_003 * 67 + 215)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "datamatrix-repair")]
    monkeypatch.setattr(dm, "SHARP_READS", 0)
    assert [c.strategy for c in decode_image_bytes(photo.jpeg)] == ["deblur"]


def test_a_second_datamatrix_is_repaired_beside_a_repaired_qr_code() -> None:
    """Two labels (handheld, moderate), a finger over each: finder repair reads the QR code,
    then the DataMatrix repair runs on the photo with that code painted over. Painted 255
    where the paper was ~200, the photo stretched darker than itself and the DataMatrix
    went unread; painted the photo's own paper white, it reads."""
    n = 91
    pairs = [("01", GTIN), ("17", "281231"), ("10", "L1"), ("21", f"SN{2 * n:06d}")]
    sig = hashlib.sha512(f"{n}-1".encode()).digest() + b"\x1b"
    uri = DigitalLink(GTIN, "L1", f"SN{2 * n + 1:06d}", sig[:65]).to_uri()
    specs = [("", "datamatrix", pairs), (uri, "qr", None)]
    photo = synth_photo(specs, "handheld", "moderate", 1_000_003 * n + 7)  # type: ignore[arg-type]
    codes = {c.text: c.strategy for c in decode_image_bytes(photo.jpeg)}
    assert codes == {
        photo.expected[1]: "finder-repair",
        photo.expected[0]: "second-look-datamatrix-repair",
    }


# Each photo: the pass that read one label; no pass read the other, nor located it, before
# the spot search.
@pytest.mark.parametrize(
    ("n", "kind", "first"),
    [
        (23, "occlusion", "as-is"),  # a covered label beside one read as it is
        (27, "combined", "as-is"),  # a blurred label beside one read as it is
        (24, "handheld", "finder-repair"),  # both labels behind a finger
        (25, "combined", "deblur"),  # both out of focus
    ],
)
def test_a_second_label_no_pass_located_is_found_by_its_edges(
    n: int, kind: str, first: str
) -> None:
    """A second label zxing did not even locate (no outline to crop) is found as a spot as
    busy with edges as the code read, and its crop is read."""
    jpeg, expected = _two_labels(n, True, kind)
    codes = {c.text: c.strategy for c in decode_image_bytes(jpeg)}
    assert set(codes) == set(expected)
    assert sorted(codes.values()) == sorted([first, "second-look-spot"])


def test_a_photo_read_at_first_look_with_nothing_else_in_it_ends_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second look of a one-label photo the first look read, with no code located but
    unread and no spot as busy as the code: no masked pass runs (it would cost every easy
    photo a contrast stretch and a read for nothing)."""
    import scanner.decode as decoder

    photo = synth_photo([(fixed_tag("SN00001"), "qr", None)], "rotation", "mild", 11)
    listed: list[int] = []
    real = decoder._passes

    def passes(gray: Image.Image) -> Any:
        listed.append(gray.width)
        return real(gray)

    monkeypatch.setattr(decoder, "_passes", passes)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "as-is")]
    assert len(listed) == 1  # the photo's own passes; none for a masked copy or a crop


def test_a_phantom_across_two_labels_does_not_hide_the_code_it_grazes() -> None:
    """Uncurl's spots: zxing located two curved QR codes and a phantom outline spanning one
    of them and a corner of the other (setB photo 1424 of `bench scan`'s plan, curvature
    moderate). The code the phantom only grazes is kept, and among the first two uncurl
    flattens (it read neither code before); a spot mostly inside a kept one of less than
    twice its size is still its duplicate, one much smaller is not (MISS_SAME_SIZE)."""
    from scanner.decode import _real_misses, rectangle

    phantom = rectangle(200, 68, 557, 349)
    inside = rectangle(341, 72, 549, 289)  # 100 % inside the phantom
    grazed = rectangle(35, 311, 251, 535)  # 4 % inside it
    sliver = rectangle(327, 71, 373, 383)  # 89 % inside it
    kept = _real_misses([sliver, inside, grazed, phantom], [], nested=True)
    assert kept == [phantom, grazed, sliver]
    # The second look's rule is unchanged: any overlap is the same spot.
    assert _real_misses([inside, grazed, phantom], []) == [phantom]


def _dim_or_noisy_and_blurred(n: int) -> tuple[bytes, str]:
    """A moderate `combined` photo of a tag as `up` enrolls them (12-character serial, a
    DEMO lot): at an angle, out of focus, and in dim light or with sensor noise."""
    serial = f"K{n:011d}"
    uri = DigitalLink(GTIN, "DEMO3F7A21", serial, bytes((n * 7 + k) % 256 for k in range(65)))
    photo = synth_photo([(uri.to_uri(), "qr", None)], "combined", "moderate", 1_000_003 * n + 215)
    return photo.jpeg, photo.expected[0]


@pytest.mark.parametrize("n", [106, 117, 23, 118])  # blur + noise twice, blur + dim light twice
def test_a_blurred_code_with_noise_or_in_dim_light_reads_deblurred_at_twice_its_size(
    n: int,
) -> None:
    """Modules of ~3 px, blurred and noisy: the deconvolved photo at its own size binarizes
    into broken modules, at twice its size (interpolated after deblurring) zxing reads it.
    Before, no pass read these photos whatever their budget."""
    jpeg, expected = _dim_or_noisy_and_blurred(n)
    codes = decode_image_bytes(jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(expected, "deblur")]


def test_the_budget_is_as_much_work_on_a_slower_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget is the reference machine's CPU seconds: where the same decoding work
    takes twice as long, a photo gets twice the seconds (what a scanner reads must not
    depend on the laptop it runs on)."""
    import scanner.decode as decoding

    left: list[float] = []

    def passes(gray: Image.Image) -> Any:
        def attempt() -> Any:
            left.append(decoding._deadline.get() - time.process_time())
            return decoding._Found([], [])

        yield "as-is", attempt

    monkeypatch.setattr(decoding, "_passes", passes)
    image = Image.new("L", (64, 64), 255)
    for pace in (1.0, 2.0):
        monkeypatch.setattr(decoding, "machine_pace", lambda pace=pace: pace)
        assert decode_image(image, budget=0.5) == []
    assert left == [pytest.approx(0.5, abs=0.05), pytest.approx(1.0, abs=0.05)]


def test_the_machine_pace_is_measured_once_and_kept_in_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scanner.decode as decoding

    pace = decoding.machine_pace()
    low, high = decoding.PACE_RANGE
    assert low <= pace <= high
    started = time.process_time()
    assert decoding.machine_pace() == pace  # kept: no second measurement
    assert time.process_time() - started < 0.005
    try:
        # An absurd reading (a reference a thousand times off either way) is clamped.
        monkeypatch.setattr(decoding, "REFERENCE_WORK_S", 1000.0)
        decoding.machine_pace.cache_clear()
        assert decoding.machine_pace() == low
        monkeypatch.setattr(decoding, "REFERENCE_WORK_S", 1e-6)
        decoding.machine_pace.cache_clear()
        assert decoding.machine_pace() == high
    finally:
        decoding.machine_pace.cache_clear()


def _qr_and_datamatrix(n: int) -> tuple[bytes, tuple[str, ...]]:
    """A moderate `combined` photo of two labels as `up` enrolls them: a signed tag's QR
    code and a pack's GS1 DataMatrix (12-character serials, a DEMO lot), in either order."""
    uri = DigitalLink(
        GTIN, "DEMO3F7A21", f"K{n:011d}", bytes((n * 7 + k) % 256 for k in range(65))
    ).to_uri()
    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMO3F7A21"), ("21", f"D{n:011d}")]
    specs: list[Any] = [(uri, "qr", None), ("", "datamatrix", pairs)]
    if n % 4 >= 2:
        specs.reverse()
    photo = synth_photo(specs, "combined", "moderate", 1_000_003 * n + 215)
    return photo.jpeg, photo.expected


@pytest.mark.parametrize(("n", "first"), [(158, "as-is"), (55, "as-is"), (74, "denoise")])
def test_a_second_label_in_dim_light_is_found_by_its_contrast(
    n: int, first: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In dim light the second label's edges are weaker than the first's, and its code's
    busy blob joins the label's edge and text lines into one too long to be a label: the
    spot map measures edges against the light and opens such a blob into its parts.
    Before, one of the two codes was read and the other never looked at again. (A fourth
    photo, n 62, has its DataMatrix located as well: read from its crop since the uncurl
    pass flattens with a remap, it no longer shows the spot map. The noisy one, n 74, has
    its DataMatrix read on the masked photo smoothed, NOISY, before its spot: off here.)"""
    import scanner.decode as decode

    monkeypatch.setattr(decode, "NOISY", math.inf)
    jpeg, expected = _qr_and_datamatrix(n)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [c.strategy for c in codes] == [first, "second-look-spot"]


@pytest.mark.parametrize(
    ("n", "first", "second"),
    [
        (27, "finder-repair", "second-look-datamatrix-repair"),
        (195, "finder-repair", "second-look-datamatrix-repair"),
        (249, "as-is", "second-look-spot"),
        (358, "as-is", "second-look-spot"),
    ],
)
def test_a_second_label_a_fraction_of_the_first_ones_size_is_a_spot(
    n: int, first: str, second: str
) -> None:
    """A pack's DataMatrix beside a tag's QR code a fifth of its area scores under a fifth
    of the code read (area times edge energy) and was no spot: on photos the first look
    read (249, 358) it was never looked for, and on hard photos only the repairs run again
    over the whole photo regardless of spots found it (27, 195). Spots counted in full
    from REGION_MIN_SCORE = 0.15 of the code read then (fainter ones: the test below)."""
    jpeg, expected = _qr_and_datamatrix(n)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [c.strategy for c in codes] == [first, second]


@pytest.mark.parametrize(
    ("n", "first"), [(190, "finder-repair"), (202, "as-is"), (491, "finder-repair")]
)
def test_a_faint_second_label_is_looked_at_for_a_datamatrix(
    n: int, first: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack's DataMatrix beside a tag's QR code, in glare or dim light or with a sticker
    on its label, scores 0.08-0.14 of the code read on the spot map: under
    REGION_MIN_SCORE, it was never looked at. A spot that faint now has its crop read by
    FAINT_PASSES (and no masked pass runs over the photo); with no such pass, or no faint
    spot (REGION_FAINT_SCORE at REGION_MIN_SCORE, as before), it is not read."""
    import scanner.decode as decode

    jpeg, expected = _qr_and_datamatrix(n)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [c.strategy for c in codes] == [first, "second-look-spot"]
    # No masked pass over the whole photo: only the spot's crop is painted and read.
    masked: list[int] = []
    real = decode._masked

    def counted(*args: Any) -> Any:
        masked.append(1)
        return real(*args)

    monkeypatch.setattr(decode, "_masked", counted)
    assert len(decode_image_bytes(jpeg)) == 2
    assert len(masked) == 1
    monkeypatch.setattr(decode, "FAINT_PASSES", ())
    assert len(decode_image_bytes(jpeg)) == 1
    monkeypatch.undo()
    monkeypatch.setattr(decode, "REGION_FAINT_SCORE", decode.REGION_MIN_SCORE)
    assert len(decode_image_bytes(jpeg)) == 1


def _two_packs(n: int) -> tuple[bytes, tuple[str, ...]]:
    """Two packs' GS1 DataMatrix codes in one moderate `combined` photo with the damage of
    `bench scan`'s image 309: dim light and its sensor noise, at an angle."""
    specs: list[Any] = [
        ("", "datamatrix", [("01", GTIN), ("17", "281231"), ("10", "DEMO3F7A21"), ("21", s)])
        for s in (f"D{2 * n:011d}", f"D{2 * n + 1:011d}")
    ]
    photo = synth_photo(specs, "combined", "moderate", 1_000_003 * 309 + 7)
    return photo.jpeg, photo.expected


@pytest.mark.parametrize(
    ("n", "strategies"),
    [
        (23, ["denoise", "denoise"]),
        (27, ["denoise", "denoise"]),
        # (The second pack: on the masked photo smoothed, NOISY; before that, on its spot.)
        (2, ["denoise", "second-look-datamatrix-repair"]),
        (9, ["denoise", "second-look-datamatrix-repair"]),
    ],
)
def test_packs_in_dim_light_with_noise_read_through_a_wider_smoothing(
    n: int, strategies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In dim light the camera's gain lifts the sensor noise until a 5 px smoothing leaves
    speckle that breaks a small DataMatrix apart: in a dim photo the denoise pass last
    smooths over DENOISE_HEAVY px. Both packs read here (by the denoise pass's wider
    threshold on the photo, or, in the second look, by the DataMatrix repair on the masked
    photo); smoothed over 5 px only, as before, one pack or none."""
    import scanner.decode as decode

    jpeg, expected = _two_packs(n)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [c.strategy for c in codes] == strategies
    monkeypatch.setattr(decode, "DENOISE_HEAVY", decode.DENOISE_KERNELS[0])
    # (The DataMatrix repair's look at a noisy photo smoothed, NOISY, reads both packs
    # of every one of these photos too: off for this.)
    monkeypatch.setattr(decode, "NOISY", math.inf)
    assert len({c.text for c in decode_image_bytes(jpeg)} & set(expected)) < 2


def test_the_wider_smoothing_is_tried_in_a_dim_photo_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 7 px smoothing runs where the camera's gain lifts the noise (paper under
    DIM_PAPER), not on every photo the denoise pass reaches: the same noisy blank photo,
    bright then dim, goes through every pass unread."""
    import numpy as np

    import scanner.decode as decode

    kernels: list[int] = []
    real = decode._smoothed_threshold

    def counted(gray: Any, kernel: int) -> Any:
        kernels.append(kernel)
        return real(gray, kernel)

    monkeypatch.setattr(decode, "_smoothed_threshold", counted)
    noise = np.random.default_rng(3).normal(0, 30, (480, 640))
    for paper, dim in ((235, False), (150, True)):
        kernels.clear()
        blank = Image.fromarray(np.clip(paper + noise, 0, paper).astype(np.uint8))
        assert decode_image(blank) == []
        assert decode.DENOISE_KERNELS[0] in kernels
        assert (decode.DENOISE_HEAVY in kernels) is dim


@pytest.mark.parametrize(
    ("n", "lead"), [(323, "deblur"), (324, "deblur"), (340, "denoise"), (347, "finder-repair")]
)
def test_a_second_labels_spot_is_read_first_by_the_pass_that_read_the_first(
    n: int, lead: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code that needed a fallback pass means a hard photo, and a second label in it is as
    hard: its spot's crop now goes through that pass first, then the other REGION_PASSES.
    Before, a spot beside a deblurred code went through six cheaper passes (~95 ms on the
    bench's blurred two-label photo in dim light) before the deblur that read it, and the
    photo's budget ran out first in some tag draws."""
    import scanner.decode as decode

    called: list[str] = []
    in_spots = [False]
    real_passes, real_spots = decode._passes, decode._read_spots

    def passes(gray: Any) -> Any:
        for name, attempt in real_passes(gray):

            def run(name: str = name, attempt: Any = attempt) -> Any:
                if in_spots[0]:
                    called.append(name)
                return attempt()

            yield name, run

    def spots(*args: Any, **kwargs: Any) -> Any:
        in_spots[0] = True
        try:
            return real_spots(*args, **kwargs)
        finally:
            in_spots[0] = False

    monkeypatch.setattr(decode, "_passes", passes)
    monkeypatch.setattr(decode, "_read_spots", spots)
    # (A noisy photo's DataMatrix is read on the masked photo smoothed, NOISY, or one in
    # glare unstretched, UNSTRETCHED_FROM, before its spot is looked at: off for this.)
    monkeypatch.setattr(decode, "NOISY", math.inf)
    monkeypatch.setattr(decode, "UNSTRETCHED_FROM", 256)
    jpeg, expected = _qr_and_datamatrix(n)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [c.strategy for c in codes] == [lead, "second-look-spot"]
    assert called[0] == lead


def _tag_and_pack_blurred_in_dim_light(n: int) -> tuple[bytes, tuple[str, ...]]:
    """A tag's QR code and a pack's GS1 DataMatrix with 12-character serials of letters and
    digits (as `up` enrols them), in a moderate `combined` photo with the damage of `bench
    scan`'s image 201: blur and dim light, at an angle."""
    serials = [
        base64.b32encode(hashlib.sha256(f"{n}/{j}".encode()).digest()).decode()[:12] for j in (0, 1)
    ]
    sig = hashlib.sha512(str(n).encode()).digest() + b"\x1b"
    uri = DigitalLink(GTIN, "DEMOE4C293", serials[0], sig).to_uri()
    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMOE4C293"), ("21", serials[1])]
    specs: list[Any] = [(uri, "qr", None), ("", "datamatrix", pairs)]
    photo = synth_photo(specs, "combined", "moderate", 1_000_003 * 201 + 7)
    return photo.jpeg, photo.expected


@pytest.mark.parametrize("n", [33, 35])
def test_a_blurred_pack_whose_outline_fits_is_deblurred_again_on_its_own_crop(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pack's spot is a label wide: deblurred with the label's background and text in
    its grey range, the DataMatrix repair finds the pack's outline (its L and timing edges
    fit from 0.9) but no grid of it reads. Cut from the spot on its own and deblurred
    again, it reads. With no such second crop (RECROP_MAX 0, as before) the pack is
    missed."""
    import scanner.decode as decode

    jpeg, expected = _tag_and_pack_blurred_in_dim_light(n)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert [(c.strategy, c.format) for c in codes] == [
        ("deblur", "QRCode"),
        ("second-look-spot", "DataMatrix"),
    ]
    monkeypatch.setattr(decode, "RECROP_MAX", 0)
    assert [c.format for c in decode_image_bytes(jpeg)] == ["QRCode"]


def test_a_hard_one_label_photo_is_not_searched_again_for_a_second_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A photo whose code only a repair read is searched for a second label where the spot
    map or a located but unread code says there may be one: re-running the repairs over the
    whole photo painted over, on every such photo, cost 5 % of the bench's decoding CPU and
    on 309 one-label photos of 1,600 read nothing."""
    import scanner.decode as decode

    calls: list[str] = []
    repair = decode._finder_repair

    def counted(gray: Image.Image, strategy: str = "finder-repair") -> Any:
        calls.append(strategy)
        return repair(gray, strategy)

    monkeypatch.setattr(decode, "_finder_repair", counted)
    jpeg, expected = fixed_photo("occlusion", "moderate", 1)
    codes = decode_image_bytes(jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(expected, "finder-repair")]
    assert calls == ["finder-repair"]


def _shaken(n: int) -> tuple[bytes, str, tuple[str, ...]]:
    """A moderate photo of bench/scenes.py (made without scanner.damage) of a tag as `up`
    enrolls them, its shake along one of the frame's axes."""
    serial = f"K{n:011d}"
    signature = bytes((n * 7 + k) % 256 for k in range(65))
    uri = DigitalLink(GTIN, "DEMO3F7A21", serial, signature).to_uri()
    made = scene(uri, None, "moderate", 7_000_003 * n + 11)
    return made.jpeg, made.expected, made.effects


@pytest.mark.parametrize(
    ("n", "strategy"),
    # With a thumb, a sticker, a highlight, dim light; smeared far enough for the early
    # pass (MOTION_FIRST), or read by the deblur pass's last attempts.
    [(37, "unshake"), (123, "deblur"), (143, "unshake"), (163, "deblur")],
)
def test_a_shaken_photo_reads_once_the_shake_is_undone(
    n: int, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand's shake smears 3-4 px modules into each other along one direction; no
    Gaussian deconvolution undoes it. Before, no pass read these photos."""
    import scanner.decode as decode

    jpeg, expected, effects = _shaken(n)
    assert "motion" in effects
    codes = decode_image_bytes(jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(expected, strategy)]
    monkeypatch.setattr(decode, "MOTION_ANISOTROPY", 0.0)
    assert decode_image_bytes(jpeg) == []


def test_the_shake_is_found_along_its_direction_and_not_in_a_sharp_photo() -> None:
    from scanner.decode import _shake

    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 2, (60, 80)).astype(np.float32) * 200 + 30
    sharp = np.kron(blocks, np.ones((4, 4), dtype=np.float32))
    assert _shake(Image.fromarray(sharp.astype(np.uint8))) is None
    along_x = np.ones((1, 7), np.float32) / 7
    # x to the right, y down: a smear down and to the right is at +45 degrees.
    for kernel, direction in (
        (along_x, 0.0),
        (along_x.T.copy(), math.pi / 2),
        (np.eye(7, dtype=np.float32) / 7, math.pi / 4),
        (np.fliplr(np.eye(7, dtype=np.float32)).copy() / 7, 3 * math.pi / 4),
    ):
        smeared = cv2.filter2D(sharp, -1, kernel)
        shake = _shake(Image.fromarray(smeared.astype(np.uint8)))
        assert shake is not None and shake.anisotropy < 0.45  # a 7 px smear of 4 px blocks
        # An angle and the opposite one are the same shake.
        assert abs(math.remainder(shake.angle - direction, math.pi)) < math.radians(3)


def _bench_pack(n: int, serial: str) -> tuple[bytes, str]:
    """`bench scan`'s moderate `combined` photo n (of its plan with thirteen damage
    types) when it drew a pack's DataMatrix: a finger or noise, at an angle."""
    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMOE4C293"), ("21", serial)]
    photo = synth_photo([("", "datamatrix", pairs)], "combined", "moderate", 1_000_003 * n + 7)
    return photo.jpeg, photo.expected[0]


#: Two tags of the bench's photo 296 (a draw of a stack's signatures).
BENCH_296 = (
    "https://id.borderledger.example/01/09506000134352/10/DEMOE4C293/21/CEAE3A4WZBZ7?sig="
    "2tDkPPXH1tAsbsJCXHLFxDQOe4IagmUq9Gg9zGf4Rk6WSsb3y7i0uZJ26Y-ILR9-7oFIaWSQ7gty_BPILMG6xl8",
    "https://id.borderledger.example/01/09506000134352/10/DEMOE4C293/21/BV7C674M7C2Q?sig="
    "PGI7z5geUS1uefHB_7dtwDONx4gRmheflkovYEqO2bod3ylCvAgOYMmq0mscRGWqZIYXPPICr_5msRIEPKrCg1s",
)


def _bench_296() -> tuple[bytes, tuple[str, ...]]:
    """Two tags, each with a finder pattern under a finger or a sticker, in dim light."""
    specs: list[Any] = [(uri, "qr", None) for uri in BENCH_296]
    photo = synth_photo(specs, "combined", "moderate", 1_000_003 * 296 + 7)
    return photo.jpeg, photo.expected


@pytest.mark.parametrize(
    ("photo", "strategies"),
    [
        ("pack 140", {"datamatrix-repair"}),  # a finger over the L, sensor noise
        ("pack 101", {"datamatrix-repair"}),  # dim light and noise
        ("tags 296", {"finder-repair", "second-look-finder-repair"}),
    ],
)
def test_the_repairs_look_at_a_noisy_photo_smoothed(
    photo: str, strategies: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noise breaks a DataMatrix's edges or the finder patterns a cover left apart; the
    repairs find them on the stretch smoothed over 3 px. Before, no pass read these."""
    import scanner.decode as decode

    if photo == "tags 296":
        jpeg, expected = _bench_296()
    else:
        n, serial = {"pack 140": (140, "QR5RDC2C7X52"), "pack 101": (101, "YYN227YRMHCV")}[photo]
        jpeg, text = _bench_pack(n, serial)
        expected = (text,)
    codes = decode_image_bytes(jpeg)
    assert sorted(c.text for c in codes) == sorted(expected)
    assert {c.strategy for c in codes} == strategies
    monkeypatch.setattr(decode, "NOISY", math.inf)
    assert decode_image_bytes(jpeg) == []


def test_the_noise_estimate_sees_the_noise_and_not_the_code() -> None:
    from scanner.decode import _noise_sd

    clean = synth_photo([(tag("N1"), "qr", None)], "perspective", "mild", 3)
    assert _noise_sd(Image.open(io.BytesIO(clean.jpeg)).convert("L")) < 2
    rng = np.random.default_rng(5)
    for sd in (8.0, 20.0, 35.0):
        flat = np.clip(128 + rng.normal(0, sd, (300, 400)), 0, 255).astype(np.uint8)
        assert _noise_sd(Image.fromarray(flat)) == pytest.approx(sd, rel=0.1)


@pytest.mark.parametrize("n", [1, 2, 20])  # two tags' QR codes, a pack's DataMatrix
def test_a_long_shake_reads_undone_at_its_own_length(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scanner.damage`'s severe shake (a 9 px smear at any angle) is beyond the 5 px
    deconvolution; the 8 px one reads it. Before, no pass read these photos."""
    import scanner.decode as decode

    serial = f"K{n:011d}"
    uri = DigitalLink(GTIN, "DEMO3F7A21", serial, bytes((n * 7 + k) % 256 for k in range(65)))
    pairs = [("01", GTIN), ("17", "281231"), ("10", "DEMO3F7A21"), ("21", serial)]
    spec = (uri.to_uri(), "qr", None) if n % 4 else ("", "datamatrix", pairs)
    photo = synth_photo([spec], "shake", "severe", 1_000_003 * n + 5)  # type: ignore[list-item]
    # Smeared this far (MOTION_FIRST), the early pass reads it, before the others.
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "unshake")]
    # Not counted so far, it is the deblur pass's last attempts that read it.
    monkeypatch.setattr(decode, "MOTION_FIRST", 0.0)
    codes = decode_image_bytes(photo.jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(photo.expected[0], "deblur")]
    monkeypatch.setattr(decode, "MOTION_LONGER", 99)  # a shake no photo has: reads nothing
    assert decode_image_bytes(photo.jpeg) == []


def test_a_pack_under_a_finger_in_glare_reads_from_the_photo_unstretched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bench's moderate `combined` photo 257: a finger over the corner of a pack's L, a
    lamp's glare beside it. Stretched, the finger's brown comes out as dark as ink and
    joins the symbol's outline, which then fits but does not read; on the photo as it is
    the outline is the symbol's own. Before, no pass read it in any tag draw."""
    import scanner.decode as decode
    from scanner.datamatrix import PLAIN_REFINE_FROM
    from scanner.decode import _datamatrix_repair, _gray, _Stretched

    jpeg, expected = _bench_pack(257, "CVMKW5MQSAKS")
    codes = decode_image_bytes(jpeg)
    assert [(c.text, c.strategy) for c in codes] == [(expected, "datamatrix-repair")]
    gray = _gray(Image.open(io.BytesIO(jpeg)))
    stretched = _Stretched(gray)()
    assert _datamatrix_repair(stretched, refine_from=PLAIN_REFINE_FROM).codes == []
    monkeypatch.setattr(decode, "UNSTRETCHED_FROM", 256)
    assert decode_image_bytes(jpeg) == []


@pytest.mark.parametrize("kind", ["qr", "datamatrix"])
@pytest.mark.parametrize("angle", [0, 33, 90, 147, 180, 270])
def test_a_code_turned_by_any_angle_is_read(kind: str, angle: int) -> None:
    """zxing's DataMatrix detector misses a symbol turned past about 50° unless zxing
    turns the picture too: the first look does (a pack lying any way round). Before, it
    did not, and such a pack was read only by the every-format pass, ten times dearer
    (the DataMatrix at 90° and more fail so; a QR code is found at any angle either way)."""
    text = fixed_tag("TURNED") if kind == "qr" else encode_element_string(PACK)
    label = label_for(text, kind, PACK if kind == "datamatrix" else None)  # type: ignore[arg-type]
    turned = label.convert("L").rotate(
        angle, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC
    )
    codes = decode_image(Image.open(io.BytesIO(to_jpeg(turned))))
    assert [c.text for c in codes] == [text]
    assert codes[0].strategy in FIRST_LOOK  # (a label this small: "as-is-upscaled")


def _uncurled_outline(photo: Image.Image) -> list[tuple[float, float]]:
    """Where the uncurl pass read the one code in `photo`: its corners from the code's
    own top left, clockwise as the code reads (pixels)."""
    from scanner.decode import UNCURL_ZOOMS, _gray, _scaled, _Stretched, _uncurl, _unscaled

    stretched = _Stretched(_gray(photo))()
    found = _uncurl(stretched, UNCURL_ZOOMS)
    if not found.codes:  # a small photo: uncurled whole at twice its size too
        found = _unscaled(_uncurl(_scaled(stretched, 2.0)), 2.0)
    [(_, outline)] = found.codes
    return list(outline)


@pytest.mark.parametrize(("kind", "n"), [("curvature", 5), ("curvature", 8), ("bottle", 39)])
@pytest.mark.parametrize("turn", [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270])
def test_a_bottle_on_its_side_is_uncurled(kind: str, n: int, turn: Image.Transpose) -> None:
    """A label round a bottle lying down (or photographed turned) curves along y: uncurled
    as round a horizontal cylinder, its crop turned by 90°, and found where it is, each
    corner in its place (the outline masks the code for the second look). Before, the
    bench's photos turned by 90° lost 15 of their 144 moderate codes, all bottles and
    curved labels; these among them."""
    jpeg, expected = fixed_photo(kind, "moderate", n)
    upright = Image.open(io.BytesIO(jpeg))
    photo = upright.transpose(turn)
    codes = decode_image(photo)
    assert [(c.text, c.strategy) for c in codes] == [(expected, "uncurl")]
    without_uncurl = [s for s in _pass_names(jpeg) if s != "uncurl"]
    assert decode_image(photo, strategies=without_uncurl) == []
    # The upright photo's code (read round a vertical cylinder), turned as the photo was.
    w, h = upright.size
    if turn == Image.Transpose.ROTATE_90:  # counter-clockwise
        where = [(y, w - x) for x, y in _uncurled_outline(upright)]
    else:  # clockwise
        where = [(h - y, x) for x, y in _uncurled_outline(upright)]
    side = math.dist(where[0], where[1])
    found = _uncurled_outline(photo)
    assert max(math.dist(a, b) for a, b in zip(found, where, strict=True)) < 0.15 * side
