"""`manage.py compliance <job>` and the schedule that runs the same jobs."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import SEATS
from controlpanel.celery import app
from controlpanel.schedule import beat_schedule
from metering import tasks as _tasks  # noqa: F401  (registers the tasks)
from metering.compliance.models import OverageFlag
from metering.models import UsageReading
from tests.conftest import make_tenant
from tests.metering.compliance.usage import add_calls, set_gauge

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("compliance", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_evaluate_json_lists_flags_raised_and_resolved():
    t = make_tenant(
        "acme",
        starts_on=dt.date(2026, 1, 15),
        ends_on=dt.date(2027, 1, 15),
        api_calls_per_period=1000,
        seats_per_environment=10,
    )
    add_calls(t.production, NOW, 850)
    set_gauge(t.production, SEATS, 8, NOW)

    out = json.loads(run("evaluate", "--json"))

    assert out["job"] == "evaluate"
    assert out["contracts"] == 1
    assert out["resolved"] == []
    assert sorted(
        (r["organization"], r["metric"], r["scope"], r["level"], r["value"], r["limit"])
        for r in out["raised"]
    ) == [
        ("acme", "api_calls", "organization", "warning", 850, 1000),
        ("acme", "seats", f"environment:{t.production.id}", "warning", 8, 10),
    ]

    set_gauge(t.production, SEATS, 2, NOW)
    out = json.loads(run("evaluate", "--json"))
    assert [(r["metric"], r["level"], r["value"]) for r in out["resolved"]] == [
        ("seats", "warning", 2)
    ]
    assert OverageFlag.objects.count() == 2


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_plain_output_says_what_each_job_did():
    t = make_tenant("acme", starts_on=dt.date(2026, 1, 15), ends_on=dt.date(2027, 1, 15))
    add_calls(t.production, NOW, 900_000)
    assert run("evaluate").splitlines() == [
        "evaluate: 1 flag(s) raised, 0 resolved; contracts=1",
        "  raised   acme api_calls warning: 900000 of 1000000",
    ]
    assert run("notify") == "send: 1 flag event(s) queued, 2 sent, 0 to retry, 0 given up\n"
    assert run("gaps").startswith("gaps: 0 flag(s) raised, 0 resolved")
    assert run("close-periods").startswith("close-periods: 0 flag(s) raised")
    assert run("reminders").startswith("reminders: 0 flag(s) raised")
    assert run("retention").startswith(
        "retention: 0 flag(s) raised, 0 resolved; partitions_dropped=[]"
    )
    assert run("partitions").startswith("partitions: 0 flag(s) raised, 0 resolved; partitions_")
    assert json.loads(run("send", "--json")) == {
        "job": "send",
        "events": 0,
        "sent": 0,
        "retried": 0,
        "failed": 0,
    }


def test_unknown_job_is_refused():
    with pytest.raises(CommandError):
        run("everything")


def test_every_compliance_job_is_scheduled_with_an_expiry_of_1_5x(settings):
    settings.COMPLIANCE_EVALUATE_EVERY = 120
    schedule = beat_schedule()
    compliance = {k: v for k, v in schedule.items() if k.startswith("compliance-")}
    assert sorted(v["task"] for v in compliance.values()) == [
        "metering.compliance.close_periods",
        "metering.compliance.evaluate",
        "metering.compliance.expiry_reminders",
        "metering.compliance.partitions",
        "metering.compliance.reporting_gaps",
        "metering.compliance.retention",
        "metering.compliance.send_notifications",
    ]
    for entry in compliance.values():
        assert entry["options"]["expires"] == entry["schedule"] * 1.5
        assert entry["task"] in app.tasks
        assert app.tasks[entry["task"]].acks_late is True
    assert compliance["compliance-evaluate"]["schedule"] == 120.0


@pytest.mark.django_db
def test_a_rollup_repair_rebuilds_the_days_and_the_next_evaluation_sees_it():
    from metering.models import UsageDay

    with time_machine.travel(NOW, tick=False):
        t = make_tenant(
            "acme",
            starts_on=dt.date(2026, 1, 15),
            ends_on=dt.date(2027, 1, 15),
            api_calls_per_period=1000,
        )
        add_calls(t.production, NOW - dt.timedelta(days=2), 500)
        # Rollups that drifted from the readings (the raw readings say 900 calls).
        UsageReading.objects.filter(environment=t.production).update(counted_api_calls=900)
        assert json.loads(run("evaluate", "--json"))["raised"] == []  # the rollups say 500
        with pytest.raises(CommandError, match="1 rollup"):
            call_command("recompute_usage", "--check", stdout=io.StringIO())
        call_command("recompute_usage", stdout=io.StringIO())
        call_command("recompute_usage", "--check", stdout=io.StringIO())
        report = json.loads(run("evaluate", "--json"))
    assert [(r["level"], r["value"]) for r in report["raised"]] == [("warning", 900)]
    assert UsageDay.objects.get().total == 900
