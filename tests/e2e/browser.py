"""Debian's Chromium driven by Playwright (never a downloaded browser), axe-core from
node_modules (npm ci), and full-page screenshots into var/screenshots/."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connections
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# What works here as root in a container: no sandbox, no GPU, nothing phoning home.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
BLOCKING_IMPACTS = ("serious", "critical")


@contextmanager
def playwright_running() -> Iterator[Playwright]:
    """Playwright's sync API. The test's ORM calls inside it run in the context of
    Playwright's event loop, on connections of their own: closed on the way out, or they
    would outlive the test database (pytest's "being accessed by other users"). Django
    refuses ORM calls beside a running event loop unless told they are synchronous code."""
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            try:
                yield playwright
            finally:
                connections.close_all()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def open_context(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    """A browser with a fresh profile of its own (cookies apart from any other)."""
    context = playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=CHROMIUM,
        args=FLAGS,
        viewport={"width": 1280, "height": 900},
    )
    # Destructive actions ask window.confirm(); the person in this test agrees.
    context.on("page", lambda page: page.on("dialog", lambda dialog: dialog.accept()))
    return context


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations of the page as shown now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + json.dumps([n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]
