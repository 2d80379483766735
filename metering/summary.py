"""Reads for the staff console: an organization's period at a glance, and the usage of
the environments on one admin page. Each costs a fixed number of queries, whatever the
number of environments, and reads only the daily rollups (`UsageDay`) of the period.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from accounts import periods
from accounts.models import (
    API_CALLS,
    DEVELOPER_SEATS,
    NONPROD_DAILY_API_CALLS,
    SEATS,
    TENANTS,
    Contract,
    ContractStatus,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    EnvironmentStatus,
    Organization,
)
from metering.compliance.models import FlagLevel, Notification, NotificationStatus, OverageFlag
from metering.models import UsageDay, UsageGauge, UsageSeries

QUOTA_KINDS = (EnvironmentKind.PRODUCTION, EnvironmentKind.CICD)
NONPROD_KINDS = (EnvironmentKind.CICD, EnvironmentKind.PERSONAL)
CHART_DAYS = 90
FORECAST_DAYS = 7


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class MetricLine:
    metric: str
    used: int
    limit: int | None
    cap: int | None
    policy: str
    where: str = ""  # the environment with the peak, for per-environment metrics

    @property
    def percent(self) -> int | None:
        if not self.limit:
            return None
        return math.floor(100 * self.used / self.limit)


@dataclass(frozen=True)
class Forecast:
    rate_per_day: int
    projected: int
    crosses_on: dt.date | None  # when the period's API-call limit will be reached


@dataclass(frozen=True)
class Reporting:
    last_report: dt.datetime | None
    status: str  # "reporting", "gap" (silent too long), "never", "not watched"

    @property
    def label(self) -> str:
        if self.status == "gap" and self.last_report is not None:
            hours = int((timezone.now() - self.last_report).total_seconds() // 3600)
            return f"gap: silent {hours} h"
        return self.status


@dataclass
class OrganizationSummary:
    contract: Contract | None
    period: periods.Period | None
    lines: list[MetricLine] = field(default_factory=list)
    forecast: Forecast | None = None
    open_flags: list[OverageFlag] = field(default_factory=list)
    gaps: list[tuple[Environment, Reporting]] = field(default_factory=list)
    daily_calls: list[tuple[dt.date, int]] = field(default_factory=list)


def reporting_status(
    environment: Environment, last_report: dt.datetime | None, at: dt.datetime
) -> Reporting:
    """As the gap job sees it: watched are enabled production and CI/CD environments."""
    watched = environment.status == EnvironmentStatus.ENABLED and environment.kind in QUOTA_KINDS
    if last_report is None:
        return Reporting(None, "never" if watched else "not watched")
    if not watched:
        return Reporting(last_report, "not watched")
    silent = at - last_report > dt.timedelta(hours=settings.REPORTING_GAP_HOURS)
    return Reporting(last_report, "gap" if silent else "reporting")


def _policy_words(contract: Contract, metric: str) -> str:
    mode, factor = contract.policy_for(metric)
    if contract.limit_for(metric) is None:
        return "unlimited"
    if mode == "block":
        return "blocked beyond the limit"
    if mode == "allow_up_to":
        return f"allowed up to {factor}x, then blocked"
    return "allowed and flagged"


def organization_summary(
    *, organization: Organization, at: dt.datetime | None = None
) -> OrganizationSummary:
    at = at or timezone.now()
    today = at.astimezone(dt.UTC).date()
    contract = (
        Contract.objects.filter(
            organization=organization,
            status=ContractStatus.ACTIVE,
            starts_on__lte=today,
            ends_on__gt=today,
        )
        .order_by("-starts_on")
        .first()
    )
    environments = list(
        Environment.objects.filter(project__organization=organization).select_related("project")
    )
    by_id = {e.pk: e for e in environments}
    chart_start = today - dt.timedelta(days=CHART_DAYS - 1)
    period = contract.period_for(at) if contract else None
    first_day = min(chart_start, period.start.date()) if period else chart_start

    # One read of the days that matter: the chart's 90 and the period's.
    days = (
        UsageDay.objects.filter(environment_id__in=by_id, day__gte=first_day, day__lte=today)
        .values_list("environment_id", "metric", "day", "total", "peak")
        .order_by()
    )
    per_day: dict[dt.date, int] = defaultdict(int)
    period_calls = 0
    peaks: dict[tuple[str, int], int] = {}
    nonprod_today: dict[int, int] = {}
    for env_id, metric, day, total, peak in days:
        kind = by_id[env_id].kind
        if metric == API_CALLS:
            if day >= chart_start:
                per_day[day] += total
            if period and period.start.date() <= day < period.end.date() and kind in QUOTA_KINDS:
                period_calls += total
            if day == today and kind in NONPROD_KINDS:
                nonprod_today[env_id] = total
        elif peak is not None and period and period.start.date() <= day:
            peaks[(metric, env_id)] = max(peaks.get((metric, env_id), 0), peak)
    for env_id, metric, value in UsageGauge.objects.filter(environment_id__in=by_id).values_list(
        "environment_id", "metric", "value"
    ):
        peaks[(metric, env_id)] = max(peaks.get((metric, env_id), 0), value)

    summary = OrganizationSummary(contract=contract, period=period)
    summary.daily_calls = [
        (chart_start + dt.timedelta(days=i), per_day.get(chart_start + dt.timedelta(days=i), 0))
        for i in range(CHART_DAYS)
    ]
    if contract is not None and period is not None:

        def line(metric: str, used: int, where: str = "") -> MetricLine:
            return MetricLine(
                metric,
                used,
                contract.limit_for(metric),
                contract.cap_for(metric),
                _policy_words(contract, metric),
                where,
            )

        def peak_of(metric: str) -> MetricLine:
            values: list[tuple[int, Environment | None]] = [
                (v, by_id[e]) for (m, e), v in peaks.items() if m == metric
            ] or [(0, None)]
            value, environment = max(values, key=lambda p: p[0])
            return line(metric, value, environment.name if environment else "")

        summary.lines = [
            line(API_CALLS, period_calls),
            peak_of(SEATS),
            peak_of(TENANTS),
            line(
                DEVELOPER_SEATS,
                DeveloperSeat.objects.filter(
                    project__organization=organization, freed_at__isnull=True
                ).count(),
            ),
        ]
        if nonprod_today:
            env_id = max(nonprod_today, key=nonprod_today.__getitem__)
            summary.lines.append(
                line(NONPROD_DAILY_API_CALLS, nonprod_today[env_id], by_id[env_id].name)
            )
        else:
            summary.lines.append(line(NONPROD_DAILY_API_CALLS, 0))
        summary.forecast = _forecast(
            used=period_calls,
            limit=contract.limit_for(API_CALLS),
            recent=[total for day, total in summary.daily_calls[-FORECAST_DAYS:]],
            today=today,
            period_end=period.end.date(),
        )

    summary.open_flags = list(
        OverageFlag.objects.filter(
            organization=organization, resolved_at__isnull=True, waived_at__isnull=True
        )
        .select_related("environment")
        .order_by("-raised_at")[:20]
    )
    last = last_reports(environment_ids=list(by_id))
    for environment in environments:
        reporting = reporting_status(environment, last.get(environment.pk), at)
        if reporting.status == "gap":
            summary.gaps.append((environment, reporting))
    return summary


def _forecast(
    *, used: int, limit: int | None, recent: list[int], today: dt.date, period_end: dt.date
) -> Forecast:
    """At the last seven days' rate (today counted as a whole day: a low-side estimate
    early in the day, never an alarm from a spike)."""
    rate = sum(recent) // max(1, len(recent))
    days_left = max(0, (period_end - today).days)
    projected = used + rate * days_left
    crosses_on = None
    if limit is not None and rate > 0 and projected >= limit:
        crosses_on = today + dt.timedelta(days=max(0, math.ceil((limit - used) / rate)))
    elif limit is not None and used >= limit:
        crosses_on = today
    return Forecast(rate_per_day=rate, projected=projected, crosses_on=crosses_on)


def last_reports(*, environment_ids: list[int]) -> dict[int, dt.datetime]:
    """The latest receipt per environment (served by usage_series_env_seen)."""
    return dict(
        UsageSeries.objects.filter(environment_id__in=environment_ids)
        .values("environment_id")
        .annotate(last=Max("last_received_at"))
        .values_list("environment_id", "last")
        .order_by()
    )


@dataclass(frozen=True)
class EnvironmentUsage:
    reporting: Reporting
    period_calls: int | None  # None: no contract in force
    seats: int | None
    tenants: int | None


def environments_usage(
    *, environments: list[Environment], at: dt.datetime | None = None
) -> dict[int, EnvironmentUsage]:
    """For one admin page of environments: last report, reporting status, this period's
    API calls (each organization's own period) and current gauges, in four queries."""
    at = at or timezone.now()
    today = at.astimezone(dt.UTC).date()
    ids = [e.pk for e in environments]
    org_of = {e.pk: e.project.organization_id for e in environments}
    contracts = {
        c.organization_id: c
        for c in Contract.objects.filter(
            organization_id__in=set(org_of.values()),
            status=ContractStatus.ACTIVE,
            starts_on__lte=today,
            ends_on__gt=today,
        )
    }
    window: dict[int, periods.Period] = {
        env_id: contracts[org].period_for(at) for env_id, org in org_of.items() if org in contracts
    }
    calls: dict[int, int] = {}
    if window:
        query = Q(pk__in=[])
        for env_id, period in window.items():
            query |= Q(
                environment_id=env_id, day__gte=period.start.date(), day__lt=period.end.date()
            )
        calls = dict(
            UsageDay.objects.filter(query, metric=API_CALLS)
            .values("environment_id")
            .annotate(n=Sum("total"))
            .values_list("environment_id", "n")
            .order_by()
        )
    gauges: dict[tuple[int, str], int] = {
        (e, m): v
        for e, m, v in UsageGauge.objects.filter(environment_id__in=ids).values_list(
            "environment_id", "metric", "value"
        )
    }
    last = last_reports(environment_ids=ids)
    return {
        e.pk: EnvironmentUsage(
            reporting=reporting_status(e, last.get(e.pk), at),
            period_calls=calls.get(e.pk, 0) if e.pk in window else None,
            seats=gauges.get((e.pk, SEATS)),
            tenants=gauges.get((e.pk, TENANTS)),
        )
        for e in environments
    }


@dataclass(frozen=True)
class ConsoleHome:
    flags_by_level: list[tuple[str, str, int]]
    unacknowledged: int
    gaps: int
    ending: int
    failed_notifications: int


def console_home(*, at: dt.datetime | None = None) -> ConsoleHome:
    """The admin home's counts: four aggregate queries over open flags, contracts and
    the outbox, each answered from an index (docs/decisions/0010-admin-at-scale.md)."""
    at = at or timezone.now()
    today = at.astimezone(dt.UTC).date()
    open_flags = OverageFlag.objects.filter(resolved_at__isnull=True, waived_at__isnull=True)
    counts = {
        (level, acknowledged): n
        for level, acknowledged, n in open_flags.values("level")
        .annotate(acknowledged=Q(acknowledged_at__isnull=False), n=Count("id"))
        .values_list("level", "acknowledged", "n")
        .order_by()
    }
    labels = dict(FlagLevel.choices)
    by_level: list[tuple[str, str, int]] = [
        (level, labels[level], sum(n for (lv, _), n in counts.items() if lv == level))
        for level in (FlagLevel.OVER_CAP, FlagLevel.EXCEEDED, FlagLevel.WARNING)
        if any(lv == level for lv, _ in counts)
    ]
    return ConsoleHome(
        flags_by_level=by_level,
        unacknowledged=sum(
            n for (lv, ack), n in counts.items() if not ack and lv != FlagLevel.REPORTING_GAP
        ),
        gaps=sum(n for (lv, _), n in counts.items() if lv == FlagLevel.REPORTING_GAP),
        ending=Contract.objects.filter(
            status=ContractStatus.ACTIVE,
            starts_on__lte=today,
            ends_on__gt=today,
            ends_on__lte=today + dt.timedelta(days=30),
        ).count(),
        failed_notifications=Notification.objects.filter(status=NotificationStatus.FAILED).count(),
    )
