"""bench/overage: one full contract evaluation at scale, on PostgreSQL.

Builds 10,000 organizations with one active contract each (anchor days spread over the
month), one project each with 3 environments (production + 2 CI/CD: 30,000 environments),
and a month of hourly rollups: API calls for every environment (21.6 M rows), seats and
tenants for every production environment (14.4 M rows), the daily rollups ingest keeps
with them (`UsageDay`, built here from the hours with one INSERT ... SELECT), plus
current gauges. Loading is one INSERT ... SELECT generate_series per table. Then it times
`evaluation.evaluate()` from a clean flag table (the first run raises every flag: the
data puts every contract over several limits) and again (steady state), and prints
seconds and query counts. After each first evaluation it also times the notifier's
fan-out of that run's flag events into outbox rows (`notifications.fan_out`, a job of
its own: the first step of every send run), printed apart from the evaluations.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_bench .venv/bin/python bench/overage.py
    (add --rebuild to reload the data; --orgs N for a smaller run)

The database is migrated and its data replaced: never point it at a real database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cp_compliance_bench"
)
os.environ.setdefault("LOG_LEVEL", "WARNING")
# One staff address: every flip also writes one outbox row, as in production.
os.environ.setdefault("STAFF_ALERT_EMAILS", "billing@example.com")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from metering.compliance import evaluation, notifications  # noqa: E402
from metering.compliance.models import FlagEvent, Notification, OverageFlag  # noqa: E402

ENVS_PER_ORG = 3
HOURS = 30 * 24

TABLES = [
    "metering_usageday",
    "metering_notification",
    "metering_flagevent",
    "metering_overageflag",
    "metering_usagerollup",
    "metering_usagegauge",
    "accounts_environment",
    "accounts_project",
    "accounts_contract",
    "accounts_membership",
    "accounts_organization",
]


def step(label: str, sql: str, params: dict | None = None) -> None:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)


def build(orgs: int, now: dt.datetime) -> None:
    today = now.date()
    first_hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=HOURS - 1)
    p = {"n": orgs, "today": today, "first": first_hour, "hours": HOURS}
    print(f"building {orgs} contracts, {orgs * ENVS_PER_ORG} environments, {HOURS} hours")
    step("truncate", f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    step("synchronous_commit off", "SET synchronous_commit = off")
    step(
        "organizations",
        "INSERT INTO accounts_organization (id, slug, name, created_at) "
        "SELECT g, 'bench-' || g, 'Bench ' || g, now() FROM generate_series(1, %(n)s) g",
        p,
    )
    step(
        "contracts",
        """INSERT INTO accounts_contract (id, organization_id, plan, status, starts_on, ends_on,
            created_at, api_calls_per_period, seats_per_environment, tenants_per_environment,
            tenants_type, developer_seats, nonprod_daily_api_calls,
            advanced_publishing_workflow, aacl_teams, aacl_private_files,
            aacl_folder_level_permissions, audit_logs, record_locking,
            api_calls_overage, api_calls_overage_factor, seats_overage, tenants_overage,
            developer_seats_overage, nonprod_daily_api_calls_overage)
        SELECT g, g, 'bench', 'active', %(today)s::date - 365 + (g %% 31), %(today)s::date + 365,
            now(), 20000 + (g %% 20) * 5000, 10, 5, 'fixed', 5, 5000,
            false, false, false, false, false, false,
            CASE WHEN g %% 3 = 0 THEN 'allow_up_to' ELSE 'allow' END,
            CASE WHEN g %% 3 = 0 THEN 1.25 END, 'block', 'block', 'block', 'allow'
        FROM generate_series(1, %(n)s) g""",
        p,
    )
    step(
        "projects",
        "INSERT INTO accounts_project (id, organization_id, slug, name, created_at) "
        "SELECT g, g, 'website', 'Website', now() FROM generate_series(1, %(n)s) g",
        p,
    )
    step(
        "environments",
        """INSERT INTO accounts_environment (id, project_id, name, kind, status, created_at)
        SELECT (g - 1) * 3 + k + 1, g,
            CASE k WHEN 0 THEN 'production' ELSE 'ci-' || k END,
            CASE k WHEN 0 THEN 'production' ELSE 'cicd' END, 'enabled', now()
        FROM generate_series(1, %(n)s) g CROSS JOIN generate_series(0, 2) k""",
        p,
    )
    # Bulk load without the rollup table's secondary indexes, then rebuild them: several
    # times faster than maintaining three B-trees row by row.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'metering_usagerollup'::regclass AND contype IN ('u', 'f')"
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'metering_usagerollup' "
            "AND indexname NOT LIKE '%%pkey' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'metering_usagerollup'::regclass)"
        )
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE metering_usagerollup DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    step(
        "api_calls rollups",
        """INSERT INTO metering_usagerollup (environment_id, metric, hour, total, late_total,
            readings)
        SELECT e, 'api_calls', %(first)s::timestamptz + h * interval '1 hour',
            (e * 31 + h * 7) %% 50, 0, 1
        FROM generate_series(1, %(n)s * 3) e CROSS JOIN generate_series(0, %(hours)s - 1) h""",
        p,
    )
    step(
        "seats and tenants rollups",
        """INSERT INTO metering_usagerollup (environment_id, metric, hour, total, late_total,
            peak, last, last_observed_at, readings)
        SELECT (g - 1) * 3 + 1, m, %(first)s::timestamptz + h * interval '1 hour', 0, 0,
            CASE m WHEN 'seats' THEN (g + h / 24) %% 12 ELSE (g + h / 24) %% 6 END,
            CASE m WHEN 'seats' THEN (g + h / 24) %% 12 ELSE (g + h / 24) %% 6 END,
            %(first)s::timestamptz + h * interval '1 hour', 1
        FROM generate_series(1, %(n)s) g CROSS JOIN generate_series(0, %(hours)s - 1) h
            CROSS JOIN (VALUES ('seats'), ('tenants')) AS metrics(m)""",
        p,
    )
    step("maintenance_work_mem", "SET maintenance_work_mem = '1GB'")
    for name, definition in constraints:
        step(
            f"rebuild {name}",
            f'ALTER TABLE metering_usagerollup ADD CONSTRAINT "{name}" {definition}',
        )
    for name, definition in indexes:
        step(f"rebuild {name}", definition)
    step(
        "daily rollups (what ingest keeps with the hours)",
        """INSERT INTO metering_usageday (environment_id, metric, day, total, peak)
        SELECT environment_id, metric, (hour AT TIME ZONE 'UTC')::date, SUM(total), MAX(peak)
        FROM metering_usagerollup GROUP BY 1, 2, 3""",
    )
    step(
        "gauges",
        """INSERT INTO metering_usagegauge (environment_id, metric, value, observed_at)
        SELECT (g - 1) * 3 + 1, m, CASE m WHEN 'seats' THEN g %% 11 ELSE g %% 5 END, now()
        FROM generate_series(1, %(n)s) g CROSS JOIN (VALUES ('seats'), ('tenants')) AS ms(m)""",
        p,
    )
    for table in (
        "accounts_organization",
        "accounts_contract",
        "accounts_project",
        "accounts_environment",
    ):
        step(
            f"sequence {table}",
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))",
        )
    step("vacuum analyze", "VACUUM ANALYZE")


RESULTS: list[tuple[str, float, int]] = []
NOTIFIER: list[tuple[str, float, int]] = []


def timed_evaluation(label: str, now: dt.datetime) -> None:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        report = evaluation.evaluate(at=now)
        seconds = time.perf_counter() - started
    RESULTS.append((label, seconds, len(queries)))
    print(
        f"{label}: {seconds:.2f} s, {len(queries)} queries, {report.details['contracts']} "
        f"contracts, {len(report.raised)} raised, {len(report.resolved)} resolved",
        flush=True,
    )


def timed_fan_out(label: str) -> None:
    """The notifier's share of a run: its flag events into outbox rows, one per recipient
    (a separate job: the first step of every send run, in its own transactions)."""
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        events = notifications.fan_out()
        seconds = time.perf_counter() - started
    NOTIFIER.append((label, seconds, len(queries)))
    rows = Notification.objects.count()
    print(
        f"{label}: {seconds:.2f} s, {len(queries)} queries, {events} events, {rows} outbox rows",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    now = timezone.now()
    from accounts.models import Contract

    if args.rebuild or Contract.objects.count() != args.orgs:
        build(args.orgs, now)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metering_usagerollup")
        rollups = cursor.fetchone()[0]
    print(
        f"data: {args.orgs} contracts, {args.orgs * ENVS_PER_ORG} environments, {rollups} rollups"
    )

    def clear_flags() -> None:
        # TRUNCATE, not DELETE: repeated runs would otherwise leave hundreds of thousands
        # of dead rows in the flag table's indexes, which production never has.
        tables = [m._meta.db_table for m in (Notification, FlagEvent, OverageFlag)]
        step("clear flags", f"TRUNCATE {', '.join(tables)}")

    # A typical month first: 1 contract in 20 over some limit (the others' limits raised
    # a hundredfold), then the worst case the data was built for: every contract over
    # several limits, every flag raised in one run.
    scaled = "api_calls_per_period", "seats_per_environment", "tenants_per_environment"
    clear_flags()
    step(
        "typical: raise 19 in 20 contracts' limits",
        "UPDATE accounts_contract SET "
        + ", ".join(f"{f} = {f} * 100" for f in scaled)
        + " WHERE id %% 20 <> 0",
    )
    try:
        timed_evaluation("typical first evaluation (1 contract in 20 over a limit)", now)
        timed_fan_out("typical: fan-out of the first evaluation's events")
        timed_evaluation("typical steady-state evaluation (nothing changed)", now)
    finally:
        step(
            "restore the limits",
            "UPDATE accounts_contract SET "
            + ", ".join(f"{f} = {f} / 100" for f in scaled)
            + " WHERE id %% 20 <> 0",
        )
    clear_flags()
    timed_evaluation("worst case: first evaluation raising every flag at once", now)
    timed_fan_out("worst case: fan-out of the first evaluation's events")
    for _ in range(3):
        timed_evaluation("worst case: steady-state evaluation (nothing changed)", now)
    print("\nsummary (target: <= 5 s per evaluation)")
    for label, seconds, count in RESULTS:
        print(f"  {seconds:7.2f} s {count:4d} queries  {label}")
    print("the notifier's fan-out of those runs' flag events (its own job):")
    for label, seconds, count in NOTIFIER:
        print(f"  {seconds:7.2f} s {count:4d} queries  {label}")


if __name__ == "__main__":
    main()
