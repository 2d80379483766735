"""Compliance jobs on usage written by the real ingest path: a late reading for a
finished day reaches the evaluation; retention drops old raw readings, keeps rollups, and
`recompute_usage --check` stays clean."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import call_command

from metering import partitions
from metering.compliance import evaluation, periods, retention
from metering.compliance.models import TrueUp
from metering.models import UsageClosedThrough, UsageReading, UsageRollup
from tests.conftest import make_tenant

pytestmark = [
    pytest.mark.django_db,
]

NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


def push(client, key: str, api_calls: int, seats: int, **extra):
    return client.post(
        "/api/v1/usage",
        {"instance": "graphql-1", "boot": "b1", "api_calls": api_calls, "seats": seats, **extra},
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )


def test_a_late_reading_for_a_finished_day_reaches_the_evaluation(client):
    with time_machine.travel(NOW, tick=False):
        t = make_tenant(
            "acme",
            starts_on=dt.date(2026, 1, 15),
            ends_on=dt.date(2027, 1, 15),
            api_calls_per_period=1000,
            seats_per_environment=10,
        )
        assert push(client, t.api_key, 500, 2).status_code == 202
        assert evaluation.evaluate().raised == []  # builds the day cache through yesterday
        # An instance that was offline sends yesterday's reading from another boot now.
        late = {"boot": "b0", "observed_at": "2026-11-23T15:00:00Z"}
        assert push(client, t.api_key, 350, 9, **late).status_code == 202
        report = evaluation.evaluate()
    assert sorted((c.metric, c.level, c.value) for c in report.raised) == [
        ("api_calls", "warning", 850),
        ("seats", "warning", 9),
    ]


def test_retention_keeps_rollups_and_recompute_check_stays_clean(client, settings):
    settings.RETENTION_DAYS = 400
    with time_machine.travel(NOW - dt.timedelta(days=440), tick=False):  # September 2025
        t = make_tenant("acme", starts_on=(NOW - dt.timedelta(days=500)).date())
        assert push(client, t.api_key, 10, 2).status_code == 202
        assert push(client, t.api_key, 25, 3).status_code == 202
    for days_ago, calls in ((399, 40), (10, 55), (0, 70)):
        with time_machine.travel(NOW - dt.timedelta(days=days_ago), tick=False):
            assert push(client, t.api_key, calls, 4).status_code == 202
    rollups = sorted(UsageRollup.objects.values_list("metric", "hour", "total", "peak"))

    with time_machine.travel(NOW, tick=False):
        partitions.ensure_partitions()
        result = retention.prune_readings()
        out = io.StringIO()
        call_command("recompute_usage", "--check", stdout=out)

    assert result.details["partitions_dropped"] == ["metering_usagereading_y2025m09"]
    assert UsageReading.objects.count() == 3
    assert sorted(UsageRollup.objects.values_list("metric", "hour", "total", "peak")) == rollups
    assert "Rollups match the raw readings." in out.getvalue()


def test_after_a_close_late_calls_go_to_the_next_period_and_the_true_up_stands(client):
    period_end = dt.datetime(2026, 12, 15, tzinfo=dt.UTC)
    with time_machine.travel(period_end - dt.timedelta(hours=2), tick=False):
        t = make_tenant(
            "acme",
            starts_on=dt.date(2026, 1, 15),
            ends_on=dt.date(2027, 1, 15),
            api_calls_per_period=1000,
        )
        UsageClosedThrough.objects.create(
            organization=t.organization, closed_through=dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
        )
        assert push(client, t.api_key, 900, 1).status_code == 202
    with time_machine.travel(period_end + dt.timedelta(hours=1), tick=False):
        assert periods.close_periods().details["periods_closed"] == 1
        # A reading observed in the closed period arrives after the close.
        late = {"boot": "b0", "observed_at": "2026-12-14T23:30:00Z"}
        response = push(client, t.api_key, 200, 1, **late)
        assert (response.status_code, response.json()["late"]) == (202, True)
        assert periods.close_periods().details == {"periods_closed": 0, "true_ups_created": 0}
        report = evaluation.evaluate()
    true_up = TrueUp.objects.get(metric="api_calls")
    assert (true_up.usage, true_up.overage) == (900, 0)
    # The 200 late calls count in the open period (Dec 15 ..), below its 80 % warning.
    assert report.raised == []
    assert (
        UsageRollup.objects.filter(hour__gte=period_end).values_list("total", flat=True)[0] == 200
    )
