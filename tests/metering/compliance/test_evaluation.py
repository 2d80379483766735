"""Evaluation: usage against each active contract's current period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import (
    DEVELOPER_SEATS,
    SEATS,
    TENANTS,
    DeveloperSeat,
    EnvironmentKind,
    Organization,
    OverageMode,
    Role,
)
from metering.compliance import evaluation, notifications
from metering.compliance.models import FlagEvent, Notification, OverageFlag
from metering.models import UsageDay
from tests.conftest import make_tenant
from tests.factories import EnvironmentFactory, MembershipFactory
from tests.metering.compliance.usage import add_calls, set_gauge

# Contracts start on the 15th: the period in force on 2026-11-24 is Nov 15 .. Dec 15.
START = dt.date(2026, 1, 15)
END = dt.date(2027, 1, 15)
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
PERIOD_START = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
PERIOD_END = dt.datetime(2026, 12, 15, tzinfo=dt.UTC)

pytestmark = pytest.mark.django_db


def acme(**terms):
    return make_tenant("acme", starts_on=START, ends_on=END, **terms)


def flags() -> list[tuple]:
    return sorted(
        (f.metric, f.scope, f.level, f.value, f.limit, f.resolved_at is None)
        for f in OverageFlag.objects.all()
    )


@time_machine.travel(NOW, tick=False)
def test_api_calls_below_80_percent_raise_nothing():
    t = acme(api_calls_per_period=1000)
    add_calls(t.production, NOW, 799)

    report = evaluation.evaluate()

    assert report.raised == []
    assert OverageFlag.objects.count() == 0
    assert Notification.objects.count() == 0


@time_machine.travel(NOW, tick=False)
def test_api_call_levels_warning_exceeded_and_over_cap():
    t = acme(
        api_calls_per_period=1000,
        api_calls_overage=OverageMode.ALLOW_UP_TO,
        api_calls_overage_factor=Decimal("1.25"),
    )
    add_calls(t.production, NOW - dt.timedelta(hours=2), 800)
    evaluation.evaluate()
    assert flags() == [("api_calls", "organization", "warning", 800, 1000, True)]

    add_calls(t.production, NOW, 200)
    evaluation.evaluate()
    assert flags() == [
        ("api_calls", "organization", "exceeded", 1000, 1000, True),
        ("api_calls", "organization", "warning", 800, 1000, True),
    ]

    add_calls(t.production, NOW, 249)
    assert evaluation.evaluate().raised == []  # 1249 < floor(1000 x 1.25)
    add_calls(t.production, NOW, 1)
    report = evaluation.evaluate()
    assert [(c.level, c.value, c.limit) for c in report.raised] == [("over_cap", 1250, 1000)]
    flag = OverageFlag.objects.get(level="over_cap")
    assert (flag.period_start, flag.period_end) == (PERIOD_START, PERIOD_END)


@time_machine.travel(NOW, tick=False)
def test_api_calls_count_production_and_cicd_not_personal_nor_other_periods():
    t = acme(api_calls_per_period=1000)
    cicd = EnvironmentFactory(project=t.project, kind=EnvironmentKind.CICD)
    personal = EnvironmentFactory(
        project=t.project, kind=EnvironmentKind.PERSONAL, owner=t.member, name="mine"
    )
    add_calls(t.production, PERIOD_START, 500)
    add_calls(cicd, NOW, 499)
    add_calls(personal, NOW, 400)  # personal: daily soft limit only
    add_calls(t.production, PERIOD_START - dt.timedelta(hours=1), 900)  # previous period
    other = make_tenant("globex", starts_on=START, ends_on=END, api_calls_per_period=1000)
    add_calls(other.production, NOW, 999)

    evaluation.evaluate()

    assert sorted((f.organization.slug, f.level, f.value) for f in OverageFlag.objects.all()) == [
        ("acme", "warning", 999),
        ("globex", "warning", 999),
    ]


@time_machine.travel(NOW, tick=False)
def test_a_flag_is_raised_once_and_evaluating_twice_changes_nothing():
    t = acme(api_calls_per_period=1000)
    add_calls(t.production, NOW, 1500)

    first = evaluation.evaluate()
    rows = (flags(), FlagEvent.objects.count(), Notification.objects.count())
    second = evaluation.evaluate()

    assert len(first.raised) == 2
    assert second.raised == second.resolved == []
    assert (flags(), FlagEvent.objects.count(), Notification.objects.count()) == rows
    assert rows[1] == 2


def test_a_new_period_raises_new_flags_and_api_flags_stand_for_their_period():
    with time_machine.travel(PERIOD_END - dt.timedelta(seconds=1), tick=False):
        t = acme(api_calls_per_period=1000)
        add_calls(t.production, PERIOD_END - dt.timedelta(minutes=5), 1000)
        evaluation.evaluate()
    with time_machine.travel(PERIOD_END, tick=False):
        report = evaluation.evaluate()
        assert report.raised == report.resolved == []  # no usage in the new period yet
        add_calls(t.production, PERIOD_END, 800)
        report = evaluation.evaluate()
    assert [(c.level, c.period_start) for c in report.raised] == [
        ("warning", PERIOD_END.isoformat())
    ]
    assert sorted(
        (f.period_start.day, f.level, f.resolved_at is None) for f in OverageFlag.objects.all()
    ) == [(15, "exceeded", True), (15, "warning", True), (15, "warning", True)]


@time_machine.travel(NOW, tick=False)
def test_seat_flags_follow_the_peak_resolve_when_usage_falls_back_and_reopen():
    t = acme(seats_per_environment=10)
    set_gauge(t.production, SEATS, 8, NOW - dt.timedelta(hours=3))
    report = evaluation.evaluate()
    assert [(c.change, c.level, c.value, c.scope) for c in report.raised] == [
        ("raised", "warning", 8, f"environment:{t.production.id}")
    ]
    assert report.raised[0].environment == "website/production"

    set_gauge(t.production, SEATS, 5, NOW)
    report = evaluation.evaluate()
    assert [(c.change, c.level, c.value) for c in report.resolved] == [("resolved", "warning", 5)]
    assert evaluation.evaluate().resolved == []

    set_gauge(t.production, SEATS, 9, NOW)
    report = evaluation.evaluate()
    assert [(c.change, c.level, c.value) for c in report.raised] == [("raised", "warning", 9)]
    flag = OverageFlag.objects.get()
    assert flag.resolved_at is None
    assert list(flag.events.values_list("kind", "value")) == [
        ("raised", 8),
        ("resolved", 5),
        ("raised", 9),
    ]


@time_machine.travel(NOW, tick=False)
def test_a_peak_between_runs_is_raised_and_resolved_in_one_run():
    t = acme(tenants_per_environment=3)
    set_gauge(t.production, TENANTS, 4, NOW - dt.timedelta(hours=2))
    set_gauge(t.production, TENANTS, 1, NOW - dt.timedelta(hours=1))

    report = evaluation.evaluate()

    assert sorted((c.level, c.value) for c in report.raised) == [("exceeded", 4), ("warning", 4)]
    assert sorted((c.level, c.value) for c in report.resolved) == [("exceeded", 1), ("warning", 1)]
    assert [f[-1] for f in flags()] == [False, False]


@time_machine.travel(NOW, tick=False)
def test_a_gauge_set_before_the_period_still_counts():
    t = acme(seats_per_environment=10)
    set_gauge(t.production, SEATS, 10, PERIOD_START - dt.timedelta(days=3))

    evaluation.evaluate()

    assert flags() == [
        ("seats", f"environment:{t.production.id}", "exceeded", 10, 10, True),
        ("seats", f"environment:{t.production.id}", "warning", 10, 10, True),
    ]


@time_machine.travel(NOW, tick=False)
def test_developer_seats_raise_and_resolve():
    t = acme(developer_seats=10)
    seats = [
        DeveloperSeat.objects.create(
            membership=MembershipFactory(organization=t.organization, role=Role.MEMBER),
            project=t.project,
        )
        for _ in range(10)
    ]
    evaluation.evaluate()
    assert [(f[0], f[2], f[3], f[5]) for f in flags()] == [
        (DEVELOPER_SEATS, "exceeded", 10, True),
        (DEVELOPER_SEATS, "warning", 10, True),
    ]
    seats[0].freed_at = NOW
    seats[0].save()
    report = evaluation.evaluate()
    assert [(c.level, c.value) for c in report.resolved] == [("exceeded", 9)]
    assert [(f[2], f[5]) for f in flags()] == [("exceeded", False), ("warning", True)]


def test_nonprod_daily_calls_against_the_soft_limit_per_day():
    day = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    with time_machine.travel(day + dt.timedelta(hours=23, minutes=59), tick=False):
        t = acme()  # default soft limit 5,000 a day
        cicd = EnvironmentFactory(project=t.project, kind=EnvironmentKind.CICD)
        add_calls(cicd, day - dt.timedelta(hours=1), 4000)  # yesterday
        add_calls(cicd, day, 3999)
        add_calls(t.production, day, 9000)  # production has no daily limit
        assert evaluation.evaluate().raised == []
        add_calls(cicd, day + dt.timedelta(hours=23), 1)
        report = evaluation.evaluate()
        assert [(c.metric, c.level, c.value, c.limit) for c in report.raised] == [
            ("nonprod_daily_api_calls", "warning", 4000, 5000)
        ]
    with time_machine.travel(day + dt.timedelta(days=1), tick=False):
        add_calls(cicd, day + dt.timedelta(days=1), 5000)
        report = evaluation.evaluate()
    assert sorted((c.level, c.period_start) for c in report.raised) == [
        ("exceeded", "2026-11-25T00:00:00+00:00"),
        ("warning", "2026-11-25T00:00:00+00:00"),
    ]
    assert OverageFlag.objects.filter(resolved_at__isnull=False).count() == 0


@time_machine.travel(NOW, tick=False)
def test_unlimited_metrics_and_inactive_contracts_raise_nothing():
    t = acme(api_calls_per_period=None, seats_per_environment=None)
    add_calls(t.production, NOW, 10**9)
    set_gauge(t.production, SEATS, 500, NOW)
    ended = make_tenant("globex", starts_on=START, ends_on=dt.date(2026, 11, 24))
    add_calls(ended.production, NOW, 10**9)

    assert evaluation.evaluate().raised == []
    assert OverageFlag.objects.count() == 0


@time_machine.travel(NOW, tick=False)
def test_new_flags_notify_owners_admins_staff_and_webhooks_once(settings):
    settings.STAFF_ALERT_EMAILS = ["billing@vendor.example"]
    from metering.compliance.services import webhook_endpoint_create

    t = acme(api_calls_per_period=1000)
    endpoint, _secret = webhook_endpoint_create(
        organization=t.organization, url="https://hooks.acme.example/cp", created_by=t.owner
    )
    other = make_tenant("globex", starts_on=START, ends_on=END)
    add_calls(t.production, NOW, 800)

    evaluation.evaluate()
    assert not Notification.objects.exists()  # the notifier writes them, from the events
    assert notifications.fan_out() == 1
    evaluation.evaluate()
    assert notifications.fan_out() == 0

    rows = sorted(Notification.objects.values_list("organization__slug", "channel", "recipient"))
    assert rows == sorted(
        [
            ("acme", "email", t.owner.email),
            ("acme", "email", t.admin.email),
            ("acme", "email", "billing@vendor.example"),
            ("acme", "webhook", endpoint.url),
        ]
    )
    assert t.member.email not in {r[2] for r in rows}
    assert other.owner.email not in {r[2] for r in rows}
    note = Notification.objects.get(channel="webhook")
    assert note.payload["organization"] == "acme"
    assert (note.payload["metric"], note.payload["level"], note.payload["value"]) == (
        "api_calls",
        "warning",
        800,
    )


def _tenants_over_limit(n: int, prefix: str = "org") -> None:
    for i in range(n):
        t = make_tenant(f"{prefix}-{i}", starts_on=START, ends_on=END, api_calls_per_period=100)
        add_calls(t.production, NOW, 100)
        set_gauge(t.production, SEATS, 9, NOW)


@time_machine.travel(NOW, tick=False)
def test_query_count_does_not_grow_with_the_number_of_contracts():
    _tenants_over_limit(1)
    with CaptureQueriesContext(connection) as one:
        evaluation.evaluate()
    with CaptureQueriesContext(connection) as notify_one:
        notifications.fan_out()
    OverageFlag.objects.all().delete()
    _tenants_over_limit(199, prefix="more")
    with CaptureQueriesContext(connection) as many:
        report = evaluation.evaluate()
    with CaptureQueriesContext(connection) as notify_many:
        assert notifications.fan_out() == 600

    assert len(report.raised) == 200 * 3
    assert len(many) == len(one)
    assert len(notify_many) == len(notify_one)
    # The large run takes the bulk path on PostgreSQL: every row is there and linked.
    assert OverageFlag.objects.count() == FlagEvent.objects.count() == 600
    assert Notification.objects.filter(event__isnull=False).count() == 600 * 2
    assert set(
        Notification.objects.filter(event__flag__organization__slug="more-7").values_list(
            "event__flag__metric", "recipient"
        )
    ) == {
        (metric, email)
        for metric in ("api_calls", "seats")
        for email in Organization.objects.get(slug="more-7")
        .memberships.filter(role__in=["owner", "admin"])
        .values_list("user__email", flat=True)
    }


def test_the_period_is_read_from_daily_rollups_and_a_late_reading_counts_at_the_next_run():
    with time_machine.travel(NOW - dt.timedelta(days=2), tick=False):
        t = acme(api_calls_per_period=1000, seats_per_environment=10)
        add_calls(t.production, PERIOD_START, 300)  # the period's first day
        add_calls(t.production, NOW - dt.timedelta(days=2), 200)
        assert evaluation.evaluate().raised == []
    with time_machine.travel(NOW, tick=False):
        add_calls(t.production, NOW, 100)
        assert evaluation.evaluate().raised == []  # 600 of 1000
        assert sorted(UsageDay.objects.filter(metric="api_calls").values_list("day", "total")) == [
            (dt.date(2026, 11, 15), 300),
            (dt.date(2026, 11, 22), 200),
            (dt.date(2026, 11, 24), 100),
        ]
        # A late reading for a finished day (received now, attributed then).
        add_calls(t.production, NOW - dt.timedelta(days=1), 200)
        set_gauge(t.production, SEATS, 9, NOW - dt.timedelta(days=1))
        set_gauge(t.production, SEATS, 1, NOW)
        report = evaluation.evaluate()
    assert sorted(
        (c.change, c.metric, c.level, c.value) for c in report.raised + report.resolved
    ) == [
        ("raised", "api_calls", "warning", 800),
        ("raised", "seats", "warning", 9),
        ("resolved", "seats", "warning", 1),
    ]


def test_a_31st_anchor_uses_the_short_months_last_day_as_the_period_start():
    feb_27 = dt.datetime(2026, 2, 27, 12, tzinfo=dt.UTC)
    feb_28 = dt.datetime(2026, 2, 28, tzinfo=dt.UTC)
    with time_machine.travel(feb_27, tick=False):
        t = make_tenant(
            "acme",
            starts_on=dt.date(2026, 1, 31),
            ends_on=dt.date(2027, 1, 31),
            api_calls_per_period=1000,
        )
        add_calls(t.production, feb_27, 700)  # period Jan 31 .. Feb 28
        assert evaluation.evaluate().raised == []
    with time_machine.travel(dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.UTC), tick=False):
        add_calls(t.production, feb_28, 500)  # period Feb 28 .. Mar 31: yesterday
        add_calls(t.production, dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 300)  # and today
        report = evaluation.evaluate()
    assert [(c.level, c.value, c.period_start) for c in report.raised] == [
        ("warning", 800, "2026-02-28T00:00:00+00:00")
    ]


@time_machine.travel(NOW, tick=False)
def test_a_flag_raised_and_resolved_in_one_run_writes_both_events_and_their_outbox_rows(
    settings,
):
    settings.STAFF_ALERT_EMAILS = ["billing@vendor.example"]
    t = acme(tenants_per_environment=5)
    set_gauge(t.production, TENANTS, 4, NOW - dt.timedelta(hours=2))
    set_gauge(t.production, TENANTS, 1, NOW - dt.timedelta(hours=1))

    evaluation.evaluate()
    notifications.fan_out()

    flag = OverageFlag.objects.get()
    assert (flag.level, flag.value, flag.raised_at, flag.resolved_at) == ("warning", 4, NOW, NOW)
    events = list(FlagEvent.objects.order_by("kind").values_list("flag_id", "kind", "at", "value"))
    assert events == [(flag.id, "raised", NOW, 4), (flag.id, "resolved", NOW, 1)]
    rows = sorted(
        Notification.objects.values_list(
            "event__kind", "recipient", "status", "attempts", "next_attempt_at", "created_at"
        )
    )
    assert rows == sorted(
        (kind, email, "pending", 0, NOW, NOW)
        for kind in ("raised", "resolved")
        for email in (t.owner.email, t.admin.email, "billing@vendor.example")
    )
    resolved = Notification.objects.filter(event__kind="resolved").first()
    assert resolved.topic == f"event:{resolved.event_id}"
    assert resolved.payload == {
        "type": "flag.resolved",
        "flag_id": flag.id,
        "organization": "acme",
        "metric": "tenants",
        "scope": flag.scope,
        "environment": f"{t.production.project.slug}/{t.production.name}",
        "level": "warning",
        "value": 1,
        "limit": 5,
        "period_start": PERIOD_START.isoformat(),
        "at": NOW.isoformat(),
    }
