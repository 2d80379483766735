"""Writes of metering: recording readings (the ORM path), WCP seat/tenant changes,
telemetry batches and rollup repair. Plain functions, keyword-only arguments.

`readings_record` is the portable path (SQLite, the embedded mode); PostgreSQL normally
takes the single-statement path of `metering.ingest`. Both apply `metering.counting`.
The ORM path holds the same guarantees with row locks: every series and rollup row it
changes is first made to exist (an insert that ignores conflicts on the unique key) and
then locked (`SELECT ... FOR UPDATE`, in a fixed order), so the values it computes from
them are current. On SQLite the IMMEDIATE transaction serialises writers anyway.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Q

from accounts.models import Environment
from accounts.selectors.organizations import contract_active
from metering import counting
from metering.counting import Before, Outcome, Reading, RollupDelta
from metering.models import (
    GAUGE_METRICS,
    ReadingSource,
    UsageClosedThrough,
    UsageDay,
    UsageGauge,
    UsageReading,
    UsageRollup,
    UsageSeries,
)


def closed_through_for(*, environment: Environment) -> dt.datetime | None:
    return (
        UsageClosedThrough.objects.filter(organization_id=environment.project.organization_id)
        .values_list("closed_through", flat=True)
        .first()
    )


def _any_of(filters: list[Q]) -> Q:
    return functools.reduce(operator.or_, filters)


@transaction.atomic
def readings_record(
    *,
    environment: Environment,
    readings: Sequence[Reading],
    now: dt.datetime,
    source: str = ReadingSource.NATIVE,
) -> list[Outcome]:
    """Record validated readings of one environment; return what each counted."""
    closed_through = closed_through_for(environment=environment)
    instances = {r.instance for r in readings}
    existing = UsageSeries.objects.filter(environment=environment, instance__in=instances)
    known = set(existing.values_list("instance", flat=True).distinct())
    heads: dict[str, counting.SeriesHead] = {}
    for instance, generation, highest, last_observed_at in existing.filter(boot="").values_list(
        "instance", "generation", "highest", "last_observed_at"
    ):
        if instance not in heads or generation > heads[instance].generation:
            heads[instance] = counting.SeriesHead(generation, highest, last_observed_at)
    keys = counting.choose_series(readings, heads)
    bounds = counting.series_bounds(readings, keys)

    # Make every series row exist (unique key usage_series_unique), then lock them all.
    UsageSeries.objects.bulk_create(
        [
            UsageSeries(
                environment=environment,
                instance=instance,
                boot=boot,
                generation=generation,
                highest=0,
                last_observed_at=earliest,
                first_received_at=now,
                last_received_at=now,
            )
            for (instance, boot, generation), (_, earliest, _) in sorted(bounds.items())
        ],
        ignore_conflicts=True,
    )
    rows = {
        (s.instance, s.boot, s.generation): s
        for s in UsageSeries.objects.select_for_update()
        .filter(environment=environment)
        .filter(_any_of([Q(instance=i, boot=b, generation=g) for i, b, g in bounds]))
        .order_by("instance", "boot", "generation")
    }
    before: dict[counting.SeriesKey, Before] = {}
    for key, row in rows.items():
        # A row this call just made still has its placeholder marks.
        fresh = row.highest == 0 and row.first_received_at == now and row.last_received_at == now
        before[key] = Before(fresh, row.highest, None if fresh else row.last_observed_at)
        highest, _, latest = bounds[key]
        row.previous_highest = 0 if fresh else row.highest
        row.previous_observed_at = None if fresh else row.last_observed_at
        row.highest = max(row.highest, highest)
        row.last_observed_at = latest if fresh else max(row.last_observed_at, latest)
        row.last_received_at = now
    UsageSeries.objects.bulk_update(
        list(rows.values()),
        [
            "previous_highest",
            "previous_observed_at",
            "highest",
            "last_observed_at",
            "last_received_at",
        ],
    )

    results = counting.outcomes(
        readings, keys, before, known_instances=known, closed_through=closed_through
    )
    UsageReading.objects.bulk_create(
        [
            UsageReading(
                environment=environment,
                series=rows[key],
                source=source,
                instance=r.instance,
                boot=r.boot,
                observed_at=r.observed_at if r.observed_sent else None,
                received_at=now,
                attributed_hour=o.attributed_hour,
                api_calls=r.api_calls,
                seats=r.seats,
                tenants=r.tenants,
                counted_api_calls=o.counted,
                duplicate=o.duplicate,
                reset=o.reset,
                late=o.late,
            )
            for r, key, o in zip(readings, keys, results, strict=True)
        ]
    )
    # Gauges before rollups and days: the lock order of every writer (metering.ingest).
    for metric, (value, observed_at) in sorted(counting.latest_gauges(readings).items()):
        gauge_replace(environment=environment, metric=metric, value=value, observed_at=observed_at)
    rollups_apply(environment=environment, deltas=counting.rollup_deltas(readings, results))
    return results


def _made_and_locked(model, *, environment_id: int, keys: list[tuple], columns: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """An environment's rows of `model` with these unique keys: made to exist (an insert
    that ignores conflicts on the unique key), then locked in key order."""
    model.objects.bulk_create(
        [model(environment_id=environment_id, **dict(zip(columns, k, strict=True))) for k in keys],
        ignore_conflicts=True,
    )
    return list(
        model.objects.select_for_update()
        .filter(environment_id=environment_id)
        .filter(_any_of([Q(**dict(zip(columns, k, strict=True))) for k in keys]))
        .order_by(*columns)
    )


def rollups_apply(
    *, environment: Environment, deltas: dict[tuple[str, dt.datetime], RollupDelta]
) -> None:
    """Merge per-(metric, hour) deltas into the rollups: rows made to exist (unique key
    usage_rollup_unique), locked in (metric, hour) order, then updated."""
    if not deltas:
        return
    locked = _made_and_locked(
        UsageRollup, environment_id=environment.pk, keys=sorted(deltas), columns=("metric", "hour")
    )
    for row in locked:
        merged = counting.merge_rollup(
            RollupDelta(
                total=row.total,
                late_total=row.late_total,
                peak=row.peak,
                last=row.last,
                last_observed_at=row.last_observed_at,
                readings=row.readings,
            ),
            deltas[(row.metric, row.hour)],
        )
        row.total, row.late_total, row.peak = merged.total, merged.late_total, merged.peak
        row.last, row.last_observed_at = merged.last, merged.last_observed_at
        row.readings = merged.readings
    UsageRollup.objects.bulk_update(
        locked, ["total", "late_total", "peak", "last", "last_observed_at", "readings"]
    )
    days_apply(environment_id=environment.pk, deltas=counting.day_deltas(deltas))


def days_apply(
    *, environment_id: int, deltas: dict[tuple[str, dt.date], tuple[int, int | None]]
) -> None:
    """Merge what hourly deltas add to their days (after the hours: the lock order)."""
    locked = _made_and_locked(
        UsageDay, environment_id=environment_id, keys=sorted(deltas), columns=("metric", "day")
    )
    for row in locked:
        total, peak = deltas[(row.metric, row.day)]
        row.total += total
        peaks = [p for p in (row.peak, peak) if p is not None]
        row.peak = max(peaks) if peaks else None
    UsageDay.objects.bulk_update(locked, ["total", "peak"])


def gauge_replace(
    *, environment: Environment, metric: str, value: int, observed_at: dt.datetime
) -> None:
    """An absolute reading replaces the running count, unless a later one already did
    (conditional update on `observed_at`; unique key usage_gauge_unique)."""
    UsageGauge.objects.bulk_create(
        [UsageGauge(environment=environment, metric=metric, value=value, observed_at=observed_at)],
        ignore_conflicts=True,
    )
    UsageGauge.objects.filter(
        environment=environment, metric=metric, observed_at__lte=observed_at
    ).update(value=value, observed_at=observed_at)


# --- WCP +1/-1 ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GaugeChange:
    ok: bool
    value: int
    cap: int | None
    no_contract: bool = False


@transaction.atomic
def gauge_step(
    *, environment: Environment, metric: str, increment: bool, now: dt.datetime
) -> GaugeChange:
    """WCP `increment` / `decrement` of seats or tenants.

    An increment is a conditional update (`value < cap`) on the environment's gauge row:
    the row lock serialises racing increments and each re-checks the condition, so with
    the cap at 10 and 9 in use exactly one of any number of simultaneous increments wins.
    A decrement never goes below zero (`value > 0`).
    """
    assert metric in GAUGE_METRICS
    contract = contract_active(organization=environment.project.organization, at=now)
    if contract is None and increment:
        current = UsageGauge.objects.filter(environment=environment, metric=metric).first()
        return GaugeChange(False, current.value if current else 0, 0, no_contract=True)
    cap = contract.cap_for(metric) if contract is not None else None
    UsageGauge.objects.bulk_create(
        [UsageGauge(environment=environment, metric=metric, value=0, observed_at=now)],
        ignore_conflicts=True,
    )
    gauge = UsageGauge.objects.filter(environment=environment, metric=metric)
    if increment:
        if cap is not None:
            gauge = gauge.filter(value__lt=cap)
        changed = gauge.update(value=F("value") + 1, observed_at=now)
    else:
        changed = gauge.filter(value__gt=0).update(value=F("value") - 1, observed_at=now)
    value = UsageGauge.objects.get(environment=environment, metric=metric).value
    if not changed:
        return GaugeChange(not increment, value, cap)
    _gauge_reading(environment=environment, metric=metric, value=value, now=now)
    return GaugeChange(True, value, cap)


def _gauge_reading(*, environment: Environment, metric: str, value: int, now: dt.datetime) -> None:
    """A WCP change is a reading too (append-only record, rollup max/last)."""
    hour, late = counting.attribute(now, closed_through=closed_through_for(environment=environment))
    source = ReadingSource.WCP_SEATS if metric == "seats" else ReadingSource.WCP_TENANTS
    UsageReading.objects.create(
        environment=environment,
        source=source,
        instance="wcp",
        observed_at=now,
        received_at=now,
        attributed_hour=hour,
        late=late,
        **{metric: value},
    )
    delta = RollupDelta()
    delta.add_gauge(value, now)
    rollups_apply(environment=environment, deltas={(metric, hour): delta})


# --- WCP telemetry -------------------------------------------------------------------------
TELEMETRY_INSTANCE = "telemetry"


def telemetry_readings(
    *, logs_created_on: Sequence[dt.datetime], batch_digest: str
) -> list[Reading]:
    """A telemetry batch as cumulative readings: one series per (batch, hour) whose value
    is the number of the batch's logs in that hour. Sending the same batch again is then
    a duplicate of the same series, and the counting rules count it once."""
    per_hour: dict[dt.datetime, list[dt.datetime]] = {}
    for at in logs_created_on:
        per_hour.setdefault(counting.floor_hour(at), []).append(at)
    return [
        Reading(
            instance=TELEMETRY_INSTANCE,
            boot=f"{batch_digest}:{hour:%Y%m%d%H}",
            observed_at=max(times),
            api_calls=len(times),
        )
        for hour, times in sorted(per_hour.items())
    ]


def telemetry_digest(logs: Sequence[dict]) -> str:
    canonical = json.dumps(logs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


# --- repair ------------------------------------------------------------------------------------
@transaction.atomic
def rollups_repair(*, start: dt.datetime | None = None, end: dt.datetime | None = None) -> int:
    """Make the rollups of [start, end) what the raw readings say; return rows fixed."""
    from metering.selectors import day_differences, rollup_differences, whole_days

    differences = rollup_differences(start=start, end=end)
    touched_days = {
        (env_id, hour.astimezone(dt.UTC).date()) for (env_id, _m, hour), *_ in differences
    }
    for (env_id, metric, hour), _stored, expected in differences:
        if expected is None:
            UsageRollup.objects.filter(environment_id=env_id, metric=metric, hour=hour).delete()
            continue
        UsageRollup.objects.update_or_create(
            environment_id=env_id,
            metric=metric,
            hour=hour,
            defaults={
                "total": expected.total,
                "late_total": expected.late_total,
                "peak": expected.peak,
                "last": expected.last,
                "last_observed_at": expected.last_observed_at,
                "readings": expected.readings,
            },
        )
    # Days from their (now repaired) hours; also any day that disagreed with its hours.
    first, last = whole_days(start, end)
    touched_days |= {(env, day) for (env, _m, day), *_ in day_differences(first=first, last=last)}
    days_rebuild(touched_days)
    return len(differences)


def days_rebuild(env_days: set[tuple[int, dt.date]]) -> None:
    """Recompute the `UsageDay` rows of these (environment, day) pairs from their hours."""
    from metering.selectors import days_from_hours

    if not env_days:
        return
    which = _any_of([Q(environment_id=e, day=d) for e, d in sorted(env_days)])
    UsageDay.objects.filter(which).delete()
    expected = days_from_hours(env_days=env_days)
    UsageDay.objects.bulk_create(
        [
            UsageDay(environment_id=e, metric=m, day=d, total=total, peak=peak)
            for (e, m, d), (total, peak) in sorted(expected.items())
        ]
    )
