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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_ingest_service_boots_under_gunicorn_and_records_a_reading(tenant):
    """As docker-compose runs it: gunicorn with DJANGO_SETTINGS_MODULE=settings_ingest."""
    import httpx

    from metering.models import UsageReading
    from tests.processes import gunicorn_process, process_env

    env = process_env(
        DJANGO_SETTINGS_MODULE="controlpanel.settings_ingest",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
    )
    with gunicorn_process(range(8700, 8750), env=env) as port:
        base = f"http://127.0.0.1:{port}"
        accepted = httpx.post(
            f"{base}/api/v1/usage",
            json=READING,
            headers={"Authorization": f"Bearer {tenant.api_key}"},
        )
        elsewhere = httpx.get(f"{base}/orgs/acme/projects/website/license")
    assert accepted.status_code == 202
    assert accepted.json()["counted"] == {"api_calls": 7}
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "not_found")
    assert UsageReading.objects.get().api_calls == 7
