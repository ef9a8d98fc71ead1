"""Sign-in attempts are limited per client address, across accounts: a guesser who spreads
passwords over many accounts (each under its own lock-out threshold) is refused with 429 and
Retry-After, and the refused attempt checks no password (even the right one is refused)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from api.models import User
from api.ratelimit import RateLimiter
from chain.node import LocalNode
from ledger.config import Settings
from tests.people import PASSWORD, csrf_of, make_user
from tests.stack import Stack, running_stack


@pytest.fixture
def throttled(
    anvil: LocalNode, database: tuple[str, str | None], tmp_path: Path
) -> Iterator[Stack]:
    # A day's window, not a minute's: the sliding-window counter weighs the last window down
    # as the next goes on, so a run across a minute's edge let the fourth attempt through.
    with running_stack(
        anvil, database, tmp_path, login_attempts_per_address="3/day", login_failure_delay=0.0
    ) as running:
        yield running


def _attempt(stack: Stack, email: str, password: str, accept: str = "text/html") -> object:
    page = stack.client.get("/login")
    return stack.client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        headers={"Accept": accept},
        follow_redirects=False,
    )


def test_attempts_across_accounts_are_throttled_per_address(throttled: Stack) -> None:
    stack = throttled
    customs = stack.org("Customs NL", "customs")
    for name in ("a", "b", "c", "d"):
        make_user(stack, customs["apiKey"], f"{name}@customs.example", "officer")
    # Three wrong passwords on three different accounts: none of them is locked...
    for name in ("a", "b", "c"):
        r = _attempt(stack, f"{name}@customs.example", "wrong guess")
        assert r.status_code == 401, r.text  # type: ignore[attr-defined]
    # ...but the address is: the fourth attempt is refused before its password is read.
    r = _attempt(stack, "d@customs.example", "another guess")
    assert r.status_code == 429  # type: ignore[attr-defined]
    assert int(r.headers["Retry-After"]) >= 1  # type: ignore[attr-defined]
    assert "Too many sign-in attempts" in r.text  # type: ignore[attr-defined]
    assert "bl_session" not in r.cookies  # type: ignore[attr-defined]
    # No password was checked: d's failure count did not move.
    with Session(stack.gateway.engine) as session:
        d = session.exec(select(User).where(User.email == "d@customs.example")).one()
        assert d.failed_logins == 0
    # Even the right password is refused; a client not asking for HTML gets JSON.
    r = _attempt(stack, "d@customs.example", PASSWORD, accept="application/json")
    assert r.status_code == 429  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["error"]["code"] == "rate_limited"
    assert "sign-in attempts" in body["error"]["message"]
    assert body["error"]["retryAfter"] >= 1


def test_a_refused_setting_and_an_empty_one() -> None:
    with pytest.raises(ValueError, match="sign-in limit"):
        Settings(login_attempts_per_address="lots")
    limiter = RateLimiter(Settings(login_attempts_per_address=""))
    assert limiter.sign_in == []
