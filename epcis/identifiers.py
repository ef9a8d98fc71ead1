"""EPC identifiers in both EPCIS 2.0 spellings: EPC URNs and GS1 Digital Link URIs.

One trade item can arrive as ``urn:epc:id:sgtin:0614141.107346.2017`` from a manufacturer and
as ``https://id.gs1.org/01/10614141073464/21/2017`` from a carrier; custody only adds up if
both become the same `Identifier` (same GTIN-14 and serial, same canonical Digital Link).

EPC URN → GS1 keys (GS1 EPC Tag Data Standard, section 6):

- SGTIN ``CompanyPrefix.IndicatorItemRef.Serial`` (prefix 6-12 digits, the two parts 13
  digits together): GTIN-14 = indicator digit + company prefix + item reference + check digit
  computed over those 13 digits. The serial is percent-escaped in the URN (TDS table A-1).
- SSCC ``CompanyPrefix.ExtensionSerialRef`` (17 digits together): SSCC-18 = extension digit
  + prefix + serial reference + check digit.
- SGLN ``CompanyPrefix.LocationRef.Extension`` (12 digits together): GLN = prefix + location
  reference + check digit; the extension ``0`` means "no extension" (Digital Link without
  AI 254).
- LGTIN ``urn:epc:class:lgtin:CompanyPrefix.IndicatorItemRef.Lot``: a GTIN and a lot.
- ``urn:epc:idpat:sgtin:CompanyPrefix.IndicatorItemRef.*``: every serial of one GTIN.

Anything else (GIAI, GSRN, PGLN, GDTI, other URIs, Digital Links with other keys) is kept
as kind ``other`` with its text, not rejected: EPCIS lets any URI identify an object.
A string that claims one of the schemes above but breaks its rules raises
`InvalidEpcIdentifier` naming the identifier, because a typo in a serial must not silently
become a different item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote, urlsplit

from ledger.errors import InvalidEpcIdentifier, InvalidInput
from ledger.gs1 import CSET82, gtin_check_digit, normalize_gtin, validate_lot, validate_serial

#: Host of canonical Digital Link URIs (GS1's own resolver), as in GS1's EPCIS examples.
CANONICAL_HOST = "id.gs1.org"
MAX_EXTENSION_LENGTH = 20
# TDS 2.x table A-1: the CSET 82 characters that must be %-escaped inside an EPC URN.
_URN_ESCAPED = frozenset('"%&/<>?')
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class IdentifierKind(StrEnum):
    SGTIN = "sgtin"  #: one trade item: GTIN + serial
    SSCC = "sscc"  #: one logistic unit: case, pallet, container
    SGLN = "sgln"  #: a location: GLN + optional extension
    LGTIN = "lgtin"  #: a lot of a GTIN (class level)
    GTIN = "gtin"  #: every instance of a GTIN (class level, e.g. idpat ``.*``)
    OTHER = "other"  #: any other URI, kept as given


@dataclass(frozen=True, slots=True)
class Identifier:
    """One parsed identifier. `uri` is the text as received; `key` is what to compare on."""

    kind: IdentifierKind
    uri: str
    gtin: str | None = None
    serial: str | None = None
    lot: str | None = None
    sscc: str | None = None
    gln: str | None = None
    extension: str | None = None
    #: GS1 Company Prefix length when parsed from an EPC URN (a Digital Link does not carry it).
    company_prefix_length: int | None = None
    #: ``https://id.gs1.org/...`` for GS1 kinds; None for ``other``.
    digital_link: str | None = None

    @property
    def key(self) -> str:
        """The canonical Digital Link for GS1 kinds, else the URI as given."""
        return self.digital_link or self.uri

    @property
    def item(self) -> tuple[str, str] | None:
        """(GTIN-14, serial) for a serialised trade item, else None."""
        if self.kind is IdentifierKind.SGTIN and self.gtin and self.serial:
            return (self.gtin, self.serial)
        return None


def parse_identifier(text: str) -> Identifier:
    """Parse an EPC URN or a Digital Link URI (any host) into an `Identifier`.

    Unknown schemes give kind ``other``; malformed SGTIN/SSCC/SGLN/LGTIN URNs and
    Digital Links with a GS1 primary key (AI 01, 00, 414) raise `InvalidEpcIdentifier`.
    """
    if not isinstance(text, str) or not text:
        raise InvalidEpcIdentifier(f"identifier {text!r} is empty or not a string")
    lower = text[:24].lower()
    try:
        if lower.startswith(("urn:epc:id:", "urn:epc:class:", "urn:epc:idpat:")):
            return _parse_urn(text)
        if lower.startswith(("http://", "https://")):
            return _parse_digital_link(text)
    except InvalidEpcIdentifier:
        raise
    except InvalidInput as exc:
        raise InvalidEpcIdentifier(f"identifier {text!r}: {exc}") from None
    return Identifier(IdentifierKind.OTHER, text)


# ---------------------------------------------------------------------------- EPC URNs


def _parse_urn(text: str) -> Identifier:
    parts = text.split(":", 4)
    if len(parts) != 5:
        return Identifier(IdentifierKind.OTHER, text)
    family, scheme, body = parts[2].lower(), parts[3].lower(), parts[4]
    match (family, scheme):
        case ("id", "sgtin"):
            prefix, item_ref, raw_serial = _fields(text, body, 3)
            gtin = _gtin(text, prefix, item_ref)
            serial = validate_serial(_urn_unescape(text, raw_serial))
            return _sgtin(text, gtin, serial, None, len(prefix))
        case ("class", "lgtin"):
            prefix, item_ref, raw_lot = _fields(text, body, 3)
            gtin = _gtin(text, prefix, item_ref)
            lot = validate_lot(_urn_unescape(text, raw_lot))
            return _lgtin(text, gtin, lot, len(prefix))
        case ("idpat", "sgtin"):
            prefix, item_ref, star = _fields(text, body, 3)
            if star != "*" or item_ref == "*":
                return Identifier(IdentifierKind.OTHER, text)  # coarser pattern: kept as is
            return _gtin_class(text, _gtin(text, prefix, item_ref), len(prefix))
        case ("id", "sscc"):
            prefix, serial_ref = _fields(text, body, 2)
            _check_digits(text, prefix, serial_ref, total=17)
            body17 = serial_ref[0] + prefix + serial_ref[1:]
            return _sscc(text, body17 + str(gtin_check_digit(body17)), len(prefix))
        case ("id", "sgln"):
            # A 12-digit company prefix leaves an empty location reference.
            prefix, location_ref, raw_ext = _fields(text, body, 3, may_be_empty=1)
            _check_digits(text, prefix, location_ref, total=12)
            body12 = prefix + location_ref
            extension = _validate_extension(text, _urn_unescape(text, raw_ext))
            return _sgln(
                text,
                body12 + str(gtin_check_digit(body12)),
                None if extension == "0" else extension,
                len(prefix),
            )
    return Identifier(IdentifierKind.OTHER, text)


def _fields(text: str, body: str, count: int, may_be_empty: int = -1) -> list[str]:
    fields = body.split(".", count - 1)
    if len(fields) != count or not all(f for i, f in enumerate(fields) if i != may_be_empty):
        raise InvalidEpcIdentifier(
            f"identifier {text!r} must have {count} non-empty dot-separated fields after the scheme"
        )
    return fields


def _check_digits(text: str, prefix: str, reference: str, total: int) -> None:
    if not _DIGITS.fullmatch(prefix) or not (reference == "" or _DIGITS.fullmatch(reference)):
        raise InvalidEpcIdentifier(
            f"identifier {text!r}: company prefix and reference must be digits"
        )
    if not 6 <= len(prefix) <= 12:
        raise InvalidEpcIdentifier(
            f"identifier {text!r}: company prefix {prefix!r} has {len(prefix)} digits; "
            "GS1 company prefixes have 6 to 12"
        )
    if len(prefix) + len(reference) != total:
        raise InvalidEpcIdentifier(
            f"identifier {text!r}: company prefix and reference have "
            f"{len(prefix) + len(reference)} digits together; expected {total}"
        )


def _gtin(text: str, prefix: str, item_ref: str) -> str:
    """GTIN-14 from a URN's company prefix and indicator + item reference."""
    _check_digits(text, prefix, item_ref, total=13)
    body13 = item_ref[0] + prefix + item_ref[1:]
    return body13 + str(gtin_check_digit(body13))


