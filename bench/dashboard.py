"""bench/dashboard: the customer dashboard's server time with a year of hourly data.

Builds organizations with one active contract each (the period half gone), 10 projects
x (production + CI/CD) = 20 environments for the measured one, 5 environments for a
smaller one (to show the query count does not grow), and 3 more of 20 as neighbours in
the same tables; a year (8,760 hours) of hourly rollups per environment (API calls
everywhere, seats and tenants on production), the daily rollups built from them, current
gauges and some open flags. Then it requests `GET /<org>/` through the whole Django stack
(middleware, session, template) with the test client, signed in as the owner, and prints
p50/p95/max milliseconds and the queries per request.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_dashboard_bench bench/dashboard
    (--requests N; --rebuild reloads the data)

The database is migrated and its data replaced: never point it at a real database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cp_dashboard_bench"
)
os.environ.setdefault("LOG_LEVEL", "WARNING")
# DEBUG=0 serves hashed static names from a manifest: collected below into a scratch folder.
os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="bench-static-"))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import (  # noqa: E402
    Contract,
    Environment,
    EnvironmentKind,
    Membership,
    Organization,
    Role,
    User,
)
from accounts.services.organizations import contract_activate, project_create  # noqa: E402
from metering.compliance.evaluation import evaluate  # noqa: E402

HOURS = 365 * 24
ORGS = [("measured", 10), ("small", 3), ("n1", 10), ("n2", 10), ("n3", 10)]


def build(now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE metering_usageday, metering_usagerollup, metering_usagegauge, "
            "metering_notification, metering_flagevent, metering_overageflag, "
            "accounts_developerseat, accounts_apikey, accounts_environment, accounts_project, "
            "accounts_contract, accounts_membership, accounts_organization CASCADE"
        )
    starts_on = (now - dt.timedelta(days=300)).date()
    for slug, projects in ORGS:
        organization = Organization.objects.create(slug=slug, name=slug.title())
        user, _ = User.objects.get_or_create(email=f"owner@{slug}.example")
        Membership.objects.create(organization=organization, user=user, role=Role.OWNER)
        contract_activate(
            organization=organization,
            plan="bench",
            starts_on=starts_on,
            ends_on=starts_on + dt.timedelta(days=400),
            api_calls_per_period=50_000_000,
            seats_per_environment=25,
            tenants_per_environment=10,
            developer_seats=5,
        )
        for n in range(projects):
            project = project_create(organization=organization, slug=f"p{n}", name=f"Project {n}")
            Environment.objects.create(project=project, name="ci", kind=EnvironmentKind.CICD)
    first_hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=HOURS - 1)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # API calls every hour for every environment; seats and tenants on production.
        cursor.execute(
            """
            INSERT INTO metering_usagerollup
                (environment_id, metric, hour, total, late_total, peak, last, readings)
            SELECT e.id, m.metric, h.hour,
                   CASE WHEN m.metric = 'api_calls' THEN 2000 + (e.id * 37 + h.n) %% 3000 ELSE 0 END,
                   0,
                   CASE WHEN m.metric = 'api_calls' THEN NULL ELSE 3 + (e.id + h.n) %% 20 END,
                   CASE WHEN m.metric = 'api_calls' THEN NULL ELSE 3 + (e.id + h.n) %% 20 END,
                   4
            FROM accounts_environment e
            CROSS JOIN (VALUES ('api_calls'), ('seats'), ('tenants')) AS m(metric)
            CROSS JOIN (
                SELECT n, %(first)s::timestamptz + n * interval '1 hour' AS hour
                FROM generate_series(0, %(hours)s - 1) AS n
            ) h
            WHERE m.metric = 'api_calls' OR e.kind = 'production'
            """,
            {"first": first_hour, "hours": HOURS},
        )
        cursor.execute(
            """
            INSERT INTO metering_usageday (environment_id, metric, day, total, peak)
            SELECT environment_id, metric, (hour AT TIME ZONE 'UTC')::date, SUM(total), MAX(peak)
            FROM metering_usagerollup GROUP BY 1, 2, 3
            """
        )
        cursor.execute(
            """
            INSERT INTO metering_usagegauge (environment_id, metric, value, observed_at)
            SELECT e.id, m.metric, 7, now() FROM accounts_environment e
            CROSS JOIN (VALUES ('seats'), ('tenants')) AS m(metric)
            WHERE e.kind = 'production'
            """
        )
        cursor.execute("ANALYZE")
    print(f"  loaded a year of hourly data in {time.perf_counter() - started:.1f} s", flush=True)
    evaluate(at=now)


def measure(slug: str, requests: int) -> tuple[list[float], int, int]:
    client = Client()
    client.force_login(User.objects.get(email=f"owner@{slug}.example"))
    client.get(f"/{slug}/")  # warm: the session learns the last organization
    queries: list[str] = []
    with connection.execute_wrapper(
        lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)
    ):
        response = client.get(f"/{slug}/")
        assert response.status_code == 200 and b"dashboard-panel" in response.content, response
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(f"/{slug}/")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    environments = Environment.objects.filter(project__organization__slug=slug).count()
    return times, len(queries), environments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    now = timezone.now()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)
    loaded = Contract.objects.filter(plan="bench", organization__slug="n3").exists()
    if args.rebuild or not loaded:
        print("building the data set")
        build(now)
    rows = connection.cursor()
    rows.execute("SELECT count(*) FROM metering_usagerollup")
    print(f"hourly rollups in the database: {rows.fetchone()[0]:,}")
    for slug, _ in ORGS[:2]:
        times, queries, environments = measure(slug, args.requests)
        cuts = statistics.quantiles(times, n=100)
        print(
            f"GET /{slug}/ ({environments} environments, {args.requests} requests): "
            f"p50 {statistics.median(times):.1f} ms, p95 {cuts[94]:.1f} ms, "
            f"max {max(times):.1f} ms, {queries} queries per request"
        )


if __name__ == "__main__":
    main()
