"""Decode barcodes from photos with zxing-cpp, retrying harder images with clean-ups.

A first look runs zxing-cpp on the image as it is (or on a 2x upscale of a tiny image) for
QR and DataMatrix printed dark on light, without zxing's own 90° and inverted retries (the
2D detectors find turned codes anyway): 1.5 ms on an 800x600 photo where every format with
every retry took 15.6 ms for the same codes. Photos of labels taken in bad light at a port
often fail it, so the passes below run in order until one finds a code. The order is by
codes read per millisecond on the photos the first look missed (300 of `scanner.damage`'s,
60 of bench/scenes.py's, each pass run alone):

1. every format with zxing's retries (inverted codes, linear codes turned 90°, and the
   codes of other systems: an EAN-13 is reported as foreign), unless the first look located
   a QR code or DataMatrix it could not read (a damaged tag, which the repairs read)
   - unshake: a photo smeared far one way (MOTION_FIRST), which nothing else reads, has
     the deblur pass's shake attempts (10.) at once
2. a downscale of a huge photo (a 12-megapixel phone photo of a small code)
3. a contrast stretch (low contrast, glare)
4. a global-histogram binarizer instead of zxing's local-average one (noise, glare)
5. denoise: a Gaussian smoothing (5 px, then 3 px) and a local threshold, then the 5 px
   smoothing left to zxing's binarizer (dim light with sensor noise, where zxing's
   binarizers see salt and pepper); in a dim photo, last, a 7 px smoothing and the local
   threshold (the camera's gain lifts the noise further)
6. a 2x (or 3x) upscale of a tiny image (low resolution, blur)
7. uncurl: where zxing locates a code it cannot read, the crop flattened as if wrapped
   round a bottle (a vertical cylinder), for a code spanning 70° to 160° of it
8. finder repair: a QR code whose third finder pattern a sticker, a finger or a
   washed-out highlight hides: scanner.finders finds the two left, the missing one is
   painted at each place a square code allows and, where zxing then locates the code but
   cannot read it (a photo at an angle), at places up to 3 modules beside it (only a full
   QR code is accepted: a lone painted pattern can pass for a Micro QR code)
9. DataMatrix repair: a DataMatrix whose L a sticker or a finger breaks (zxing traces the
   L and gives up): scanner.datamatrix finds its outline, samples the module grid, redraws
   the L and timing edges and zxing reads the clean picture; an outline that nearly fits
   but does not read is read sharpened, refined corner by corner, or has a corner a
   finger cut short put back where the other three say it is. In a noisy photo (sensor
   noise over NOISY grey levels, Immerkaer's estimate) both repairs look again at the
   stretch smoothed over 3 px: the noise breaks the patterns they look for apart; where
   the stretch moved the black point far (UNSTRETCHED_FROM), the DataMatrix repair looks
   at the photo as it is too
10. Wiener deconvolutions of a 2 px Gaussian blur (read as it is, then a more damped one at
    twice its size: ~3 px modules blurred with noise or in dim light, then a less damped
    one), a damped 1.5 px one under the denoise threshold (blur with noise, low light:
    several damages at once), then
    the DataMatrix repair and finder repair on the sharpened photo (a sticker or a finger
    and blur at once; a DataMatrix outline that fits but does not read is deblurred again
    on its own crop); in a dim photo, the first again at twice its size; last, in a
    shaken photo (its gradients weaker along one direction), a deconvolution of a straight
    5 px shake along it, read thresholded, at twice its size and by finder repair, then of
    an 8 px one, thresholded and at twice its size

No pass starts once a photo has used DECODE_BUDGET_S of the reference machine's CPU (as
much work on a slower machine: `machine_pace`), nor a further attempt within a pass made
of several (`_first`: deblur's seven, eight in a dim photo, five more in a shaken one;
denoise's three, four in a dim photo). Micro QR codes never count:
noise makes them (two misreads), and no label in scope prints one.

A 45° rotation was a pass: it read 0 of 1,000 bench photos and cost 50-350 ms on each photo
nothing reads. A median filter (speckle noise) read 1 of 1,000 at the same cost. A fixed
threshold at the median, an unsharp mask and the upscale of 600-900 px photos read nothing
the other passes do not on 1,440 bench photos, for 10 % of the decoding CPU. All are gone.

Passes after the every-format one look for QR and DataMatrix only. A code of another
system beside a tag in the same photo is therefore not reported once the first look reads
the tag (it would cost every photo the 15 ms every-format pass; the tag is what is judged).
Several codes in one picture are all returned.
When the first look (or the every-format pass) finds codes, a *second look* keeps a harder code in the same
picture from being lost to an easy one (`_second_look`). (When only a fallback finds codes
the whole photo is hard: only the repairs look again, on the photo with the code painted
over, and only where a spot (from REGION_MIN_SCORE) or a located but unread code says a
second label may be there.)

* where the pass located a code it could not read (zxing reports it with `return_errors`),
  that spot is cropped with a margin and run through the cheap passes (CROP_PASSES) on its own (crops
  are small, so this is cheap);
* the codes found so far are painted paper-white and the *later* passes (of MASKED_PASSES)
  run on what is left (the earlier passes already saw the whole picture), stopping after
  the first pass that finds nothing new and locates nothing unread;
* last, spots of the photo as busy with edges as the codes read, where no pass located a
  code (`_code_regions`), are cropped and read; a faint one through the first look upscaled
  and the DataMatrix repair only.

Bounded so that noisy photos (where zxing locates phantom codes) stay cheap: at most
MAX_CROPS crops through the first CROP_PASSES passes, spots much smaller than the codes read
are ignored, at most MASKED_MAX masked passes. Decoding CPU on 280 bench-like photos (one
code on most; with and without, interleaved in one process, load ~10): 22.9 → 27.1 ms per
image (+19 %), worst image +34 ms; decoded 262 → 263. On 60 photos of one clean and one
damaged label it read both codes on 47 instead of 45; the other 13 hold a code no pass
reads (severe blur, severe low resolution).
"""

from __future__ import annotations

import functools
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import zxingcpp
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from ledger.errors import InvalidInput
from scanner import datamatrix
from scanner.allocator import keep_freed_memory
from scanner.finders import Place, nudges, places

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
#: Photos larger than this (longest side, pixels) get a downscaled pass.
HUGE_SIDE = 2000
#: Images smaller than this (longest side, pixels) are read upscaled in the first pass, and
#: their contrast stretch upscaled in a later one (3x when under SMALL_SIDE).
TINY_SIDE = 600
SMALL_SIDE = 450
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


#: CPU seconds a photo may take on the reference machine before no further pass starts.
#: The passes are ordered by reads per millisecond, so what the budget cuts off reads
#: least; an unreadable photo (a blank wall, a code beyond repair) then costs a bounded
#: share of a folder's scan. On an 800x600 photo every pass together takes 0.2-0.45 s of
#: CPU there: the budget cuts off larger photos' last passes, and photos on a starved core
#: never (CPU time, not wall). On a slower machine the budget is as much work, not as many
#: seconds (`machine_pace`): what a scanner reads must not depend on the laptop it runs on.
DECODE_BUDGET_S = 0.6

#: CPU seconds `_reference_work` takes on the reference machine: the one the passes and
#: the budget were tuned on (stop 24's, where `bench scan`'s command took 37-40 ms of CPU a
#: photo). On the 2026-12-07 machine the same decoder took 76 ms a photo (1.9 times as
#: long) and the work 17-25 ms (six processes); there a fixed 0.6 s cut deblur short on
#: moderate `combined` photos: 4 of 908 moderate codes of 2,400 bench photos read only
#: with 1.2 s. Stop 26 made the work itself cheaper (`keep_freed_memory`; the
#: deconvolution's own changes alone made it ~4 % dearer): on one machine, alternated
#: runs, 11.0-13.2 ms before and 8.8-9.7 after, so the reference machine now takes 0.78 of
#: what it took, and a photo's budget in seconds on any machine stays what it was. Stop 28
#: read the fallbacks' codes unturned (MATRIX_ONLY), which the work's zxing reads are: it
#: took 0.947 of what it did (the fastest of 40, three alternated runs each), and so does
#: this.
REFERENCE_WORK_S = 0.0081
#: The pace is clamped to this range (a wild measurement must not starve or flood a photo).
PACE_RANGE = (0.5, 4.0)
#: The reference work is timed this many times; the fastest counts (the least disturbed).
PACE_RUNS = 5


def _reference_work() -> None:
    """A fixed piece of what decoding does: a deconvolution, a denoise threshold and zxing
    reads of a synthetic 400x300 picture of blurred, noisy blocks (the same on every run)."""
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 2, (30, 40), dtype=np.uint8) * 200 + 30
    picture = cv2.resize(blocks, (400, 300), interpolation=cv2.INTER_NEAREST)
    noisy = np.clip(cv2.GaussianBlur(picture, (7, 7), 2) + rng.normal(0, 20, picture.shape), 0, 255)
    gray = Image.fromarray(noisy.astype(np.uint8))
    _read(_Wiener(gray)(DEBLUR_NSR), "deblur")
    _read(_smoothed_threshold(gray, DENOISE_KERNELS[0]), "denoise")
    _read(gray, EVERY_FORMAT)


