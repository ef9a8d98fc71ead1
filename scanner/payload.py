"""What a decoded code means: a BorderLedger tag, a GS1 element string, or something foreign.

Three kinds of code reach an officer's scanner:

* a GS1 Digital Link URI (the QR on a tagged item), signed (`?sig=`) or not;
* a GS1 element string, as in a GS1 DataMatrix on a medicine pack or a GS1-128 barcode:
  `01` GTIN, `17` expiry, `10` lot, `21` serial, with FNC1 (sent as ASCII GS, 0x1D)
  after every variable-length field that is not last. zxing-cpp may report it with a
  symbology identifier (`]d2` DataMatrix, `]C1` GS1-128, `]Q3` QR, `]e0` DataBar, `]J1`
  DotCode), and labels print it in the human-readable form `(01)…(17)…(10)…(21)…`;
* anything else (an ordinary web address, a retail EAN-13, text): foreign, with a message
  saying why it cannot be checked.

A code that looks like ours but is malformed (a GTIN with a wrong check digit, a truncated
signature) is `invalid`: a data error to re-scan or type, not a verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from ledger.digital_link import parse_digital_link
from ledger.errors import InvalidInput
from ledger.gs1 import gtin_check_digit, normalize_gtin, validate_lot, validate_serial

GS = "\x1d"
#: Symbology identifiers (ISO/IEC 15424) that announce GS1 data.
GS1_SYMBOLOGY_IDS = frozenset({"]d2", "]C1", "]Q3", "]e0", "]J1", "]z1"})
_SYMBOLOGY_ID = re.compile(r"^\][A-Za-z][0-9A-Za-z]")

Kind = Literal["tag", "gs1", "typed", "foreign", "invalid"]

#: GS1 General Specifications figure 5.10.1-2: element strings whose first two digits are
#: these have a predefined total length (AI + data) and are never followed by FNC1.
PREDEFINED_LENGTH = {
    "00": 20,
    "01": 16,
    "02": 16,
    "03": 16,
    "04": 18,
    **{f"{n}": 8 for n in range(11, 20)},
    "20": 4,
    **{f"{n}": 10 for n in range(31, 37)},
    "41": 16,
}

#: Length of the AI itself, by its first two digits (GS1 General Specifications 3.2).
_AI_LENGTH: dict[str, int] = {
    **{f"{n:02d}": 2 for n in (0, 1, 2, 3, 4)},
    **{f"{n}": 2 for n in range(10, 23)},
    **{f"{n}": 3 for n in (23, 24, 25)},
    "30": 2,
    **{f"{n}": 4 for n in range(31, 37)},
    "37": 2,
    "39": 4,
    **{f"{n}": 3 for n in (40, 41, 42)},
    "43": 4,
    **{f"{n}": 4 for n in (70, 71, 72, 80, 81, 82)},
    **{f"{n}": 2 for n in range(90, 100)},
}

#: Maximum data length of the variable-length AIs BorderLedger reads.
_MAX_LENGTH = {"10": 20, "21": 20, "22": 20, "240": 30, "241": 30, "30": 8, "37": 8}
_HRI_AI = re.compile(r"\((\d{2,4})\)")
_RETAIL_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13", 14: "GTIN-14 (ITF-14)"}


def ai_length(digits: str) -> int:
    """Length of the AI at the start of `digits`; raises InvalidInput if none is known."""
    length = _AI_LENGTH.get(digits[:2])
    if length is None or len(digits) < length or not digits[:length].isdigit():
        raise InvalidInput(f"{digits[:4]!r} does not start with a known GS1 application identifier")
    return length


def is_predefined(ai: str) -> bool:
    return ai[:2] in PREDEFINED_LENGTH


def data_length(ai: str) -> int | None:
    """Fixed data length of `ai`, or None for a variable-length AI."""
    total = PREDEFINED_LENGTH.get(ai[:2])
    return None if total is None else total - len(ai)


def strip_symbology_id(text: str) -> tuple[str, str]:
    """(`]xN` prefix or "", the rest)."""
    if _SYMBOLOGY_ID.match(text):
        return text[:3], text[3:]
    return "", text


def parse_element_string(text: str) -> list[tuple[str, str]]:
    """Parse a GS1 element string into (AI, value) pairs, in order.

    Accepts the raw form (fixed-length AIs concatenated, variable-length ones ended by GS /
    FNC1 or the end; a leading GS or symbology identifier is skipped; `<GS>` as zxing
    prints it in escaped mode is taken as GS) and the human-readable `(01)…(21)…` form.
    Raises InvalidInput naming what is wrong.
    """
    _, body = strip_symbology_id(text.strip("\r\n"))
    body = body.replace("<GS>", GS)
    if body.startswith("("):
        return _parse_hri(body)
    body = body.lstrip(GS)
    if not body:
        raise InvalidInput("empty GS1 element string")
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        if body[pos] == GS:  # a separator after a fixed-length field is tolerated
            pos += 1
            continue
        length = ai_length(body[pos:])
        ai = body[pos : pos + length]
        pos += length
        fixed = data_length(ai)
        if fixed is not None:
            value = body[pos : pos + fixed]
            if len(value) != fixed or GS in value:
                raise InvalidInput(f"AI ({ai}) needs {fixed} characters; got {value!r}")
            pos += fixed
        else:
            end = body.find(GS, pos)
            end = len(body) if end < 0 else end
            value = body[pos:end]
            pos = end + 1
        pairs.append((ai, _check_value(ai, value)))
    return pairs


def _parse_hri(body: str) -> list[tuple[str, str]]:
    matches = [m for m in _HRI_AI.finditer(body) if m.group(1)[:2] in _AI_LENGTH]
    matches = [m for m in matches if len(m.group(1)) == _AI_LENGTH[m.group(1)[:2]]]
    if not matches or matches[0].start() != 0:
        raise InvalidInput(f"{body!r} does not start with a GS1 application identifier (NN)")
    pairs = []
    for m, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(body)
        pairs.append((m.group(1), _check_value(m.group(1), body[m.end() : end])))
    return pairs


def _check_value(ai: str, value: str) -> str:
    fixed = data_length(ai)
    if fixed is not None and (len(value) != fixed or not value.isdigit()):
        raise InvalidInput(f"AI ({ai}) needs {fixed} digits; got {value!r}")
    if not value:
        raise InvalidInput(f"AI ({ai}) has no value")
    limit = _MAX_LENGTH.get(ai)
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"AI ({ai}) allows at most {limit} characters; got {value!r}")
    if GS in value:
        raise InvalidInput(f"AI ({ai}) value {value!r} contains a GS separator")
    return value


def encode_element_string(pairs: list[tuple[str, str]]) -> str:
    """The raw element string (no symbology identifier): GS after each variable-length field
    that is not the last, as FNC1 is placed in a GS1 DataMatrix or GS1-128."""
    parts: list[str] = []
    for index, (ai, value) in enumerate(pairs):
        parts.append(ai + value)
        if not is_predefined(ai) and index < len(pairs) - 1:
            parts.append(GS)
    return "".join(parts)


def format_hri(pairs: list[tuple[str, str]]) -> str:
    """The human-readable form, `(01)09506000134352(21)ABC`."""
    return "".join(f"({ai}){value}" for ai, value in pairs)


# ---------------------------------------------------------------------------- classification


@dataclass(frozen=True, slots=True)
class Payload:
    """One decoded (or typed) code, classified. `request` is the POST /v1/verify body, or
    None when the code cannot be checked (`message` says why)."""

    kind: Kind
    raw: str
    message: str
    gtin: str | None = None
    serial: str | None = None
    lot: str | None = None
    expiry: str | None = None
    tag: str | None = None
    signed: bool = False
    elements: list[tuple[str, str]] = field(default_factory=list)

    @property
    def checkable(self) -> bool:
        return self.kind in ("tag", "gs1", "typed")

    @property
    def request(self) -> dict[str, Any] | None:
        if not self.checkable:
            return None
        if self.tag is not None:
            return {"tag": self.tag}
        body: dict[str, Any] = {"gtin": self.gtin, "serial": self.serial}
        if self.lot:
            body["lot"] = self.lot
        return body

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "raw": self.raw, "message": self.message}
        for name in ("gtin", "lot", "serial", "expiry", "tag"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.kind == "tag":
            data["signed"] = self.signed
        return data


def classify(text: str, symbology: str = "", gs1: bool = False) -> Payload:
    """Classify the text of one decoded code (`symbology`: its `]xN` identifier, if known;
    `gs1`: the decoder saw FNC1 in first position, i.e. GS1 data)."""
    prefix, body = strip_symbology_id(text)
    symbology = symbology or prefix
    stripped = body.strip()
    if re.match(r"(?i)^https?://", stripped):
        return _classify_url(text, stripped)
    gs1_flagged = gs1 or symbology in GS1_SYMBOLOGY_IDS or body.startswith(GS)
    looks_gs1 = stripped.startswith("(") or re.match(r"^\x1d?01\d{14}", body) is not None
    if gs1_flagged or (looks_gs1 and len(stripped) >= 16):
        try:
            pairs = parse_element_string(body)
        except InvalidInput as exc:
            return Payload("invalid", text, f"a GS1 element string that cannot be read: {exc}")
        return from_elements(pairs, text)
    if stripped.isdigit() and len(stripped) in _RETAIL_LENGTHS:
        name = _RETAIL_LENGTHS[len(stripped)]
        valid = gtin_check_digit(stripped[:-1]) == int(stripped[-1])
        what = f"a retail {name} barcode" if valid else f"a {len(stripped)}-digit number"
        return Payload(
            "foreign",
            text,
            f"{what}: it names a product, not one item (no serial), so it cannot be verified; "
            "scan the 2D code (QR or DataMatrix) on the pack or type the serial",
        )
    shown = stripped if len(stripped) <= 60 else stripped[:57] + "..."
    return Payload(
        "foreign",
        text,
        f"not a GS1 code ({shown!r}): from another system, it cannot be verified here",
    )


def from_elements(pairs: list[tuple[str, str]], raw: str) -> Payload:
    found = dict(pairs)
    if "01" not in found:
        return Payload("invalid", raw, "a GS1 element string without a GTIN (01)", elements=pairs)
    if "21" not in found:
        return Payload(
            "foreign",
            raw,
            f"GS1 data for GTIN {found['01']} without a serial (21): it names a product, not "
            "one item, so it cannot be verified",
            gtin=found["01"],
            elements=pairs,
        )
    try:
        gtin = normalize_gtin(found["01"])
        serial = validate_serial(found["21"])
        lot = validate_lot(found["10"]) if "10" in found else None
    except InvalidInput as exc:
        return Payload("invalid", raw, f"GS1 data that is not valid: {exc}", elements=pairs)
    expiry = found.get("17")
    return Payload(
        "gs1",
        raw,
        f"GS1 element string {format_hri(pairs)} (no signature: a copy cannot be ruled out)",
        gtin=gtin,
        serial=serial,
        lot=lot,
        expiry=expiry,
        elements=pairs,
    )


def _classify_url(raw: str, url: str) -> Payload:
    parts = urlsplit(url)
    segments = parts.path.split("/")[1:]
    if "01" not in segments:
        return Payload(
            "foreign",
            raw,
            f"a web address ({parts.netloc or url}) that is not a GS1 Digital Link tag: "
            "do not follow it; it cannot be verified",
        )
    try:
        link = parse_digital_link(url)
    except InvalidInput as exc:
        # A Digital Link with GTIN and serial but another shape (no lot, extra AIs): its
        # identity can still be checked, unsigned, by fields.
        fields = _link_fields(segments)
        if fields is not None and "sig=" not in parts.query:
            pairs = list(fields.items())
            payload = from_elements(pairs, raw)
            if payload.kind == "gs1":
                return Payload(
                    "gs1",
                    raw,
                    f"GS1 Digital Link {format_hri(pairs)} (not a BorderLedger tag shape; "
                    "checked by GTIN and serial, unsigned)",
                    gtin=payload.gtin,
                    serial=payload.serial,
                    lot=payload.lot,
                    expiry=payload.expiry,
                    elements=pairs,
                )
        return Payload("invalid", raw, f"a GS1 Digital Link that cannot be read: {exc}")
    signed = link.signature is not None
    return Payload(
        "tag",
        raw,
        "signed BorderLedger tag" if signed else "GS1 Digital Link without a signature",
        gtin=link.gtin,
        serial=link.serial,
        lot=link.lot,
        tag=url,
        signed=signed,
    )


def _link_fields(segments: list[str]) -> dict[str, str] | None:
    start = segments.index("01")
    tail = segments[start:]
    if len(tail) % 2:
        return None
    fields: dict[str, str] = {}
    for ai, value in zip(tail[::2], tail[1::2], strict=True):
        try:
            fields[ai] = unquote(value, errors="strict")
        except UnicodeDecodeError:
            return None
    return fields if "21" in fields else None


def typed(gtin: str, serial: str, lot: str | None = None) -> Payload:
    """A GTIN and serial typed by the officer (from the printed text of a label)."""
    try:
        payload = Payload(
            "typed",
            f"{gtin} {serial}" + (f" {lot}" if lot else ""),
            "typed by hand (no signature: a copy cannot be ruled out)",
            gtin=normalize_gtin(gtin),
            serial=validate_serial(serial),
            lot=validate_lot(lot) if lot else None,
        )
    except InvalidInput as exc:
        return Payload("invalid", f"{gtin} {serial}", f"typed entry is not valid: {exc}")
    return payload
