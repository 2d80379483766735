"""POST /api/v1/usage and /api/v1/usage/batch: what a reading counts, and every refusal
(each with a body naming the problem, and nothing written)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import time_machine
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services.api_keys import api_key_issue, api_key_revoke
from accounts.services.organizations import environment_set_status
from metering.models import UsageClosedThrough, UsageGauge, UsageReading, UsageRollup, UsageSeries
from tests.metering.usage import NOTHING, post_usage, usage_rows

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_first_reading_counts_its_value_and_is_kept_verbatim(
    client, tenant, frozen, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the key's last use
        response = post_usage(
            client,
            tenant.api_key,
            {
                "instance": "graphql-7f3a",
                "boot": "b8c1",
                "observed_at": "2026-11-22T10:05:00Z",
                "api_calls": 123456,
                "seats": 17,
                "tenants": 3,
            },
        )
    assert response.status_code == 202
    assert response.json() == {
        "counted": {"api_calls": 123456},
        "duplicate": False,
        "reset": False,
        "late": False,
    }
    reading = UsageReading.objects.get()
    assert (reading.environment_id, reading.instance, reading.boot) == (
        tenant.production.pk,
        "graphql-7f3a",
        "b8c1",
    )
    assert reading.observed_at == dt.datetime(2026, 11, 22, 10, 5, tzinfo=dt.UTC)
    assert reading.received_at == NOW
    assert reading.attributed_hour == dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC)
    assert (reading.api_calls, reading.seats, reading.tenants) == (123456, 17, 3)
    assert (reading.counted_api_calls, reading.duplicate, reading.reset, reading.late) == (
        123456,
        False,
        False,
        False,
    )
    series = UsageSeries.objects.get()
    assert (series.highest, series.generation) == (123456, 0)
    rollups = {r.metric: r for r in UsageRollup.objects.all()}
    assert rollups["api_calls"].total == 123456
    assert (rollups["seats"].peak, rollups["seats"].last) == (17, 17)
    assert (rollups["tenants"].peak, rollups["tenants"].last) == (3, 3)
    assert {g.metric: g.value for g in UsageGauge.objects.all()} == {"seats": 17, "tenants": 3}
    assert ApiKey.objects.get(environment=tenant.production).last_used_at == NOW


def test_later_reading_counts_the_difference_and_repeat_is_a_duplicate(client, tenant, frozen):
    post_usage(client, tenant.api_key, {"instance": "a", "api_calls": 100})
    second = post_usage(client, tenant.api_key, {"instance": "a", "api_calls": 130})
    again = post_usage(client, tenant.api_key, {"instance": "a", "api_calls": 130})
    assert second.json()["counted"] == {"api_calls": 30}
    assert again.json() == {
        "counted": {"api_calls": 0},
        "duplicate": True,
        "reset": False,
        "late": False,
    }
    assert UsageRollup.objects.get(metric="api_calls").total == 130
    assert UsageReading.objects.count() == 3


def test_new_boot_counts_from_zero_and_says_reset(client, tenant, frozen):
    post_usage(client, tenant.api_key, {"instance": "a", "boot": "one", "api_calls": 500})
    response = post_usage(client, tenant.api_key, {"instance": "a", "boot": "two", "api_calls": 7})
    assert response.json() == {
        "counted": {"api_calls": 7},
        "duplicate": False,
        "reset": True,
        "late": False,
    }


def test_lower_value_observed_later_without_boot_is_a_restart(client, tenant, frozen):
    post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "api_calls": 500, "observed_at": "2026-11-22T09:00:00Z"},
    )
    restart = post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "api_calls": 20, "observed_at": "2026-11-22T10:00:00Z"},
    )
    late = post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "api_calls": 10, "observed_at": "2026-11-22T09:30:00Z"},
    )
    assert restart.json() == {
        "counted": {"api_calls": 20},
        "duplicate": False,
        "reset": True,
        "late": False,
    }
    assert late.json() == {
        "counted": {"api_calls": 0},
        "duplicate": True,
        "reset": False,
        "late": False,
    }
    assert sorted(UsageSeries.objects.values_list("generation", "highest")) == [(0, 500), (1, 20)]


def test_batch_answers_per_reading(client, tenant, frozen):
    response = post_usage(
        client,
        tenant.api_key,
        {
            "readings": [
                {"instance": "a", "boot": "x", "api_calls": 10},
                {"instance": "b", "boot": "y", "api_calls": 5, "seats": 4},
                {"instance": "a", "boot": "x", "api_calls": 25},
                {"instance": "a", "boot": "x", "api_calls": 20},
            ]
        },
        batch=True,
    )
    assert response.status_code == 202
    body = response.json()
    assert [r["counted"]["api_calls"] for r in body["results"]] == [10, 5, 15, 0]
    assert [r["duplicate"] for r in body["results"]] == [False, False, False, True]
    assert body["counted"] == {"api_calls": 30}
    assert UsageReading.objects.count() == 4
    assert UsageRollup.objects.get(metric="api_calls").total == 30
    assert UsageGauge.objects.get(metric="seats").value == 4


def test_counts_in_a_closed_period_move_to_the_first_open_hour_marked_late(client, tenant, frozen):
    closed = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    UsageClosedThrough.objects.create(organization=tenant.organization, closed_through=closed)
    response = post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "boot": "x", "api_calls": 40, "observed_at": "2026-11-21T23:10:00Z"},
    )
    assert response.json()["late"] is True
    rollup = UsageRollup.objects.get(metric="api_calls")
    assert (rollup.hour, rollup.total, rollup.late_total) == (closed, 40, 40)
    assert UsageReading.objects.get().attributed_hour == closed


def test_counted_calls_are_not_attributed_before_the_series_previous_reading(
    client, tenant, frozen
):
    post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "boot": "x", "api_calls": 10, "observed_at": "2026-11-22T10:00:00Z"},
    )
    # Inconsistent (a higher value observed earlier): the extra calls go to the later hour.
    post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "boot": "x", "api_calls": 50, "observed_at": "2026-11-22T08:00:00Z"},
    )
    assert list(UsageRollup.objects.values_list("hour", "total")) == [
        (dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC), 50)
    ]


def test_absolute_gauge_replaces_running_count_unless_older(client, tenant, frozen):
    post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "api_calls": 1, "seats": 8, "observed_at": "2026-11-22T10:00:00Z"},
    )
    post_usage(
        client,
        tenant.api_key,
        {"instance": "a", "api_calls": 1, "seats": 5, "observed_at": "2026-11-22T09:00:00Z"},
    )
    assert UsageGauge.objects.get(metric="seats").value == 8
    hours = dict(UsageRollup.objects.filter(metric="seats").values_list("hour", "peak"))
    assert hours == {
        dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC): 5,
        dt.datetime(2026, 11, 22, 10, tzinfo=dt.UTC): 8,
    }


# --- refusals -----------------------------------------------------------------------------
def _assert_nothing_written():
    assert usage_rows() == NOTHING
    assert not ApiKey.objects.filter(last_used_at__isnull=False).exists()


GOOD = {"instance": "a", "api_calls": 1}


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({**GOOD, "ip": "10.0.0.1"}, "unknown_field", "ip"),
        ({"instance": "a"}, "required", "api_calls"),
        ({"api_calls": 1}, "required", "instance"),
        ({**GOOD, "api_calls": "12"}, "wrong_type", "api_calls"),
        ({**GOOD, "api_calls": 1.5}, "wrong_type", "api_calls"),
        ({**GOOD, "api_calls": 1.0}, "wrong_type", "api_calls"),
        ({**GOOD, "api_calls": True}, "wrong_type", "api_calls"),
        ({**GOOD, "seats": False}, "wrong_type", "seats"),
        ({**GOOD, "api_calls": -1}, "negative", "api_calls"),
        ({**GOOD, "tenants": -3}, "negative", "tenants"),
        ({**GOOD, "api_calls": 2**63}, "too_large", "api_calls"),
        ({**GOOD, "instance": ""}, "empty", "instance"),
        ({**GOOD, "instance": "x" * 129}, "too_long", "instance"),
        ({**GOOD, "instance": "has space"}, "bad_characters", "instance"),
        ({**GOOD, "instance": "jane@example.com <Jane>"}, "bad_characters", "instance"),
        ({**GOOD, "instance": 7}, "wrong_type", "instance"),
        ({**GOOD, "boot": ""}, "empty", "boot"),
        ({**GOOD, "observed_at": "2026-11-22T10:00:00"}, "timestamp_without_zone", "observed_at"),
        ({**GOOD, "observed_at": "yesterday"}, "bad_timestamp", "observed_at"),
        ({**GOOD, "observed_at": 1763800000}, "wrong_type", "observed_at"),
        ({**GOOD, "observed_at": "2026-11-22T10:35:01Z"}, "timestamp_in_future", "observed_at"),
        ({**GOOD, "observed_at": "2025-10-17T10:00:00Z"}, "timestamp_too_old", "observed_at"),
    ],
)
def test_bad_reading_is_refused_naming_the_field(client, tenant, frozen, body, code, field):
    response = post_usage(client, tenant.api_key, body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["field"] == field
    assert response.json()["message"]
    _assert_nothing_written()


def test_timestamp_just_inside_the_skew_and_retention_is_accepted(client, tenant, frozen):
    assert (
        post_usage(
            client, tenant.api_key, {**GOOD, "observed_at": "2026-11-22T10:35:00Z"}
        ).status_code
        == 202
    )
    ok = post_usage(
        client,
        tenant.api_key,
        {"instance": "b", "api_calls": 1, "observed_at": "2025-10-19T10:30:00+00:00"},
    )
    assert ok.status_code == 202


def test_bad_reading_in_a_batch_refuses_the_whole_batch_naming_index_and_field(client, tenant):
    readings = [{"instance": f"i{n}", "api_calls": n} for n in range(10)]
    readings[7]["api_calls"] = -5
    response = post_usage(client, tenant.api_key, {"readings": readings}, batch=True)
    assert response.status_code == 400
    assert response.json() == {
        "message": "reading 7: api_calls must not be negative.",
        "code": "negative",
        "index": 7,
        "field": "api_calls",
    }
    _assert_nothing_written()


def test_batch_of_more_than_1000_readings_is_refused(client, tenant):
    readings = [{"instance": "a", "api_calls": n} for n in range(1001)]
    response = post_usage(client, tenant.api_key, {"readings": readings}, batch=True)
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_readings"
    _assert_nothing_written()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "wrong_type"),
        ({"readings": []}, "empty"),
        ({"readings": {}}, "wrong_type"),
        ({"readings": [], "x": 1}, "unknown_field"),
    ],
)
def test_malformed_batch_is_refused(client, tenant, body, code):
    response = post_usage(client, tenant.api_key, body if body else [], batch=True)
    assert response.status_code == 400
    assert response.json()["code"] == code
    _assert_nothing_written()


def test_body_over_one_mebibyte_is_refused_with_413(client, tenant):
    body = json.dumps({"instance": "a", "api_calls": 1, "pad": "x" * (1024 * 1024)})
    response = post_usage(client, tenant.api_key, body)
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    _assert_nothing_written()


def test_non_json_content_type_is_refused_with_415(client, tenant):
    response = client.post(
        "/api/v1/usage",
        json.dumps(GOOD),
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}",
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    _assert_nothing_written()


def test_body_that_is_not_json_is_refused_with_400(client, tenant):
    response = post_usage(client, tenant.api_key, "{not json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    _assert_nothing_written()


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing"),
        ("Bearer ", "missing"),
        ("Bearer cpk_short", "malformed"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("Bearer cpk_abcdefghijkl_" + "A" * 43, "unknown"),
    ],
)
def test_missing_malformed_or_unknown_key_is_refused_with_401(client, tenant, header, code):
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.post("/api/v1/usage", GOOD, content_type="application/json", **headers)
    assert response.status_code == 401
    assert response.json()["code"] == code
    _assert_nothing_written()


def test_revoked_and_expired_keys_are_refused_with_401(client, tenant):
    revoked = api_key_issue(environment=tenant.production)
    api_key_revoke(api_key=revoked.api_key)
    expired = api_key_issue(
        environment=tenant.production, expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    for issued, code in ((revoked, "revoked"), (expired, "expired")):
        for batch in (False, True):
            body = {"readings": [GOOD]} if batch else GOOD
            response = post_usage(client, issued.plaintext, body, batch=batch)
            assert response.status_code == 401
            assert response.json()["code"] == code
    _assert_nothing_written()


def test_disabled_environment_is_refused_with_403(client, tenant):
    environment_set_status(environment=tenant.production, enabled=False)
    for batch in (False, True):
        response = post_usage(
            client, tenant.api_key, {"readings": [GOOD]} if batch else GOOD, batch=batch
        )
        assert response.status_code == 403
        assert response.json()["code"] == "environment_disabled"
    _assert_nothing_written()


def test_a_bad_key_is_reported_before_a_bad_body(client, tenant):
    api_key_revoke(api_key=ApiKey.objects.get(environment=tenant.production))
    response = post_usage(client, tenant.api_key, {"instance": "a", "api_calls": -1})
    assert response.status_code == 401
    assert response.json()["code"] == "revoked"


def test_abuse_throttle_answers_429_with_retry_after(client, tenant, settings, frozen):
    settings.USAGE_THROTTLE_REQUESTS = 2
    settings.USAGE_THROTTLE_WINDOW_SECONDS = 60
    assert post_usage(client, tenant.api_key, GOOD).status_code == 202
    assert post_usage(client, tenant.api_key, GOOD).status_code == 202
    response = post_usage(client, tenant.api_key, GOOD)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert response["Retry-After"] == "60"  # 10:30:00 opens a window that ends at 10:31:00
    assert UsageReading.objects.count() == 2


def test_reading_stores_no_request_data(client, tenant, frozen):
    post_usage(
        client,
        tenant.api_key,
        {"instance": "web-1", "api_calls": 3},
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="secret-agent/1.0",
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    stored = json.dumps(list(UsageReading.objects.values()), default=str)
    stored += json.dumps(list(UsageSeries.objects.values()), default=str)
    for leak in ("203.0.113.9", "198.51.100.7", "secret-agent", tenant.api_key):
        assert leak not in stored


def test_wrong_method_is_refused(client, tenant):
    assert client.put("/api/v1/usage", GOOD, content_type="application/json").status_code == 405
    assert client.get("/api/v1/usage/batch").status_code == 405


# --- query pins ---------------------------------------------------------------------------
def test_single_reading_with_a_boot_costs_one_query(client, tenant, django_assert_num_queries):
    post_usage(client, tenant.api_key, {"instance": "warm", "boot": "b", "api_calls": 1})
    with django_assert_num_queries(1):
        response = post_usage(
            client, tenant.api_key, {"instance": "a", "boot": "b", "api_calls": 5, "seats": 2}
        )
    assert response.status_code == 202


def test_single_reading_without_a_boot_reads_the_series_head_first(
    client, tenant, django_assert_num_queries
):
    post_usage(client, tenant.api_key, {"instance": "warm", "api_calls": 1})
    # The head (rule 3 continues from it), then the write statement.
    with django_assert_num_queries(2):
        response = post_usage(client, tenant.api_key, {"instance": "a", "api_calls": 5})
    assert response.status_code == 202


def test_the_keys_last_use_is_written_at_most_once_a_minute(
    client, tenant, django_capture_on_commit_callbacks
):
    def push(at: dt.datetime, value: int) -> None:
        # The key's last use is written after the reading's commit.
        with time_machine.travel(at, tick=False), django_capture_on_commit_callbacks(execute=True):
            reading = {"instance": "a", "api_calls": value}
            assert post_usage(client, tenant.api_key, reading).status_code == 202

    def last_used() -> dt.datetime | None:
        return ApiKey.objects.get(environment=tenant.production).last_used_at

    push(NOW, 1)
    assert last_used() == NOW
    push(NOW + dt.timedelta(seconds=59), 2)
    assert last_used() == NOW
    push(NOW + dt.timedelta(seconds=61), 3)
    assert last_used() == NOW + dt.timedelta(seconds=61)
    # Whoever moved it back (a restore), the next reading writes it again.
    ApiKey.objects.filter(environment=tenant.production).update(last_used_at=None)
    push(NOW + dt.timedelta(seconds=62), 4)
    assert last_used() == NOW + dt.timedelta(seconds=62)
    assert UsageRollup.objects.get(metric="api_calls").total == 4


def test_a_reading_due_to_record_the_keys_use_costs_a_second_query(
    client, tenant, django_assert_num_queries, django_capture_on_commit_callbacks
):
    reading = {"instance": "warm", "boot": "b", "api_calls": 1}
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        post_usage(client, tenant.api_key, reading)
    # The write statement, then (after its commit) accounts' conditional UPDATE of the
    # key's last use.
    with (
        time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False),
        django_assert_num_queries(2),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post_usage(client, tenant.api_key, {**reading, "instance": "a"})
    assert response.status_code == 202
    key = ApiKey.objects.get(environment=tenant.production)
    assert key.last_used_at == NOW + dt.timedelta(minutes=2)
    assert UsageReading.objects.filter(instance="a").count() == 1


@pytest.mark.parametrize("size", [1, 50, 1000])
def test_batch_costs_a_constant_number_of_queries(client, tenant, django_assert_num_queries, size):
    post_usage(client, tenant.api_key, {"instance": "warm", "boot": "b", "api_calls": 1})
    readings = [
        {"instance": f"i{n % 40}", "boot": "b", "api_calls": n, "seats": n % 7} for n in range(size)
    ]
    with django_assert_num_queries(1):
        response = post_usage(client, tenant.api_key, {"readings": readings}, batch=True)
    assert response.status_code == 202
    readings = [{"instance": f"i{n % 40}", "api_calls": n} for n in range(size)]
    with django_assert_num_queries(2):  # boot-less: the heads, then the write
        response = post_usage(client, tenant.api_key, {"readings": readings}, batch=True)
    assert response.status_code == 202


def test_hot_statements_go_out_with_native_placeholders_one_per_parameter():
    from metering.ingest.postgres import write

    for statement in (write.HEADS, write.WRITE):
        assert "%(" not in statement.sql
        assert len(set(statement.names)) == len(statement.names)
        numbers = {int(n) for n in re.findall(r"\$(\d+)", statement.sql)}
        assert numbers == set(range(1, len(statement.names) + 1))


def test_storage_failure_answers_503_with_retry_after(client, tenant, monkeypatch):
    from django.db import OperationalError

    from metering.ingest import record

    def fail(*args):
        raise OperationalError("connection lost")

    # Failure injection at the storage boundary: the real database cannot be made to fail
    # on cue from inside a test transaction.
    monkeypatch.setattr(record, "_record", fail)
    response = post_usage(client, tenant.api_key, GOOD)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "unavailable"
    _assert_nothing_written()


# Transactional, as in production: the failing statement runs in autocommit.
@pytest.mark.django_db(transaction=True)
def test_counts_whose_sum_overflows_are_refused_whole(client, tenant):
    big = 2**63 - 1
    assert (
        post_usage(client, tenant.api_key, {"instance": "a", "api_calls": big}).status_code == 202
    )
    response = post_usage(client, tenant.api_key, {"instance": "b", "api_calls": big})
    assert response.status_code == 400
    assert response.json()["code"] == "out_of_range"
    assert UsageReading.objects.count() == 1
    assert UsageRollup.objects.get(metric="api_calls").total == big
