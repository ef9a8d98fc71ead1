"""Message catalogs of the pages (Babel): English in the templates, other languages in
`locale/<lang>/LC_MESSAGES/messages.po`, read at start-up (no compile step: the catalog is
compiled in memory)."""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
#: Languages offered to users, with their names in their own language.
LANGUAGES = {"en": "English", "fr": "Français"}


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of `language` (English, the templates' own text, when there is none)."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po.is_file():
        return NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)
