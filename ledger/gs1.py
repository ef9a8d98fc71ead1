"""GS1 identifiers: GTIN-14 with its check digit, and serial / lot strings (AIs 21 and 10).

Validation happens once, at the edge (CSV import, Digital Link parsing, API input), so the rest
of the code can trust a `Sgtin`. Error messages name the value and what is wrong with it,
because the EU medicines system found that most failed verifications are data errors (a typo,
a lost separator), and a officer must be able to tell those from a suspect product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import InvalidGtin, InvalidLot, InvalidSerial

#: GS1 General Specifications, figure 7.11-1: the 82 characters allowed in AIs 10 and 21.
CSET82 = frozenset(
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
)
MAX_SERIAL_LENGTH = 20
MAX_LOT_LENGTH = 20
_DIGITS = re.compile(r"[0-9]+")


def gtin_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for `body` (the digits before the check digit)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def normalize_gtin(value: str) -> str:
    """Return `value` as a GTIN-14, left-padding GTIN-8/12/13 with zeros.

    Raises `InvalidGtin` naming the value when it is not digits of a GTIN length or its
    check digit is wrong (and says which check digit was expected).
    """
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise InvalidGtin(f"GTIN {value!r} must contain only digits")
    if len(value) not in (8, 12, 13, 14):
        raise InvalidGtin(f"GTIN {value!r} has {len(value)} digits; expected 8, 12, 13 or 14")
    gtin = value.zfill(14)
    expected = gtin_check_digit(gtin[:13])
    if int(gtin[13]) != expected:
        raise InvalidGtin(
            f"GTIN {value!r} has check digit {gtin[13]}; the digits before it give {expected}"
        )
    return gtin


def _validate_cset82(value: str, what: str, limit: int, error: type[ValueError]) -> str:
    if not isinstance(value, str) or not value:
        raise error(f"{what} must not be empty")
    if len(value) > limit:
        raise error(f"{what} {value!r} has {len(value)} characters; GS1 allows at most {limit}")
    bad = sorted({c for c in value if c not in CSET82})
    if bad:
        raise error(f"{what} {value!r} contains characters outside GS1 CSET 82: {bad!r}")
    return value


def validate_serial(value: str) -> str:
    """Return `value` if it is a valid GS1 serial (AI 21): 1-20 characters of CSET 82."""
    return _validate_cset82(value, "serial", MAX_SERIAL_LENGTH, InvalidSerial)


def validate_lot(value: str) -> str:
    """Return `value` if it is a valid GS1 lot (AI 10): 1-20 characters of CSET 82."""
    return _validate_cset82(value, "lot", MAX_LOT_LENGTH, InvalidLot)


@dataclass(frozen=True, slots=True)
class Sgtin:
    """A serialised GTIN: the identity of one trade item."""

    gtin: str
    serial: str

    @classmethod
    def parse(cls, gtin: str, serial: str) -> Sgtin:
        return cls(normalize_gtin(gtin), validate_serial(serial))

    def __str__(self) -> str:
        return f"(01){self.gtin}(21){self.serial}"
