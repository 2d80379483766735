"""Debian's Chromium driven by Playwright (never a downloaded browser), axe-core from
node_modules (npm ci), and full-page screenshots into var/screenshots/."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from playwright.sync_api import BrowserContext, Page, Playwright

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