@functools.cache
def machine_pace() -> float:
    """How many times longer this machine takes than the reference one for the same
    decoding work (CPU time of `_reference_work`, the fastest of PACE_RUNS): the factor the
    photo budget is stretched by. Measured once per process (~0.1 s), with the allocator
    set as decoding runs (`keep_freed_memory`: any process that decodes keeps the memory a
    pass frees, and the work is timed the way it runs)."""
    keep_freed_memory()
    _reference_work()  # the first run also loads and allocates: not counted
    times = []
    for _ in range(PACE_RUNS):
        started = time.process_time()
        _reference_work()
        times.append(time.process_time() - started)
    low, high = PACE_RANGE
    return min(max(min(times) / REFERENCE_WORK_S, low), high)


#: The fallback passes look for the 2D codes tags and medicine packs carry; the first pass
#: reads every format, so that codes from other systems (an EAN-13) are reported as such.
MATRIX_FORMATS = (
    zxingcpp.BarcodeFormat.QRCode,
    zxingcpp.BarcodeFormat.MicroQRCode,
    zxingcpp.BarcodeFormat.DataMatrix,
)


#: Every pass but every-format looks for QR and DataMatrix the way labels print them (dark
#: on light). The first look so took 1.5 ms on a 800x600 photo where every format,
#: inverted and turned took 15.6 ms for the same codes (60 bench photos, load ~15).
#: zxing's turn (a second scan along the picture's other axis) adds nothing for a QR
#: code, found at any angle, but its DataMatrix detector without it misses a symbol turned
#: past about 50°. The first look turns (`_read`: 0.7 ms more), so that a pack lying any
#: way round is read there: unturned it was left to every-format, and the bench's 140 mild
#: photos turned by 180° or 270° took 1.9 s of CPU (upright: 0.9); turned, 1.1. The
#: fallbacks do not turn (until stop 28 they did): they read the same codes of 1,600
#: `bench scan` photos (four tag draws) and 800 of bench/scenes.py's, moderate and severe,
#: in 10-16 % less CPU (measured before the first look turned); of the bench's photos
#: turned by 90° or 270°, 2 fewer severe ones of 145 (by 90°), none fewer moderate (a
#: turned symbol they miss, the DataMatrix repair reads by its own outline).
MATRIX_ONLY: dict[str, Any] = {
    "formats": MATRIX_FORMATS,
    "try_invert": False,
    "try_rotate": False,
}
#: The passes that look at the photo as it is (or a tiny one upscaled): the second look
#: runs after them.
FIRST_LOOK = frozenset({"as-is", "as-is-upscaled"})
#: The pass for codes of other systems (an EAN-13 is reported as foreign), inverted codes
#: and linear codes turned by 90°: zxing with every format and all its retries.
EVERY_FORMAT = "every-format"

#: DataMatrix alone (a clean picture redrawn by scanner.datamatrix).
DATAMATRIX: Any = (zxingcpp.BarcodeFormat.DataMatrix,)

#: A point in pixel coordinates, and a code's outline (4 corners) in the grayscale image.
Point = tuple[float, float]
Outline = tuple[Point, Point, Point, Point]
#: Maps a point of a pass's image back to the grayscale image (passes scale or rotate it).
Back = Callable[[float, float], Point]


@dataclass(frozen=True, slots=True)
class _Found:
    """What one zxing call saw: codes it read, and where it located codes it could not read
    (a finder pattern found but the data unreadable: the place for a second look)."""

    codes: list[tuple[DecodedCode, Outline]]
    misses: list[Outline]


def _identity(x: float, y: float) -> Point:
    return x, y


def _read(image: Image.Image, strategy: str, back: Back = _identity, **options: Any) -> _Found:
    if strategy == EVERY_FORMAT:
        pass  # zxing's defaults: every format, inverted, turned
    elif strategy in FIRST_LOOK:
        options = {**MATRIX_ONLY, "try_rotate": True, **options}  # a pack any way round
    else:
        options = {**MATRIX_ONLY, **options}
    found = zxingcpp.read_barcodes(
        image, text_mode=zxingcpp.TextMode.Plain, return_errors=True, **options
    )
    codes = []
    misses = []
    for r in found:
        if r.format == zxingcpp.BarcodeFormat.MicroQRCode:
            # A Micro QR code holds a few characters behind a single finder pattern, and
            # noise arranges itself into one: "7560" out of an uncurled photo of a blurred,
            # covered QR code, "32" out of a tiny, blurred one as it is. No label or pack
            # in scope prints one (tags are QR, packs GS1 DataMatrix): never a code.
            continue
        p = r.position
        outline: Outline = (
            back(p.top_left.x, p.top_left.y),
            back(p.top_right.x, p.top_right.y),
            back(p.bottom_right.x, p.bottom_right.y),
            back(p.bottom_left.x, p.bottom_left.y),
        )
        if not r.valid:
            misses.append(outline)
            continue
        ident = r.symbology_identifier
        gs1 = r.content_type == zxingcpp.ContentType.GS1
        codes.append((DecodedCode(r.text, r.format.name, ident, gs1, strategy), outline))
    return _Found(codes, misses)


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


def _unscale(factor: float) -> Back:
    return lambda x, y: (x / factor, y / factor)


#: Deblurring: the Gaussian (sd, pixels) undone, and the noise-to-signal ratio that keeps
#: the inverse filter from amplifying sensor noise (tried, then half of it: sharper).
#: Chosen on photos with several moderate damages (blur, noise, low light, an angle).
DEBLUR_SIGMA = 2.0
DEBLUR_NSR = 0.02
#: A QR code out of focus with a finder pattern covered (a finger on a label at an angle),
#: or a DataMatrix with a corner of its L covered: the repairs find what is left of the
#: patterns only once the blur of a moderately defocused shot (a Gaussian of 1.5 px) is
#: undone; at 2 px the patterns ring and are missed.
REPAIR_SIGMA = 1.5
#: Blur with sensor noise or in dim light (moderate `combined`): a more damped deconvolution
#: read at twice its size.
UPSCALED_NSR = 0.03
#: In a dim photo (its paper, the 99th percentile, under DIM_PAPER grey levels) the first
#: deconvolution (DEBLUR_NSR, less damped) is read at twice its size as well, last: blur
#: in dim light is where the upscaled read misses most (issue 11: 13 of 113 moderate
#: `combined` QR codes with blur and low light in 1,200 photos; this read 4, lost none).
#: For every photo it read 5 more, lost one and cost 6 % CPU on the bench's mix.
DIM_PAPER = 200
#: Hand shake: a photo whose gradients are weaker along one direction than across it,
#: their energy (the structure tensor of the whole photo) under this share of the
#: strongest, is taken as smeared along that direction. On 400 of bench/scenes.py's
#: moderate photos the shaken ones measured 0.26-0.77 (median 0.55), the others 0.55-0.99
#: (median 0.85): a quarter of the unshaken ones fall under it too, and pay for the
#: attempts (last of all passes) where nothing else reads them.
MOTION_ANISOTROPY = 0.8
#: Length (pixels) of the shake undone first: 5 px read the most of those photos (4 to 7
#: px tried).
MOTION_LENGTH = 5
#: The defocus (Gaussian sd, pixels) undone with it: a shaken photo is rarely sharp (0 to
#: 1.0 tried; 1.0 read the most).
MOTION_SIGMA = 1.0
#: Then a longer shake, undone alone: a 5 px deconvolution leaves a 7 px smear (a 3.5 px
#: module smeared over two) unread. On `scanner.damage` photos smeared 7 px (a trial
#: length; its levels are 3.5 / 5.5 / 9 px) 31 of 40 read without either, 34 with 5 px, 40
#: with both; its severe 9 px shake: 8 of 60 read before, 48 with both.
MOTION_LONGER = 8
#: Under this anisotropy a photo is smeared so far one way that no other pass reads it: the
#: shake attempts run straight after the first look (`unshake`), not after every other
#: pass. `scanner.damage`'s shaken photos measure 0.19-0.44 severe, 0.32-0.6 moderate;
#: every other kind of its photos 0.52 and over (a keystone's label edges, text lines).
MOTION_FIRST = 0.45


