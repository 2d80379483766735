"""Usage written the way ingest writes it (rollups, gauges, series, readings), for the
compliance tests: they exercise the jobs, not the counting rules."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import API_CALLS, Environment
from metering import services
from metering.counting import RollupDelta
from metering.models import UsageGauge, UsageReading, UsageRollup, UsageSeries


def hour_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def add_calls(environment: Environment, at: dt.datetime, n: int) -> UsageRollup:
    """`n` calls counted in the hour of `at`, received now (rollups and raw reading)."""
    delta = RollupDelta()
    delta.add_count(n, False, at)
    with transaction.atomic():  # as every writer: rollup and day rows locked together
        services.rollups_apply(environment=environment, deltas={(API_CALLS, hour_of(at)): delta})
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
    delta = RollupDelta()
    delta.add_gauge(value, at)
    with transaction.atomic():
        services.rollups_apply(environment=environment, deltas={(metric, hour_of(at)): delta})
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
