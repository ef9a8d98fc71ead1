"""POST /v1/verify/batch: up to 100 scans in one request, each answered as POST /v1/verify
answers it alone (same roles, scan records, detector), a bad item answered on its own, a bad
envelope refused whole, the rate limit counted per item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.schemas import VERIFY_BATCH_MAX
from chain.node import LocalNode
from tests.stack import GTIN, TEST_LIMITS, Stack, api_error, running_stack
from tests.worlds import OTHER_GTIN, VerdictWorld

SERIALS = [f"SN{i:04d}" for i in range(8)]
PATH = "/v1/verify/batch"


@pytest.fixture
def world(stack: Stack) -> VerdictWorld:
    return VerdictWorld(stack, SERIALS)


def _batch(stack: Stack, key: str, items: Any) -> Any:
    return stack.client.post(PATH, json={"items": items}, headers=stack.headers(key))


def _scan_count(stack: Stack) -> int:
    stack.sync()
    with stack.gateway.engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM scan_events")).scalar() or 0)


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs between two verifications of the same scan."""
    return {k: v for k, v in answer.items() if k not in ("scanId", "scannedAt", "index")}


def test_each_item_is_answered_as_verify_answers_it_alone_in_order(world: VerdictWorld) -> None:
    stack, key = world.stack, world.officer["apiKey"]
    when = "2025-03-01T12:30:00+00:00"
    items: list[dict[str, Any]] = [
        {"tag": world.tags["SN0001"], "location": {"unlocode": "NLRTM"}, "scanned_at": when},
        {"gtin": GTIN, "serial": "SN0002"},
        {"tag": world.tags["SN0003"], "note": "an unknown field"},
        {"gtin": GTIN, "serial": "SN9999"},
        {"tag": world.tags["SN0004"], "location": {"unlocode": "ZZZZZ"}},  # unknown port
        {"gtin": "09506000134353", "serial": "SN0001"},  # GTIN check digit
    ]
    before = _scan_count(stack)
    r = _batch(stack, key, items)
    assert r.status_code == 200, r.text
    answers = r.json()["answers"]
    assert len(answers) == len(items)
    alone = [
        stack.client.post("/v1/verify", json=item, headers=stack.headers(key)) for item in items
    ]
    for i, (batched, single) in enumerate(zip(answers, alone, strict=True)):
        assert batched["status"] == single.status_code, (i, batched, single.text)
        if single.status_code == 200:
            assert _comparable(batched["answer"]) == _comparable(single.json()), i
            assert "error" not in batched
        else:
            assert batched["error"]["code"] == single.json()["error"]["code"], i
            assert batched["error"]["message"], i
            assert "answer" not in batched
    assert [a["status"] for a in answers] == [200, 200, 422, 200, 422, 422]
    assert answers[0]["answer"]["verdict"] == "GENUINE"
    assert answers[1]["answer"]["verdict"] == "GENUINE_UNSIGNED"
    assert answers[3]["answer"]["verdict"] == "COUNTERFEIT_SUSPECT"
    assert answers[2]["error"]["message"].startswith("items.2.note")
    # Three good items in the batch and three alone: six rows; no bad item recorded.
    assert _scan_count(stack) == before + 6


def test_a_clone_within_one_batch_is_caught(world: VerdictWorld) -> None:
    """Located scans of one batch go to the detector in the batch's order: the same tag at
    Shanghai, then at Los Angeles a second later, in one request."""
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    uri = world.tags["SN0005"]
    r = _batch(
        world.stack,
        world.officer["apiKey"],
        [
            {"tag": uri, "location": {"unlocode": "CNSHA"}, "scanned_at": t0.isoformat()},
            {
                "tag": uri,
                "location": {"unlocode": "USLAX"},
                "scanned_at": (t0 + timedelta(seconds=1)).isoformat(),
            },
        ],
    )
    assert r.status_code == 200, r.text
    first, second = (a["answer"] for a in r.json()["answers"])
    assert first["verdict"] == "GENUINE" and first["findings"] == []
    assert second["verdict"] == "COUNTERFEIT_SUSPECT", second
    assert "CLONE_SUSPECT" in second["reasons"]


def test_a_bad_envelope_is_refused_whole_and_records_nothing(world: VerdictWorld) -> None:
    stack, key = world.stack, world.officer["apiKey"]
    good = {"gtin": GTIN, "serial": "SN0001"}
    before = _scan_count(stack)
    api_error(_batch(stack, key, []), 422, "invalid_input", "items")
    api_error(_batch(stack, key, [good] * (VERIFY_BATCH_MAX + 1)), 422, "invalid_input", "items")
    api_error(_batch(stack, key, [good, "SN0001"]), 422, "invalid_input", "items.1")
    api_error(_batch(stack, key, good), 422, "invalid_input", "items")
    r = stack.client.post(PATH, json={"items": [good], "extra": 1}, headers=stack.headers(key))
    api_error(r, 422, "invalid_input", "extra")
    api_error(stack.client.post(PATH, json={"items": [good]}), 401, "unauthenticated")
    api_error(_batch(stack, "wrong-key", [good]), 401, "unauthenticated")
    auditor = stack.org("Audit Co", "auditor")
    api_error(_batch(stack, auditor["apiKey"], [good]), 403, "forbidden")
    assert _scan_count(stack) == before
    r = _batch(stack, key, [good] * VERIFY_BATCH_MAX)  # the most a batch may hold
    assert r.status_code == 200 and len(r.json()["answers"]) == VERIFY_BATCH_MAX
    assert _scan_count(stack) == before + VERIFY_BATCH_MAX


def test_a_rights_holder_gets_its_own_products_only_item_by_item(world: VerdictWorld) -> None:
    r = _batch(
        world.stack,
        world.rival["apiKey"],
        [{"gtin": GTIN, "serial": "SN0001"}, {"gtin": OTHER_GTIN, "serial": "R-1"}],
    )
    assert r.status_code == 200, r.text
    hidden, own = r.json()["answers"]
    assert hidden["status"] == 404 and hidden["error"]["code"] == "not_found"
    assert own["status"] == 200 and own["answer"]["item"]["serial"] == "R-1"


def test_the_rate_limit_counts_each_item(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> None:
    """A batch of 5 under a limit of 3 verifications a day (not a minute:
    a window edge mid-test would let a refusal through): 3 answered, the last 2 refused
    429 each with `retryAfter` and not recorded; one POST /v1/verify after it is refused."""
    limits = {**TEST_LIMITS, "verify": "3/day"}
    with running_stack(
        anvil, database, tmp_path, rate_limits=limits, rate_limits_per_address=TEST_LIMITS
    ) as stack:
        officer = stack.org("NL Customs", "customs")
        key = officer["apiKey"]
        before = _scan_count(stack)
        r = _batch(stack, key, [{"gtin": GTIN, "serial": f"SN{i:04d}"} for i in range(5)])
        assert r.status_code == 200, r.text
        answers = r.json()["answers"]
        assert [a["status"] for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3]["error"]
        assert refused["code"] == "rate_limited" and refused["retryAfter"] >= 1
        assert refused["routeClass"] == "verify"
        assert _scan_count(stack) == before + 3
        single = stack.client.post(
            "/v1/verify", json={"gtin": GTIN, "serial": "SN0001"}, headers=stack.headers(key)
        )
        api_error(single, 429, "rate_limited")
