"""`manage.py recompute_usage`: rollups rebuilt from raw readings; --check reports and
exits non-zero on a mismatch, without --check it repairs."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from metering.models import UsageDay, UsageRollup
from tests.metering.usage import post_usage

pytestmark = pytest.mark.django_db


@pytest.fixture
def pushed(client, tenant):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for value, seats in ((10, 3), (25, 5), (40, 4)):
        post_usage(client, tenant.api_key, {"instance": "a", "api_calls": value, "seats": seats})
    return hour


def _run(*args: str) -> str:
    out = StringIO()
    call_command("recompute_usage", *args, stdout=out)
    return out.getvalue()


def test_check_passes_when_rollups_match(pushed):
    assert "Rollups match the raw readings." in _run("--check")


def test_check_reports_a_tampered_rollup_and_fails_then_repair_fixes_it(tenant, pushed):
    UsageRollup.objects.filter(metric="api_calls").update(total=999)
    UsageRollup.objects.filter(metric="seats").update(peak=1)
    with pytest.raises(CommandError, match=r"2 rollup\(s\) differ"):
        _run("--check")
    out = _run()
    assert (
        f"environment {tenant.production.pk} api_calls {pushed:%Y-%m-%dT%H}:00Z: stored total=999"
        in out
    )
    assert "expected total=40" in out
    assert "Repaired 2 rollup(s) and 2 day(s)." in out
    assert "Rollups match" in _run("--check")
    assert UsageRollup.objects.get(metric="api_calls").total == 40
    seats = UsageRollup.objects.get(metric="seats")
    assert (seats.peak, seats.last, seats.readings) == (5, 4, 3)


def test_a_day_that_differs_from_its_hours_is_reported_and_rebuilt(tenant, pushed):
    day = pushed.date()
    assert UsageDay.objects.get(metric="api_calls", day=day).total == 40
    UsageDay.objects.filter(metric="api_calls").update(total=41)
    UsageDay.objects.filter(metric="seats").delete()
    with pytest.raises(CommandError, match=r"0 rollup\(s\) differ .*, 2 day\(s\)"):
        _run("--check")
    out = _run()
    assert (
        f"environment {tenant.production.pk} api_calls day {day:%Y-%m-%d}: stored total=41" in out
    )
    assert "seats day" in out and "stored (none) expected total=0 peak=5" in out
    assert "Days match their hours." in _run("--check")
    assert sorted(UsageDay.objects.values_list("metric", "total", "peak")) == [
        ("api_calls", 40, None),
        ("seats", 0, 5),
    ]


def test_missing_and_orphan_rollups_are_found(tenant, pushed):
    UsageRollup.objects.filter(metric="seats").delete()
    UsageRollup.objects.create(
        environment=tenant.production,
        metric="api_calls",
        hour=pushed - dt.timedelta(hours=5),
        total=7,
        readings=1,
    )
    with pytest.raises(CommandError):
        _run("--check")
    _run()
    assert "Rollups match" in _run("--check")
    assert not UsageRollup.objects.filter(hour=pushed - dt.timedelta(hours=5)).exists()


def test_range_limits_the_check(tenant, pushed):
    UsageRollup.objects.filter(metric="api_calls").update(total=1)
    later = (pushed + dt.timedelta(hours=1)).isoformat()
    assert "Rollups match" in _run("--check", "--from", later)
    with pytest.raises(CommandError):
        _run("--check", "--from", pushed.isoformat(), "--to", later)


def test_bad_dates_are_refused():
    with pytest.raises(CommandError, match="time zone"):
        _run("--check", "--from", "2026-11-01T00:00:00")
