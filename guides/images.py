"""Photos of a guide (the genuine product, known fakes): the type is judged from the bytes,
never the name or the declared type; only JPEG, PNG and WebP; size- and pixel-capped; then
decoded and re-encoded by Pillow from the pixels alone, so EXIF (GPS, camera, owner), XMP,
ICC and text chunks — and anything appended to the file — do not survive."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from guides.errors import InvalidImage

#: magic bytes → (format name, MIME type)
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "PNG", "image/png"),
)
MAX_PIXELS = 40_000_000
MAX_SIDE = 4096


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    mime: str
    width: int
    height: int


def sniff(raw: bytes) -> tuple[str, str] | None:
    """(Pillow format, MIME type) from the file's first bytes; None for anything else."""
    for magic, fmt, mime in _MAGIC:
        if raw.startswith(magic):
            return fmt, mime
    if len(raw) >= 12 and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP", "image/webp"
    return None


def sanitize(raw: bytes, max_bytes: int) -> CleanImage:
    """The image re-encoded without metadata, in its own format (JPEG quality 90, PNG
    optimized, WebP quality 90), oriented as its EXIF said and scaled to `MAX_SIDE`.
    `InvalidImage` (422) for another type, a truncated or corrupt file, or one too big."""
    if len(raw) > max_bytes:
        raise InvalidImage(f"the image is {len(raw)} bytes; the limit is {max_bytes}")
    kind = sniff(raw)
    if kind is None:
        raise InvalidImage("not a JPEG, PNG or WebP image (judged from its bytes)")
    fmt, mime = kind
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=[fmt]) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidImage(
                        f"the image is {image.width}x{image.height} pixels; the limit is {MAX_PIXELS}"
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                pixels = upright.convert("RGBA" if _alpha(upright) and fmt != "JPEG" else "RGB")
    except InvalidImage:
        raise
    except (
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise InvalidImage(f"the {fmt} image cannot be read: {exc}") from None
    pixels.thumbnail((MAX_SIDE, MAX_SIDE))
    # A fresh image holding only the pixels: no info dict, EXIF, ICC profile or comments.
    clean = Image.new(pixels.mode, pixels.size)
    clean.paste(pixels)
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=90)
    elif fmt == "PNG":
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "WEBP", quality=90)
    return CleanImage(out.getvalue(), mime, clean.width, clean.height)


def _alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
