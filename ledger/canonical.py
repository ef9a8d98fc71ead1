"""Canonical JSON: the one byte encoding of a JSON value that BorderLedger hashes or signs.

`canonical_json(value)` is RFC 8785, the JSON Canonicalization Scheme (JCS), for every value
it accepts, so any JCS implementation (JavaScript's `canonicalize`, Go's, Java's) computes the
same bytes from the same data, and a signature or a log leaf can be checked by anyone:

* objects: members sorted by their names as arrays of UTF-16 code units (not code points: a
  name with U+E000 sorts before one with U+1F600), no whitespace;
* strings: UTF-8, only `"`, `\\` and U+0000..U+001F escaped (`\\b \\t \\n \\f \\r` short,
  the others `\\u00xx`), everything else as is (U+2028, U+007F and non-ASCII included);
* numbers: as ECMAScript's `Number.prototype.toString` writes the IEEE 754 double (shortest
  round-trip digits, `1e+21`, `1e-7`, `10` for 10.0, `0` for -0.0);
* `true`, `false`, `null`.

What JCS cannot represent is refused with `CanonicalJsonError` naming the value, never
encoded some other way: NaN and infinities, integers beyond ±2^53 unless their digits are
exactly how JCS writes the nearest double (`59756140113959750` is; 2^53 + 1 is not: a double
would round it, so two implementations would disagree about the data), strings with a lone surrogate (not
Unicode, not I-JSON), object names that are not strings, and anything that is not a JSON
type (`dict`, `list`/`tuple`, `str`, `int`, `float`, `bool`, `None`).

Formats signed or anchored before JCS keep their own encoders in `LEGACY` for verifying what
was already issued (docs/formats.md, "Canonical JSON"); nothing new is written with them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from ledger.errors import CanonicalJsonError

#: The largest integer magnitude a double holds exactly next to all smaller ones.
MAX_SAFE = 2**53
#: The C-accelerated JSON string escaper (ensure_ascii=False): exactly JCS's string rules.
_string: Callable[[str], str] = json.encoder.encode_basestring


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 (JCS) bytes of `value`; `CanonicalJsonError` for what JCS cannot hold."""
    try:
        text = _encode(value)
    except _Refused as exc:
        raise CanonicalJsonError(f"${''.join(reversed(exc.path))}: {exc.reason}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        near = exc.object[max(0, exc.start - 20) : exc.end + 20]
        raise CanonicalJsonError(
            f"a string holds a lone surrogate (not Unicode) near {near!r}"
        ) from None


def number(value: float) -> str:
    """A finite double as ECMAScript's `Number.prototype.toString` (JCS section 3.2.2.3)."""
    if value == 0:
        return "0"  # -0.0 too
    text = repr(value)  # the shortest digits that read back as `value`, as ECMAScript picks
    if "e" not in text:  # 1e-4 <= |value| < 1e16: both write plain decimals, ECMAScript no ".0"
        return text[:-2] if text.endswith(".0") else text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point  # value = 0.digits * 10^n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    shown = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{shown}e{'+' if e >= 0 else '-'}{abs(e)}"


def _double_text(value: int) -> str:
    try:
        return number(float(value))
    except OverflowError:
        return ""


def read_int(text: str) -> int | float:
    """`json.loads(..., parse_int=read_int)`: JSON numbers are doubles, so an integer literal
    beyond ±2^53 (which JCS writes for a large double, e.g. `59756140113959750`) is read as the
    double it is; what this reads back, `canonical_json` writes again unchanged."""
    value = int(text)
    return float(value) if not -MAX_SAFE <= value <= MAX_SAFE else value


def _utf16(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


class _Refused(Exception):
    """A value with no JCS form; the containers on the way out add where it is."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[str] = []


def _encode(value: Any) -> str:
    """JCS text of `value` (the hot path of every log entry: exact types first)."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        return _object(value)
    if kind is int:
        return _integer(value)
    if kind is float:
        return _double(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is list or kind is tuple:
        return _array(value)
    # subclasses (enums, named tuples, ...) by what they are
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        return _double(value)
    if isinstance(value, dict):
        return _object(value)
    if isinstance(value, list | tuple):
        return _array(value)
    raise _Refused(f"a {type(value).__name__} is not a JSON value")


def _integer(value: int) -> str:
    text = int.__repr__(value)
    if not -MAX_SAFE <= value <= MAX_SAFE and _double_text(value) != text:
        raise _Refused(
            f"the integer {value} is beyond ±2^53 and is not how a JSON number (a double) "
            "is written; send it as a string"
        )
    return text


def _double(value: float) -> str:
    if not math.isfinite(value):
        raise _Refused(f"{value!r} is not a JSON number")
    return number(value)


def _object(value: dict[Any, Any]) -> str:
    try:
        names = sorted(value)
        ascii_names = "".join(names).isascii()
    except TypeError:
        bad = next(n for n in value if not isinstance(n, str))
        raise _Refused(f"object member name {bad!r} is not a string") from None
    if not ascii_names:
        names.sort(key=_utf16)
    parts = []
    name = ""
    try:
        for name in names:
            item = value[name]
            kind = type(item)
            if kind is str:
                parts.append(_string(name) + ":" + _string(item))
            elif item is None:
                parts.append(_string(name) + ":null")
            else:
                parts.append(_string(name) + ":" + _encode(item))
    except _Refused as exc:
        exc.path.append("." + name)
        raise
    return "{" + ",".join(parts) + "}"


def _array(value: list[Any] | tuple[Any, ...]) -> str:
    parts = []
    index = 0
    try:
        for index, item in enumerate(value):  # noqa: B007 (named in the error's path)
            parts.append(_string(item) if type(item) is str else _encode(item))
    except _Refused as exc:
        exc.path.append(f"[{index}]")
        raise
    return "[" + ",".join(parts) + "]"


def _python_json(ensure_ascii: bool, allow_nan: bool) -> Callable[[Any], bytes]:
    """One of the pre-JCS encoders: Python's `json` with sorted keys and no whitespace."""
    encoder = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=ensure_ascii, allow_nan=allow_nan
    )

    def encode(value: Any) -> bytes:
        try:
            return encoder.encode(value).encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            raise CanonicalJsonError(f"not plain JSON: {exc}") from None

    return encode


#: The encoders of the formats that were signed or anchored before JCS, kept to verify them:
#: `python-ascii` (non-ASCII as \\u escapes, NaN written as `NaN`): offline scan records 1;
#: `python-utf8` (UTF-8, NaN refused): custody log entries 1, trust bundles 1.
LEGACY: dict[str, Callable[[Any], bytes]] = {
    "python-ascii": _python_json(ensure_ascii=True, allow_nan=True),
    "python-utf8": _python_json(ensure_ascii=False, allow_nan=False),
}
