"""Browser fixtures: Debian's Chromium driven by Playwright, and servers to point it at.

Chromium is launched from ``/usr/bin/chromium`` (Playwright's own browser download cannot be
reached) with every background service off, so it sends nothing anywhere but the server
under test, and with a fresh profile per session. ``page`` fails the test on any uncaught
script error or console error. ``shot(page, name)`` saves a screenshot for docs/dashboard.md
into ``$LBAAS_DASHBOARD_SHOTS`` (``make dashboard-shots`` points it at docs/dashboard/).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import Server, fake_settings

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


# Module scope: a running Playwright keeps its event loop current in this thread, and later
# suites in the same pytest process call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="lbaas-chromium-")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=DESKTOP,
            device_scale_factor=1)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (cookies cleared) that turns script errors into test failures."""
    browser.clear_cookies()
    tab = browser.new_page()
    tab.set_viewport_size(DESKTOP)
    tab.set_default_timeout(15_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    tab.on("console", lambda msg: errors.append(f"console: {msg.text}")
           if msg.type == "error" and "status of 4" not in msg.text else None)
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="session")
def shot() -> Callable[[Any, str], None]:
    target = os.environ.get("LBAAS_DASHBOARD_SHOTS")

    def save(tab: Any, name: str, full_page: bool = False) -> None:
        folder = Path(target) if target else Path(tempfile.gettempdir()) / "lbaas-dashboard-shots"
        folder.mkdir(parents=True, exist_ok=True)
        tab.evaluate("document.getElementById('toasts').replaceChildren()")  # transient notes
        tab.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)

    return save


@pytest.fixture(scope="module")
def fake_server() -> Iterator[Server]:
    """``lbaas serve`` in noauth mode with the fake drivers (no data plane)."""
    server = Server(fake_settings()).start()
    try:
        yield server
    finally:
        server.close()


def open_dashboard(tab: Any, server: Server, route: str = "#/loadbalancers") -> None:
    tab.goto(f"{server.url}/dashboard/{route}")
    tab.locator("main h1").first.wait_for()
