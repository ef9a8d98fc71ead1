"""Reading a PDF answer back as text (pypdf), for tests of the reports' figures."""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader


def pdf_text(response: Any) -> str:
    """All pages' text of a PDF response (or bytes)."""
    data = response if isinstance(response, bytes) else response.content
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)
