"""GS1 identifiers: GTIN-14 with its check digit, and serial / lot strings (AIs 21 and 10).

Validation happens once, at the edge (CSV import, Digital Link parsing, API input), so the rest
of the code can trust a `Sgtin`. Error messages name the value and what is wrong with it,
because the EU medicines system found that most failed verifications are data errors (a typo,
a lost separator), and a officer must be able to tell those from a suspect product.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ledger.errors import InvalidCompanyPrefix, InvalidGtin, InvalidLot, InvalidSerial

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


#: Lengths of a GS1 company prefix (the registry's `bindCompanyPrefix` accepts the same).
COMPANY_PREFIX_LENGTHS = range(6, 13)


def _reserved_gs1_prefix(prefix: str) -> str | None:
    """Why `prefix` (digits) numbers no company's products, or None if it may.

    From the GS1 Prefix list of the GS1 General Specifications: 00000 turns a GTIN-8 into a
    GTIN-13, 020-029, 040-049 and 200-299 are restricted circulation numbers (in-store or
    in-country use), 050-059 and 981-999 number coupons, 980 refund receipts. Binding such a
    prefix would hand every store's own codes, or every GTIN-8, to one brand."""
    head = int(prefix[:3])
    if prefix.startswith("00000"):
        return "starts with 00000, which GS1 keeps for GTIN-8 numbers"
    if 20 <= head <= 29 or 40 <= head <= 49 or 200 <= head <= 299:
        return f"starts with GS1 Prefix {prefix[:3]}, kept for restricted circulation numbers"
    if 50 <= head <= 59 or head >= 981:
        return f"starts with GS1 Prefix {prefix[:3]}, kept for coupons"
    if head == 980:
        return "starts with GS1 Prefix 980, kept for refund receipts"
    return None


def validate_company_prefix(value: str) -> str:
    """Return `value` if it is a GS1 company prefix a rights holder may be bound to: 6 to 12
    digits outside the GS1 Prefixes that number no company's products.

    The registry contract applies the same rule, so a prefix refused here would also revert
    on chain; checking here names the problem before a transaction is queued."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise InvalidCompanyPrefix(f"company prefix {value!r} must contain only digits")
    if len(value) not in COMPANY_PREFIX_LENGTHS:
        raise InvalidCompanyPrefix(
            f"company prefix {value!r} has {len(value)} digits; GS1 allocates 6 to 12"
        )
    reason = _reserved_gs1_prefix(value)
    if reason is not None:
        raise InvalidCompanyPrefix(f"company prefix {value!r} {reason}")
    return value


def company_prefixes_of(gtin: str) -> list[str]:
    """The company prefixes a GTIN-14 may fall under, longest first (the order the registry
    tries them in): the leading 6 to 12 digits of its GTIN-13, after the indicator digit."""
    return [gtin[1 : 1 + length] for length in reversed(COMPANY_PREFIX_LENGTHS)]


def resolve_holder(
    gtin: str, gtin_owners: Mapping[str, str], prefix_owners: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The rights holder of the GTIN-14 `gtin` by the registry's rule (`resolveGtinHolder`):
    its own binding, else that of the longest bound company prefix it falls under. Returns
    (holder or None, the deciding prefix or None); the gateway, the offline scanner and the
    trust bundle all resolve through here so they never disagree with the chain."""
    own = gtin_owners.get(gtin)
    if own is not None or not prefix_owners or len(gtin) != 14:
        return own, None
    for prefix in company_prefixes_of(gtin):
        holder = prefix_owners.get(prefix)
        if holder is not None:
            return holder, prefix
    return None, None


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
