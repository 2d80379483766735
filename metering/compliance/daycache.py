"""Maintenance of the evaluation's day cache (`UsageDay`); see its docstring."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Max, Sum
from django.db.models.functions import TruncDate

from metering.compliance.models import EvaluationCursor, UsageDay, UsageDayBuilt
from metering.models import UsageReading, UsageRollup

# Readings received this long before the previous run are looked at again: a reading
# committed a little after its `received_at` (a slow transaction) is still seen.
OVERLAP = dt.timedelta(minutes=30)
# Days older than this before the earliest open period are dropped from the cache.
KEEP_DAYS = 40


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _rebuild(*, first: dt.date, last: dt.date, environment_ids: set[int] | None) -> None:
    """Recompute the cache rows of days first..last (inclusive), for some or all
    environments, with one DELETE and one INSERT ... SELECT."""
    doomed = UsageDay.objects.filter(day__gte=first, day__lte=last)
    rollups = UsageRollup.objects.filter(
        hour__gte=_midnight(first), hour__lt=_midnight(last + dt.timedelta(days=1))
    )
    if environment_ids is not None:
        doomed = doomed.filter(environment_id__in=environment_ids)
        rollups = rollups.filter(environment_id__in=environment_ids)
    doomed.delete()
    select = (
        rollups.annotate(day=TruncDate("hour"))
        .values("environment_id", "metric", "day")
        .annotate(sum_total=Sum("total"), max_peak=Max("peak"))
        .order_by()
    )
    sql, params = select.query.sql_with_params()
    table = UsageDay._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (environment_id, metric, day, total, peak) "
            f"SELECT environment_id, metric, day, sum_total, max_peak FROM ({sql}) AS rolled",
            params,
        )


def refresh(*, earliest: dt.date, today: dt.date, at: dt.datetime) -> dict[str, int]:
    """Make the cache exact for the days earliest..today (exclusive). Call inside a
    transaction: it locks the cursor row, so concurrent evaluations queue here."""
    EvaluationCursor.objects.get_or_create(name="evaluate")
    cursor = EvaluationCursor.objects.select_for_update().get(name="evaluate")
    built = set(
        UsageDayBuilt.objects.filter(day__gte=earliest, day__lt=today).values_list("day", flat=True)
    )
    days = [earliest + dt.timedelta(days=i) for i in range((today - earliest).days)]
    missing = [d for d in days if d not in built]
    if missing:
        _rebuild(first=min(missing), last=max(missing), environment_ids=None)
        UsageDayBuilt.objects.bulk_create(
            [UsageDayBuilt(day=d, built_at=at) for d in missing], ignore_conflicts=True
        )
        # A new day is built about once a day: the time to drop what no period needs.
        old = earliest - dt.timedelta(days=KEEP_DAYS)
        UsageDay.objects.filter(day__lt=old).delete()
        UsageDayBuilt.objects.filter(day__lt=old).delete()
    dirty_envs: set[int] = set()
    if cursor.readings_seen_through is not None:
        rows = list(
            UsageReading.objects.filter(
                received_at__gte=cursor.readings_seen_through - OVERLAP,
                attributed_hour__gte=_midnight(earliest),
                attributed_hour__lt=_midnight(today),
            )
            .annotate(day=TruncDate("attributed_hour"))
            .values_list("environment_id", "day")
            .distinct()
        )
        if rows:
            dirty_envs = {env for env, _ in rows}
            _rebuild(
                first=min(day for _, day in rows),
                last=max(day for _, day in rows),
                environment_ids=dirty_envs,
            )
    cursor.readings_seen_through = at
    cursor.save(update_fields=["readings_seen_through"])
    return {"days_built": len(missing), "late_environments": len(dirty_envs)}


def reset() -> dict[str, int]:
    """Forget the cache; the next evaluation rebuilds it from the rollups. Needed after
    rollups change without new readings (`recompute_usage` repairs)."""
    deleted, _ = UsageDay.objects.all().delete()
    UsageDayBuilt.objects.all().delete()
    EvaluationCursor.objects.all().delete()
    return {"cached_rows_deleted": deleted}
