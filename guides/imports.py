"""Bulk import of guides from a CSV or JSON file: every guide is checked before any is
stored (all or nothing per file), and every problem is reported with its line (CSV) or item
(JSON) number, so a brand with many products fixes its file in one pass.

CSV: a header row naming the columns below (camelCase as in the API; `gtin` or
`companyPrefix`, `brand`, `name`, `category` required). List columns hold items separated by
`|`; an item's parts by `;`:

| column | item |
|---|---|
| features | `kind;description` |
| factories, importers | `name;country` (importers: `name;country;distributor` for a distributor) |
| contacts | `kind;name;email;phone` |
| recordations | `kind;number;YYYY-MM-DD` |
| markets, routes, licensees, knownInfringers | a value |

`msrp` is a decimal amount (`129.90`), `currency` its ISO 4217 code.
JSON: an array of guides as `POST /v1/guides` takes them (or `{"guides": [...]}`)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from guides.errors import InvalidGuide
from guides.model import GuideContent

MAX_GUIDES = 10_000
MAX_PROBLEMS = 50
_LISTS = {
    "features": ("kind", "description"),
    "factories": ("name", "country"),
    "importers": ("name", "country", "role"),
    "contacts": ("kind", "name", "email", "phone"),
    "recordations": ("kind", "number", "expires"),
}
_VALUES = ("markets", "routes", "licensees", "knownInfringers")
_SCALARS = ("gtin", "companyPrefix", "brand", "name", "category", "description", "currency")


def describe(exc: ValidationError) -> list[str]:
    """One line per pydantic error: the field's path (camelCase) and what is wrong."""
    out = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "guide"
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(f"{where}: {message}")
    return out


def parse_guide(data: Any) -> GuideContent:
    """One guide from its API JSON; `InvalidGuide` listing every problem."""
    try:
        return GuideContent.model_validate(data)
    except ValidationError as exc:
        problems = describe(exc)
        raise InvalidGuide("invalid guide: " + "; ".join(problems), problems) from None


def _split(cell: str, sep: str) -> list[str]:
    return [part.strip() for part in cell.split(sep) if part.strip()]


def _row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the API JSON of a guide."""
    data: dict[str, Any] = {}
    for key in _SCALARS:
        value = (row.get(key) or "").strip()
        if value:
            data[key] = value
    msrp = (row.get("msrp") or "").strip()
    if msrp:
        try:
            amount = Decimal(msrp)
        except InvalidOperation:
            raise ValueError(f"msrp {msrp!r} is not an amount (e.g. 129.90)") from None
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise ValueError(f"msrp {msrp!r} must be a positive amount with at most 2 decimals")
        data["msrpCents"] = int(amount * 100)
    for key in _VALUES:
        items = _split(row.get(key) or "", "|")
        if items:
            data[key] = items
    for key, parts in _LISTS.items():
        items_out = []
        for item in _split(row.get(key) or "", "|"):
            values = [v.strip() for v in item.split(";")]
            if len(values) > len(parts):
                raise ValueError(
                    f"{key}: {item!r} has more than {len(parts)} parts ({';'.join(parts)})"
                )
            entry = dict(zip(parts, values, strict=False))
            if key == "importers":
                entry.setdefault("role", "importer")
            if key == "factories":
                entry["role"] = "factory"
            items_out.append(entry)
        if items_out:
            data[key] = items_out
    return data


def parse_file(raw: bytes, kind: str) -> list[tuple[str, GuideContent]]:
    """The guides of an import file (`kind`: "csv" or "json"), all valid, each product once;
    else `InvalidGuide` with every problem (up to `MAX_PROBLEMS`), line- or item-numbered."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidGuide("the import file is not UTF-8") from None
    rows: list[tuple[str, Any]] = []
    problems: list[str] = []
    if kind == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            header = reader.fieldnames or []
            known = set(_SCALARS) | set(_VALUES) | set(_LISTS) | {"msrp"}
            unknown = [h for h in header if h not in known]
            if not header:
                raise InvalidGuide(
                    "the CSV needs a header row (gtin or companyPrefix, brand, name, category, ...)"
                )
            if unknown:
                raise InvalidGuide(f"unknown CSV column(s): {', '.join(unknown)}")
            for row in reader:
                where = f"line {reader.line_num}"
                if None in row:
                    problems.append(f"{where}: more fields than the header has")
                    continue
                if not any((v or "").strip() for v in row.values()):
                    continue
                try:
                    rows.append((where, _row(row)))
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
        except csv.Error as exc:
            raise InvalidGuide(f"the CSV is malformed: {exc}") from None
    elif kind == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidGuide(f"the JSON is malformed: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("guides"), list):
            data = data["guides"]
        if not isinstance(data, list):
            raise InvalidGuide('the JSON must be an array of guides (or {"guides": [...]})')
        rows = [(f"item {n}", item) for n, item in enumerate(data, start=1)]
    else:
        raise InvalidGuide(f"import files are CSV or JSON, not {kind}")
    if len(rows) > MAX_GUIDES:
        raise InvalidGuide(f"{len(rows)} guides in one file; the limit is {MAX_GUIDES}")
    guides: list[tuple[str, GuideContent]] = []
    seen: dict[str, str] = {}
    for where, data in rows:
        try:
            guide = GuideContent.model_validate(data)
        except ValidationError as exc:
            problems.extend(f"{where}: {p}" for p in describe(exc))
            continue
        if guide.product_key in seen:
            problems.append(
                f"{where}: {guide.product_key} is already described on {seen[guide.product_key]}"
            )
            continue
        seen[guide.product_key] = where
        guides.append((where, guide))
    if not rows and not problems:
        problems.append("the file holds no guide")
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f" (and {more} more)" if more else ""
        raise InvalidGuide(
            f"{len(problems)} problem(s), nothing imported: " + "; ".join(shown[:5]) + tail, shown
        )
    return guides