def _urn_unescape(text: str, value: str) -> str:
    if _BAD_ESCAPE.search(value):
        raise InvalidEpcIdentifier(f"identifier {text!r} has a '%' not followed by two hex digits")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidEpcIdentifier(
            f"identifier {text!r} has percent-escapes that are not UTF-8"
        ) from None


def _urn_escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _URN_ESCAPED else c for c in value)


def _validate_extension(text: str, value: str) -> str:
    bad = sorted({c for c in value if c not in CSET82})
    if not value or len(value) > MAX_EXTENSION_LENGTH or bad:
        raise InvalidEpcIdentifier(
            f"identifier {text!r}: GLN extension {value!r} must be 1-{MAX_EXTENSION_LENGTH} "
            f"characters of GS1 CSET 82" + (f" (bad: {bad!r})" if bad else "")
        )
    return value


def to_epc_urn(identifier: Identifier, company_prefix_length: int | None = None) -> str:
    """The EPC URN of a GS1 `identifier`; the inverse of `parse_identifier` on URNs.

    A Digital Link does not say where the company prefix ends, so unless the identifier
    came from a URN, `company_prefix_length` (6-12) must be given.
    """
    length = company_prefix_length or identifier.company_prefix_length
    if identifier.kind is IdentifierKind.OTHER:
        raise InvalidEpcIdentifier(f"identifier {identifier.uri!r} has no EPC URN form here")
    if length is None or not 6 <= length <= 12:
        raise InvalidEpcIdentifier(
            f"identifier {identifier.uri!r}: a company prefix length of 6-12 digits is "
            f"needed for its EPC URN, got {length!r}"
        )
    if identifier.gtin is not None:
        gtin = identifier.gtin
        prefix, item_ref = gtin[1 : 1 + length], gtin[0] + gtin[1 + length : 13]
        if identifier.kind is IdentifierKind.SGTIN:
            return f"urn:epc:id:sgtin:{prefix}.{item_ref}.{_urn_escape(identifier.serial or '')}"
        if identifier.kind is IdentifierKind.LGTIN:
            return f"urn:epc:class:lgtin:{prefix}.{item_ref}.{_urn_escape(identifier.lot or '')}"
        return f"urn:epc:idpat:sgtin:{prefix}.{item_ref}.*"
    if identifier.sscc is not None:
        sscc = identifier.sscc
        return f"urn:epc:id:sscc:{sscc[1 : 1 + length]}.{sscc[0]}{sscc[1 + length : 17]}"
    gln = identifier.gln or ""
    ext = _urn_escape(identifier.extension) if identifier.extension is not None else "0"
    return f"urn:epc:id:sgln:{gln[:length]}.{gln[length:12]}.{ext}"


