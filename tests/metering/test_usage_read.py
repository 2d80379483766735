"""GET /api/v1/usage: an environment's own usage per bucket and totals."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from accounts.services.organizations import environment_set_status
from tests.metering.usage import post_usage

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 22, 12, 30, tzinfo=dt.UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _push(client, key, **reading):
    response = post_usage(client, key, reading)
    assert response.status_code == 202, response.content


def _get(client, key, **params):
    return client.get("/api/v1/usage", params, HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def history(client, tenant, frozen):
    _push(
        client,
        tenant.api_key,
        instance="a",
        api_calls=100,
        seats=4,
        tenants=1,
        observed_at="2026-11-22T10:10:00Z",
    )
    _push(
        client,
        tenant.api_key,
        instance="a",
        api_calls=150,
        seats=6,
        observed_at="2026-11-22T10:40:00Z",
    )
    _push(
        client,
        tenant.api_key,
        instance="a",
        api_calls=170,
        seats=5,
        observed_at="2026-11-22T10:50:00Z",
    )
    _push(
        client,
        tenant.api_key,
        instance="b",
        api_calls=30,
        seats=2,
        observed_at="2026-11-22T11:20:00Z",
    )
    _push(
        client,
        tenant.api_key,
        instance="c",
        api_calls=30,
        tenants=2,
        observed_at="2026-11-21T23:00:00Z",
    )


def test_hourly_buckets_and_totals(client, tenant, history):
    response = _get(
        client, tenant.api_key, **{"from": "2026-11-22T10:00:00Z", "to": "2026-11-22T12:00:00Z"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "environment": {"id": tenant.production.pk, "name": "production", "kind": "production"},
        "from": "2026-11-22T10:00:00Z",
        "to": "2026-11-22T12:00:00Z",
        "granularity": "hour",
        "buckets": [
            {
                "start": "2026-11-22T10:00:00Z",
                "api_calls": 170,
                "seats": {"max": 6, "last": 5},
                "tenants": {"max": 1, "last": 1},
            },
            {
                "start": "2026-11-22T11:00:00Z",
                "api_calls": 30,
                "seats": {"max": 2, "last": 2},
                "tenants": {"max": None, "last": None},
            },
        ],
        "totals": {
            "api_calls": 200,
            "seats": {"max": 6, "last": 2},
            "tenants": {"max": 1, "last": 1},
        },
    }


def test_daily_buckets(client, tenant, history):
    response = _get(
        client,
        tenant.api_key,
        **{"from": "2026-11-21T05:00:00Z", "to": "2026-11-23T00:00:00Z", "granularity": "day"},
    )
    body = response.json()
    assert [(b["start"], b["api_calls"]) for b in body["buckets"]] == [
        ("2026-11-21T00:00:00Z", 30),
        ("2026-11-22T00:00:00Z", 200),
    ]
    assert body["buckets"][0]["tenants"] == {"max": 2, "last": 2}
    assert body["totals"]["api_calls"] == 230


def test_defaults_to_the_last_day_by_hour(client, tenant, history):
    body = _get(client, tenant.api_key).json()
    assert body["granularity"] == "hour"
    assert (body["from"], body["to"]) == ("2026-11-21T12:00:00Z", "2026-11-22T13:00:00Z")
    assert len(body["buckets"]) == 25
    assert body["totals"]["api_calls"] == 230


def test_another_environment_sees_only_its_own_usage(client, tenant, other_tenant, history):
    body = _get(client, other_tenant.api_key).json()
    assert body["environment"]["id"] == other_tenant.production.pk
    assert body["totals"] == {
        "api_calls": 0,
        "seats": {"max": None, "last": None},
        "tenants": {"max": None, "last": None},
    }


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"granularity": "week"}, "bad_granularity", "granularity"),
        ({"from": "2026-11-22T10:00:00"}, "timestamp_without_zone", "from"),
        ({"to": "soon"}, "bad_timestamp", "to"),
        ({"from": "2026-11-22T10:00:00Z", "to": "2026-11-22T09:00:00Z"}, "bad_range", "from"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-11-22T00:00:00Z"}, "range_too_long", "to"),
    ],
)
def test_bad_query_is_400_naming_the_parameter(client, tenant, frozen, params, code, field):
    response = _get(client, tenant.api_key, **params)
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def test_key_problems(client, tenant):
    assert client.get("/api/v1/usage").status_code == 401
    environment_set_status(environment=tenant.production, enabled=False)
    response = _get(client, tenant.api_key)
    assert response.status_code == 403
    assert response.json()["code"] == "environment_disabled"


def test_storage_failure_answers_503_with_retry_after(client, tenant, monkeypatch):
    from django.db import OperationalError

    from metering import selectors

    def fail(**kwargs):
        raise OperationalError("connection lost")

    # Failure injection at the storage boundary, as for the POST.
    monkeypatch.setattr(selectors, "usage_summary", fail)
    response = client.get("/api/v1/usage", HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "message": "Usage storage is unavailable; retry shortly.",
        "code": "unavailable",
    }
