"""Raw readings partitioned by month (metering.partitions, migration metering 0014): the
migration keeps every row both ways, readings land in their month's partition (or the
default one, emptied by the job), and recompute_usage reads across partitions."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

from metering import partitions
from metering.compliance import retention
from metering.models import UsageReading, UsageRollup
from tests.conftest import TEST_CLOCK
from tests.metering.usage import post_usage

TABLE = "metering_usagereading"


def _where() -> dict[int, str]:
    """Reading id -> the partition holding it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, tableoid::regclass::text FROM {TABLE}")
        return dict(cursor.fetchall())


def _recompute(*args: str) -> str:
    out = StringIO()
    call_command("recompute_usage", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_job_makes_the_months_from_the_retention_cutoff_to_three_ahead(settings):
    settings.RETENTION_DAYS = 400
    at = dt.datetime(2031, 3, 15, 9, tzinfo=dt.UTC)  # cutoff 2030-02-08

    made = partitions.ensure_partitions(at=at).details["partitions_created"]

    months = [p.month for p in partitions.partitions()]
    window = [dt.date(2030 + (1 + i) // 12, (1 + i) % 12 + 1, 1) for i in range(17)]
    assert window[0] == dt.date(2030, 2, 1) and window[-1] == dt.date(2031, 6, 1)
    assert set(window) <= set(months)
    assert made == [f"{TABLE}_y{m:%Y}m{m:%m}" for m in window]
    assert partitions.ensure_partitions(at=at).details["partitions_created"] == []


@pytest.mark.django_db
def test_a_reading_of_a_month_without_partition_lands_in_default_and_moves_to_its_month(
    client, tenant
):
    assert post_usage(client, tenant.api_key, {"instance": "a", "api_calls": 5}).status_code == 202
    reading = UsageReading.objects.get()
    assert _where() == {reading.id: f"{TABLE}_default"}

    made = partitions.ensure_partitions().details["partitions_created"]

    assert f"{TABLE}_y2031m03" in made
    assert _where() == {reading.id: f"{TABLE}_y2031m03"}
    assert UsageReading.objects.get().counted_api_calls == 5
    assert "Rollups match the raw readings." in _recompute("--check")


@pytest.mark.django_db
def test_recompute_check_is_clean_across_three_months_and_finds_a_drift_in_any(client, tenant):
    partitions.ensure_partitions()
    months = [TEST_CLOCK.replace(month=m, day=10, hour=8, minute=0) for m in (1, 2, 3)]
    for value, at in zip((10, 25, 40), months, strict=True):
        body = {"instance": "a", "api_calls": value, "seats": value // 5, "observed_at": at}
        assert post_usage(client, tenant.api_key, body).status_code == 202

    assert sorted(_where().values()) == [f"{TABLE}_y2031m0{m}" for m in (1, 2, 3)]
    assert "Rollups match the raw readings. Days match their hours." in _recompute("--check")

    UsageRollup.objects.filter(metric="api_calls", hour=months[1]).update(total=1)
    with pytest.raises(CommandError, match=r"1 rollup\(s\) differ"):
        _recompute("--check")
    assert "Repaired 1 rollup(s)" in _recompute()
    assert UsageRollup.objects.get(metric="api_calls", hour=months[1]).total == 15


def _table_kind() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        return cursor.fetchone()[0]


def _rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE} ORDER BY id")
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_row_both_ways(tenant):
    hours = [
        dt.datetime(2025, 9, 30, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        dt.datetime(2031, 3, 15, 9, tzinfo=dt.UTC),
    ]
    call_command("migrate", "metering", "0013", verbosity=0)
    try:
        assert _table_kind() == "r"
        with connection.cursor() as cursor:
            for i, hour in enumerate(hours * 2):
                cursor.execute(
                    f"""INSERT INTO {TABLE} (environment_id, source, instance, boot, observed_at,
                        received_at, attributed_hour, api_calls, seats, tenants,
                        counted_api_calls, duplicate, reset, late)
                        VALUES (%s, 'native', %s, '', %s, %s, %s, %s, NULL, 2, %s,
                                false, false, %s)""",
                    [tenant.production.pk, f"i-{i}", hour, hour, hour, 10 * i, i, i % 2 == 0],
                )
            cursor.execute(f"DELETE FROM {TABLE} WHERE instance = 'i-5'")  # a gap in the ids
        before = _rows()
        assert len(before) == 5

        call_command("migrate", "metering", verbosity=0)

        assert _table_kind() == "p"
        assert _rows() == before
        assert set(_where().values()) == {
            f"{TABLE}_y2025m09",
            f"{TABLE}_y2026m10",
            f"{TABLE}_y2031m03",
        }
        # The ids carry on after the highest ever handed out, not the highest kept.
        later = UsageReading.objects.create(
            environment=tenant.production, instance="new", attributed_hour=hours[2]
        )
        assert later.id == before[-1][0] + 2

        call_command("migrate", "metering", "0013", verbosity=0)

        assert _table_kind() == "r"
        assert _rows()[:5] == before and len(_rows()) == 6
    finally:
        call_command("migrate", "metering", verbosity=0)
    assert _table_kind() == "p"


@pytest.mark.django_db
def test_retention_gives_up_on_a_lock_a_long_read_holds_and_the_next_run_drops(settings):
    """DETACH waits for every read of the table; a wait queues every insert behind it, so
    retention gives up after LOCK_TIMEOUT rather than hold up ingest."""
    settings.RETENTION_DAYS = 400
    at = dt.datetime(2031, 3, 15, 9, tzinfo=dt.UTC)
    partitions.ensure_partitions(at=at - dt.timedelta(days=60))  # January 2030 onwards
    expired = f"{TABLE}_y2030m01"
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    ) as reader:
        reader.execute(f"LOCK TABLE ONLY {TABLE} IN ACCESS SHARE MODE")  # a long read
        with pytest.raises(OperationalError, match="lock timeout"):
            retention.prune_readings(at=at)
        assert expired in [p.name for p in partitions.partitions()]
    assert expired in retention.prune_readings(at=at).details["partitions_dropped"]
    assert expired not in [p.name for p in partitions.partitions()]
