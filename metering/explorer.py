"""Reads for the usage explorer: what was counted per environment and hour or day, per
instance, and the raw readings behind one hour (the evidence of a dispute). Every read is
scoped by the organization first, so no environment id from a URL can reach another
customer's rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Max, Min, Q, QuerySet, Sum

from accounts.models import API_CALLS, SEATS, TENANTS, Environment, Organization
from metering.counting import HOUR
from metering.models import UsageDay, UsageReading, UsageRollup

MAX_ROWS = {"hour": 24 * 31, "day": 400}
MAX_READINGS = 2000


class RangeError(ValueError):
    """A range the explorer cannot show; the message says what to change."""


@dataclass(frozen=True)
class UsageRow:
    bucket: dt.datetime
    environment: Environment
    api_calls: int
    seats: int | None
    tenants: int | None
    readings: int


def environments_of(*, organization: Organization) -> QuerySet[Environment]:
    return (
        Environment.objects.filter(project__organization=organization)
        .select_related("project", "owner")
        .order_by("project__name", "kind", "name")
    )


def check_range(*, start: dt.datetime, end: dt.datetime, granularity: str) -> None:
    if end <= start:
        raise RangeError("The range must end after it starts.")
    step = dt.timedelta(days=1) if granularity == "day" else HOUR
    if (end - start) / step > MAX_ROWS[granularity]:
        raise RangeError(
            f"At most {MAX_ROWS[granularity]} {granularity}s at a time: shorten the range "
            + ("or choose days." if granularity == "hour" else "")
        )


def usage_rows(
    *,
    organization: Organization,
    environments: list[Environment],
    start: dt.datetime,
    end: dt.datetime,
    granularity: str,
) -> list[UsageRow]:
    """One row per environment and bucket that has usage, newest first. One query."""
    check_range(start=start, end=end, granularity=granularity)
    by_id = {e.pk: e for e in environments}
    scope = Q(environment__project__organization=organization, environment_id__in=list(by_id))
    rows: Iterable[tuple[int, dt.date, str, int, int | None]]  # a datetime is a date
    if granularity == "day":
        rows = (
            UsageDay.objects.filter(scope, day__gte=start.date(), day__lt=end.date())
            .values_list("environment_id", "day", "metric", "total", "peak")
            .order_by()
        )
        readings: dict[tuple[int, dt.date], int] = {}
    else:
        rows = (
            UsageRollup.objects.filter(scope, hour__gte=start, hour__lt=end)
            .values_list("environment_id", "hour", "metric", "total", "peak")
            .order_by()
        )
        readings = {}
    table: dict[tuple[int, dt.date], dict[str, int | None]] = {}
    for env_id, bucket, metric, total, peak in rows:
        slot = table.setdefault((env_id, bucket), {})
        if metric == API_CALLS:
            slot[API_CALLS] = int(total or 0)
        else:
            slot[metric] = peak
    if granularity == "hour":
        counts = (
            UsageRollup.objects.filter(scope, hour__gte=start, hour__lt=end, metric=API_CALLS)
            .values_list("environment_id", "hour", "readings")
            .order_by()
        )
        readings = {(e, h): n for e, h, n in counts}
    out = []
    for (env_id, bucket), slot in table.items():
        at = (
            bucket
            if isinstance(bucket, dt.datetime)
            else dt.datetime(bucket.year, bucket.month, bucket.day, tzinfo=dt.UTC)
        )
        out.append(
            UsageRow(
                bucket=at,
                environment=by_id[env_id],
                api_calls=int(slot.get(API_CALLS) or 0),
                seats=slot.get(SEATS),
                tenants=slot.get(TENANTS),
                readings=readings.get((env_id, bucket), 0),
            )
        )
    out.sort(key=lambda r: (r.bucket, r.environment.project.name, r.environment.name), reverse=True)
    return out


@dataclass(frozen=True)
class InstanceRow:
    environment: Environment
    instance: str
    boots: int
    readings: int
    counted: int
    first: dt.datetime
    last: dt.datetime


def usage_by_instance(
    *,
    organization: Organization,
    environments: list[Environment],
    start: dt.datetime,
    end: dt.datetime,
) -> list[InstanceRow]:
    """Counted calls per instance (counter source) over the range, from the raw readings
    (served by the (environment, attributed_hour) index). One query."""
    by_id = {e.pk: e for e in environments}
    rows = (
        UsageReading.objects.filter(
            environment__project__organization=organization,
            environment_id__in=list(by_id),
            attributed_hour__gte=start,
            attributed_hour__lt=end,
        )
        .values("environment_id", "instance")
        .annotate(
            boots=Count("boot", distinct=True),
            n=Count("id"),
            counted=Sum("counted_api_calls"),
            first=Min("attributed_hour"),
            last=Max("attributed_hour"),
        )
        .values_list("environment_id", "instance", "boots", "n", "counted", "first", "last")
        .order_by()
    )
    out = [
        InstanceRow(by_id[e], instance, boots, n, int(counted or 0), first, last)
        for e, instance, boots, n, counted, first, last in rows
    ]
    out.sort(key=lambda r: (-r.counted, r.environment.pk, r.instance))
    return out


def readings_of_hour(
    *, organization: Organization, environment_id: int, hour: dt.datetime
) -> tuple[Environment | None, list[UsageReading]]:
    """The raw readings attributed to one hour of one environment, in arrival order."""
    environment = environments_of(organization=organization).filter(pk=environment_id).first()
    if environment is None:
        return None, []
    readings = list(
        UsageReading.objects.filter(environment=environment, attributed_hour=hour).order_by(
            "received_at", "id"
        )[:MAX_READINGS]
    )
    return environment, readings
