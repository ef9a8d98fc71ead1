"""Seizure statistics on a hand-built set of cases whose totals are known."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.case_sim import insert_year
from cases.simulate import SimulatedYear, YearShape, simulate_year
from tests.stack import Stack, api_error


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _line(case: int, category: str, quantity: int, unit: int) -> dict[str, Any]:
    return {
        "case_index": case,
        "category": category,
        "quantity": quantity,
        "unit_msrp_cents": unit,
        "msrp_cents": quantity * unit,
    }


def _case(index: int, mode: str, origin: str, port: str, outcome: str, at: str) -> dict[str, Any]:
    return {
        "index": index,
        "mode": mode,
        "origin": origin,
        "port": port,
        "outcome": outcome,
        "right": "trademark",
        "outcome_at": _at(at),
        "presented_at": _at(at),
    }


HAND_BUILT = SimulatedYear(
    cases=[
        _case(0, "express", "CN", "USLAX", "seized", "2023-03-10T12:00"),
        _case(1, "mail", "HK", "USJFK", "destroyed", "2023-03-20T12:00"),
        _case(2, "cargo", "CN", "USLGB", "seized", "2023-07-01T12:00"),
        _case(3, "express", "CN", "USLAX", "released", "2023-04-01T12:00"),  # not a seizure
        _case(4, "express", "CN", "USLAX", "seized", "2022-05-01T12:00"),  # outside the range
    ],
    lines=[
        _line(0, "watches_jewelry", 10, 10_000),
        _line(0, "apparel_accessories", 5, 2_000),
        _line(1, "watches_jewelry", 2, 50_000),
        _line(2, "apparel_accessories", 1000, 1_000),
        _line(3, "apparel_accessories", 7, 100),
        _line(4, "watches_jewelry", 1, 100),
    ],
)
RANGE = {"from": "2023-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}
TOTALS = {"seizures": 3, "lines": 4, "quantity": 1017, "msrpCents": 1_210_000}


@pytest.fixture
def officer(stack: Stack) -> str:
    org = stack.org("CBP statistics", "customs")
    insert_year(stack.gateway.engine, HAND_BUILT, org["id"])
    key: str = org["apiKey"]
    return key


def _stats(stack: Stack, key: str, **params: Any) -> Any:
    return stack.client.get("/v1/statistics/seizures", params=params, headers=stack.headers(key))


def _rows(body: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, int]]:
    return {
        tuple(r["group"][b] for b in body["by"]): {
            k: r[k] for k in ("seizures", "lines", "quantity", "msrpCents")
        }
        for r in body["rows"]
    }


def test_totals_and_categories(stack: Stack, officer: str) -> None:
    body = _stats(stack, officer, by="category", **RANGE).json()
    assert {k: body["totals"][k] for k in TOTALS} == TOTALS
    assert _rows(body) == {
        ("watches_jewelry",): {"seizures": 2, "lines": 2, "quantity": 12, "msrpCents": 200_000},
        ("apparel_accessories",): {
            "seizures": 2,
            "lines": 2,
            "quantity": 1005,
            "msrpCents": 1_010_000,
        },
    }
    plain = _stats(stack, officer, **RANGE).json()
    assert _rows(plain) == {(): TOTALS}


def test_three_dimensions_and_periods(stack: Stack, officer: str) -> None:
    body = _stats(stack, officer, by="origin,mode,outcome", **RANGE).json()
    assert _rows(body) == {
        ("CN", "express", "seized"): {
            "seizures": 1,
            "lines": 2,
            "quantity": 15,
            "msrpCents": 110_000,
        },
        ("HK", "mail", "destroyed"): {
            "seizures": 1,
            "lines": 1,
            "quantity": 2,
            "msrpCents": 100_000,
        },
        ("CN", "cargo", "seized"): {
            "seizures": 1,
            "lines": 1,
            "quantity": 1000,
            "msrpCents": 1_000_000,
        },
    }
    months = _rows(_stats(stack, officer, by="period", **RANGE).json())
    assert {k: v["seizures"] for k, v in months.items()} == {("2023-03",): 2, ("2023-07",): 1}
    quarters = _rows(_stats(stack, officer, by="period", period="quarter", **RANGE).json())
    assert {k: v["msrpCents"] for k, v in quarters.items()} == {
        ("2023-Q1",): 210_000,
        ("2023-Q3",): 1_000_000,
    }
    years = _rows(_stats(stack, officer, by="period,category", period="fiscal_year").json())
    assert years[("FY2022", "watches_jewelry")]["seizures"] == 1  # May 2022: fiscal 2022
    assert years[("FY2023", "apparel_accessories")]["quantity"] == 1005


def test_csv(stack: Stack, officer: str) -> None:
    r = _stats(stack, officer, by="port", format="csv", **RANGE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0] == "port,seizures,lines,quantity,msrp"
    assert "USLGB,1,1,1000,10000.00" in lines
    assert lines[-1] == "TOTAL,3,4,1017,12100.00"


def test_bad_requests_and_roles(stack: Stack, officer: str) -> None:
    api_error(_stats(stack, officer, by="shoe_size"), 422, "invalid_input", "shoe_size")
    api_error(_stats(stack, officer, by="mode,mode"), 422, "invalid_input", "twice")
    api_error(
        _stats(stack, officer, **{"from": "2024-01-01T00:00:00Z", "to": "2023-01-01T00:00:00Z"}),
        422,
        "invalid_input",
    )
    api_error(
        _stats(stack, officer, **{"from": "2023-01-01T00:00:00"}), 422, "invalid_input", "time zone"
    )
    holder = stack.org("A brand", "rights_holder")["apiKey"]
    api_error(_stats(stack, holder), 403, "forbidden")
    other = stack.org("Another agency", "customs")["apiKey"]
    assert _stats(stack, other, **RANGE).json()["totals"]["seizures"] == 0  # its own cases only


def test_a_simulated_year_is_shaped_like_fy2023() -> None:
    year = simulate_year(2023)
    totals = year.totals()
    assert totals["seizures"] == 19_726
    assert 22_000_000 < totals["quantity"] < 24_000_000
    assert totals["msrp_cents"] > 240_000_000_000
    origins = [c["origin"] for c in year.cases]
    assert origins.count("CN") + origins.count("HK") > 0.8 * len(origins)
    modes = [c["mode"] for c in year.cases]
    assert modes.count("express") + modes.count("mail") > 0.85 * len(modes)
    assert len(year.lines) > len(year.cases)  # quantities on lines, not one row per item
    small = simulate_year(2023, YearShape(seizures=50, items=500, msrp_cents=10**6), seed=1)
    assert (
        small.totals()
        == simulate_year(2023, YearShape(seizures=50, items=500, msrp_cents=10**6), seed=1).totals()
    )


def test_cases_decided_through_the_api_are_counted(stack: Stack) -> None:
    from datetime import timedelta

    from sqlmodel import Session

    from api import case_clocks
    from api.models import Organization
    from api.orgs import new_api_key

    org = stack.org("CBP ORD", "customs")
    key = org["apiKey"]
    with Session(stack.gateway.engine) as session:
        row = session.get(Organization, org["id"])
        assert row is not None
        second = new_api_key(session, row)
        session.commit()
    now = datetime.now(UTC)
    ids = []
    for category, quantity in (("footwear", 30), ("toys", 4)):
        r = stack.client.post(
            "/v1/cases",
            json={
                "profile": "us-trademark",
                "mode": "mail",
                "port": "USORD",
                "origin": "HK",
                "presentedAt": (now - timedelta(hours=1)).isoformat(),
                "lines": [{"category": category, "quantity": quantity, "unitMsrpCents": 1_000}],
            },
            headers=stack.headers(key),
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    seized = ids[0]
    before = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=60)).isoformat(),
    }
    assert _stats(stack, key, by="category,outcome", **before).json()["rows"] == []
    for action in ("detain", "seize"):
        r = stack.client.post(
            f"/v1/cases/{seized}/actions",
            json={"action": action, "idempotencyKey": action},
            headers=stack.headers(key),
        )
        assert r.status_code in (201, 202), r.text
    approve = f"/v1/cases/{seized}/actions/{r.json()['actionId']}/approve"
    r = stack.client.post(approve, json={"idempotencyKey": "a"}, headers=stack.headers(second))
    assert r.status_code == 201, r.text
    window = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=60)).isoformat(),
    }
    body = _stats(stack, key, by="category,outcome", **window).json()
    assert _rows(body) == {
        ("footwear", "seized"): {"seizures": 1, "lines": 1, "quantity": 30, "msrpCents": 30_000}
    }
    # the other case's determination clock runs out: undecided goods count as excluded
    case_clocks.process_due(stack.gateway.engine, now=now + timedelta(days=40))
    assert window == before  # the same query, answered afresh after each change
    rows = _rows(_stats(stack, key, by="category,outcome", **window).json())
    assert rows[("toys", "excluded")]["quantity"] == 4
