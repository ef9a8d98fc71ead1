"""The statistics rollup equals a recomputation from the cases and their lines, after random
sequences of officers' actions (approved seizures and destructions, releases, abandonment,
forfeiture) and clocks running out, on SQLite and (DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from api import case_clocks
from api.models import Organization
from api.orgs import new_api_key
from api.principal import Actor, Principal
from api.services import rollup, statistics
from tests.stack import Stack

CATEGORIES = ("footwear", "toys", "watches_jewelry")
RIGHTS = ("trademark", "copyright", None)
ACTIONS = ("detain", "send_notice", "answer", "seize", "forfeit", "destroy", "release", "abandon")
BY: tuple[list[str], ...] = (
    [],
    ["category"],
    ["right"],
    ["category", "right"],
    ["origin", "mode", "port"],
    ["category", "origin", "mode"],
    ["right", "outcome", "period"],
    ["category", "right", "port", "outcome"],
)


def _table(stack: Stack) -> dict[tuple[Any, ...], list[int]]:
    with stack.gateway.engine.connect() as connection:
        rows = connection.execute(rollup.ROLLUP.select()).mappings().all()
    return {
        tuple(r[k] for k in rollup.KEY): [int(r[m]) for m in rollup.MEASURES]
        for r in rows
        if any(r[m] for m in rollup.MEASURES)
    }


def _recomputed(stack: Stack) -> dict[tuple[Any, ...], list[int]]:
    with stack.gateway.engine.connect() as connection:
        return dict(rollup._contributions(connection, None, None))


def _check(stack: Stack, principal: Principal, now: datetime) -> int:
    """Rollup table == its recomputation, and every answer from it == the full scan's."""
    assert _table(stack) == _recomputed(stack)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    ranges = [
        (None, None),
        (month, (month + timedelta(days=32)).replace(day=1)),
        (month - timedelta(days=400), None),
    ]
    seizures = 0
    with stack.gateway.engine.connect() as connection:
        for by in BY:
            for start, end in ranges:
                for who in (principal, None):
                    got = statistics.compute(connection, who, by, start, end)
                    want = statistics.scan(connection, who, by, start, end)
                    assert got == want, (by, start, end)
                    seizures = max(seizures, got["totals"]["seizures"])
    return seizures


def test_rollup_equals_recomputation_after_random_actions(stack: Stack) -> None:
    org = stack.org("CBP rollup", "customs")
    other = stack.org("Another agency, rollup", "customs")
    key = org["apiKey"]
    with Session(stack.gateway.engine, expire_on_commit=False) as session:
        row = session.get(Organization, org["id"])
        assert row is not None
        second = new_api_key(session, row)
        session.commit()
    principal = Principal(row, Actor("api_key", 0, "test"))
    rng = random.Random(16)
    now = datetime.now(UTC)
    ids: list[str] = []
    for i in range(14):
        lines = [
            {
                "category": rng.choice(CATEGORIES),
                "quantity": rng.randint(1, 500),
                "unitMsrpCents": rng.randint(0, 90_000),
                **({"right": r} if (r := rng.choice(RIGHTS)) else {}),
            }
            for _ in range(rng.randint(0, 3))
        ]
        r = stack.client.post(
            "/v1/cases",
            json={
                "profile": "us-trademark",
                "mode": rng.choice(("express", "mail", "cargo")),
                "port": rng.choice(("USLAX", "USJFK")),
                **({"origin": o} if (o := rng.choice(("CN", "HK", None))) else {}),
                "presentedAt": (now - timedelta(hours=2)).isoformat(),
                "lines": lines,
            },
            headers=stack.headers(key if i % 5 else other["apiKey"]),
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    applied = 0
    for step in range(70):
        case = rng.choice(ids)
        action = rng.choice(ACTIONS)
        agency_key = key if ids.index(case) % 5 else other["apiKey"]
        r = stack.client.post(
            f"/v1/cases/{case}/actions",
            json={"action": action, "idempotencyKey": f"s{step}"},
            headers=stack.headers(agency_key),
        )
        assert r.status_code in (201, 202, 409, 403), r.text
        if r.status_code == 202 and agency_key == key:
            approve = f"/v1/cases/{case}/actions/{r.json()['actionId']}/approve"
            a = stack.client.post(
                approve, json={"idempotencyKey": f"a{step}"}, headers=stack.headers(second)
            )
            assert a.status_code == 201, a.text
        applied += r.status_code in (201, 202)
        if step % 10 == 9:
            _check(stack, principal, now)
    # the clocks run out on what is left: undecided goods count as excluded
    case_clocks.process_due(stack.gateway.engine, now=now + timedelta(days=40))
    assert _check(stack, principal, now) > 0
    assert applied > 10