#: Denoising: Gaussian kernels (pixels) smoothing sensor noise before a local threshold, and
#: that threshold's neighbourhood (pixels, odd) and offset (grey levels below the local mean).
#: Chosen on photos in dim light with sensor noise at an angle, where zxing's own
#: binarizers see salt and pepper and a median filter read nothing more.
DENOISE_KERNELS = (5, 3)
#: In a dim photo or crop (DIM_PAPER) the denoise pass last tries a wider kernel: the
#: camera's gain lifts the sensor noise to where a 5 px Gaussian leaves speckle that breaks
#: a small DataMatrix's modules apart (issue 11: the bench's two-pack photo in dim light with noise,
#: its second pack missed in 7 of 20 tag draws; read by this in all 7, none lost). Dim
#: photos only: on the others it read nothing more and cost 3 % of the bench mix's CPU.
#: (A dim photo: its paper, the 99th percentile, under DIM_PAPER; a spot's crop is judged
#: on its own.)
DENOISE_HEAVY = 7
DENOISE_BLOCK = 31
DENOISE_OFFSET = 5


#: A photo whose sensor noise (`_noise_sd`) is over this many grey levels is noisy: the
#: repairs look at it smoothed over NOISY_KERNEL px too. `scanner.damage`'s photos with
#: noise or low light measured 7.8-40, the others 0-2.
NOISY = 5.0
NOISY_KERNEL = 3
#: Where a photo's darkest 1 % is at least this grey, the stretch moved its black point far,
#: and the DataMatrix repair looks at the photo unstretched as well: a finger's brown or a
#: sticker's colour, stretched, comes out as dark as ink and joins a symbol's outline at
#: the corner it covers (the bench's moderate `combined` photo 257, a pack under a finger
#: in glare: read so in every tag draw, by nothing before). Below it the stretch changes a
#: photo little and the look would repeat the stretched one's work.
UNSTRETCHED_FROM = 40
#: Immerkaer's mask: the difference of two Laplacians, blind to a picture's edges and
#: ramps to first order, so what it sees of a photo is mostly its noise.
_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _noise_sd(gray: Image.Image) -> float:
    """The standard deviation of a photo's sensor noise in grey levels, by Immerkaer's
    fast estimate ("Fast Noise Variance Estimation", 1996): the mean absolute response to
    `_NOISE_MASK`, times sqrt(pi / 2) / 6 (~1 ms on an 800x600 photo)."""
    pixels = np.asarray(gray, dtype=np.float32)
    response = cv2.filter2D(pixels, -1, _NOISE_MASK)[1:-1, 1:-1]
    return float(np.abs(response).mean()) * math.sqrt(math.pi / 2) / 6


def _smoothed(gray: Image.Image, kernel: int) -> Image.Image:
    """`gray` smoothed by a Gaussian of `kernel` pixels."""
    return Image.fromarray(cv2.GaussianBlur(np.asarray(gray), (kernel, kernel), 0))


def _smoothed_threshold(gray: Image.Image, kernel: int) -> Image.Image:
    """`gray` smoothed by a Gaussian of `kernel` pixels, then each pixel black where darker
    than its neighbourhood's weighted mean (dim, noisy light: the mean follows the light)."""
    smooth = cv2.GaussianBlur(np.asarray(gray), (kernel, kernel), 0)
    binary = cv2.adaptiveThreshold(
        smooth,
        255,
        cv2.ADAPTIVE_THRESH_GAUSSIAN_C,
        cv2.THRESH_BINARY,
        DENOISE_BLOCK,
        DENOISE_OFFSET,
    )
    return Image.fromarray(binary)


#: The CPU time (time.process_time) after which no further attempt starts: set by
#: decode_image for the photo under way, so that the budget also cuts a pass made of several
#: attempts (the deblur pass: seven to thirteen, 100-480 ms on a photo nothing
#: reads, where most photos it reads are read by its first or second).
_deadline: ContextVar[float] = ContextVar("decode_deadline", default=math.inf)


def _first(*attempts: Callable[[], _Found]) -> _Found:
    """The first attempt that reads a code (or the last one's misses); none starts once the
    photo's decoding budget is spent."""
    found = _Found([], [])
    for index, attempt in enumerate(attempts):
        if index and time.process_time() > _deadline.get():
            break
        found = attempt()
        if found.codes:
            return found
    return found


