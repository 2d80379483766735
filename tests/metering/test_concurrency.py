"""Concurrent writers against PostgreSQL: parallel pushes for one series never double
count nor lose counts; racing WCP increments never pass the limit."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import OverageMode
from metering import selectors
from metering.counting import Reading
from metering.ingest.record import Recorded, record
from metering.models import UsageGauge, UsageReading, UsageRollup, UsageSeries

pytestmark = pytest.mark.django_db(transaction=True)


def _in_parallel(workers: int, job: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(workers)
    results: list[object] = [None] * workers
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = job(n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_parallel_pushes_for_one_series_count_exactly_once(tenant):
    top = 300
    now = timezone.now()

    def push(n: int) -> int:
        rng = random.Random(n)
        values = rng.sample(range(1, top + 1), 90) + ([top] if n == 0 else [])
        rng.shuffle(values)
        counted = 0
        while values:
            size = rng.choice([1, 1, 7])
            chunk, values = values[:size], values[size:]
            readings = [Reading("api-1", "boot-a", now, v, seats=v % 13) for v in chunk]
            result = record(plaintext=tenant.api_key, readings=readings, now=now)
            assert isinstance(result, Recorded)
            counted += sum(o.counted for o in result.outcomes)
        return counted

    counted = _in_parallel(10, push)
    assert sum(counted) == top
    assert UsageSeries.objects.get().highest == top
    assert sum(UsageReading.objects.values_list("counted_api_calls", flat=True)) == top
    assert UsageRollup.objects.get(metric="api_calls").total == top
    assert selectors.rollup_differences() == []
    assert selectors.day_differences() == []  # each day is the sum and max of its hours


def test_parallel_pushes_of_many_instances_sum_their_maxima(tenant):
    now = timezone.now()

    def push(n: int) -> None:
        rng = random.Random(1000 + n)
        for step in range(20):
            readings = [
                Reading(f"i{rng.randrange(6)}", "", now, step * 10 + rng.randrange(10))
                for _ in range(rng.choice([1, 4]))
            ]
            result = record(plaintext=tenant.api_key, readings=readings, now=now)
            assert isinstance(result, Recorded)

    _in_parallel(8, push)
    highest = sum(UsageSeries.objects.values_list("highest", flat=True))
    assert sum(UsageReading.objects.values_list("counted_api_calls", flat=True)) == highest
    assert UsageRollup.objects.get(metric="api_calls").total == highest
    assert selectors.rollup_differences() == []
    assert selectors.day_differences() == []  # each day is the sum and max of its hours


def test_twenty_simultaneous_increments_with_one_seat_left_give_one_success(tenant):
    contract = tenant.organization.contracts.get()
    assert (contract.seats_per_environment, contract.seats_overage) == (10, OverageMode.BLOCK)
    UsageGauge.objects.create(environment=tenant.production, metric="seats", value=9)
    path = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/package/seats"

    def increment(n: int) -> int:
        response = Client().post(
            path,
            '{"operation":"increment"}',
            content_type="text/plain;charset=UTF-8",
            HTTP_AUTHORIZATION=tenant.api_key,
        )
        return response.status_code

    statuses = _in_parallel(20, increment)
    assert sorted(statuses) == [200] + [403] * 19
    assert UsageGauge.objects.get(environment=tenant.production, metric="seats").value == 10


def test_simultaneous_decrements_never_go_below_zero(tenant):
    UsageGauge.objects.create(environment=tenant.production, metric="tenants", value=3)
    path = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/package/tenants"

    def decrement(n: int) -> int:
        return (
            Client()
            .post(
                path,
                '{"operation":"decrement"}',
                content_type="text/plain;charset=UTF-8",
                HTTP_AUTHORIZATION=tenant.api_key,
            )
            .status_code
        )

    assert set(_in_parallel(10, decrement)) == {200}
    assert UsageGauge.objects.get(environment=tenant.production, metric="tenants").value == 0


# With Django's per-request health check (web) and without it (the ingest-only service,
# controlpanel.settings_ingest): ingest replaces the dropped connection itself.
@pytest.mark.parametrize("health_checks", [True, False])
def test_a_connection_dropped_by_the_server_is_replaced_without_an_error(
    client, tenant, monkeypatch, health_checks
):
    import psycopg

    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", health_checks)

    assert (
        client.post(
            "/api/v1/usage",
            {"instance": "a", "api_calls": 5},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}",
        ).status_code
        == 202
    )
    pid = connection.connection.info.backend_pid
    settings_dict = connection.settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    response = client.post(
        "/api/v1/usage",
        {"instance": "a", "api_calls": 9},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}",
    )
    assert response.status_code == 202
    assert response.json()["counted"] == {"api_calls": 4}
