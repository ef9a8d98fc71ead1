"""Helpers for tests of people: users made as real ones are (invited with an organization's
key, invitation accepted), and signing in through the /login form as a browser does."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.stack import Stack

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(
    stack: Stack, key: str, email: str, role: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    """Invite `email` with the organization's `key` and accept the invitation."""
    r = stack.client.post(
        "/v1/users",
        json={"email": email, "name": email.split("@")[0].title(), "role": role, **extra},
        headers=stack.headers(key),
    )
    assert r.status_code == 201, r.text
    invitation: dict[str, Any] = r.json()
    r = stack.client.post(
        "/v1/invitations/accept", json={"token": invitation["token"], "password": password}
    )
    assert r.status_code == 200, r.text
    return invitation


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, html
    return match.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    """Post the sign-in form as a browser would (the form's CSRF token and cookie first)."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
