"""Usage written the way ingest writes it (rollups, gauges, series, readings), for the
compliance tests: they exercise the jobs, not the counting rules."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from accounts.models import API_CALLS, Environment
from metering.ingest.postgres import rules
from metering.models import UsageGauge, UsageReading, UsageRollup, UsageSeries

# An hour's rollup and its day absorb calls or a gauge value through ingest's own merges.
_MERGE = f"""
WITH ru AS (
    INSERT INTO metering_usagerollup AS r (
        environment_id, metric, hour, total, late_total, peak, last, last_observed_at,
        readings)
    VALUES (%(env)s, %(metric)s, %(hour)s, %(total)s, 0, %(peak)s, %(peak)s, %(at)s, 1)
    {rules.ROLLUP_MERGE}
    RETURNING 1
)
INSERT INTO metering_usageday AS d (environment_id, metric, day, total, peak)
VALUES (%(env)s, %(metric)s, {rules.DAY_OF_HOUR.format(hour="%(hour)s::timestamptz")},
        %(total)s, %(peak)s)
{rules.DAY_MERGE}
"""


def _merge(environment: Environment, metric: str, at: dt.datetime, total: int, peak: int | None):
    params = {"env": environment.pk, "metric": metric, "hour": hour_of(at), "at": at}
    with connection.cursor() as cursor:
        cursor.execute(_MERGE, {**params, "total": total, "peak": peak})


def hour_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def add_calls(environment: Environment, at: dt.datetime, n: int) -> UsageRollup:
    """`n` calls counted in the hour of `at`, received now (rollups and raw reading)."""
    _merge(environment, API_CALLS, at, n, None)
    _reading(environment, at, api_calls=n, counted_api_calls=n)
    return UsageRollup.objects.get(environment=environment, metric=API_CALLS, hour=hour_of(at))


def _reading(environment: Environment, at: dt.datetime, **values: int) -> UsageReading:
    return UsageReading.objects.create(
        environment=environment,
        instance="i-1",
        received_at=timezone.now(),
        observed_at=at,
        attributed_hour=hour_of(at),
        **values,
    )


def set_gauge(environment: Environment, metric: str, value: int, at: dt.datetime) -> None:
    """A gauge reading: the hour's rollup peak/last, the day's peak and the current value."""
    _merge(environment, metric, at, 0, value)
    UsageGauge.objects.update_or_create(
        environment=environment, metric=metric, defaults={"value": value, "observed_at": at}
    )
    _reading(environment, at, **{metric: value})


def report(environment: Environment, at: dt.datetime, *, instance: str = "i-1") -> UsageSeries:
    """The environment reported at `at` (what reporting-gap detection reads)."""
    series, created = UsageSeries.objects.get_or_create(
        environment=environment,
        instance=instance,
        defaults={"last_observed_at": at, "first_received_at": at, "last_received_at": at},
    )
    if not created:
        series.last_received_at = at
        series.last_observed_at = at
        series.save()
    return series


def reading(environment: Environment, received_at: dt.datetime, api_calls: int = 0) -> UsageReading:
    return UsageReading.objects.create(
        environment=environment,
        instance="i-1",
        received_at=received_at,
        observed_at=received_at,
        attributed_hour=hour_of(received_at),
        api_calls=api_calls,
        counted_api_calls=api_calls,
    )
