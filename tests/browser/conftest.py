"""Browser tests: the real app served by uvicorn on loopback, driven by Debian's Chromium
through Playwright, checked for accessibility by axe-core.

``bash tests/browser/setup.sh`` (part of the README's test command) installs Chromium and
axe-core when they are missing. A missing browser fails these tests, never skips them.
Every test leaves a full-page screenshot of where it ended under
``test-output/screenshots/`` (``PARRAIN_TEST_OUTPUT`` moves the folder).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

from parrain.config import CryptoSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from tests.operators.helpers import CHEAP_HASHER

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("PARRAIN_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
OUTPUT = Path(os.environ.get("PARRAIN_TEST_OUTPUT", ROOT / "test-output"))
#: The flags DESIGN asks for: no sandbox (CI runs as root), no GPU, no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: axe-core impacts that fail a page (the issue: no serious or critical violation).
FAILING_IMPACTS = frozenset({"serious", "critical"})
PHONE = {"width": 390, "height": 844}


#: The one browser of this process. Other test folders import the ``browser`` fixture
#: (tests/web/member/conftest.py does), which makes a second session fixture: Playwright's
#: sync API cannot run twice in one thread, so every copy of the fixture shares this one.
_SHARED: list[Browser] = []


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if _SHARED:
        yield _SHARED[0]
        return
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `bash tests/browser/setup.sh` (installs Debian's "
            "chromium) or set PARRAIN_TEST_CHROMIUM",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        _SHARED.append(launched)
        try:
            yield launched
        finally:
            _SHARED.clear()
            launched.close()


@dataclass
class LiveServer:
    """The app served over real HTTP on loopback, with the test's database and clock."""

    app: FastAPI
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def page_settings() -> Settings:
    """Settings of the served app: development keys, cookies allowed over plain HTTP."""
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False),
    )


@pytest.fixture
def live_server(
    database: Database, clock: FrozenClock, page_settings: Settings
) -> Iterator[LiveServer]:
    app = create_app(database=database, clock=clock, settings=page_settings)
    sock = _free_socket()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()[:2]
    try:
        yield LiveServer(app=app, base_url=f"http://{host}:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def console_server(live_server: LiveServer) -> LiveServer:
    """The live app with a cheap password hasher, for journeys that sign in to the console."""
    live_server.app.state.password_hasher = CHEAP_HASHER
    return live_server


def _screenshot_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:150]


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) at a phone's size; its last state is saved as
    a screenshot when the test ends, passed or failed."""
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        folder = OUTPUT / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            opened.screenshot(
                path=folder / f"{_screenshot_name(request.node.nodeid)}.png", full_page=True
            )
        finally:
            context.close()


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `bash tests/browser/setup.sh`", pytrace=False)
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        violation
        for violation in results["violations"]
        if violation.get("impact") in FAILING_IMPACTS
    ]


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the current page."""
    found = accessibility_violations(page)
    assert not found, f"accessibility violations on {page.url}:\n" + json.dumps(
        [
            {
                "rule": violation["id"],
                "impact": violation["impact"],
                "help": violation["help"],
                "targets": [node["target"] for node in violation["nodes"]][:5],
            }
            for violation in found
        ],
        indent=2,
    )