# ----------------------------------------------------------------------- Digital Link


_DL_PATTERNS = (
    ["01"],
    ["01", "21"],
    ["01", "10"],
    ["01", "10", "21"],
    ["00"],
    ["414"],
    ["414", "254"],
)


def _parse_digital_link(text: str) -> Identifier:
    parts = urlsplit(text)
    segments = parts.path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if not parts.netloc:
        return Identifier(IdentifierKind.OTHER, text)
    # The identity is the tail of the path: /<primary key AI>/<value>[/<qualifier>/<value>]...
    # after any resolver prefix; the first start giving a supported AI sequence wins.
    for start, segment in enumerate(segments):
        if segment not in ("01", "00", "414") or (len(segments) - start) % 2:
            continue
        ais = segments[start::2]
        if ais in _DL_PATTERNS:
            return _digital_link_key(text, segments[start:], ais)
    return Identifier(IdentifierKind.OTHER, text)  # other keys or qualifiers (22, 8004...)


def _digital_link_key(text: str, segments: list[str], ais: list[str]) -> Identifier:
    raw_values = segments[1::2]
    for value in raw_values:
        if _BAD_ESCAPE.search(value):
            raise InvalidEpcIdentifier(
                f"identifier {text!r} has a '%' not followed by two hex digits"
            )
    try:
        values = {ai: unquote(v, errors="strict") for ai, v in zip(ais, raw_values, strict=True)}
    except UnicodeDecodeError:
        raise InvalidEpcIdentifier(
            f"identifier {text!r} has percent-escapes that are not UTF-8"
        ) from None
    if ais[0] == "01":
        gtin = normalize_gtin(values["01"])
        lot = validate_lot(values["10"]) if "10" in values else None
        if "21" in values:
            return _sgtin(text, gtin, validate_serial(values["21"]), lot, None)
        if lot is not None:
            return _lgtin(text, gtin, lot, None)
        return _gtin_class(text, gtin, None)
    if ais[0] == "00":
        return _sscc(text, _check_key(text, "SSCC", values["00"], 18), None)
    gln = _check_key(text, "GLN", values["414"], 13)
    ext = values.get("254")
    return _sgln(text, gln, None if ext is None else _validate_extension(text, ext), None)


