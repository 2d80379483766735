"""bench/admin: the staff console's lists and main pages on a large database.

Rows are inserted in time order, as ingest writes them (a day's rows appear that day), so
the primary key follows time as in production. Builds 10,000 organizations (3 members, one project with a production and a CI/CD
environment, an active contract, keys), a year of daily usage for every environment, a
year of hourly rollups and raw readings for --hourly-envs environments (and the last week
for all), flags, licenses, outbox rows and audit events; one INSERT ... SELECT
generate_series per table. Then it requests every registered changelist (plain and
filtered the way staff filter: an organization, an environment, a day, a status) and the
main change pages as a superuser through Django's test client, several times each, and
prints the slowest: server time (median and worst, request to rendered response) and
query count. Target: every changelist within 300 ms.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/cp_admin_bench bench/admin
    (--rebuild to reload the data; --orgs N, --hourly-envs N for other sizes)

The database is migrated and its data replaced: never point it at a real database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cp_admin_bench"
)
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.apps import apps  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402

TABLES = [
    "accounts_auditevent",
    "accounts_license",
    "accounts_signingkey",
    "metering_notification",
    "metering_flagevent",
    "metering_overageflag",
    "metering_usagereading",
    "metering_usageseries",
    "metering_usagerollup",
    "metering_usageday",
    "metering_usagegauge",
    "accounts_apikey",
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


def build(orgs: int, hourly_envs: int, now: dt.datetime) -> None:
    today = now.date()
    hour = now.replace(minute=0, second=0, microsecond=0)
    p = {"n": orgs, "today": today, "hour": hour, "hourly": hourly_envs}
    print(f"building {orgs} organizations, {2 * orgs} environments, a year of usage")
    step("truncate", f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    step("clear bench users", "DELETE FROM accounts_user WHERE email LIKE '%%@bench.example'")
    step("synchronous_commit off", "SET synchronous_commit = off")
    step("maintenance_work_mem", "SET maintenance_work_mem = '512MB'")
    step(
        "organizations",
        "INSERT INTO accounts_organization (id, slug, name, created_at) "
        "SELECT g, 'bench-' || g, 'Bench ' || g, now() FROM generate_series(1, %(n)s) g",
        p,
    )
    step(
        "users (3 per organization)",
        """INSERT INTO accounts_user (email, name, password, is_active, is_staff, is_superuser,
            date_joined)
        SELECT 'u' || g || '-' || r || '@bench.example', 'Person ' || g, '!', true, false,
            false, now()
        FROM generate_series(1, %(n)s) g CROSS JOIN generate_series(1, 3) r""",
        p,
    )
    step(
        "memberships",
        """INSERT INTO accounts_membership (user_id, organization_id, role, created_at)
        SELECT u.id, split_part(substr(u.email, 2), '-', 1)::int,
            CASE split_part(split_part(u.email, '-', 2), '@', 1) WHEN '1' THEN 'owner'
                WHEN '2' THEN 'admin' ELSE 'member' END, now()
        FROM accounts_user u WHERE u.email LIKE '%%@bench.example'""",
    )
    step(
        "contracts (some ending within 30 days, a renewal scheduled for some)",
        """INSERT INTO accounts_contract (organization_id, plan, status, starts_on, ends_on,
            created_at, api_calls_per_period, seats_per_environment, tenants_per_environment,
            tenants_type, developer_seats, nonprod_daily_api_calls,
            advanced_publishing_workflow, aacl_teams, aacl_private_files,
            aacl_folder_level_permissions, audit_logs, record_locking,
            api_calls_overage, seats_overage, tenants_overage, developer_seats_overage,
            nonprod_daily_api_calls_overage)
        SELECT g, CASE g %% 3 WHEN 0 THEN 'enterprise' WHEN 1 THEN 'business' ELSE 'growth' END,
            'active', %(today)s::date - 365 + (g %% 31), %(today)s::date + 1 + (g %% 400),
            now(), 500000 + (g %% 20) * 50000, 10, 5, 'fixed', 5, 5000,
            false, false, false, false, false, false, 'allow', 'block', 'block', 'allow',
            'allow'
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
        SELECT (g - 1) * 2 + k + 1, g, CASE k WHEN 0 THEN 'production' ELSE 'ci' END,
            CASE k WHEN 0 THEN 'production' ELSE 'cicd' END, 'enabled', now()
        FROM generate_series(1, %(n)s) g CROSS JOIN generate_series(0, 1) k""",
        p,
    )
    step(
        "api keys",
        """INSERT INTO accounts_apikey (environment_id, name, prefix, digest, last_four,
            created_at, last_used_at)
        SELECT e, 'default', 'b' || lpad(e::text, 11, '0'), repeat('0', 64), 'abcd', now(),
            now() - (e %% 90) * interval '1 minute'
        FROM generate_series(1, %(n)s * 2) e""",
        p,
    )
    step(
        "daily usage, a year, every environment (api calls; seats on production)",
        """INSERT INTO metering_usageday (environment_id, metric, day, total, peak)
        SELECT * FROM (
            SELECT e, 'api_calls', %(today)s::date - d AS day, (e * 31 + d * 7) %% 50000, NULL
            FROM generate_series(1, %(n)s * 2) e CROSS JOIN generate_series(0, 364) d
            UNION ALL
            SELECT e, 'seats', %(today)s::date - d, 0, (e + d) %% 12
            FROM generate_series(1, %(n)s * 2, 2) e CROSS JOIN generate_series(0, 364) d
        ) AS days ORDER BY day""",
        p,
    )
    step(
        "hourly rollups: a year for --hourly-envs environments, the last week for all",
        """INSERT INTO metering_usagerollup (environment_id, metric, hour, total, late_total,
            readings)
        SELECT e, 'api_calls', %(hour)s::timestamptz - h * interval '1 hour',
            (e * 31 + h * 7) %% 3000, 0, 1
        FROM generate_series(1, %(hourly)s) e CROSS JOIN generate_series(0, 24 * 365 - 1) h
        UNION ALL
        SELECT e, 'api_calls', %(hour)s::timestamptz - h * interval '1 hour',
            (e * 31 + h * 7) %% 3000, 0, 1
        FROM generate_series(%(hourly)s + 1, %(n)s * 2) e CROSS JOIN generate_series(0, 24 * 7 - 1) h
        ORDER BY 3""",
        p,
    )
    step(
        "series",
        """INSERT INTO metering_usageseries (environment_id, instance, boot, generation,
            highest, last_observed_at, previous_highest, first_received_at, last_received_at)
        SELECT e, 'graphql-1', 'boot-1', 0, 1000000, now(), 999000, now() - interval '1 year',
            now() - CASE WHEN e %% 50 = 0 THEN interval '2 days' ELSE interval '5 minutes' END
        FROM generate_series(1, %(n)s * 2) e""",
        p,
    )
    step(
        "raw readings: one an hour, as the hourly rollups",
        """INSERT INTO metering_usagereading (environment_id, series_id, source, instance,
            boot, observed_at, received_at, attributed_hour, api_calls, counted_api_calls,
            duplicate, reset, late)
        SELECT environment_id, environment_id, 'native', 'graphql-1', 'boot-1', hour, hour,
            hour, 1000000, total, false, false, false
        FROM metering_usagerollup ORDER BY hour""",
    )
    step(
        "gauges",
        """INSERT INTO metering_usagegauge (environment_id, metric, value, observed_at)
        SELECT e, 'seats', e %% 11, now() FROM generate_series(1, %(n)s * 2, 2) e""",
        p,
    )
    step(
        "flags: three a contract (two open), a reporting gap on every 50th environment",
        """INSERT INTO metering_overageflag (contract_id, organization_id, environment_id,
            metric, scope, level, period_start, period_end, value, "limit", raised_at,
            resolved_at, changed_by_run, note)
        SELECT c.id, c.organization_id, NULL, 'api_calls', 'organization', lv.level,
            %(hour)s::timestamptz - (c.id %% 28) * interval '1 day' - m * interval '1 month',
            NULL::timestamptz, 500000, 500000,
            %(hour)s::timestamptz - (c.id %% 28) * interval '1 day',
            CASE WHEN m > 0 THEN %(hour)s::timestamptz END, 'bench', ''
        FROM accounts_contract c CROSS JOIN generate_series(0, 1) m
            CROSS JOIN (VALUES ('warning'), ('exceeded')) AS lv(level)
        WHERE c.id %% 4 <> 0 OR m = 0
        UNION ALL
        SELECT c.id, c.organization_id, (c.organization_id - 1) * 2 + 1, 'reporting',
            'environment:' || ((c.organization_id - 1) * 2 + 1), 'reporting_gap',
            %(hour)s::timestamptz - interval '2 days', NULL::timestamptz, 48, 12,
            %(hour)s::timestamptz, NULL::timestamptz,
            'bench', ''
        FROM accounts_contract c WHERE c.organization_id %% 25 = 0""",
        p,
    )
    step(
        "flag events",
        """INSERT INTO metering_flagevent (flag_id, kind, at, value, notified_at)
        SELECT id, 'raised', raised_at, value, raised_at FROM metering_overageflag""",
    )
    step(
        "outbox: a message per flag event to its owner",
        """INSERT INTO metering_notification (organization_id, event_id, topic, channel,
            recipient, subject, payload, status, attempts, next_attempt_at, claim_token,
            sent_at, last_error, created_at)
        SELECT f.organization_id, e.id, 'event:' || e.id, 'email',
            'u' || f.organization_id || '-1@bench.example', 'Usage flag', '{}',
            CASE WHEN e.id %% 97 = 0 THEN 'failed' ELSE 'sent' END,
            CASE WHEN e.id %% 97 = 0 THEN 8 ELSE 1 END, e.at, '',
            CASE WHEN e.id %% 97 = 0 THEN NULL ELSE e.at END, '', e.at
        FROM metering_flagevent e JOIN metering_overageflag f ON f.id = e.flag_id""",
    )
    step(
        "a signing key and a year of licenses (a few a day per organization)",
        """WITH k AS (INSERT INTO accounts_signingkey (kid, public_jwk, status, created_at)
            VALUES ('bench-key', '{}', 'active', now()) RETURNING id)
        INSERT INTO accounts_license (jti, kind, subject, organization_id, project_id,
            environment_id, signing_key_id, claims, issued_at, expires_at)
        SELECT 'jti-' || g || '-' || d, 'project', 'bench-' || g || '/website', g, g,
            (g - 1) * 2 + 1, k.id, '{}', now() - d * interval '1 day',
            now() - d * interval '1 day' + interval '7 days'
        FROM k CROSS JOIN generate_series(1, %(n)s) g CROSS JOIN generate_series(0, 364, 7) d""",
        p,
    )
    step(
        "audit events: a few a week per organization",
        """INSERT INTO accounts_auditevent (at, kind, actor_kind, actor_label, organization_id,
            organization_label, target_type, target_id, target_label, reason, details)
        SELECT now() - d * interval '1 day', k.kind, 'user', 'u' || g || '-1@bench.example', g,
            'bench-' || g, 'accounts.apikey', g::text, 'cpk_b…abcd', '', '{}'
        FROM generate_series(1, %(n)s) g CROSS JOIN generate_series(0, 364, 14) d
            CROSS JOIN (VALUES ('api_key.issued'), ('member.invited')) AS k(kind)""",
        p,
    )
    for table in (
        "accounts_organization",
        "accounts_project",
        "accounts_environment",
    ):
        step(
            f"sequence {table}",
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))",
        )
    step("vacuum analyze", "VACUUM ANALYZE")


def targets(orgs: int) -> list[tuple[str, str, dict]]:
    """(name, url, params): every registered changelist, plus the filtered views staff use."""
    middle = f"bench-{orgs // 2}"
    env = str(orgs)  # an environment of the middle organization
    today = timezone.now().date()
    day = {"__year": str(today.year), "__month": str(today.month), "__day": str(today.day)}
    feb = {"__year": str(today.year), "__month": "2", "__day": "3"}
    out: list[tuple[str, str, dict]] = []
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if not admin.site.is_registered(model):
            continue
        name = f"{model._meta.app_label}.{model._meta.model_name}"
        out.append(
            (
                name,
                reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
                {},
            )
        )
    lists = {n: u for n, u, _ in out}
    out += [
        (
            "organization ?q=<member email>",
            lists["accounts.organization"],
            {"q": f"u{orgs // 2}-2@bench.example"},
        ),
        ("organization ?q=<slug>", lists["accounts.organization"], {"q": middle}),
        ("usagereading ?org=", lists["metering.usagereading"], {"org": middle}),
        ("usagereading ?env=", lists["metering.usagereading"], {"env": env}),
        (
            "usagereading ?env=&<a day>",
            lists["metering.usagereading"],
            {"env": "1", **{f"attributed_hour{k}": v for k, v in day.items()}},
        ),
        (
            "usagereading ?org=&<a day in February>",
            lists["metering.usagereading"],
            {"org": "bench-100", **{f"attributed_hour{k}": v for k, v in feb.items()}},
        ),
        ("usagerollup ?org=", lists["metering.usagerollup"], {"org": middle}),
        (
            "usagerollup <today>",
            lists["metering.usagerollup"],
            {f"hour{k}": v for k, v in day.items()},
        ),
        (
            "usagerollup <a day in February>",
            lists["metering.usagerollup"],
            {f"hour{k}": v for k, v in feb.items()},
        ),
        ("usagerollup ?metric=seats", lists["metering.usagerollup"], {"metric": "seats"}),
        ("usageday ?org=", lists["metering.usageday"], {"org": middle}),
        (
            "usageday <this month>",
            lists["metering.usageday"],
            {"day__year": str(today.year), "day__month": str(today.month)},
        ),
        (
            "usageday <February>",
            lists["metering.usageday"],
            {"day__year": str(today.year), "day__month": "2"},
        ),
        (
            "overageflag ?state=open&level=exceeded",
            lists["metering.overageflag"],
            {"state": "open", "level": "exceeded"},
        ),
        (
            "overageflag ?state=unacknowledged",
            lists["metering.overageflag"],
            {"state": "unacknowledged"},
        ),
        (
            "overageflag ?metric=reporting&state=open",
            lists["metering.overageflag"],
            {"metric": "reporting", "state": "open"},
        ),
        ("overageflag ?org=", lists["metering.overageflag"], {"org": middle}),
        ("contract ?ending=30", lists["accounts.contract"], {"ending": "30"}),
        ("auditevent ?org=", lists["accounts.auditevent"], {"org": middle}),
        (
            "auditevent ?kind=member.invited",
            lists["accounts.auditevent"],
            {"kind": "member.invited"},
        ),
        ("license ?org=", lists["accounts.license"], {"org": middle}),
        ("notification ?status=failed", lists["metering.notification"], {"status": "failed"}),
        ("environment ?org=", lists["accounts.environment"], {"org": middle}),
        ("apikey ?org=", lists["accounts.apikey"], {"org": middle}),
    ]
    return out


def pages(orgs: int) -> list[tuple[str, str, dict]]:
    middle = orgs // 2
    return [
        ("admin home", reverse("admin:index"), {}),
        (
            "organization change (usage summary)",
            reverse("admin:accounts_organization_change", args=[middle]),
            {},
        ),
        (
            "environment change",
            reverse("admin:accounts_environment_change", args=[2 * middle - 1]),
            {},
        ),
        ("overage flag change", reverse("admin:metering_overageflag_change", args=[middle]), {}),
        ("contract change", reverse("admin:accounts_contract_change", args=[middle]), {}),
    ]


def measure(client: Client, url: str, params: dict, runs: int) -> tuple[float, float, int, int]:
    times, queries, status = [], 0, 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, params)
            times.append(time.perf_counter() - started)
        queries, status = len(captured), response.status_code
    return statistics.median(times) * 1000, max(times) * 1000, queries, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--hourly-envs", type=int, default=500)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_organization")
        have = cursor.fetchone()[0]
    if args.rebuild or have != args.orgs:
        build(args.orgs, args.hourly_envs, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "ORDER BY 2 DESC",
            [TABLES],
        )
        sizes = cursor.fetchall()
    print("rows (estimates): " + ", ".join(f"{t.split('_', 1)[1]} {n:,}" for t, n in sizes if n))

    staff, _ = User.objects.get_or_create(
        email="bench-staff@vendor.example", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)

    for title, items in (("changelists", targets(args.orgs)), ("change pages", pages(args.orgs))):
        results = []
        for name, url, params in items:
            client.get(url, params)  # warm: templates, plans, caches
            results.append((name, *measure(client, url, params, args.runs)))
        results.sort(key=lambda r: -r[1])
        bad = [r for r in results if r[4] != 200]
        print(f"\n{title}: {len(results)} measured, {args.runs} runs each, slowest first")
        print(f"  {'page':<44} {'median ms':>9} {'worst ms':>9} {'queries':>8}")
        for name, median, worst, queries, _status in results[: args.top]:
            print(f"  {name:<44} {median:>9.0f} {worst:>9.0f} {queries:>8}")
        over = [r for r in results if r[1] > 300]
        print(
            f"  over 300 ms (median): {len(over)}"
            + (f" ({', '.join(r[0] for r in over)})" if over else "")
        )
        if bad:
            print("  NOT 200: " + ", ".join(f"{r[0]}={r[4]}" for r in bad))


if __name__ == "__main__":
    main()
