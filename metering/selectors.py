"""Reads of metering: an environment's usage per bucket, and rollups as the raw readings
say they should be (for `recompute_usage`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, Q, Sum
from django.db.models.functions import TruncDate

from accounts.models import API_CALLS, SEATS, TENANTS, Environment
from metering.counting import HOUR, floor_hour
from metering.models import UsageDay, UsageReading, UsageRollup
from metering.readings import Invalid

MAX_BUCKETS = {"hour": 24 * 31, "day": 400}


@dataclass
class RollupDelta:
    """Changes one batch makes to one (metric, hour) rollup."""

    total: int = 0
    late_total: int = 0
    peak: int | None = None
    last: int | None = None
    last_observed_at: dt.datetime | None = None
    readings: int = 0

    def add_count(self, counted: int, late: bool, observed_at: dt.datetime) -> None:
        self.total += counted
        if late:
            self.late_total += counted
        self.readings += 1
        if self.last_observed_at is None or observed_at >= self.last_observed_at:
            self.last_observed_at = observed_at

    def add_gauge(self, value: int, observed_at: dt.datetime) -> None:
        self.peak = value if self.peak is None else max(self.peak, value)
        self.readings += 1
        if self.last_observed_at is None or observed_at >= self.last_observed_at:
            self.last = value
            self.last_observed_at = observed_at


def _floor(at: dt.datetime, granularity: str) -> dt.datetime:
    hour = floor_hour(at)
    return hour.replace(hour=0) if granularity == "day" else hour


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Gauge:
    peak: int | None = None
    last: int | None = None
    last_hour: dt.datetime | None = None

    def add(self, peak: int | None, last: int | None, hour: dt.datetime) -> None:
        if peak is not None:
            self.peak = peak if self.peak is None else max(self.peak, peak)
        if last is not None and (self.last_hour is None or hour >= self.last_hour):
            self.last, self.last_hour = last, hour

    def body(self) -> dict[str, int | None]:
        return {"max": self.peak, "last": self.last}


def usage_summary(
    *, environment: Environment, start: dt.datetime, end: dt.datetime, granularity: str
) -> dict[str, Any]:
    """Counted API calls per bucket, seats and tenants (max and last) per bucket, and
    totals, from the hourly rollups. Buckets cover [start, end) floored to the bucket."""
    if end <= start:
        raise Invalid("from must be before to.", "bad_range", field="from")
    step = dt.timedelta(days=1) if granularity == "day" else HOUR
    first = _floor(start, granularity)
    count = int((end - first) / step) + (0 if (end - first) % step == dt.timedelta(0) else 1)
    if count > MAX_BUCKETS[granularity]:
        raise Invalid(
            f"At most {MAX_BUCKETS[granularity]} {granularity} buckets per request.",
            "range_too_long",
            field="to",
        )
    calls = dict.fromkeys(range(count), 0)
    gauges = {m: [_Gauge() for _ in range(count)] for m in (SEATS, TENANTS)}
    total_calls, totals = 0, {SEATS: _Gauge(), TENANTS: _Gauge()}
    rows = UsageRollup.objects.filter(
        environment=environment, hour__gte=first, hour__lt=first + step * count
    ).values_list("metric", "hour", "total", "peak", "last")
    for metric, hour, total, peak, last in rows:
        index = int((hour - first) / step)
        if metric == API_CALLS:
            calls[index] += total
            total_calls += total
        elif metric in gauges:
            gauges[metric][index].add(peak, last, hour)
            totals[metric].add(peak, last, hour)
    buckets = [
        {
            "start": _iso(first + step * i),
            "api_calls": calls[i],
            "seats": gauges[SEATS][i].body(),
            "tenants": gauges[TENANTS][i].body(),
        }
        for i in range(count)
    ]
    return {
        "environment": {
            "id": environment.pk,
            "name": environment.name,
            "kind": environment.kind,
        },
        "from": _iso(first),
        "to": _iso(first + step * count),
        "granularity": granularity,
        "buckets": buckets,
        "totals": {
            "api_calls": total_calls,
            "seats": totals[SEATS].body(),
            "tenants": totals[TENANTS].body(),
        },
    }


RollupKey = tuple[int, str, dt.datetime]  # (environment id, metric, hour)


def rollups_from_readings(
    *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[RollupKey, RollupDelta]:
    """Hourly rollups rebuilt from the raw readings alone (rule 6)."""
    readings = UsageReading.objects.all()
    if start is not None:
        readings = readings.filter(attributed_hour__gte=start)
    if end is not None:
        readings = readings.filter(attributed_hour__lt=end)
    expected: dict[RollupKey, RollupDelta] = {}
    rows = readings.order_by("environment_id", "attributed_hour", "id").values_list(
        "environment_id",
        "attributed_hour",
        "observed_at",
        "received_at",
        "api_calls",
        "seats",
        "tenants",
        "counted_api_calls",
        "late",
    )
    for env_id, hour, observed, received, api_calls, seats, tenants, counted, late in rows.iterator(
        chunk_size=5000
    ):
        at = observed or received
        if api_calls is not None:
            expected.setdefault((env_id, API_CALLS, hour), RollupDelta()).add_count(
                counted, late, at
            )
        for metric, value in ((SEATS, seats), (TENANTS, tenants)):
            if value is not None:
                expected.setdefault((env_id, metric, hour), RollupDelta()).add_gauge(value, at)
    return expected


def rollups_stored(
    *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[RollupKey, RollupDelta]:
    query = Q()
    if start is not None:
        query &= Q(hour__gte=start)
    if end is not None:
        query &= Q(hour__lt=end)
    return {
        (env_id, metric, hour): RollupDelta(
            total=total, late_total=late, peak=peak, last=last, readings=readings
        )
        for env_id, metric, hour, total, late, peak, last, readings in UsageRollup.objects.filter(
            query
        ).values_list(
            "environment_id", "metric", "hour", "total", "late_total", "peak", "last", "readings"
        )
    }


def rollup_differences(
    *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[tuple[RollupKey, RollupDelta | None, RollupDelta | None]]:
    """(key, stored, expected) for every rollup whose stored figures differ from what
    the readings say; a missing side is None."""
    expected = rollups_from_readings(start=start, end=end)
    stored = rollups_stored(start=start, end=end)
    out = []
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key), stored.get(key)
        if want is None and have is not None and have.total == 0 and have.readings == 0:
            continue  # an empty row (a placeholder) says nothing
        if _figures(want) != _figures(have):
            out.append((key, have, want))
    return out


def _figures(d: RollupDelta | None) -> tuple | None:
    return None if d is None else (d.total, d.late_total, d.peak, d.last, d.readings)


DayKey = tuple[int, str, dt.date]  # (environment id, metric, UTC day)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def whole_days(
    start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.date | None, dt.date | None]:
    """The first and last UTC days lying wholly inside [start, end) (None: unbounded)."""
    first = last = None
    if start is not None:
        first = start.astimezone(dt.UTC).date()
        if _midnight(first) < start:
            first += dt.timedelta(days=1)
    if end is not None:
        last = end.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return first, last


def days_from_hours(
    *,
    env_days: set[tuple[int, dt.date]] | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> dict[DayKey, tuple[int, int | None]]:
    """What the `UsageDay` rows should hold, from the hourly rollups: for the given
    (environment, day) pairs, or for the days first..last (inclusive, None: unbounded)."""
    query = Q()
    if env_days is not None:
        query = Q(pk__in=[])
        for env_id, day in env_days:
            query |= Q(
                environment_id=env_id,
                hour__gte=_midnight(day),
                hour__lt=_midnight(day + dt.timedelta(days=1)),
            )
    if first is not None:
        query &= Q(hour__gte=_midnight(first))
    if last is not None:
        query &= Q(hour__lt=_midnight(last + dt.timedelta(days=1)))
    rows = (
        UsageRollup.objects.filter(query)
        .annotate(day=TruncDate("hour", tzinfo=dt.UTC))
        .values("environment_id", "metric", "day")
        .annotate(sum_total=Sum("total"), max_peak=Max("peak"))
        .values_list("environment_id", "metric", "day", "sum_total", "max_peak")
        .order_by()
    )
    return {(e, m, d): (int(total or 0), peak) for e, m, d, total, peak in rows}


def day_differences(
    *, first: dt.date | None = None, last: dt.date | None = None
) -> list[tuple[DayKey, tuple[int, int | None] | None, tuple[int, int | None] | None]]:
    """(key, stored, expected) for every day row of first..last that differs from the sum
    and max of its hours; a missing side is None."""
    expected = days_from_hours(first=first, last=last)
    query = Q()
    if first is not None:
        query &= Q(day__gte=first)
    if last is not None:
        query &= Q(day__lte=last)
    stored = {
        (e, m, d): (total, peak)
        for e, m, d, total, peak in UsageDay.objects.filter(query).values_list(
            "environment_id", "metric", "day", "total", "peak"
        )
    }
    out = []
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key), stored.get(key)
        empty = (0, None)
        if (want or empty) != (have or empty):
            out.append((key, have, want))
    return out
