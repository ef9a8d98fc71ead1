"""The case documents as PDF (fpdf2), laid out from a case *as its reader may see it*.

Every document is drawn from the case view the service already redacted for the reader
(`api.services.cases.shown`): a field the reader's disclosure stage does not reveal is not in
the view, so it cannot reach the PDF; the document says "not disclosed at this stage" in its
place. Nothing here decides who reads what (docs/cases.md, "Documents").

The kinds follow ../shared/docs/cases.md section 3: notice of detention, the disclosure
letters per stage (redacted images request, limited information, unredacted images with the
limited-use notice, the 8-item post-seizure disclosure), sample bond record, notice of
seizure, release notice, destruction certificate, the EU notifications to the declarant and
the rights holder, and the consent and objection forms.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

#: A Unicode font when the system has one (parties' names are not Latin-1); else the PDF
#: core font with text folded to Latin-1.
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
NOT_DISCLOSED = "not disclosed at this stage"


@dataclass(frozen=True)
class Kind:
    """One document: its title, to whom it goes, its text and the case fields it lists."""

    title: str
    addressee: str
    text: str
    fields: tuple[str, ...]
    signature: bool = False


_SHIPMENT = ("reference", "dateOfImport", "port", "description", "quantity", "origin", "mode")
#: 19 CFR 133.21(e): the eight items disclosed to the rights holder after seizure.
EIGHT_ITEMS = (
    "dateOfImport",
    "port",
    "description",
    "quantity",
    "manufacturer",
    "origin",
    "exporter",
    "importer",
)

KINDS: dict[str, Kind] = {
    "notice_of_detention": Kind(
        "Notice of detention",
        "importer",
        "The goods below are detained for examination because they are suspected of bearing "
        "a counterfeit or infringing mark. Tests and the rights holder's assistance may be "
        "used to decide. You may, before the answer deadline below, show that the goods are "
        "not counterfeit (invoices, licences, proof of authorization); this may lead to their "
        "release. You may also abandon the goods.",
        (*_SHIPMENT, "lines", "items", "importer", "declarant", "clocks"),
    ),
    "redacted_images_request": Kind(
        "Request for assistance (redacted images)",
        "rights holder",
        "Customs requests your help in deciding whether the goods infringe your right. Images "
        "are provided with serial numbers, UPCs, SKUs and other identifying marks removed.",
        ("imagesRedacted", "clocks"),
    ),
    "limited_information_letter": Kind(
        "Disclosure of limited importation information",
        "rights holder",
        "Under the applicable rules, customs discloses the following limited importation "
        "information about goods detained as suspected of infringing your right.",
        ("dateOfImport", "port", "description", "quantity", "origin"),
    ),
    "unredacted_disclosure_letter": Kind(
        "Disclosure of unredacted images and samples",
        "rights holder",
        "The importer did not show within its period that the goods are genuine. Customs "
        "discloses the unredacted images below, subject to the limited-use notice.",
        ("imagesUnredacted", "identifyingMarks", "items", "limitedUseNotice", "sample"),
    ),
    "sample_bond_record": Kind(
        "Sample bond record",
        "rights holder",
        "A sample of the goods is released to the rights holder against the bond below. Customs "
        "may demand its return; a damaged, destroyed or lost sample must be certified.",
        ("reference", "description", "sample", "limitedUseNotice"),
    ),
    "notice_of_seizure": Kind(
        "Notice of seizure",
        "importer",
        "The goods below are seized as bearing a counterfeit or infringing mark. The seizure "
        "was requested by one officer and approved by a second. The rights holder receives the "
        "information listed under 'Post-seizure disclosure'.",
        (*_SHIPMENT, "lines", "items", "msrp", "importer", "approvals"),
    ),
    "post_seizure_disclosure": Kind(
        "Post-seizure disclosure",
        "rights holder",
        "Following the seizure of goods bearing your mark, customs discloses the following "
        "information (19 CFR 133.21(e)).",
        EIGHT_ITEMS,
    ),
    "release_notice": Kind(
        "Release notice",
        "importer",
        "The goods below are released from detention.",
        (*_SHIPMENT, "importer"),
    ),
    "destruction_certificate": Kind(
        "Destruction certificate",
        "case file",
        "Customs certifies that the goods below were destroyed under its supervision. The "
        "destruction was requested by one officer and approved by a second.",
        ("reference", "port", "description", "quantity", "lines", "msrp", "custody", "approvals"),
        signature=True,
    ),
    "eu_notification_declarant": Kind(
        "Notification of detention (Art. 17 and 23 of Regulation (EU) No 608/2013)",
        "declarant",
        "The release of the goods below is suspended / they are detained as suspected of "
        "infringing an intellectual property right. Within the period below you may consent to "
        "their destruction or object to it. If you do not answer, you are deemed to consent.",
        (*_SHIPMENT, "lines", "items", "declarant", "importer", "clocks"),
    ),
    "eu_notification_holder": Kind(
        "Notification to the holder of the decision (Regulation (EU) No 608/2013)",
        "rights holder",
        "Goods suspected of infringing your right are detained. Within the period below confirm "
        "in writing that they infringe and consent to their destruction, or start proceedings.",
        ("dateOfImport", "port", "description", "quantity", "origin", "declarant", "clocks"),
    ),
    "consent_form": Kind(
        "Consent to destruction",
        "declarant / rights holder",
        "The undersigned confirms that the goods below infringe the right (rights holder) / "
        "consents to their destruction under customs control (declarant or holder of the goods).",
        ("reference", "description", "quantity", "answers"),
        signature=True,
    ),
    "objection_form": Kind(
        "Objection to destruction",
        "declarant",
        "The undersigned objects to the destruction of the goods below. The rights holder must "
        "start proceedings within the period or the goods are released.",
        ("reference", "description", "quantity", "answers", "clocks"),
        signature=True,
    ),
}

_LABELS = {
    "reference": "Shipment reference",
    "dateOfImport": "Date of import",
    "port": "Port of entry",
    "description": "Description of the goods",
    "quantity": "Quantity",
    "origin": "Country of origin",
    "mode": "Mode of transport",
    "lines": "Lines",
    "items": "Scanned items",
    "msrp": "Value at MSRP",
    "importer": "Importer",
    "declarant": "Declarant",
    "exporter": "Exporter",
    "manufacturer": "Manufacturer",
    "clocks": "Deadlines",
    "imagesRedacted": "Redacted images",
    "imagesUnredacted": "Unredacted images",
    "identifyingMarks": "Identifying marks",
    "limitedUseNotice": "Limited-use notice",
    "sample": "Sample",
    "custody": "Custody",
    "approvals": "Approvals",
    "answers": "Answers recorded",
}


def _money(cents: int, currency: str = "USD") -> str:
    return f"{currency} {cents / 100:,.2f}"


def _party(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "none recorded"
    if value.get("erased"):
        return "erased (personal data removed)"
    parts = [value.get("name"), value.get("address"), value.get("country")]
    return ", ".join(str(p) for p in parts if p) or "none recorded"


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _value(key: str, view: Mapping[str, Any]) -> list[str] | None:
    """The field's printed lines, or None when the view does not hold it (redacted)."""
    if key == "approvals":
        if "timeline" not in view:
            return None
        rows = [
            f"{a['action']}: requested by {a['actor']}, approved by {a['approvedBy']}"
            for a in view["timeline"]
            if a.get("approvedBy")
        ]
        return rows or ["none"]
    if key == "answers":
        if "timeline" not in view:
            return None
        rows = [
            f"{a['action']} by {a['by']} on {_when(a['at'])}"
            for a in view["timeline"]
            if a["action"] in ("confirm", "consent", "object", "answer", "abandon")
        ]
        return rows or ["none yet"]
    if key not in view:
        return None
    value = view[key]
    if key in ("importer", "declarant", "exporter", "manufacturer"):
        return [_party(value)]
    if key == "msrp":
        return [_money(int(value["cents"]), str(value["currency"]))]
    if key == "lines":
        return [
            f"{line['category']}: {line['quantity']} x "
            f"{_money(int(line['unitMsrpCents']))} = {_money(int(line['msrpCents']))}"
            + (f" (GTIN {line['gtin']})" if line.get("gtin") else "")
            for line in value
        ] or ["none"]
    if key == "items":
        return [
            f"GTIN {item['gtin'] or '-'} serial {item['serial'] or '-'} lot {item['lot'] or '-'}: "
            f"{item['verdict']} at {item['port'] or '-'} on {_when(item['scannedAt'])}"
            for item in value
        ] or ["none"]
    if key == "clocks":
        return [
            f"{c['name']}: due {c['dueDay']} ({c['days']} {c['unit']} days)"
            + (
                ", overdue"
                if c.get("overdue")
                else (f", {c['daysLeft']} days left" if c.get("daysLeft") is not None else "")
            )
            + ("" if c["status"] == "running" else f", {c['status']}")
            for c in value
        ] or ["none"]
    if key == "sample":
        if not value:
            return ["no sample released"]
        return [", ".join(f"{k}: {v}" for k, v in value.items())]
    if key == "custody":
        if not value:
            return ["not recorded"]
        return [", ".join(f"{k}: {v}" for k, v in value.items())]
    if isinstance(value, list):
        return [str(v) for v in value] or ["none"]
    return ["none" if value is None or value == "" else str(value)]


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.unicode = (_FONT_DIR / "DejaVuSans.ttf").is_file()
        if self.unicode:
            self.add_font("body", "", str(_FONT_DIR / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.family = "body" if self.unicode else "helvetica"
        self.set_auto_page_break(True, margin=18)
        self.set_margins(18, 18, 18)

    def text_of(self, text: str) -> str:
        if self.unicode:
            return text
        folded = unicodedata.normalize("NFKD", text)
        return folded.encode("latin-1", "replace").decode("latin-1")

    def para(self, text: str, size: float = 10, style: str = "") -> None:
        self.set_font(self.family, style, size)
        shown = self.text_of(text)
        # A line that fits is one cell: multi_cell measures the line again at each character
        # as it breaks it (fpdf 2.8), and an audit report of hundreds of alert lines spent
        # seconds there. Same place, same look (a last line is never justified).
        room = self.w - self.r_margin - self.x - 2 * self.c_margin
        if "\n" not in shown and self.get_string_width(shown) <= room:
            self.cell(0, size * 0.5, shown, new_x="LMARGIN", new_y="NEXT")
            return
        self.multi_cell(0, size * 0.5, shown, new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.cell(0, 5, f"page {self.page_no()}", align="R")


def render(kind: str, view: Mapping[str, Any], profile_title: str, agency: str) -> bytes:
    """The PDF of document `kind` for a case `view` (already redacted for its reader)."""
    spec = KINDS[kind]
    pdf = _Pdf()
    pdf.set_title(f"{spec.title} - case {view['id']}")
    pdf.set_creator("BorderLedger")
    pdf.add_page()
    pdf.para(agency, 9)
    pdf.para(spec.title, 16, "B")
    pdf.ln(1)
    pdf.para(f"Case {view['id']}", 9)
    pdf.para(f"Legal basis: {profile_title}", 9)
    pdf.para(f"To: {spec.addressee}", 9)
    pdf.para(f"State: {view['state']} - disclosure stage: {view['stage']}", 9)
    pdf.para(f"Presented: {_when(view['presentedAt'])}", 9)
    pdf.ln(3)
    pdf.para(spec.text, 10)
    pdf.ln(3)
    for key in spec.fields:
        lines = _value(key, view)
        pdf.para(_LABELS[key], 10, "B")
        for line in lines if lines is not None else [NOT_DISCLOSED]:
            pdf.para(f"  {line}", 10)
        pdf.ln(1)
    if kind in ("notice_of_seizure",) and any(k in view for k in EIGHT_ITEMS):
        pdf.ln(2)
        pdf.para("Post-seizure disclosure to the rights holder (8 items)", 10, "B")
        for key in EIGHT_ITEMS:
            lines = _value(key, view)
            shown = "; ".join(lines) if lines is not None else NOT_DISCLOSED
            pdf.para(f"  {_LABELS[key]}: {shown}", 10)
    if spec.signature:
        pdf.ln(8)
        pdf.para("Name: ______________________   Date: ____________", 10)
        pdf.ln(4)
        pdf.para("Signature: ______________________", 10)
    return bytes(pdf.output())
