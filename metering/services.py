"""Writes of metering beside ingest's hot path (`metering.ingest.record`): WCP
seat/tenant changes, telemetry batches as readings, and rollup repair. Plain functions,
keyword-only arguments.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Q

from accounts.models import Environment
from accounts.selectors.organizations import contract_active
from metering import counting
from metering.counting import Reading
from metering.ingest.postgres import rules
from metering.models import GAUGE_METRICS, ReadingSource, UsageDay, UsageGauge, UsageRollup


def _any_of(filters: list[Q]) -> Q:
    return functools.reduce(operator.or_, filters)


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


# The reading a WCP change is, and its hour's rollup and day, through the rules' SQL: the
# attribution hour (moved out of closed periods) and the merges every writer of usage
# shares. After the gauge's row: the lock order of every writer (metering.ingest).
_HOUR = "date_trunc('hour', %(now)s::timestamptz, 'UTC')"
_CLOSED = (
    "(SELECT ct.closed_through FROM metering_usageclosedthrough ct"
    " WHERE ct.organization_id = %(organization)s)"
)
_GAUGE_READING = f"""
WITH h AS (
    SELECT {rules.ATTRIBUTED_HOUR.format(hour=_HOUR, closed=_CLOSED)} AS hour,
        {rules.LATE.format(hour=_HOUR, closed=_CLOSED)} AS late
),
rd AS (
    INSERT INTO metering_usagereading (
        environment_id, series_id, source, instance, boot, observed_at, received_at,
        attributed_hour, api_calls, seats, tenants, counted_api_calls, duplicate, reset, late)
    SELECT %(env)s, NULL, %(source)s, 'wcp', '', %(now)s, %(now)s, h.hour, NULL,
        %(seats)s, %(tenants)s, 0, false, false, h.late
      FROM h
    RETURNING 1
),
ru AS (
    INSERT INTO metering_usagerollup AS r (
        environment_id, metric, hour, total, late_total, peak, last, last_observed_at,
        readings)
    SELECT %(env)s, %(metric)s, h.hour, 0, 0, %(value)s, %(value)s, %(now)s, 1 FROM h
    {rules.ROLLUP_MERGE}
    RETURNING 1
),
du AS (
    INSERT INTO metering_usageday AS d (environment_id, metric, day, total, peak)
    SELECT %(env)s, %(metric)s, {rules.DAY_OF_HOUR.format(hour="h.hour")}, 0, %(value)s FROM h
    {rules.DAY_MERGE}
    RETURNING 1
)
SELECT (SELECT count(*) FROM rd), (SELECT count(*) FROM ru), (SELECT count(*) FROM du)
"""


def _gauge_reading(*, environment: Environment, metric: str, value: int, now: dt.datetime) -> None:
    """A WCP change is a reading too (append-only record, rollup max/last, day peak)."""
    source = ReadingSource.WCP_SEATS if metric == "seats" else ReadingSource.WCP_TENANTS
    with connection.cursor() as cursor:
        cursor.execute(
            _GAUGE_READING,
            {
                "env": environment.pk,
                "organization": environment.project.organization_id,
                "source": source.value,
                "metric": metric,
                "value": value,
                "seats": value if metric == "seats" else None,
                "tenants": value if metric == "tenants" else None,
                "now": now,
            },
        )


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
