"""Playwright against Debian's Chromium and a live server on loopback.

The server runs the same app object (and database) as the other fixtures in a thread, so a test
sets data up through services or the API and checks it through the browser. Screenshots are kept
under ``test-artifacts/`` (each test's last page, and on failure).
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def live_server(_migrated_app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _migrated_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: run `make browser-deps`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser: Any, live_server: str, app: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server, locale="ru-RU",
                                  viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.console_errors = errors
    # Every page runs under the Content-Security-Policy (web/security.py): whatever it blocks
    # is reported to the console, and fails the test.
    violations: list[str] = []
    pg.on("console", lambda msg: violations.append(f"{pg.url}: {msg.text}")
          if "Content Security Policy" in msg.text else None)
    pg.csp_violations = violations
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = request.node.name.replace("/", "_")[:120]
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    except Exception:  # noqa: BLE001 - a screenshot must never mask the test result
        pass
    context.close()
    assert not violations, "blocked by the Content-Security-Policy:\n" + "\n".join(violations)


def login(page: Any, email: str, password: str = "demo") -> None:
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
