"""The ingest-only service (controlpanel.settings_ingest: its own URLconf and middleware,
served by the `ingest` gunicorn service) answers the native usage API exactly as `web`
does: status, headers and body, for acceptances and refusals alike."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import Client, override_settings

from controlpanel import settings_ingest

pytestmark = pytest.mark.django_db

INGEST = {"ROOT_URLCONF": settings_ingest.ROOT_URLCONF, "MIDDLEWARE": settings_ingest.MIDDLEWARE}
READING = {"instance": "web-1", "boot": "b", "api_calls": 7, "seats": 2}


def _answer(overrides: dict, method: str, path: str, **kwargs) -> tuple:
    """The whole answer, in a transaction rolled back after it: both services see the
    same database."""
    with override_settings(**overrides), transaction.atomic():
        response = getattr(Client(), method)(path, **kwargs)
        transaction.set_rollback(True)
    return response.status_code, sorted(response.items()), response.content


def _requests(key: str) -> list[tuple[str, str, dict]]:
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    as_json = {"content_type": "application/json"}
    return [
        ("post", "/api/v1/usage", {"data": READING, **as_json, **bearer}),
        ("post", "/api/v1/usage/batch", {"data": {"readings": [READING] * 3}, **as_json, **bearer}),
        ("post", "/api/v1/usage", {"data": READING, **as_json}),
        ("post", "/api/v1/usage", {"data": "{", **as_json, **bearer}),
        (
            "post",
            "/api/v1/usage",
            {"data": json.dumps(READING), "content_type": "text/plain", **bearer},
        ),
        ("put", "/api/v1/usage", {"data": READING, **as_json, **bearer}),
        ("get", "/api/v1/usage", {**bearer}),
        ("get", "/healthz", {}),
    ]


def test_the_ingest_service_answers_the_usage_api_as_web_does(tenant):
    for method, path, kwargs in _requests(tenant.api_key):
        web = _answer({}, method, path, **kwargs)
        ingest = _answer(INGEST, method, path, **kwargs)
        assert ingest == web, (method, path)
    assert web[0] == 200  # the probes too


def test_the_ingest_service_serves_nothing_else():
    status, _, _ = _answer(INGEST, "get", "/orgs/acme/projects/website/license")
    assert status == 404
