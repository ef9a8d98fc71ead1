"""A year of seizures shaped like CBP's published FY2023 figures (docs/cases.md, section 6):
19,726 seizures holding nearly 23 million items worth over $2.4 billion at MSRP; watches and
jewellery the largest MSRP category (~38%), apparel the most lines (~26%); China and Hong
Kong the main origins; about 90% of seizures by express or mail.

Pure and deterministic (a seed): it yields plain dicts, the gateway stores them
(`api.case_sim`). Quantities are on lines (a seizure of 5,000 watches is one line), drawn
heavy-tailed per mode (a mail parcel holds a few items, a container thousands) and then
scaled so the year's totals land on the published ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: (category, share of lines, share of MSRP value)
CATEGORIES = (
    ("apparel_accessories", 0.26, 0.08),
    ("watches_jewelry", 0.14, 0.38),
    ("handbags_wallets", 0.10, 0.22),
    ("consumer_electronics", 0.12, 0.09),
    ("pharmaceuticals_personal_care", 0.09, 0.04),
    ("footwear", 0.08, 0.06),
    ("consumer_products", 0.09, 0.05),
    ("toys", 0.04, 0.02),
    ("computers_accessories", 0.04, 0.03),
    ("labels_tags", 0.04, 0.03),
)
ORIGINS = (
    ("CN", 0.50),
    ("HK", 0.35),
    ("TR", 0.03),
    ("IN", 0.02),
    ("VN", 0.02),
    ("SG", 0.02),
    ("TH", 0.02),
    ("AE", 0.02),
    ("KR", 0.01),
    ("PK", 0.01),
)
MODES = (("express", 0.60), ("mail", 0.28), ("cargo", 0.10), ("passenger", 0.02))
#: Median items per line, by mode (lognormal, sigma 1.4): the shape, before scaling.
MEDIAN_ITEMS = {"express": 12.0, "mail": 4.0, "cargo": 900.0, "passenger": 6.0}
PORTS = {
    "express": ("USCVG", "USMEM", "USLAX", "USJFK", "USMIA", "USIND"),
    "mail": ("USJFK", "USORD", "USLAX", "USMIA", "USSFO"),
    "cargo": ("USLGB", "USLAX", "USNYC", "USSAV", "USHOU", "USSEA"),
    "passenger": ("USJFK", "USLAX", "USMIA", "USORD"),
}
RIGHTS = (("trademark", 0.96), ("copyright", 0.04))
OUTCOMES = (("seized", 0.62), ("destroyed", 0.18), ("abandoned", 0.12), ("excluded", 0.08))


@dataclass(frozen=True)
class YearShape:
    seizures: int = 19_726
    items: int = 22_900_000
    msrp_cents: int = 245_000_000_000
    lines_per_seizure: float = 1.3


@dataclass
class SimulatedYear:
    cases: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        return {
            "seizures": len(self.cases),
            "lines": len(self.lines),
            "quantity": sum(line["quantity"] for line in self.lines),
            "msrp_cents": sum(line["msrp_cents"] for line in self.lines),
        }


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def fiscal_year(year: int) -> tuple[datetime, datetime]:
    """US fiscal year `year`: 1 October of the year before to 1 October."""
    return datetime(year - 1, 10, 1, tzinfo=UTC), datetime(year, 10, 1, tzinfo=UTC)


def simulate_year(year: int, shape: YearShape | None = None, seed: int = 2023) -> SimulatedYear:
    """A fiscal year of seizures: `cases` (with a local `index`) and `lines` (`case_index`)."""
    shape = shape or YearShape()
    rng = random.Random(seed)
    start, end = fiscal_year(year)
    span = (end - start).total_seconds()
    out = SimulatedYear()
    line_weights = [c[1] for c in CATEGORIES]
    names = [c[0] for c in CATEGORIES]
    for index in range(shape.seizures):
        mode = _pick(rng, MODES)
        at = start + timedelta(seconds=rng.random() * span)
        out.cases.append(
            {
                "index": index,
                "mode": mode,
                "origin": _pick(rng, ORIGINS),
                "port": rng.choice(PORTS[mode]),
                "outcome": _pick(rng, OUTCOMES),
                "right": _pick(rng, RIGHTS),
                "outcome_at": at,
                "presented_at": at - timedelta(days=rng.randint(3, 28)),
            }
        )
        count, more = 1, 1 - 1 / shape.lines_per_seizure  # geometric: mean lines_per_seizure
        while count < 6 and rng.random() < more:
            count += 1
        for category in rng.choices(names, weights=line_weights, k=count):
            raw = rng.lognormvariate(math.log(MEDIAN_ITEMS[mode]), 1.4)
            out.lines.append(
                {"case_index": index, "category": category, "quantity": raw, "msrp_cents": 0}
            )
    _scale(out, shape, rng)
    return out


def _scale(out: SimulatedYear, shape: YearShape, rng: random.Random) -> None:
    """Integer quantities summing to about `shape.items`, and unit MSRPs per category so that
    each category holds its share of `shape.msrp_cents`."""
    raw_total = sum(line["quantity"] for line in out.lines)
    factor = shape.items / raw_total
    per_category: dict[str, int] = {}
    for line in out.lines:
        line["quantity"] = max(1, round(line["quantity"] * factor))
        per_category[line["category"]] = per_category.get(line["category"], 0) + line["quantity"]
    msrp_share = {name: share for name, _, share in CATEGORIES}
    for line in out.lines:
        items = per_category[line["category"]]
        mean_unit = msrp_share[line["category"]] * shape.msrp_cents / items
        unit = max(1, round(mean_unit * rng.uniform(0.6, 1.4)))
        line["unit_msrp_cents"] = unit
    # the noise above moves each category's total: one correction per category brings it back
    got: dict[str, int] = {}
    for line in out.lines:
        got[line["category"]] = (
            got.get(line["category"], 0) + line["unit_msrp_cents"] * line["quantity"]
        )
    for line in out.lines:
        want = msrp_share[line["category"]] * shape.msrp_cents
        line["unit_msrp_cents"] = max(
            1, round(line["unit_msrp_cents"] * want / got[line["category"]])
        )
        line["msrp_cents"] = line["unit_msrp_cents"] * line["quantity"]


def cases_by_index(year: SimulatedYear) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    lines: dict[int, list[dict[str, Any]]] = {}
    for line in year.lines:
        lines.setdefault(line["case_index"], []).append(line)
    for case in year.cases:
        yield case, lines.get(case["index"], [])