def _check_key(text: str, what: str, value: str, length: int) -> str:
    if not _DIGITS.fullmatch(value) or len(value) != length:
        raise InvalidEpcIdentifier(f"identifier {text!r}: {what} {value!r} must be {length} digits")
    expected = gtin_check_digit(value[:-1])
    if int(value[-1]) != expected:
        raise InvalidEpcIdentifier(
            f"identifier {text!r}: {what} {value!r} has check digit {value[-1]}; "
            f"the digits before it give {expected}"
        )
    return value


def _dl(*pairs: tuple[str, str]) -> str:
    return f"https://{CANONICAL_HOST}" + "".join(
        f"/{ai}/{quote(value, safe='')}" for ai, value in pairs
    )


def _sgtin(text: str, gtin: str, serial: str, lot: str | None, cpl: int | None) -> Identifier:
    # The canonical form identifies the instance by GTIN + serial only: the lot is a
    # qualifier an item may or may not be labelled with, and must not split its history.
    return Identifier(
        IdentifierKind.SGTIN,
        text,
        gtin=gtin,
        serial=serial,
        lot=lot,
        company_prefix_length=cpl,
        digital_link=_dl(("01", gtin), ("21", serial)),
    )


def _lgtin(text: str, gtin: str, lot: str, cpl: int | None) -> Identifier:
    return Identifier(
        IdentifierKind.LGTIN,
        text,
        gtin=gtin,
        lot=lot,
        company_prefix_length=cpl,
        digital_link=_dl(("01", gtin), ("10", lot)),
    )


def _gtin_class(text: str, gtin: str, cpl: int | None) -> Identifier:
    return Identifier(
        IdentifierKind.GTIN,
        text,
        gtin=gtin,
        company_prefix_length=cpl,
        digital_link=_dl(("01", gtin)),
    )


def _sscc(text: str, sscc: str, cpl: int | None) -> Identifier:
    return Identifier(
        IdentifierKind.SSCC,
        text,
        sscc=sscc,
        company_prefix_length=cpl,
        digital_link=_dl(("00", sscc)),
    )


def _sgln(text: str, gln: str, extension: str | None, cpl: int | None) -> Identifier:
    pairs = [("414", gln)] + ([("254", extension)] if extension is not None else [])
    return Identifier(
        IdentifierKind.SGLN,
        text,
        gln=gln,
        extension=extension,
        company_prefix_length=cpl,
        digital_link=_dl(*pairs),
    )
