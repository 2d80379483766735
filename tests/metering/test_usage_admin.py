"""Usage in the staff admin: read-only for everyone, filtered by organization, environment
and time, never counting a whole table; the organization page's period summary."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import admin_kit
from accounts.models import EnvironmentKind
from accounts.services.organizations import environment_create
from metering.models import UsageDay, UsageGauge, UsageReading, UsageRollup, UsageSeries
from metering.summary import environments_usage, organization_summary
from tests.metering.compliance.usage import add_calls, report, set_gauge

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
USAGE = [UsageSeries, UsageReading, UsageRollup, UsageDay, UsageGauge]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def usage(tenant, other_tenant):
    for day in range(3):
        add_calls(tenant.production, NOW - dt.timedelta(days=day), 1_000 * (day + 1))
    add_calls(other_tenant.production, NOW, 7)
    set_gauge(tenant.production, "seats", 4, NOW)
    report(tenant.production, NOW - dt.timedelta(minutes=1))
    return tenant


@pytest.mark.parametrize("model", USAGE, ids=lambda m: m.__name__)
def test_usage_is_read_only_even_for_superusers(client, staff_user, usage, model):
    client.force_login(staff_user)
    obj = model.objects.first()
    assert client.get(_url(model, "changelist")).status_code == 200
    assert client.get(_url(model, "add")).status_code == 403
    assert client.get(_url(model, "delete", obj.pk)).status_code == 403
    change = client.get(_url(model, "change", obj.pk))
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert client.post(_url(model, "change", obj.pk), {}).status_code == 403
    assert client.get(_url(model, "changelist")).context["action_form"] is None


def test_readings_filter_by_organization_environment_and_day(
    client, staff_user, usage, other_tenant
):
    client.force_login(staff_user)
    url = _url(UsageReading, "changelist")

    def counted(**params) -> list[int]:
        return sorted(
            r.counted_api_calls for r in client.get(url, params).context["cl"].result_list
        )

    assert counted(org="globex") == [7]
    assert counted(org="acme") == [0, 1000, 2000, 3000]  # the seat reading counts no calls
    assert counted(
        env=str(usage.production.pk),
        attributed_hour__day="23",
        attributed_hour__month="11",
        attributed_hour__year="2026",
    ) == [2000]


def test_a_date_across_every_environments_readings_asks_for_an_organization_first(
    client, staff_user, usage
):
    client.force_login(staff_user)
    url = _url(UsageReading, "changelist")
    day = {"attributed_hour__year": "2026", "attributed_hour__month": "11", "source": "native"}
    response = client.get(url, day)
    assert response.status_code == 302
    assert response["Location"] == f"{url}?source=native"
    page = client.get(response["Location"])
    assert "Choose an organization or an environment before a date" in page.content.decode()
    assert client.get(url, {**day, "org": "acme"}).status_code == 200


def test_lists_count_at_most_to_the_cap_and_say_so(client, staff_user, usage, monkeypatch):
    monkeypatch.setattr(admin_kit, "COUNT_CAP", 3)
    client.force_login(staff_user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(_url(UsageReading, "changelist"))
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and re.search(r"LIMIT 4\b", counts[0])
    assert page.context["cl"].result_count == 3
    assert b"More than 3 match" in page.content


def test_the_date_drill_down_runs_no_query_over_the_table(client, staff_user, usage):
    client.force_login(staff_user)
    for params in ({}, {"hour__year": "2026"}, {"hour__year": "2026", "hour__month": "11"}):
        with CaptureQueriesContext(connection) as queries:
            page = client.get(_url(UsageRollup, "changelist"), params)
        assert page.status_code == 200
        scans = [
            q["sql"] for q in queries if re.search(r"\b(MIN|MAX|DISTINCT)\(|DISTINCT", q["sql"])
        ]
        assert scans == []
    days = client.get(_url(UsageRollup, "changelist"), {"hour__year": "2026", "hour__month": "11"})
    assert b"hour__day=24" in days.content and b"hour__day=25" not in days.content


def test_the_organization_summary_has_the_periods_figures(usage):
    # make_tenant's contract: started 10 days ago (anchor Nov 14), 1,000,000 calls a period.
    ci = environment_create(project=usage.project, name="ci", kind=EnvironmentKind.CICD)
    add_calls(ci, NOW, 500)
    summary = organization_summary(organization=usage.organization)
    lines = {line.metric: (line.used, line.limit, line.percent) for line in summary.lines}
    assert lines == {
        "api_calls": (6_500, 1_000_000, 0),
        "seats": (4, 10, 40),
        "tenants": (0, 3, 0),
        "developer_seats": (0, 5, 0),
        "nonprod_daily_api_calls": (500, 5_000, 10),
    }
    assert summary.period.start == dt.datetime(2026, 11, 14, tzinfo=dt.UTC)
    # The last 7 days: 3,000 + 2,000 + 1,500 calls = 6,500, 928 a day; 20 days left.
    assert (summary.forecast.rate_per_day, summary.forecast.projected) == (928, 6_500 + 928 * 20)
    assert summary.forecast.crosses_on is None
    assert [d for d, n in summary.daily_calls if n] == [
        dt.date(2026, 11, 22),
        dt.date(2026, 11, 23),
        dt.date(2026, 11, 24),
    ]
    assert summary.gaps == []


def test_an_environment_page_shows_last_report_status_and_period_calls(client, staff_user, usage):
    quiet = environment_create(project=usage.project, name="ci", kind=EnvironmentKind.CICD)
    report(quiet, NOW - dt.timedelta(hours=30))
    figures = environments_usage(environments=[usage.production, quiet])
    assert (figures[usage.production.pk].period_calls, figures[usage.production.pk].seats) == (
        6_000,
        4,
    )
    assert figures[usage.production.pk].reporting.status == "reporting"
    assert figures[quiet.pk].reporting.label == "gap: silent 30 h"
    client.force_login(staff_user)
    page = client.get(_url(type(quiet), "change", quiet.pk)).content.decode()
    assert "gap: silent 30 h" in page
    listing = client.get(_url(type(quiet), "changelist"), {"org": "acme"}).content.decode()
    assert "6,000" in listing and "gap: silent 30 h" in listing


def test_the_organization_page_draws_a_chart_and_lists_open_flags(client, staff_user, usage):
    client.force_login(staff_user)
    page = client.get(_url(type(usage.organization), "change", usage.organization.pk))
    html = page.content.decode()
    assert html.count("<rect ") == 90
    assert "6,000" in html  # this period's API calls
    assert "<script" not in html.split('class="usage-summary"')[1].split("</svg>")[0]


def test_environment_and_key_lists_cost_the_same_queries_for_more_rows(client, staff_user, tenant):
    client.force_login(staff_user)
    url = _url(type(tenant.production), "changelist")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(5):
        environment_create(project=tenant.project, name=f"ci-{i}", kind=EnvironmentKind.CICD)
    with CaptureQueriesContext(connection) as more:
        client.get(url)
    assert len(more) == len(few)
