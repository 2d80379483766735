"""The dashboard's figures against the contract, its forecast, and its query count,
which does not grow with the number of environments."""

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Environment, EnvironmentKind, Project
from accounts.services.organizations import project_create
from metering.compliance.evaluation import evaluate
from metering.models import UsageDay, UsageGauge
from metering.overview import organization_overview
from tests.conftest import make_tenant

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def _tenant():
    # Period Nov 1 - Dec 1; 1,000,000 calls; 10 seats; 5 developer seats.
    return make_tenant(
        "acme",
        starts_on=dt.date(2026, 1, 1),
        ends_on=dt.date(2027, 1, 1),
        api_calls_per_period=1_000_000,
        seats_per_environment=10,
        developer_seats=5,
    )


def _days(env: Environment, first: dt.date, last: dt.date, calls: int) -> None:
    day = first
    while day <= last:
        UsageDay.objects.create(environment=env, metric="api_calls", day=day, total=calls)
        day += dt.timedelta(days=1)


def test_figures_forecast_and_flags(db):
    tenant = _tenant()
    _days(tenant.production, dt.date(2026, 11, 1), dt.date(2026, 11, 20), 42_000)  # 840,000
    UsageDay.objects.create(
        environment=tenant.production, metric="seats", day=dt.date(2026, 11, 3), peak=9
    )
    UsageGauge.objects.create(environment=tenant.production, metric="seats", value=4)
    with time_machine.travel(NOW, tick=False):
        evaluate()
        overview = organization_overview(organization=tenant.organization)
        client = Client()
        client.force_login(tenant.member)
        html = client.get("/acme/").content.decode()
    calls = overview.metrics[0]
    assert (calls.metric, calls.used, calls.limit, calls.percent, calls.level) == (
        "api_calls",
        840_000,
        1_000_000,
        84,
        "warning",
    )
    seats = overview.metrics[1]
    assert (seats.used, seats.level, seats.where) == (
        9,
        "warning",
        f"{tenant.project.name} / production",
    )
    # Nov 14-20 (7 days of 42,000) counted over the 6.5 days since Nov 14, 00:00.
    rate = 7 * 42_000 / 6.5
    assert overview.forecast.rate_per_day == pytest.approx(rate)
    assert overview.forecast.crossing == dt.date(2026, 11, 24)  # 160,000 left: 3.5 days
    assert overview.forecast.projected_total == int(840_000 + rate * 10.5)
    assert overview.days_left == 10
    assert re.search(
        r"<strong data-used>840,000</strong> of 1,000,000 · <span data-percent>84 %</span>", html
    )
    assert "The quota will be crossed around Nov 24." in html
    assert "840,000 API calls this billing period: 80 % or more of the limit of 1,000,000." in html
    assert '<svg class="chart"' in html and "API calls per day, last 90 days" in html
    assert "(read-only)" in html


def test_htmx_refresh_answers_only_the_panel(db):
    tenant = _tenant()
    client = Client()
    client.force_login(tenant.owner)
    with time_machine.travel(NOW, tick=False):
        html = client.get("/acme/", HTTP_HX_REQUEST="true").content.decode()
    assert html.startswith('\n<div id="dashboard-panel" hx-get="/acme/" hx-trigger="every 60s"')
    assert "<html" not in html


def test_no_contract_is_an_empty_state(db):
    tenant = make_tenant("acme", status="ended")
    client = Client()
    client.force_login(tenant.owner)
    assert "No contract in force" in client.get("/acme/").content.decode()


def _queries(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/acme/").status_code == 200
    return [q["sql"] for q in queries]


def test_query_count_does_not_grow_with_environments(db):
    tenant = _tenant()
    client = Client()
    client.force_login(tenant.owner)
    with time_machine.travel(NOW, tick=False):
        _days(tenant.production, dt.date(2026, 11, 1), dt.date(2026, 11, 20), 100)
        _queries(client)  # the first visit also stores the last organization in the session
        few = _queries(client)
        for n in range(10):
            project = project_create(organization=tenant.organization, slug=f"p{n}", name=f"P{n}")
            env = project.environments.get(kind=EnvironmentKind.PRODUCTION)
            ci = Environment.objects.create(project=project, name="ci", kind=EnvironmentKind.CICD)
            for e in (env, ci):
                _days(e, dt.date(2026, 11, 1), dt.date(2026, 11, 20), 100)
                UsageGauge.objects.create(environment=e, metric="seats", value=3)
        evaluate()
        many = _queries(client)
    assert Project.objects.count() == 11
    assert len(many) == len(few) == 11, "\n".join(many)
