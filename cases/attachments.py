"""Case attachments are what they claim: the type is read from the bytes (JPEG, PNG, WebP,
PDF signatures) and must agree with both the declared content type and the file name's
extension; a file cut short (no end marker) is refused too. A photo of seized goods that is
really an HTML page or an executable never reaches a case file or a rights holder.

Pure functions on bytes: the gateway route (api/routes/cases.py) reads the upload and maps
`AttachmentRefused` (an InvalidInput) to 422, the size cap to 413."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ledger.errors import InvalidInput

#: Media types accepted, with the file-name extensions each may carry.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
}
#: Printable file names without path parts: shown on pages and in documents.
FILE_NAME = re.compile(r"^[^\x00-\x1f/\\]{1,200}$")


class AttachmentRefused(InvalidInput):
    """The upload is not what it claims (or not a type a case accepts)."""


@dataclass(frozen=True)
class Checked:
    media_type: str
    file_name: str
    size: int
    sha256: str


def sniff(data: bytes) -> str | None:
    """The media type the bytes' signature says, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _complete(media_type: str, data: bytes) -> bool:
    """Whether the file has its format's end (a truncated or padded-on file has not)."""
    if media_type == "image/jpeg":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if media_type == "image/png":
        return data.endswith(b"IEND\xaeB`\x82")
    if media_type == "image/webp":
        return int.from_bytes(data[4:8], "little") + 8 == len(data)
    return b"%%EOF" in data[-1024:]  # PDF: the trailer's end within the last kilobyte


def check(data: bytes, declared: str | None, file_name: str | None, max_bytes: int) -> Checked:
    """The attachment's checked description, or AttachmentRefused saying what disagrees."""
    name = (file_name or "").strip()
    if not FILE_NAME.match(name):
        raise AttachmentRefused("the attachment needs a file name (no path, at most 200 chars)")
    claimed = (declared or "").split(";")[0].strip().lower()
    if claimed not in EXTENSIONS:
        raise AttachmentRefused(
            f"content type {claimed or '(none)'!r} is not accepted; send one of "
            + ", ".join(EXTENSIONS)
        )
    if not data:
        raise AttachmentRefused("the attachment is empty")
    if len(data) > max_bytes:
        raise AttachmentRefused(f"the attachment is {len(data)} bytes; at most {max_bytes}")
    actual = sniff(data)
    if actual is None:
        raise AttachmentRefused(
            f"{name!r} claims {claimed} but its bytes are none of JPEG, PNG, WebP or PDF"
        )
    if actual != claimed:
        raise AttachmentRefused(f"{name!r} claims {claimed} but its bytes are {actual}")
    if not name.lower().endswith(EXTENSIONS[actual]):
        raise AttachmentRefused(
            f"{name!r} is {actual}: its name must end in {' or '.join(EXTENSIONS[actual])}"
        )
    if not _complete(actual, data):
        raise AttachmentRefused(f"{name!r} is not a complete {actual} file (cut short?)")
    return Checked(actual, name, len(data), hashlib.sha256(data).hexdigest())
