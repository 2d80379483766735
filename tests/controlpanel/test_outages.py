"""A database outage answers 503 with Retry-After on every route (controlpanel.outages):
here against a real refused connection (nothing listens on port 1); against a stopped
PostgreSQL under gunicorn, route by route, in tests/faults."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connections
from django.test import RequestFactory

from controlpanel.outages import server_error


@pytest.fixture
def database_down(transactional_db):
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
    yield
    connection.close()
    connection.settings_dict.update(saved)


def _assert_503(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"


def test_the_customer_api_answers_json_503(client, tenant, database_down):
    client.cookies["sessionid"] = "s" * 32  # sessions are looked up in the database
    response = client.get("/api/v1/me")
    _assert_503(response)
    assert response.json()["code"] == "unavailable"


def test_the_wcp_seat_update_answers_json_503(client, tenant, database_down):
    response = client.post(
        "/orgs/acme/projects/website/package/seats",
        '{"operation": "increment"}',
        content_type="text/plain;charset=UTF-8",
        HTTP_AUTHORIZATION=tenant.api_key,
    )
    _assert_503(response)
    assert "database is unavailable" in response.json()["message"]


def test_a_web_page_answers_a_page_of_its_own(client, tenant, database_down):
    client.cookies["sessionid"] = "s" * 32
    response = client.get("/acme/")
    _assert_503(response)
    assert response["Content-Type"].startswith("text/html")
    assert b"Temporarily unavailable" in response.content
    assert b"Try again in 5 seconds" in response.content


def test_handler500_answers_503_for_an_outage_and_500_for_anything_else(settings):
    request = RequestFactory().get("/api/v1/me")
    try:
        raise OperationalError("server closed the connection unexpectedly")
    except OperationalError:
        outage = server_error(request)
    try:
        raise ValueError("a bug")
    except ValueError:
        bug = server_error(request)
    _assert_503(outage)
    assert bug.status_code == 500
