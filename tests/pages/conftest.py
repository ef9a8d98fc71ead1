"""Browser fixtures: the test stack's gateway served over HTTP by uvicorn in a thread, and
Debian's chromium driven by Playwright (`executable_path`; no `playwright install`)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.main import create_app
from ledger.config import PROJECT_ROOT
from tests.people import PASSWORD
from tests.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
BUNDLE = PROJECT_ROOT / "api" / "pages" / "static" / "app.js"


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    """One headless chromium for the page tests, closed after the last of them: sync
    Playwright keeps an event loop running in the test thread while it is open, and a later
    test of another package on the same worker (pytest-xdist) may call asyncio.run()."""
    if not Path(CHROMIUM).is_file():
        # Not a skip: a suite that silently does not run hides failures (`make test` installs it).
        pytest.fail(f"Debian chromium is not at {CHROMIUM}: run `make browser` (as root)")
    if not BUNDLE.is_file():  # the pages' bundle: built by `make setup`, or here
        subprocess.run(
            ["make", "-C", str(PROJECT_ROOT), str(BUNDLE.relative_to(PROJECT_ROOT))],
            check=True,
            capture_output=True,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def live(stack: Stack) -> Iterator[str]:
    """The stack's gateway at a real URL (the same gateway the test client talks to)."""
    stack.gateway.settings.login_failure_delay = 0.0
    app = create_app(stack.gateway, background=False, stop_gateway=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def shots() -> Path | None:
    """Where screenshots go: SCREENSHOTS_DIR (docs/screenshots to refresh the docs), else
    nowhere."""
    where = os.environ.get("SCREENSHOTS_DIR")
    if not where:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page (axe injected from
    node_modules, never a CDN)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A phone-sized page in a fresh context; fails the test on any script error."""
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors  # no script error on any page


def sign_in(page: Any, live: str, email: str, password: str = PASSWORD) -> None:
    page.goto(live + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shoot(page: Any, shots: Path | None, name: str) -> None:
    if shots is None:
        return
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(shots / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(PHONE)


def no_axe_violations(page: Any) -> None:
    """No serious or critical axe-core violation on the page."""
    assert axe_violations(page) == []
