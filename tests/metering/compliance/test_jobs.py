"""Reporting gaps, period close, expiry reminders and retention, at their boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from accounts.models import API_CALLS, SEATS, ContractStatus, EnvironmentKind, EnvironmentStatus
from metering import partitions
from metering.compliance import gaps, notifications, periods, reminders, retention
from metering.compliance.models import (
    ExpiryReminder,
    FlagEvent,
    Notification,
    OverageFlag,
    TrueUp,
)
from metering.models import UsageClosedThrough, UsageReading, UsageRollup
from tests.conftest import make_tenant
from tests.factories import EnvironmentFactory
from tests.metering.compliance.usage import add_calls, reading, report, set_gauge

START = dt.date(2026, 1, 15)
END = dt.date(2027, 1, 15)
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)

pytestmark = pytest.mark.django_db


def acme(**terms):
    return make_tenant("acme", starts_on=START, ends_on=END, **terms)


def rows(model, *fields):
    return sorted(model.objects.values_list(*fields))


# --- reporting gaps --------------------------------------------------------------------------
def test_a_silent_environment_gets_one_gap_flag_resolved_when_it_reports_again():
    t = acme()
    report(t.production, NOW - 12 * H)
    with time_machine.travel(NOW, tick=False):
        assert gaps.detect_gaps().raised == []  # exactly 12 h: not longer than 12 h
    with time_machine.travel(NOW + dt.timedelta(seconds=1), tick=False):
        first = gaps.detect_gaps()
        again = gaps.detect_gaps()
    assert [(c.metric, c.level, c.value, c.limit, c.environment) for c in first.raised] == [
        ("reporting", "reporting_gap", 12, 12, "website/production")
    ]
    assert again.raised == again.resolved == []
    notifications.fan_out()
    assert Notification.objects.filter(event__flag__metric="reporting").count() == 2

    report(t.production, NOW + 2 * H)
    with time_machine.travel(NOW + 2 * H, tick=False):
        back = gaps.detect_gaps()
    assert [(c.level, c.value) for c in back.resolved] == [("reporting_gap", 14)]
    flag = OverageFlag.objects.get()
    assert flag.resolved_at == NOW + 2 * H
    assert list(flag.events.values_list("kind", flat=True)) == ["raised", "resolved"]

    with time_machine.travel(NOW + 15 * H, tick=False):
        second = gaps.detect_gaps()
    assert len(second.raised) == 1  # a new silence is a new flag
    assert OverageFlag.objects.count() == 2


@time_machine.travel(NOW, tick=False)
def test_no_gap_for_never_reported_disabled_personal_or_uncontracted_environments():
    t = acme()
    never = EnvironmentFactory(project=t.project, kind=EnvironmentKind.CICD)  # noqa: F841
    disabled = EnvironmentFactory(
        project=t.project, kind=EnvironmentKind.CICD, status=EnvironmentStatus.DISABLED
    )
    personal = EnvironmentFactory(
        project=t.project, kind=EnvironmentKind.PERSONAL, owner=t.member, name="mine"
    )
    ended = make_tenant("globex", starts_on=START, ends_on=END, status=ContractStatus.ENDED)
    for env in (disabled, personal, ended.production):
        report(env, NOW - 48 * H)

    assert gaps.detect_gaps().raised == []


def test_disabling_a_silent_environment_resolves_its_gap():
    t = acme()
    report(t.production, NOW - 20 * H)
    with time_machine.travel(NOW, tick=False):
        gaps.detect_gaps()
        t.production.status = EnvironmentStatus.DISABLED
        t.production.save()
        assert len(gaps.detect_gaps().resolved) == 1


# --- period close ---------------------------------------------------------------------------
PERIOD_END = dt.datetime(2026, 12, 15, tzinfo=dt.UTC)
PERIOD_START = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)


def _usage_for_november(t):
    cicd = EnvironmentFactory(project=t.project, kind=EnvironmentKind.CICD)
    add_calls(t.production, PERIOD_START, 700)
    add_calls(t.production, PERIOD_START + 3 * H, 300)
    add_calls(cicd, PERIOD_END - H, 6000)  # counts for API calls and the daily soft limit
    add_calls(t.production, PERIOD_END, 99)  # next period
    set_gauge(t.production, SEATS, 12, PERIOD_START + 5 * H)
    set_gauge(cicd, SEATS, 4, PERIOD_START + 5 * H)
    return cicd


def test_close_waits_for_the_grace_then_freezes_true_ups_and_advances_the_mark():
    with time_machine.travel(PERIOD_START, tick=False):
        t = acme(api_calls_per_period=5000, seats_per_environment=10)
    UsageClosedThrough.objects.create(organization=t.organization, closed_through=PERIOD_START)
    _usage_for_november(t)
    with time_machine.travel(PERIOD_END + H - dt.timedelta(seconds=1), tick=False):
        assert periods.close_periods().details["periods_closed"] == 0
    assert TrueUp.objects.count() == 0
    with time_machine.travel(PERIOD_END + H, tick=False):
        result = periods.close_periods()
    assert result.details == {"periods_closed": 1, "true_ups_created": 5}
    assert rows(TrueUp, "metric", "usage", "limit", "peak", "overage") == [
        ("api_calls", 7000, 5000, 6000, 2000),
        ("developer_seats", 0, 5, 0, 0),
        ("nonprod_daily_api_calls", 6000, 5000, 6000, 1000),
        ("seats", 12, 10, 12, 2),
        ("tenants", 0, 3, 0, 0),
    ]
    assert set(TrueUp.objects.values_list("period_start", "period_end")) == {
        (PERIOD_START, PERIOD_END)
    }
    assert UsageClosedThrough.objects.get().closed_through == PERIOD_END


def test_closing_twice_changes_nothing_and_late_usage_does_not_change_a_true_up():
    with time_machine.travel(PERIOD_START, tick=False):
        t = acme(api_calls_per_period=5000)
    UsageClosedThrough.objects.create(organization=t.organization, closed_through=PERIOD_START)
    _usage_for_november(t)
    with time_machine.travel(PERIOD_END + 2 * H, tick=False):
        periods.close_periods()
        before = rows(TrueUp, "metric", "usage", "peak", "overage", "closed_at")
        add_calls(t.production, PERIOD_START, 1)  # a write that should never happen
        again = periods.close_periods()
    assert again.details == {"periods_closed": 0, "true_ups_created": 0}
    assert rows(TrueUp, "metric", "usage", "peak", "overage", "closed_at") == before
    assert UsageClosedThrough.objects.get().closed_through == PERIOD_END


def test_a_first_close_catches_up_from_the_contract_start_and_clips_to_its_end():
    t = make_tenant(
        "acme",
        starts_on=dt.date(2026, 9, 15),
        ends_on=dt.date(2026, 11, 1),
        api_calls_per_period=10,
    )
    t.organization.contracts.update(status=ContractStatus.ENDED)
    add_calls(t.production, dt.datetime(2026, 10, 20, tzinfo=dt.UTC), 11)
    with time_machine.travel(NOW, tick=False):
        periods.close_periods()
    api = sorted(
        TrueUp.objects.filter(metric=API_CALLS).values_list(
            "period_start__date", "period_end__date", "usage", "overage"
        )
    )
    assert api == [
        (dt.date(2026, 9, 15), dt.date(2026, 10, 15), 0, 0),
        (dt.date(2026, 10, 15), dt.date(2026, 11, 1), 11, 1),
    ]
    assert UsageClosedThrough.objects.get().closed_through == dt.datetime(
        2026, 11, 1, tzinfo=dt.UTC
    )


# --- reminders --------------------------------------------------------------------------------
def test_expiry_reminders_at_30_and_7_days_once_each(settings):
    settings.STAFF_ALERT_EMAILS = ["billing@vendor.example"]
    t = acme()  # ends 2027-01-15
    with time_machine.travel(dt.datetime(2026, 12, 15, 0, 1, tzinfo=dt.UTC), tick=False):
        assert reminders.send_expiry_reminders().details["reminders"] == {"30": [], "7": []}
    with time_machine.travel(dt.datetime(2026, 12, 16, tzinfo=dt.UTC), tick=False):
        first = reminders.send_expiry_reminders()
        again = reminders.send_expiry_reminders()
    assert first.details == {"reminders": {"30": ["acme"], "7": []}, "notifications": 2}
    assert again.details == {"reminders": {"30": [], "7": []}, "notifications": 0}
    assert rows(Notification, "topic", "recipient") == sorted(
        [
            (f"expiry:{t.organization.contracts.get().id}:30", t.owner.email),
            (f"expiry:{t.organization.contracts.get().id}:30", "billing@vendor.example"),
        ]
    )
    with time_machine.travel(dt.datetime(2027, 1, 8, tzinfo=dt.UTC), tick=False):
        assert reminders.send_expiry_reminders().details["reminders"] == {"30": [], "7": ["acme"]}
    assert rows(ExpiryReminder, "days_before") == [(7,), (30,)]
    assert Notification.objects.count() == 4


def test_a_contract_first_seen_within_7_days_gets_only_the_7_day_reminder():
    t = make_tenant("acme", starts_on=START, ends_on=dt.date(2026, 11, 30))
    with time_machine.travel(NOW, tick=False):
        result = reminders.send_expiry_reminders()
    assert result.details["reminders"] == {"30": [], "7": ["acme"]}
    assert rows(ExpiryReminder, "days_before") == [(7,), (30,)]
    assert rows(Notification, "recipient") == [(t.owner.email,)]


# --- retention ----------------------------------------------------------------------------------
@time_machine.travel(NOW, tick=False)
def test_retention_drops_whole_expired_months_keeps_the_one_straddling_the_cutoff(settings):
    settings.RETENTION_DAYS = 400
    t = acme()
    cutoff = NOW - dt.timedelta(days=400)  # 2025-10-20 12:00
    assert cutoff == dt.datetime(2025, 10, 20, 12, tzinfo=dt.UTC)
    expired = [reading(t.production, dt.datetime(2025, 9, d, tzinfo=dt.UTC), 1) for d in (1, 30)]
    straddling = [reading(t.production, cutoff - dt.timedelta(days=d), 1) for d in (19, 0)]
    recent = reading(t.production, NOW, 1)
    partitions.ensure_partitions()  # the months of readings that landed in the default
    UsageRollup.objects.create(
        environment=t.production, metric=API_CALLS, hour=dt.datetime(2025, 9, 1, tzinfo=dt.UTC)
    )
    rollups = rows(UsageRollup, "hour", "total")

    result = retention.prune_readings()

    assert result.details["partitions_dropped"] == ["metering_usagereading_y2025m09"]
    # October 2025 holds readings older than the cutoff: kept whole until November.
    kept = [r.id for r in [*straddling, recent]]
    assert sorted(UsageReading.objects.values_list("id", flat=True)) == sorted(kept)
    assert not {r.id for r in expired} & set(UsageReading.objects.values_list("id", flat=True))
    assert rows(UsageRollup, "hour", "total") == rollups
    assert retention.prune_readings().details["partitions_dropped"] == []
    with time_machine.travel(dt.datetime(2026, 12, 6, 1, tzinfo=dt.UTC), tick=False):
        assert retention.prune_readings().details["partitions_dropped"] == [
            "metering_usagereading_y2025m10"
        ]
    assert list(UsageReading.objects.values_list("id", flat=True)) == [recent.id]


def test_every_job_twice_gives_the_same_rows():
    with time_machine.travel(PERIOD_START, tick=False):
        t = acme(api_calls_per_period=1000, seats_per_environment=10)
    _usage_for_november(t)
    report(t.production, PERIOD_START)
    reading(t.production, PERIOD_START - dt.timedelta(days=500))
    from metering.compliance import evaluation

    def snapshot():
        return [
            rows(m, "id")
            for m in (OverageFlag, FlagEvent, Notification, TrueUp, ExpiryReminder, UsageReading)
        ] + [rows(UsageClosedThrough, "closed_through")]

    with time_machine.travel(PERIOD_END + 2 * H, tick=False):
        jobs = [
            evaluation.evaluate,
            gaps.detect_gaps,
            notifications.fan_out,
            periods.close_periods,
            reminders.send_expiry_reminders,
            partitions.ensure_partitions,
            retention.prune_readings,
        ]
        for job in jobs:
            job()
        once = snapshot()
        for job in jobs:
            job()
        assert snapshot() == once
    assert all(once[:4])
    assert not UsageReading.objects.filter(received_at__lt=PERIOD_START).exists()
