"""The staff console in a real browser (Debian's headless Chromium through Playwright):
every changelist fits a 1280 px wide screen, and the main pages are saved as screenshots
in var/screenshots/admin-*.png for a person to look at."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import time_machine
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from accounts.models import Organization
from metering.compliance.models import OverageFlag
from tests.controlpanel.console_scene import NOW, PASSWORD, build_scene
from tests.e2e.browser import playwright_running

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
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
WIDTH = 1280
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _changelists() -> list[tuple[str, str]]:
    return sorted(
        (
            f"{m._meta.app_label}-{m._meta.model_name}",
            reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist"),
        )
        for m in apps.get_models()
        if admin.site.is_registered(m)
    )


@pytest.fixture
def browser_page():
    # Playwright's sync API runs an event loop in this thread; the ORM is not touched while
    # it runs except through the live server's own thread.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_running() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}{reverse('admin:login')}")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def _overflow(page) -> int:
    """The widest of the page and of the result table's scrolling box: Django wraps the
    table in a box that scrolls sideways, so the page alone would always look fine."""
    return page.evaluate(
        """Math.max(document.documentElement.scrollWidth,
                    ...[...document.querySelectorAll('.results')].map(
                        el => el.scrollWidth - el.clientWidth + 1280))"""
    )


def test_every_changelist_fits_1280_px_and_the_main_pages_render(
    live_server, settings, browser_page
):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    with time_machine.travel(NOW, tick=True):
        scene = build_scene()
        organization = Organization.objects.get(slug="acme")
        flag = OverageFlag.objects.filter(organization=organization).first()
        pages = _changelists()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page = browser_page
        _sign_in(page, live_server.url, scene.superuser.email)
        page.screenshot(path=str(SHOTS / "admin-home.png"), full_page=True)
        assert "Needs attention" in page.content()

        too_wide = {}
        for name, url in pages:
            response = page.goto(f"{live_server.url}{url}")
            assert response.status == 200, name
            if _overflow(page) > WIDTH:
                too_wide[name] = _overflow(page)
            page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)
        assert too_wide == {}, too_wide

        details = {
            "organization-change": reverse(
                "admin:accounts_organization_change", args=[organization.pk]
            ),
            "overageflag-change": reverse("admin:metering_overageflag_change", args=[flag.pk]),
            "environment-change": reverse(
                "admin:accounts_environment_change", args=[scene.tenant.production.pk]
            ),
            "contract-add-from-template": reverse("admin:accounts_contract_add") + "?template=1",
        }
        for name, url in details.items():
            response = page.goto(f"{live_server.url}{url}")
            assert response.status == 200, name
            assert _overflow(page) <= WIDTH, name
            page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)

        # The organization page draws its chart server-side: an <svg> with a bar per day.
        page.goto(f"{live_server.url}{details['organization-change']}")
        assert page.locator(".usage-summary svg rect").count() == 90

        # A triage action asks why before it changes anything.
        page.goto(f"{live_server.url}{reverse('admin:metering_overageflag_changelist')}?org=acme")
        page.locator("input.action-select").first.check()
        page.select_option("select[name=action]", "acknowledge")
        page.click("button[name=index]")
        page.wait_for_selector("textarea[name=reason]")
        page.screenshot(path=str(SHOTS / "admin-reason-form.png"), full_page=True)
        page.fill("textarea[name=reason]", "Customer confirmed a load test.")
        page.click(".submit-row input[type=submit]")
        page.wait_for_selector(".messagelist")
        assert "Acknowledged 1 overage flags." in page.content()
