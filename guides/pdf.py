"""A guide as a printable PDF (fpdf2): the confidentiality notice on every page, the
product, its authentication features, price, supply chain, contacts and recordations, and
the photos. Core fonts only (nothing to install): text outside Latin-1 is transliterated."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from fpdf import FPDF

from guides.model import CATEGORIES, GuideContent

_PUNCTUATION = str.maketrans(
    {
        "\u2014": "-",
        "\u2013": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
    }
)


@dataclass(frozen=True)
class Photo:
    kind: str  # genuine | fake
    caption: str
    data: bytes


def latin1(text: str) -> str:
    """`text` in what the core fonts print: typographic punctuation made plain, accents kept
    where Latin-1 has them, anything else reduced to its base letter or '?'."""
    out = []
    for char in text.translate(_PUNCTUATION):
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(base or "?")
    return "".join(out)


class _Doc(FPDF):
    notice = ""

    def header(self) -> None:
        self.set_font("Helvetica", "B", 8)
        self.set_text_color(150, 0, 0)
        self.multi_cell(0, 4, latin1(self.notice), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 8, f"page {self.page_no()}/{{nb}}", align="C")


def render(
    content: GuideContent,
    *,
    holder: str,
    version: int,
    state: str,
    dated: date,
    photos: Sequence[Photo] = (),
    compress: bool = True,
) -> bytes:
    """The PDF bytes of one version of a guide (`compress=False`: text readable in the
    bytes, for tests)."""
    doc = _Doc(format="A4")
    doc.set_compression(compress)
    doc.notice = content.confidentiality
    doc.set_title(latin1(f"Product identification guide: {content.brand} {content.name}"))
    doc.alias_nb_pages()
    doc.set_auto_page_break(True, 15)
    doc.add_page()

    def heading(text: str) -> None:
        doc.ln(2)
        doc.set_font("Helvetica", "B", 12)
        doc.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", "", 10)

    def line(text: str) -> None:
        doc.multi_cell(0, 5, latin1(text), new_x="LMARGIN", new_y="NEXT")

    doc.set_font("Helvetica", "B", 16)
    doc.multi_cell(0, 8, latin1(f"{content.brand} - {content.name}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 10)
    cbp, eu = CATEGORIES[content.category]
    product = (
        f"GTIN {content.gtin}"
        if content.gtin
        else f"all GTINs of company prefix {content.company_prefix}"
    )
    line(f"Product: {product}")
    line(f"Category: {cbp} (CBP) / {eu} (EU)")
    line(f"Rights holder: {holder}. Version {version}, {state}, dated {dated.isoformat()}.")
    expires = content.expires
    line(f"Valid until: {expires.isoformat() if expires else 'no recordation cited'}")
    if content.msrp_cents is not None:
        line(f"MSRP: {content.msrp_cents / 100:,.2f} {content.currency}")
    if content.description:
        line(content.description)
    heading("Authentication features")
    for feature in content.features:
        line(f"- {feature.kind.replace('_', ' ')}: {feature.description}")
    if not content.features:
        line("none given")
    heading("Manufacture and distribution")
    for party in content.factories:
        line(f"- factory: {party.name} ({party.country})")
    for party in content.importers:
        line(f"- {party.role}: {party.name} ({party.country})")
    for name in content.licensees:
        line(f"- licensee: {name}")
    if content.markets:
        line("Authorised markets: " + ", ".join(content.markets))
    if content.routes:
        line("Usual routes / customs offices: " + " > ".join(content.routes))
    if content.known_infringers:
        line("Known infringers: " + "; ".join(content.known_infringers))
    heading("Contacts")
    for contact in content.contacts:
        line(f"- {contact.kind}: {contact.name}, {contact.email} {contact.phone}".rstrip())
    heading("Recordations and applications for action")
    for rec in content.recordations:
        line(f"- {rec.kind.replace('_', ' ')} {rec.number}, expires {rec.expires.isoformat()}")
    if photos:
        heading("Photos")
        for photo in photos:
            if doc.get_y() > 200:
                doc.add_page()
            doc.set_font("Helvetica", "B", 10)
            label = "GENUINE" if photo.kind == "genuine" else "KNOWN FAKE"
            line(f"{label}: {photo.caption}")
            doc.set_font("Helvetica", "", 10)
            doc.image(io.BytesIO(photo.data), w=70)
            doc.ln(2)
    return bytes(doc.output())
