"""CSRF on every form: a POST without the token, from a signed-in browser session, is
refused 403 by every route of the site, except the machine endpoints, which no cookie
authenticates (API keys, personal access tokens, single-use tokens in the body)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Routes a cookie never authenticates: each reads its caller from a header or the body.
MACHINE_ROUTES = {
    "api/v1/usage",
    "api/v1/usage/batch",
    "telemetry",
    "graphql",
    "orgs/<str:org_id>/projects/<str:project_id>/package/seats",
    "orgs/<str:org_id>/projects/<str:project_id>/package/tenants",
    "api/v1/licenses/validate",  # the token to check is the body
    "api/v1/cli/sessions",  # the CLI, before anyone signed in
    "api/v1/cli/sessions/<str:poll_id>",  # the CLI polls with the session's secret
    # GET only, by API key or public: every other method gets the JSON 405 with Allow.
    "orgs/<str:org_id>/projects/<str:project_id>/license",
    ".well-known/jwks.json",
}
CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes(patterns: list, prefix: str = "") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append((route, pattern.callback))
    return found


def _path(route: str) -> str | None:
    """A concrete path for a route (placeholder values: the CSRF check runs before the
    view looks anything up); None for regex routes this cannot fill in."""
    if route.startswith("^") or "(?P" in route:
        return None
    return "/" + CONVERTER.sub(lambda m: "1" if m.group(1) in ("int", None) else "acme", route)


def test_every_web_post_without_a_csrf_token_is_refused(tenant):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(tenant.owner)
    checked, machine = [], set()
    for route, callback in _routes(get_resolver().url_patterns):
        path = _path(route)
        if path is None:
            continue
        response = browser.post(path, {"name": "x"})
        if route in MACHINE_ROUTES:
            machine.add(route)
            assert getattr(callback, "csrf_exempt", False), route
            continue
        assert response.status_code == 403, (route, response.status_code)
        checked.append(route)
    assert machine == MACHINE_ROUTES
    # The forms that matter are among them (a broken walk would check none).
    for form in ("login/", "signup/", "<slug:org>/team/invite", "<slug:org>/webhooks/add"):
        assert any(route.endswith(form) for route in checked), form
    assert len(checked) > 60