class _Wiener:
    """Wiener deconvolutions of one photo for Gaussian blurs (the out-of-focus phone photo)
    and straight shakes (`shaken`),
    in the frequency domain, each stretched back to the grey range. The photo's spectrum is
    taken once for all of them, with OpenCV's transform in single precision (numpy's
    promotes to double: 19 ms for the forward transform of an 800x600 photo where OpenCV
    takes 6). The grey range stays the whole picture's 1st and 99th percentiles: read off
    a quarter of the pixels (10 ms less a deconvolution) it lost a blurred photo in dim
    light (tests/scanner/test_decode.py, combined moderate 47)."""

    def __init__(self, gray: Image.Image) -> None:
        pixels = np.asarray(gray, dtype=np.float32) / np.float32(255.0)
        self.shape = pixels.shape
        self.spectrum = cv2.dft(pixels, flags=cv2.DFT_COMPLEX_OUTPUT)
        fy = np.fft.fftfreq(pixels.shape[0]).astype(np.float32)[:, None]
        fx = np.fft.fftfreq(pixels.shape[1]).astype(np.float32)[None, :]
        self.fx, self.fy = fx, fy
        self.radius2 = fx**2 + fy**2
        self._otfs: dict[float, NDArray[np.float32]] = {}

    def __call__(self, nsr: float, sigma: float = DEBLUR_SIGMA) -> Image.Image:
        # The same numbers as `spectrum * gain[:, :, None]` and np.percentile, in a third
        # of the time (a deblur makes four or five of these, and up to two shakes): the blur's
        # transfer function kept for each sigma, the spectrum multiplied as complex
        # numbers (a last axis of two made numpy's loop crawl) and the grey range read off
        # the photo's tails (`_tail_percentiles`).
        otf = self._otfs.get(sigma)
        if otf is None:
            otf = self._otfs[sigma] = np.exp(np.float32(-2 * (np.pi * sigma) ** 2) * self.radius2)
        return self._restored(otf, nsr)

    def shaken(self, nsr: float, angle: float, length: float, sigma: float) -> Image.Image:
        """The photo with a straight shake of `length` pixels along `angle` (radians, x
        to the right, y down) and a Gaussian defocus of `sigma` pixels undone. A shake of
        L pixels averages L positions: its transfer function along the motion is the
        Dirichlet kernel sin(pi L p) / (L sin(pi p)) of the frequency p projected on the
        motion; across it, 1. (Exact along an axis; on a diagonal the projection passes
        0.5 and the kernel folds back: a little too much gain in the spectrum's corners.)"""
        along = self.fx * np.float32(math.cos(angle)) + self.fy * np.float32(math.sin(angle))
        sine = np.sin(np.float32(np.pi) * along)
        near_zero = np.abs(sine) < 1e-6
        box = np.sin(np.float32(np.pi * length) * along) / np.where(
            near_zero, np.float32(1), np.float32(length) * sine
        )
        box[near_zero] = 1
        focus = np.exp(np.float32(-2 * (np.pi * sigma) ** 2) * self.radius2)
        return self._restored((box * focus).astype(np.float32), nsr)

    def _restored(self, otf: NDArray[np.float32], nsr: float) -> Image.Image:
        gain = otf / (otf**2 + np.float32(nsr))
        product = (self.spectrum.view(np.complex64)[..., 0] * gain)[..., None]
        sharp = cv2.idft(product.view(np.float32), flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
        lo, hi = (np.float64(v) for v in _tail_percentiles(sharp, 1, 99))
        scaled = np.clip((sharp - lo) / max(float(hi - lo), 1e-6), 0, 1) * 255
        return Image.fromarray(scaled.astype(np.uint8))


#: `_tail_percentiles` looks for a tail's threshold in every this many values.
TAIL_SAMPLE = 16


def _tail_percentiles(values: NDArray[Any], low: float, high: float) -> list[float]:
    """`np.percentile(values, (low, high))` of a large float32 array without NaN (a
    deconvolution's) with `low` and `high` near its ends, to the last bit, in a seventh of
    the time: each end's two order statistics are picked from only the values beyond a
    threshold that a sample of every TAIL_SAMPLE-th value puts safely past them (all of
    them, when it does not), then interpolated as numpy does (the difference in the
    array's precision)."""
    flat = values.ravel()
    n = flat.size
    last = n - 1
    sample = flat[::TAIL_SAMPLE]
    out = []
    for share in (low, high):
        position = share / 100 * last
        below = int(position)
        ranks = [below, min(below + 1, last)]
        picked = None
        if below < last / 2:
            cut = min(sample.size - 1, ranks[1] // TAIL_SAMPLE + 64)
            tail = flat[flat <= np.partition(sample, cut)[cut]]
            if tail.size > ranks[1]:
                picked = np.partition(tail, ranks)[ranks]
        else:
            cut = max(0, sample.size - 1 - ((last - ranks[0]) // TAIL_SAMPLE + 64))
            tail = flat[flat >= np.partition(sample, cut)[cut]]
            if tail.size > last - ranks[0]:
                within = [r - (n - tail.size) for r in ranks]
                picked = np.partition(tail, within)[within]
        if picked is None:
            picked = np.partition(flat, ranks)[ranks]
        a, b = picked
        gap = float(b - a)  # numpy's _lerp takes it in the array's precision
        t = position - below
        out.append(float(b) - gap * (1 - t) if t >= 0.5 else float(a) + gap * t)
    return out


def _deblur(stretched: Image.Image, dim: bool, shake: Callable[[], _Shake | None]) -> _Found:
    """Wiener deconvolutions (the second read at twice its size: small modules blurred with
    noise or in dim light break apart when binarized at their own); then a DataMatrix with
    a covered L, out of focus too (a sticker and blur at once), through the DataMatrix
    repair on the first (its outline only thresholds cleanly once sharpened; an outline
    that fits but does not read, deblurred again on its own crop: RECROP_MAX); then a QR
    code with a covered finder pattern, out of focus, through finder repair on a milder
    deconvolution; in a `dim` photo, the first at twice its size; last, where the photo
    looks shaken (`shake`: `_shake` of `stretched`, or None where it is not shaken or its
    shake was tried already), the shake undone (`_Wiener.shaken`)."""
    wiener = _Wiener(stretched)
    sharp = wiener(DEBLUR_NSR)
    mild: list[Image.Image] = []
    damp: list[Image.Image] = []

    def milder() -> Image.Image:
        if not mild:
            mild.append(wiener(DEBLUR_NSR, REPAIR_SIGMA))
        return mild[0]

    def damped() -> Image.Image:
        if not damp:
            damp.append(wiener(DEBLUR_NSR * 2.5, REPAIR_SIGMA))
        return damp[0]

    return _first(
        lambda: _read(sharp, "deblur"),
        lambda: _read(_scaled(wiener(UPSCALED_NSR), 2.0), "deblur", _unscale(2.0)),
        lambda: _read(wiener(DEBLUR_NSR / 2), "deblur"),
        # Blur with noise or in dim light: a milder, more damped deconvolution binarized
        # by the denoise pass's local threshold. (A 2.5 px deconvolution, and the damped
        # one thresholded unsmoothed, were attempts here: neither read any of 2,340
        # photos, bench plan, independent scenes and a damage mix, that the rest did not;
        # gone, 3-5 % of the decoding CPU.)
        lambda: _read(_smoothed_threshold(damped(), DENOISE_KERNELS[-1]), "deblur"),
        lambda: _datamatrix_repair(
            sharp, "deblur", refine_from=datamatrix.REFINE_FROM, source=stretched
        ),
        lambda: _datamatrix_repair(milder(), "deblur", refine_from=datamatrix.REFINE_FROM),
        lambda: _finder_repair(milder(), "deblur"),
        # A dim photo: the first deconvolution at twice its size too (DIM_PAPER).
        *([lambda: _read(_scaled(sharp, 2.0), "deblur", _unscale(2.0))] if dim else []),
        *_unshaken(wiener, shake, "deblur"),
    )


def _unshaken(
    wiener: _Wiener, shake: Callable[[], _Shake | None], strategy: str
) -> list[Callable[[], _Found]]:
    """Attempts at a shaken photo (`shake`: its measure, None where it is not shaken; none
    of these reads anything elsewhere): the shake undone with a slight defocus, binarized
    by the local threshold, read at twice its size, then finder repair (a finger and a
    shake at once); then a longer shake undone alone, thresholded and at twice its size.
    Nothing is measured or deconvolved before the first attempt runs (`wiener`: the
    photo's spectrum, taken already)."""

    @functools.cache
    def unshaken(length: float, sigma: float) -> Image.Image | None:
        measured = shake()
        if measured is None:
            return None
        return wiener.shaken(DEBLUR_NSR, measured.angle, length, sigma)

    def attempt(
        read: Callable[[Image.Image], _Found], length: float, sigma: float
    ) -> Callable[[], _Found]:
        def run() -> _Found:
            image = unshaken(length, sigma)
            return _Found([], []) if image is None else read(image)

        return run

    def thresholded(image: Image.Image) -> _Found:
        return _read(_smoothed_threshold(image, DENOISE_KERNELS[-1]), strategy)

    def doubled(image: Image.Image) -> _Found:
        return _read(_scaled(image, 2.0), strategy, _unscale(2.0))

    def repaired(image: Image.Image) -> _Found:
        return _finder_repair(image, strategy)

    return [
        attempt(thresholded, MOTION_LENGTH, MOTION_SIGMA),
        attempt(doubled, MOTION_LENGTH, MOTION_SIGMA),
        attempt(repaired, MOTION_LENGTH, MOTION_SIGMA),
        attempt(thresholded, MOTION_LONGER, 0.0),
        attempt(doubled, MOTION_LONGER, 0.0),
    ]


class _Shake(NamedTuple):
    """How a photo looks smeared: along `angle` (radians, x to the right, y down), its
    gradients' energy that way `anisotropy` times their energy across (1: not at all)."""

    angle: float
    anisotropy: float


def _shake(gray: Image.Image) -> _Shake | None:
    """The direction (radians) a photo looks smeared along, where its gradients are
    markedly weaker along one direction than across it (MOTION_ANISOTROPY), and how much;
    None where they are not. The structure tensor summed over the photo: its weak
    eigenvector is the direction of the shake."""
    pixels = np.asarray(gray, dtype=np.float32)
    gx = cv2.Sobel(pixels, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(pixels, cv2.CV_32F, 0, 1, ksize=3)
    xx, yy, xy = (float(np.vdot(a, b)) for a, b in ((gx, gx), (gy, gy), (gx, gy)))
    half = (xx + yy) / 2
    spread = math.hypot((xx - yy) / 2, xy)
    if half <= 0 or (half - spread) / (half + spread) >= MOTION_ANISOTROPY:
        return None
    angle = 0.5 * math.atan2(2 * xy, xx - yy) + math.pi / 2
    return _Shake(angle, (half - spread) / (half + spread))


class _Stretched:
    """`gray`'s contrast stretch, made when a pass first needs it: most photos are read by
    the first look, and the second look lists the passes of crops and masked copies again
    (1.7 ms a stretch of an 800x600 photo, a quarter of an easy photo's decoding)."""

    def __init__(self, gray: Image.Image) -> None:
        self.gray = gray
        self.image: Image.Image | None = None

    def __call__(self) -> Image.Image:
        if self.image is None:
            self.image = ImageOps.autocontrast(self.gray, cutoff=1)
        return self.image


def _passes(gray: Image.Image) -> Iterator[tuple[str, Callable[[], _Found]]]:
    longest = max(gray.size)
    stretched = _Stretched(gray)

    @functools.cache
    def dim() -> bool:
        return _percentile(gray, 0.99) < DIM_PAPER

    @functools.cache
    def noisy() -> bool:
        return _noise_sd(gray) > NOISY

    @functools.cache
    def smoothed() -> Image.Image:
        return _smoothed(stretched(), NOISY_KERNEL)

    @functools.cache
    def stretch_moved() -> bool:
        return _percentile(gray, 0.01) >= UNSTRETCHED_FROM

    @functools.cache
    def shake() -> _Shake | None:
        return _shake(stretched())

    early: list[bool] = []  # the unshake pass tried the shake attempts: deblur does not

    def unshake() -> _Found:
        # A photo smeared so far one way (MOTION_FIRST) that nothing else reads it: the
        # shake attempts straight after the first look. Measured first (0.4 ms on an
        # 800x600 photo): the spectrum (5 ms) is taken only for such a photo.
        measured = shake()
        if measured is None or measured.anisotropy >= MOTION_FIRST:
            return _Found([], [])
        early.append(True)
        return _first(*_unshaken(_Wiener(stretched()), shake, "unshake"))

    if longest < TINY_SIDE:
        # A low-resolution photo: look at a 2x upscale first, or a second code in the picture
        # (found only upscaled) would be missed once the first pass finds one.
        yield (
            "as-is-upscaled",
            lambda: _read(_scaled(gray, 2.0), "as-is-upscaled", _unscale(2.0)),
        )
    yield "as-is", lambda: _read(gray, "as-is")
    yield EVERY_FORMAT, lambda: _read(gray, EVERY_FORMAT)
    yield "unshake", unshake
    yield "contrast", lambda: _read(stretched(), "contrast")
    if longest > HUGE_SIDE:
        yield (
            "downscale",
            lambda: _read(
                _scaled(stretched(), 1600 / longest), "downscale", _unscale(1600 / longest)
            ),
        )
    yield (
        "global-binarizer",
        lambda: _read(
            stretched(), "global-binarizer", binarizer=zxingcpp.Binarizer.GlobalHistogram
        ),
    )
    yield (
        "denoise",
        lambda: _first(
            *(lambda k=k: _read(_smoothed_threshold(gray, k), "denoise") for k in DENOISE_KERNELS),
            # Heavier noise in dim light: the smoothed stretch left to zxing's own binarizer
            # (the local threshold above turns what noise is left into speckle).
            lambda: _read(_smoothed(stretched(), DENOISE_KERNELS[0]), "denoise"),
            *(
                [lambda: _read(_smoothed_threshold(gray, DENOISE_HEAVY), "denoise")]
                if dim()
                else []
            ),
        ),
    )
    if longest < TINY_SIDE:
        factor = 3.0 if longest < SMALL_SIDE else 2.0
        yield (
            "upscale",
            lambda: _read(_scaled(stretched(), factor), "upscale", _unscale(factor)),
        )
    if longest < TINY_SIDE:
        yield (
            "uncurl",
            lambda: _first(
                lambda: _uncurl(stretched(), UNCURL_ZOOMS),
                lambda: _unscaled(_uncurl(_scaled(stretched(), 2.0)), 2.0),
            ),
        )
    else:
        yield "uncurl", lambda: _uncurl(stretched(), UNCURL_ZOOMS)
    # In a noisy photo (`_noise_sd`) the repairs look again on the stretch smoothed over
    # NOISY_KERNEL px: the noise breaks the finder patterns left, or a DataMatrix's edges,
    # apart. Where the stretch moved the photo's black point (UNSTRETCHED_FROM), the
    # DataMatrix repair looks at the photo as it is too.
    yield (
        "finder-repair",
        lambda: _first(
            lambda: _finder_repair(stretched()),
            *([lambda: _finder_repair(smoothed())] if noisy() else []),
        ),
    )
    yield (
        "datamatrix-repair",
        lambda: _first(
            lambda: _datamatrix_repair(stretched(), refine_from=datamatrix.PLAIN_REFINE_FROM),
            *(
                # (Refined from 0.9 as on a deblurred photo: smoothing softens edges alike.)
                [lambda: _datamatrix_repair(smoothed(), refine_from=datamatrix.REFINE_FROM)]
                if noisy()
                else []
            ),
            *(
                [lambda: _datamatrix_repair(gray, refine_from=datamatrix.PLAIN_REFINE_FROM)]
                if stretch_moved()
                else []
            ),
        ),
    )
    yield "deblur", lambda: _deblur(stretched(), dim(), lambda: None if early else shake())


#: Angles (degrees) of a bottle's circumference a curved code is assumed to span.
CURL_SPANS = (70.0, 100.0, 130.0, 160.0)
#: A photo under TINY_SIDE (a bottle shot from afar: a QR code of 49 modules in 120 pixels,
#: its edges squeezed by the curve to a pixel a module) is also uncurled at twice its size:
#: on 1,200 bench photos that read all 6 moderate `bottle` photos missed (16-36 ms each).
UNCURL_ZOOMS = (1.0, 2.0)


def _uncurl(gray: Image.Image, zooms: tuple[float, ...] = (1.0,)) -> _Found:
    """A code on a bottle: where zxing locates a code it cannot read, flatten the crop as if
    wrapped round a vertical cylinder (columns spaced as the sine of their angle), for a few
    assumed spans, and read again; at each of `zooms` in turn (a small photo's crop
    upscaled: see UNCURL_ZOOMS); then as if round a horizontal one (a bottle on its side:
    rows spaced so), at the first zoom. Before stop 28 only the vertical: the bench's
    photos turned by 90° lost 15 of their 144 moderate codes (13 photos), all `bottle` and
    `curvature`."""
    located = _read(gray, "uncurl", binarizer=zxingcpp.Binarizer.GlobalHistogram).misses
    located += _read(gray, "uncurl").misses
    codes: list[tuple[DecodedCode, Outline]] = []
    for miss in _real_misses(located, [], nested=True)[:2]:
        box = _box(miss, gray.size, 0.25)
        if box is None:
            continue
        crop = gray.crop(box)
        x0, y0, x1, y1 = _bounds(miss)
        found = _first_uncurled(crop, (x0 + x1) / 2 - box[0], (x1 - x0) / 2, zooms)
        if not found:
            # A bottle lying on its side, or photographed turned: the label curves along
            # y. Its crop turned by 90° curves along x, as uncurled above. (Turned, not
            # transposed: a mirrored code reads only where zxing looks for mirrored ones.)
            # At the first zoom only: on the bench's photos turned by 90° and 270° the
            # second read no more, and every upright photo uncurl misses pays for this.
            turned = _first_uncurled(
                crop.transpose(Image.Transpose.ROTATE_90),
                (y0 + y1) / 2 - box[1],
                (y1 - y0) / 2,
                zooms[:1],
            )
            found = [(code, _turned_back(outline, crop.width)) for code, outline in turned]
        codes.extend((code, _shift(outline, box)) for code, outline in found)
    return _Found(_unique_found(codes), [])


def _first_uncurled(
    crop: Image.Image, centre: float, half: float, zooms: tuple[float, ...]
) -> list[tuple[DecodedCode, Outline]]:
    """`_uncurled` at each of `zooms` in turn, until one reads: a spot read at one zoom
    needs no other (each zoom is 8 reads of the crop)."""
    for zoom in zooms:
        found = _uncurled(crop, centre, half, zoom)
        if found:
            return found
    return []


def _turned_back(outline: Outline, width: float) -> Outline:
    """An outline in a picture turned 90° counter-clockwise (Pillow's ROTATE_90: a point
    (x, y) of the picture is at (y, width - x) in it), in the picture's own pixels;
    `width`: the picture's, before it was turned."""
    a, b, c, d = ((width - y, x) for x, y in outline)
    return a, b, c, d


def _uncurled(
    crop: Image.Image, centre: float, half: float, zoom: float
) -> list[tuple[DecodedCode, Outline]]:
    """The codes read in `crop` (a located code centred at column `centre`, `half` pixels
    wide each side) flattened for each of CURL_SPANS, first scaled by `zoom`; outlines in
    the crop's pixels."""
    if zoom != 1.0:
        crop = _scaled(crop, zoom)
    for span in CURL_SPANS:
        flat, column = _flattened(crop, centre * zoom, half * zoom, math.radians(span))

        def back(x: float, y: float, column: Callable[[float], float] = column) -> Point:
            return column(x) / zoom, y / zoom

        for binarizer in (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.GlobalHistogram):
            found = _read(flat, "uncurl", back, binarizer=binarizer)
            if found.codes:
                return found.codes
    return []


def _unscaled(found: _Found, factor: float) -> _Found:
    """`found` in a photo scaled by `factor`, back in the photo's pixels."""
    point = _unscale(factor)

    def back(outline: Outline) -> Outline:
        a, b, c, d = (point(x, y) for x, y in outline)
        return a, b, c, d

    return _Found([(code, back(o)) for code, o in found.codes], [back(o) for o in found.misses])


def _unique_found(codes: list[tuple[DecodedCode, Outline]]) -> list[tuple[DecodedCode, Outline]]:
    seen: set[str] = set()
    kept = []
    for code, outline in codes:
        if code.text not in seen:
            seen.add(code.text)
            kept.append((code, outline))
    return kept


def _flattened(
    crop: Image.Image, centre: float, half: float, span: float
) -> tuple[Image.Image, Callable[[float], float]]:
    """`crop` unrolled from a cylinder on which the code (half-width `half` pixels as seen,
    centred at column `centre`) spans `span` radians; and the map from a column of the
    result back to the crop."""
    radius = half / math.sin(span / 2)
    edge = math.radians(80)
    left = -min(edge, math.asin(min(1.0, centre / radius)))
    right = min(edge, math.asin(min(1.0, (crop.width - centre) / radius)))
    width = max(1, round(radius * (right - left)))
    # Each column of the result samples one column of the crop: a remap whose rows are all
    # alike (Pillow's mesh transform of 2-pixel strips took 7 ms a call, a seventh of all
    # decoding CPU on bench photos; this takes a quarter of that). The map back (and zxing's
    # outlines, and Pillow) count from a pixel's edge, OpenCV from its centre: column x of
    # the result spans x to x + 1 and samples the crop at the map of its centre.
    centres = np.arange(width) + 0.5
    columns = (centre + radius * np.sin(left + centres / radius) - 0.5).astype(np.float32)
    map_x = np.broadcast_to(columns, (crop.height, width))
    map_y = np.broadcast_to(np.arange(crop.height, dtype=np.float32)[:, None], (crop.height, width))
    flat = cv2.remap(
        np.asarray(crop),
        np.ascontiguousarray(map_x),
        np.ascontiguousarray(map_y),
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return Image.fromarray(flat), lambda x: centre + radius * math.sin(left + x / radius)


def _moved(dx: float, dy: float) -> Back:
    """Back from a crop at (dx, dy)."""

    def back(x: float, y: float) -> Point:
        return x + dx, y + dy

    return back


#: Finder-repair: the nudged search runs around at most this many places where zxing
#: located a code once the pattern was painted.
REPAIR_PLAUSIBLE = 2
#: What a repaired picture is read as (zxing-cpp 3's QRCode is the family, Micro QR
#: included; older versions have no Model 2 name).
REPAIR_FORMAT = getattr(zxingcpp.BarcodeFormat, "QRCodeModel2", zxingcpp.BarcodeFormat.QRCode)
#: The nudged search goes this many modules either way along each axis.
REPAIR_REACH = 3
#: Where the pattern is painted first at each place (modules along the code's axes).
FIRST_NUDGES: tuple[tuple[float, float], ...] = ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))


def _finder_repair(gray: Image.Image, strategy: str = "finder-repair") -> _Found:
    """A QR whose third finder pattern is covered: repaint it where two others put it;
    where zxing then locates the code but cannot read it, try beside that place. Every
    such code in the photo: places whose patterns lie in a code already read are skipped."""
    codes: list[tuple[DecodedCode, Outline]] = []

    def read(place: Place, nudge: tuple[float, float]) -> _Found:
        found = _read_repaired(place, nudge, strategy)
        seen = {code.text for code, _ in codes}
        codes.extend((c, o) for c, o in found.codes if c.text not in seen)
        return found

    def done(place: Place) -> bool:
        return any(_inside(point, outline) for point in place.finders for _, outline in codes)

    plausible: list[Place] = []
    for place in places(gray):
        if done(place):
            continue
        located = False
        for nudge in FIRST_NUDGES:
            found = read(place, nudge)
            if found.codes:
                break
            located = located or bool(found.misses)
        else:
            if located:
                plausible.append(place)
    for place in plausible[:REPAIR_PLAUSIBLE]:
        for nudge in nudges(REPAIR_REACH):
            if done(place):
                break
            if nudge not in FIRST_NUDGES:
                read(place, nudge)
    return _Found(codes, [])


def _inside(point: Point, outline: Outline) -> bool:
    """`point` within the bounds of `outline`, grown by a tenth."""
    x0, y0, x1, y1 = _bounds(outline)
    pad = max(x1 - x0, y1 - y0) * 0.1
    return x0 - pad <= point[0] <= x1 + pad and y0 - pad <= point[1] <= y1 + pad


#: A deblurred photo's DataMatrix outline that fits its L and timing edges
#: (datamatrix.NEAR_FROM) but does not read is deconvolved again on its own crop (this
#: share of its size round it, and 8 px), at most RECROP_MAX of them, one per symbol: in a
#: crop a label wide (a second label's spot) the contrast stretch and the deconvolution's
#: grey range are the label's, background and all, and a blurred pack in dim light came
#: out with its modules unreadable, where a crop the symbol's size read (issue 11: the
#: bench's blurred two-label photo in dim light, its pack missed in 3 of 40 tag draws).
RECROP_MAX = 2
RECROP_MARGIN = 0.3


def _datamatrix_repair(
    gray: Image.Image,
    strategy: str = "datamatrix-repair",
    refine_from: float | None = None,
    source: Image.Image | None = None,
) -> _Found:
    """DataMatrix symbols whose L a sticker or a finger breaks: scanner.datamatrix finds
    their outlines, resamples them and redraws the L; zxing reads the clean picture (only
    a symbol that passes its error correction, with some text, counts). `refine_from`: the
    first outline that fits an L and timing edges this well but does not read is refined
    and sampled sharpened too (scanner.datamatrix: the photo's own pass from
    PLAIN_REFINE_FROM, a deblurred photo's from REFINE_FROM); None: none is. `source`:
    the photo `gray` was deblurred from; where nothing reads, each outline that fits but
    does not read is cut from it and deblurred on its own (RECROP_MAX)."""

    def read(picture: np.ndarray[Any, Any]) -> list[Any]:
        found = zxingcpp.read_barcodes(
            picture,
            formats=DATAMATRIX,
            text_mode=zxingcpp.TextMode.Plain,
            is_pure=True,
            try_rotate=False,
            try_invert=False,
            try_downscale=False,
        )
        return [r for r in found if r.valid and r.text]

    def code(r: Any) -> DecodedCode:
        gs1 = r.content_type == zxingcpp.ContentType.GS1
        return DecodedCode(r.text, r.format.name, r.symbology_identifier, gs1, strategy)

    near: list[Outline] = []
    codes = [
        (code(r), quad) for r, quad in datamatrix.reads(np.asarray(gray), read, refine_from, near)
    ]
    if codes or source is None:
        return _Found(_unique_found(codes), [])
    recropped: list[Outline] = []
    for quad in near:
        if len(recropped) >= RECROP_MAX or time.process_time() > _deadline.get():
            break
        box = _box(quad, source.size, RECROP_MARGIN)
        if box is None or any(_overlaps(quad, done) for done in recropped):
            continue  # the same symbol outlined another way (fitted, boxed, opened)
        recropped.append(quad)
        sharp = np.asarray(_Wiener(_Stretched(source.crop(box))())(DEBLUR_NSR))
        codes = [(code(r), _shift(q, box)) for r, q in datamatrix.reads(sharp, read, None)]
        if codes:
            break
    return _Found(_unique_found(codes), [])


def _read_repaired(place: Place, nudge: tuple[float, float], strategy: str) -> _Found:
    found = _read(
        place.painted(nudge),
        strategy,
        _moved(*place.offset),
        formats=REPAIR_FORMAT,
    )
    # A painted finder pattern alone, with noise beside it, can pass for a Micro QR code
    # (which has one pattern): only a full QR code counts.
    codes = [(code, outline) for code, outline in found.codes if code.format == "QRCode"]
    return _Found(codes, found.misses)


def decode_image(
    image: Image.Image,
    strategies: Iterable[str] | None = None,
    second_look: bool = True,
    budget: float = DECODE_BUDGET_S,
) -> list[DecodedCode]:
    """All codes zxing-cpp finds in `image`, trying the fallbacks until one finds any.

    `budget`: CPU seconds on the reference machine (`machine_pace`: here, as much work)
    after which no further pass starts (a pass under way finishes).

    `strategies` limits the passes (by name, e.g. `["as-is"]`), for measuring them.

    `second_look` (default on): a pass that finds codes does not end the search for others;
    see the module docstring. Off, the first pass that finds any code ends the search."""
    budget *= machine_pace()
    started = time.process_time()
    token = _deadline.set(started + budget)
    try:
        return _decode_gray(_gray(image), strategies, second_look, started + budget)
    finally:
        _deadline.reset(token)


def _decode_gray(
    gray: Image.Image, strategies: Iterable[str] | None, second_look: bool, deadline: float
) -> list[DecodedCode]:
    wanted = None if strategies is None else set(strategies)
    passes = [(n, a) for n, a in _passes(gray) if wanted is None or n in wanted]
    located = False
    for index, (name, attempt) in enumerate(passes):
        if index and time.process_time() > deadline:
            break  # the photo has had its share of the cores: report it unread
        if name == EVERY_FORMAT and located:
            # The first look located a QR code or DataMatrix it could not read: a damaged
            # tag, not another system's code nor an inverted one (zxing would not locate
            # those), and the repairs are what read it. Skipped, the every-format pass
            # saves 14 ms on each such photo (a third of the hard ones) and lost no read.
            continue
        found = attempt()
        located = located or (name in FIRST_LOOK and bool(found.misses))
        if found.codes:
            if not second_look:
                return _unique([code for code, _ in found.codes])
            # A code that needed a fallback means the whole photo is hard: a second label
            # in it is as hard (a finger over each, both curved), so only the repairs look
            # for it, on the photo with the code read painted over (issue 11: two-label
            # photos were 4 of the 5 moderate photos missed).
            hard = name not in (*FIRST_LOOK, EVERY_FORMAT)
            # (A repair that read one code may read the second label's as well.)
            later = [n for n, _ in passes[index + (0 if hard else 1) :]]
            return _unique(_second_look(gray, found, later, repairs_only=hard, lead=name))
    return []


#: A crop for a located-but-unread code extends this share of the code's size on each side.
CROP_MARGIN = 0.35
#: At most this many located-but-unread spots are cropped (noisy photos yield phantom ones).
MAX_CROPS = 2
#: The passes a crop goes through (the cheap, productive ones; a crop is small, upscaled).
CROP_PASSES = frozenset(
    {"as-is-upscaled", "as-is", "contrast", "global-binarizer", "upscale", "uncurl"}
)
#: Where a located code stays unread after its crop, these passes run first on the photo
#: with the codes read painted over (a second label's covered finder pattern, its curve):
#: they read the second code of 2 in 3 of the two-label `handheld`/`bottle` photos missed.
EVIDENCE_PASSES = ("finder-repair", "uncurl")
#: A located-but-unread spot smaller than this share of the smallest code read is a phantom.
MIN_MISS_SHARE = 0.15
#: For uncurl, a located spot at least half inside a larger one kept is its duplicate unless
#: the larger is more than this many times its size: then the larger is a phantom round it
#: (zxing traces the edge of a label and the photo's border as a DataMatrix's L, an outline
#: spanning the photo) and the smaller the code (a QR code round a bottle, issue 11: its
#: spot was dropped as part of the phantom, so uncurl flattened the whole photo and read
#: nothing). A spot the larger only grazes is its own (a phantom across two curved labels
#: hid the second label's code).
#: The second look keeps its rule (any overlap is a duplicate): more crops cost every photo.
MISS_SAME_SIZE = 2.0
#: Masked passes run at most this many times in a row without finding a new code, and at
#: most MASKED_MAX times in all.
MASKED_PATIENCE = 1
MASKED_MAX = 3
#: The passes the masked search may run: the cheap ones, and those for photos damaged all
#: over (the photo that hid one code from the first pass likely damaged the other too).
MASKED_PASSES = frozenset(
    {
        "contrast",
        "global-binarizer",
        "upscale",
        "finder-repair",
        "uncurl",
        "deblur",
        "datamatrix-repair",
    }
)


#: Spots that may hold a code no pass located (a second label blurred, curved or with a
#: finger over it, beside one read): the photo's edge energy (Sobel, at REGION_SCALE, mean
#: over REGION_WINDOW pixels) where it is at least REGION_INK of the codes read's own, in
#: blobs filled and square enough to be a label at whatever angle (their smallest rotated
#: rectangle: text lines and label edges are long and thin), scored by their area (in codes
#: read) times their energy (in the codes'). On 706 one-label bench photos the first look
#: read, 14 had such a spot; on 13 two-label photos it read one label of, 11 did (0.8 ms a
#: photo). Where there is no such spot and no located code, the second look ends there, on
#: hard photos too (the repairs run again over the whole photo painted over read nothing on
#: 309 one-label photos of 1,600, for 5 % of all decoding CPU); a faint spot's crop is read
#: (REGION_FAINT_SCORE) and ends it too. A spot counts in full from REGION_MIN_SCORE of the
#: codes read, in area and in score: 0.15, as a pack's DataMatrix a fifth of the tag's area
#: beside it scores (at 0.2 it was missed, issue 11).
REGION_SCALE = 0.25
REGION_WINDOW = 5
#: Grey levels added to the local light the edges are divided by (black is not infinitely
#: contrasty: sensor noise in the dark would be).
REGION_DARK = 16.0
#: See `_spots`.
REGION_OPENING = 5
REGION_INK = 0.5
REGION_MIN_SCORE = 0.15
#: A fainter spot (from this score, or smaller than REGION_MIN_SCORE of a code read) only
#: has its crop read by FAINT_PASSES, and starts no masked pass: a pack's small DataMatrix
#: beside a tag's QR code read by a repair, in glare or dim light or with a sticker on its
#: label, scores 0.08-0.14 (issue 11, two-label moderate `combined`); text and label edges
#: score as low, and the whole list of REGION_PASSES on each of their crops cost 9-14 % CPU.
REGION_FAINT_SCORE = 0.06
REGION_MIN_FILL = 0.35
REGION_MAX_ASPECT = 3.0
MAX_REGIONS = 2
#: At most this many faint spots besides.
MAX_FAINT = 1
#: A spot's crop extends this share of its size on each side.
REGION_MARGIN = 0.2
#: The passes a spot's crop goes through, the first to read a code ending it (in the order
#: of codes read per millisecond on the spots of 2,400 bench photos), led by the pass that
#: read the photo's first code where it is one of them (a fallback): a second label in a
#: hard photo is as hard (issue 11: beside a deblurred QR code, the others cost ~95 ms
#: before the deblur that read the DataMatrix, and the budget ran out first in 1 to 3 of
#: 20 tag draws of the bench's photo).
REGION_PASSES = (
    "as-is-upscaled",
    "uncurl",
    "datamatrix-repair",
    "finder-repair",
    "denoise",
    "upscale",
    "deblur",
)
#: The passes a faint spot's crop goes through: the first look upscaled (a small crop's)
#: and the DataMatrix repair.
FAINT_PASSES = ("as-is-upscaled", "datamatrix-repair")


class _Spot(NamedTuple):
    """A spot that may hold a code: its score (edge energy in a code read's), whether it
    counts in full (REGION_PASSES) or is faint (FAINT_PASSES), and its outline."""

    score: float
    strong: bool
    outline: Outline


def _spots(
    busy: NDArray[Any],
    energy: NDArray[Any],
    unit: float,
    min_area: float,
    strong_area: float,
    offset: tuple[int, int],
    open_misshapen: bool,
) -> list[_Spot]:
    """The blobs of `busy` (at `offset` in the energy map) shaped like a label, scored by
    their energy in `unit`s (a code read's): strong from REGION_MIN_SCORE and `strong_area`
    pixels, faint from REGION_FAINT_SCORE and `min_area`. `open_misshapen`: a blob too long or too
    hollow is opened by REGION_OPENING pixels and its parts looked at instead (a label's
    edge or a line of text joined to a code beside it, in dim light, made the code's spot
    too long to count: issue 11, two-label moderate `combined`)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(busy, connectivity=8)
    scored: list[_Spot] = []
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < min_area:
            continue
        spot = labels[y : y + h, x : x + w] == i
        # Filled and square enough as drawn on the photo, at whatever angle.
        (_, _), (long, short), _ = cv2.minAreaRect(np.argwhere(spot).astype(np.float32))
        long, short = max(long, short) + 1, min(long, short) + 1
        if area < REGION_MIN_FILL * long * short or long > REGION_MAX_ASPECT * short:
            if open_misshapen:
                kernel = np.ones((REGION_OPENING, REGION_OPENING), np.uint8)
                parts = cv2.morphologyEx(spot.astype(np.uint8), cv2.MORPH_OPEN, kernel)
                inner = energy[y : y + h, x : x + w]
                at = (offset[0] + x, offset[1] + y)
                scored += _spots(parts, inner, unit, min_area, strong_area, at, False)
            continue
        score = float(energy[y : y + h, x : x + w][spot].sum()) / unit
        if score >= REGION_FAINT_SCORE:
            sides = (offset[0] + x, offset[1] + y, offset[0] + x + w, offset[1] + y + h)
            strong = score >= REGION_MIN_SCORE and area >= strong_area
            scored.append(_Spot(score, strong, rectangle(*(v / REGION_SCALE for v in sides))))
    return scored


def rectangle(x0: float, y0: float, x1: float, y1: float) -> Outline:
    """The outline of an upright rectangle, corners in the order zxing gives them."""
    return (x0, y0), (x1, y0), (x1, y1), (x0, y1)


def _code_regions(gray: Image.Image, outlines: list[Outline]) -> list[_Spot]:
    """The spots as busy with edges as the codes at `outlines`, outside them: where
    another code may be (see REGION_SCALE). The best MAX_REGIONS strong ones, then the
    best MAX_FAINT faint ones."""
    small = cv2.resize(
        np.asarray(gray), None, fx=REGION_SCALE, fy=REGION_SCALE, interpolation=cv2.INTER_AREA
    ).astype(np.float32)
    edges = np.abs(cv2.Sobel(small, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(small, cv2.CV_32F, 0, 1))
    # Edges relative to the light they are seen in: a label in the dim corner of a photo
    # has weaker edges than one under the lamp, as busy in contrast.
    light = cv2.blur(small, (REGION_WINDOW * 3, REGION_WINDOW * 3)) + np.float32(REGION_DARK)
    energy = cv2.blur(edges, (REGION_WINDOW, REGION_WINDOW)) / light
    read = np.zeros(energy.shape, np.uint8)
    for outline in outlines:
        corners = np.array([[x * REGION_SCALE, y * REGION_SCALE] for x, y in outline], np.int32)
        cv2.fillPoly(read, [corners], 1)
    inside = read.astype(bool)
    if not inside.any():
        return []
    ink = float(energy[inside].mean())
    code_area = float(inside.sum()) / len(outlines)
    energy[cv2.dilate(read, np.ones((5, 5), np.uint8)).astype(bool)] = 0
    busy = (energy > REGION_INK * ink).astype(np.uint8)
    scored = _spots(
        busy,
        energy,
        code_area * ink,
        REGION_FAINT_SCORE * code_area,
        REGION_MIN_SCORE * code_area,
        (0, 0),
        True,
    )
    scored.sort(key=lambda spot: -spot.score)
    strong = [spot for spot in scored if spot.strong]
    faint = [spot for spot in scored if not spot.strong]
    return strong[:MAX_REGIONS] + faint[:MAX_FAINT]


#: The second look after a fallback pass read a code, where a spot or a located code says a
#: second label may be there: the repairs alone (a second label as hard as the first),
#: uncurl only where a code was located but not read.
HARD_SECOND_LOOK = ("finder-repair", "uncurl", "datamatrix-repair")


def _second_look(
    gray: Image.Image,
    first: _Found,
    later: list[str],
    repairs_only: bool = False,
    lead: str | None = None,
) -> list[DecodedCode]:
    codes = list(first.codes)
    seen = {(c.text, c.format) for c, _ in codes}

    def add(found: list[tuple[DecodedCode, Outline]]) -> bool:
        new = False
        for code, outline in found:
            if (code.text, code.format) not in seen:
                seen.add((code.text, code.format))
                codes.append((code, outline))
                new = True
        return new

    # 1. Spots where a code was located but not read: each crop through the pipeline.
    unresolved = False
    for miss in _real_misses(first.misses, [o for _, o in codes])[:MAX_CROPS]:
        box = _box(miss, gray.size, CROP_MARGIN)
        if box is None:
            continue
        crop = gray.crop(box)
        unresolved = True
        for name, attempt in _passes(crop):
            if name not in CROP_PASSES:
                continue
            found = attempt()
            if found.codes:
                add(
                    [
                        (_tagged(code, "second-look-crop"), _shift(outline, box))
                        for code, outline in found.codes
                    ]
                )
                unresolved = False
                break

    regions = _code_regions(gray, [outline for _, outline in codes])
    if not (unresolved or any(spot.strong for spot in regions)):
        # A faint spot alone is worth its own crop's FAINT_PASSES (step 3), no masked pass.
        add(_read_spots(gray, [outline for _, outline in codes], regions, lead))
        return [code for code, _ in codes]
    # 2. The later passes on the image with every code found so far painted over; where a
    # located code is still unread, the repairs first.
    idle = ran = 0
    # The repairs stretch the photo's contrast (1 % cut off at each end) and tell ink from
    # paper by their ratio: painted 255 where the paper was ~200, the masked photo stretched
    # darker than the photo itself and the DataMatrix repair lost a second label it reads in
    # the photo unmasked (issue 11, two-label `handheld`). So for the repairs the codes read
    # are painted the photo's own paper white (its 99th percentile). (The cheap passes keep
    # 255: a grey patch is where zxing locates phantoms, and each costs a further pass.)
    paper = _percentile(gray, 0.99) if repairs_only else 255
    masked = _masked(gray, [outline for _, outline in codes], paper)
    passes = dict(_passes(masked))
    order = [n for n in EVIDENCE_PASSES if unresolved and n in passes]
    if repairs_only:
        order = [n for n in HARD_SECOND_LOOK if n in passes and (n != "uncurl" or unresolved)]
    else:
        order += [n for n in passes if n not in order]
    for name in order:
        attempt = passes[name]
        if name not in later or name not in MASKED_PASSES:
            continue
        if repairs_only:
            found = attempt()
            if add([(_tagged(code, f"second-look-{name}"), o) for code, o in found.codes]):
                masked = _masked(masked, [o for _, o in found.codes], paper)
                passes = dict(_passes(masked))
            continue
        if ran >= MASKED_MAX:
            break
        ran += 1
        found = attempt()
        if add([(_tagged(code, f"second-look-{name}"), o) for code, o in found.codes]):
            masked = _masked(masked, [o for _, o in found.codes])
            idle = 0
        else:
            idle += 1
            if idle >= MASKED_PATIENCE and not _real_misses(found.misses, []):
                break

    # 3. Spots as busy with edges as the codes read, where no pass located anything.
    read = [outline for _, outline in codes]
    if len(codes) > len(first.codes):
        regions = _code_regions(gray, read)
    add(_read_spots(gray, read, regions, lead))
    return [code for code, _ in codes]


def _read_spots(
    gray: Image.Image, read: list[Outline], regions: list[_Spot], lead: str | None = None
) -> list[tuple[DecodedCode, Outline]]:
    """The codes in each spot's crop (`_code_regions`) of the photo, with the codes `read`
    painted its paper white, through REGION_PASSES (`lead`, the pass that read the first
    code, first; a faint spot's: FAINT_PASSES) until one reads."""
    if not regions:
        return []
    painted = _masked(gray, read, _percentile(gray, 0.99))
    found: list[tuple[DecodedCode, Outline]] = []
    for region in regions:
        box = _box(region.outline, gray.size, REGION_MARGIN)
        if box is None or time.process_time() > _deadline.get():
            continue
        passes = dict(_passes(painted.crop(box)))
        names: tuple[str, ...] = REGION_PASSES if region.strong else FAINT_PASSES
        if region.strong and lead is not None and lead in names:
            names = (lead, *(n for n in names if n != lead))
        spot = _first(*(passes[name] for name in names if name in passes))
        found += [(_tagged(c, "second-look-spot"), _shift(o, box)) for c, o in spot.codes]
    return found


def _side(outline: Outline) -> float:
    x0, y0, x1, y1 = _bounds(outline)
    return min(x1 - x0, y1 - y0)


def _real_misses(misses: list[Outline], read: list[Outline], nested: bool = False) -> list[Outline]:
    """Located-but-unread spots worth a look, largest first: not a code already read, not a
    duplicate of another spot, and not a phantom much smaller than the codes read (noise
    makes zxing locate tiny 'codes'). `nested`: a spot inside one more than MISS_SAME_SIZE
    times its size is kept too (see there; the phantom is flattened as well: now and then
    its flattening is what reads a code)."""
    floor = max(24.0, MIN_MISS_SHARE * min((_side(o) for o in read), default=0.0))
    kept: list[Outline] = []
    for miss in sorted(misses, key=_side, reverse=True):
        if _side(miss) < floor or any(_overlaps(miss, o) for o in read):
            continue
        if any(_duplicate(miss, o, nested) for o in kept):
            continue
        kept.append(miss)
    return kept


def _duplicate(miss: Outline, larger: Outline, nested: bool) -> bool:
    """`miss` is the spot `larger` (already kept) stands for."""
    if not _overlaps(miss, larger):
        return False
    if not nested:
        return True
    return _covered(miss, larger) >= 0.5 and not _phantom(larger, miss)


def _covered(miss: Outline, larger: Outline) -> float:
    """The share of `miss`'s bounds inside `larger`'s."""
    ax0, ay0, ax1, ay1 = _bounds(miss)
    bx0, by0, bx1, by1 = _bounds(larger)
    inside = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    return inside / max(1.0, (ax1 - ax0) * (ay1 - ay0))


def _phantom(larger: Outline, miss: Outline) -> bool:
    """`larger` is a phantom round the code `miss` (see MISS_SAME_SIZE)."""
    return _overlaps(miss, larger) and _side(larger) > _side(miss) * MISS_SAME_SIZE


def _tagged(code: DecodedCode, strategy: str) -> DecodedCode:
    return DecodedCode(code.text, code.format, code.symbology_id, code.gs1, strategy)


def _bounds(outline: Outline) -> tuple[float, float, float, float]:
    xs = [p[0] for p in outline]
    ys = [p[1] for p in outline]
    return min(xs), min(ys), max(xs), max(ys)


def _overlaps(a: Outline, b: Outline) -> bool:
    ax0, ay0, ax1, ay1 = _bounds(a)
    bx0, by0, bx1, by1 = _bounds(b)
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


def _box(
    outline: Outline, size: tuple[int, int], margin: float
) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = _bounds(outline)
    pad = max(x1 - x0, y1 - y0) * margin + 8
    box = (
        max(0, int(x0 - pad)),
        max(0, int(y0 - pad)),
        min(size[0], int(x1 + pad) + 1),
        min(size[1], int(y1 + pad) + 1),
    )
    return box if box[2] - box[0] >= 16 and box[3] - box[1] >= 16 else None


def _shift(outline: Outline, box: tuple[int, int, int, int]) -> Outline:
    x, y = box[0], box[1]
    a, b, c, d = outline
    return (
        (a[0] + x, a[1] + y),
        (b[0] + x, b[1] + y),
        (c[0] + x, c[1] + y),
        (d[0] + x, d[1] + y),
    )


def _masked(gray: Image.Image, outlines: list[Outline], paper: int = 255) -> Image.Image:
    """`gray` with each outline (grown by its quiet zone) painted `paper` (white)."""
    masked = gray.copy()
    draw = ImageDraw.Draw(masked)
    for outline in outlines:
        cx = sum(p[0] for p in outline) / 4
        cy = sum(p[1] for p in outline) / 4
        grown = [(cx + (x - cx) * 1.25, cy + (y - cy) * 1.25) for x, y in outline]
        draw.polygon(grown, fill=paper)
    return masked


def _percentile(gray: Image.Image, share: float) -> int:
    """The grey level below which `share` of the pixels of `gray` lie (from its histogram)."""
    histogram = gray.histogram()
    wanted, total = share * sum(histogram), 0
    for level, count in enumerate(histogram):
        total += count
        if total >= wanted:
            return level
    return 255


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
