from __future__ import annotations

import pytest

from detector.errors import PolicyError
from detector.locations import LocationRegistry
from detector.policy import RoutePolicy


def test_valid_policy(registry: LocationRegistry) -> None:
    p = RoutePolicy.create(
        registry,
        markets=["nl", "DE"],
        nodes=["CNSHA", "SGSIN", "NLRTM"],
        consignees=["IMP-1"],
        valid_from=1_700_000_000,
        valid_until=1_800_000_000,
    )
    assert p.markets == {"NL", "DE"}
    assert p.origin_country == "CN"
    assert p.node_index == {"CNSHA": 0, "SGSIN": 1, "NLRTM": 2}
    assert p.applies(1_750_000_000) and not p.applies(1_900_000_000)


def test_all_problems_reported_at_once(registry: LocationRegistry) -> None:
    with pytest.raises(PolicyError) as err:
        RoutePolicy.create(
            registry,
            markets=["XX", "NL"],
            nodes=["CNSHA", "ZZZZZ", "rotterdam", "CNSHA"],
            consignees=[" "],
            valid_from=2_000,
            valid_until=1_000,
        )
    text = str(err.value)
    assert "unknown country 'XX'" in text
    assert "unknown node 'ZZZZZ'" in text
    assert "'rotterdam' is not a UN/LOCODE" in text
    assert "CNSHA is listed twice" in text
    assert "consignee" in text
    assert "ends before it starts" in text
    assert len(err.value.problems) == 6


def test_policy_needs_a_market(registry: LocationRegistry) -> None:
    with pytest.raises(PolicyError, match="at least one authorized market"):
        RoutePolicy.create(registry, markets=[])
