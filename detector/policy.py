"""Route policies: where a batch may go, by which nodes, to whom, and when.

A rights holder declares a policy at enrollment and may change it. Validation collects every
problem into one `PolicyError` so a client can fix them all at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from detector.errors import PolicyError
from detector.locations import COUNTRIES, LOCODE_RE

if TYPE_CHECKING:
    from detector.locations import LocationRegistry


@dataclass(frozen=True)
class RoutePolicy:
    """Authorized destination markets (ISO 3166-1 alpha-2), expected nodes (UN/LOCODEs, in
    route order: the first is the origin), authorized consignees (empty: any), a validity
    window (UTC epoch seconds; None: open), and whether the item may come back to its origin
    country once it reached a market (`returns`: a repair, a recall, a re-export; True by
    default, since that is lawful unless the rights holder's terms say otherwise). Build it
    with `RoutePolicy.create`.
    """

    markets: frozenset[str]
    nodes: tuple[str, ...] = ()
    node_countries: tuple[str, ...] = ()
    consignees: frozenset[str] = frozenset()
    valid_from: float | None = None
    valid_until: float | None = None
    returns: bool = True
    node_index: dict[str, int] = field(init=False, repr=False, compare=False)
    node_set: frozenset[str] = field(init=False, repr=False, compare=False)
    node_country_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            index.setdefault(node, i)
        object.__setattr__(self, "node_index", index)
        object.__setattr__(self, "node_set", frozenset(self.nodes))
        object.__setattr__(self, "node_country_set", frozenset(self.node_countries))

    @property
    def origin_country(self) -> str | None:
        return self.node_countries[0] if self.node_countries else None

    def applies(self, at: float) -> bool:
        """True if the policy is in force at `at` (route rules judge scans inside the window)."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at <= self.valid_until

    @classmethod
    def create(
        cls,
        registry: LocationRegistry,
        *,
        markets: Iterable[str],
        nodes: Iterable[str] = (),
        consignees: Iterable[str] = (),
        valid_from: float | None = None,
        valid_until: float | None = None,
        returns: bool = True,
    ) -> RoutePolicy:
        problems: list[str] = []
        market_set = set()
        for m in markets:
            code = m.strip().upper() if isinstance(m, str) else m
            if not isinstance(code, str) or code not in COUNTRIES:
                problems.append(f"unknown country {m!r} in markets (ISO 3166-1 alpha-2 expected)")
            else:
                market_set.add(code)
        if not market_set and not problems:
            problems.append("a route policy needs at least one authorized market")
        node_list: list[str] = []
        node_countries: list[str] = []
        for n in nodes:
            code = n.strip().upper() if isinstance(n, str) else n
            if not isinstance(code, str) or not LOCODE_RE.match(code):
                problems.append(f"node {n!r} is not a UN/LOCODE (e.g. NLRTM)")
                continue
            loc = registry.find(code)
            if loc is None:
                problems.append(f"unknown node {code!r}: not in the location registry")
                continue
            if code in node_list:
                problems.append(f"node {code} is listed twice")
                continue
            node_list.append(code)
            node_countries.append(loc.country)
        consignee_set = set()
        for c in consignees:
            if not isinstance(c, str) or not c.strip():
                problems.append(f"consignee {c!r} is empty")
            else:
                consignee_set.add(c.strip())
        for name, value in (("valid_from", valid_from), ("valid_until", valid_until)):
            if value is not None and not math.isfinite(value):
                problems.append(f"{name} is not a valid time")
        if (
            valid_from is not None
            and valid_until is not None
            and math.isfinite(valid_from)
            and math.isfinite(valid_until)
            and valid_until <= valid_from
        ):
            problems.append("the validity window ends before it starts (valid_until <= valid_from)")
        if not isinstance(returns, bool):
            problems.append("returns must be true or false")
        if problems:
            raise PolicyError(problems)
        return cls(
            markets=frozenset(market_set),
            nodes=tuple(node_list),
            node_countries=tuple(node_countries),
            consignees=frozenset(consignee_set),
            valid_from=valid_from,
            valid_until=valid_until,
            returns=returns,
        )
