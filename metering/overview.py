"""Reads for the customer dashboard: an organization's usage against its contract.

Set-based: a fixed number of queries whatever the number of projects and environments
(the contract, the environments, two aggregates over the daily rollups, the current
gauges, held developer seats, open flags). bench/dashboard measures it with a year of
hourly data; tests/controlpanel/web/test_dashboard.py pins the count.
"""

from __future__ import annotations

import datetime as dt
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
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Organization,
    OverageMode,
)
from accounts.selectors.organizations import contract_active
from metering.compliance.models import OverageFlag
from metering.models import UsageDay, UsageGauge, UsageSeries

QUOTA_KINDS = (EnvironmentKind.PRODUCTION, EnvironmentKind.CICD)
NONPROD_KINDS = (EnvironmentKind.CICD, EnvironmentKind.PERSONAL)
CHART_DAYS = 90
FORECAST_DAYS = 7

LABELS = {
    API_CALLS: "API calls this period",
    SEATS: "CMS seats (busiest environment)",
    TENANTS: "Tenants (busiest environment)",
    DEVELOPER_SEATS: "Developer seats",
    NONPROD_DAILY_API_CALLS: "Non-production API calls today (busiest environment)",
}
NOUNS = {
    API_CALLS: "API calls",
    SEATS: "CMS seats",
    TENANTS: "tenants",
    DEVELOPER_SEATS: "developer seats",
    NONPROD_DAILY_API_CALLS: "non-production API calls a day",
}


def policy_words(contract: Contract, metric: str) -> str:
    """The overage policy of one metric, as a sentence."""
    limit = contract.limit_for(metric)
    noun = NOUNS[metric]
    if limit is None:
        return f"Unlimited {noun}."
    mode, factor = contract.policy_for(metric)
    if mode == OverageMode.BLOCK:
        return f"Beyond {limit:,} {noun}, new ones are refused."
    if mode == OverageMode.ALLOW_UP_TO:
        cap = contract.cap_for(metric)
        return (
            f"Beyond {limit:,} {noun}, usage is accepted and flagged up to {cap:,} "
            f"({factor:g}x the limit), then refused."
        )
    return f"Beyond {limit:,} {noun}, usage is accepted, flagged and billed as overage."


@dataclass(frozen=True)
class MetricUsage:
    metric: str
    label: str
    used: int
    limit: int | None
    policy: str
    where: str = ""  # the environment that sets the figure, for per-environment metrics

    @property
    def percent(self) -> int | None:
        if not self.limit:
            return None
        return int(self.used * 100 // self.limit)

    @property
    def level(self) -> str:
        """ok below 80 %, warning from 80 %, over from 100 % (the flags' thresholds)."""
        if self.limit is None:
            return "ok"
        if self.used >= max(1, self.limit):
            return "over"
        if self.used * 5 >= max(1, self.limit * 4):
            return "warning"
        return "ok"

    @property
    def bar_percent(self) -> int:
        return min(100, self.percent or 0)


@dataclass(frozen=True)
class Forecast:
    rate_per_day: float
    projected_total: int
    limit: int | None
    crossing: dt.date | None  # the day the limit is (or will be) crossed, if in this period
    crossed: bool  # the limit is already behind us

    @property
    def will_cross(self) -> bool:
        return self.crossing is not None and not self.crossed


@dataclass(frozen=True)
class EnvironmentPeak:
    environment: Environment
    seats_peak: int | None
    seats_now: int | None
    tenants_peak: int | None
    tenants_now: int | None
    calls: int


@dataclass
class Overview:
    organization: Organization
    at: dt.datetime
    contract: Contract | None
    period: periods.Period | None = None
    metrics: list[MetricUsage] = field(default_factory=list)
    daily: list[tuple[dt.date, int]] = field(default_factory=list)
    forecast: Forecast | None = None
    peaks: list[EnvironmentPeak] = field(default_factory=list)
    flags: list[OverageFlag] = field(default_factory=list)
    environments: int = 0

    @property
    def days_left(self) -> int | None:
        if self.period is None:
            return None
        return max(0, (self.period.end - self.at).days)

    @property
    def period_last_day(self) -> dt.date | None:
        return None if self.period is None else (self.period.end - dt.timedelta(days=1)).date()

    @property
    def contract_last_day(self) -> dt.date | None:
        return None if self.contract is None else self.contract.ends_on - dt.timedelta(days=1)

    @property
    def quota(self) -> int | None:
        return None if self.contract is None else self.contract.limit_for(API_CALLS)


def _forecast(
    *,
    daily: dict[dt.date, int],
    used: int,
    limit: int | None,
    period: periods.Period,
    at: dt.datetime,
    starts_on: dt.date,
) -> Forecast:
    """At the last 7 days' rate: calls counted since midnight 6 days ago (or since the
    contract began, if later), over the time elapsed since then, so today's partial day
    counts as the part of a day it is and a new customer's first day is not diluted."""
    today = at.date()
    first = max(today - dt.timedelta(days=FORECAST_DAYS - 1), starts_on)
    since = dt.datetime.combine(first, dt.time(), dt.UTC)
    recent = sum(v for d, v in daily.items() if d >= since.date())
    elapsed_days = max((at - since).total_seconds() / 86400, 1 / 24)
    rate = recent / elapsed_days
    remaining_days = max(0.0, (period.end - at).total_seconds() / 86400)
    projected = int(used + rate * remaining_days)
    crossing: dt.date | None = None
    crossed = False
    if limit is not None:
        if used >= limit:
            crossed = True
            running = 0
            for day in sorted(d for d in daily if d >= period.start.date()):
                running += daily[day]
                if running >= limit:
                    crossing = day
                    break
        elif rate > 0:
            when = at + dt.timedelta(days=(limit - used) / rate)
            if when < period.end:
                crossing = when.date()
    return Forecast(rate, projected, limit, crossing, crossed)


def organization_overview(*, organization: Organization, at: dt.datetime | None = None) -> Overview:
    at = (at or timezone.now()).astimezone(dt.UTC)
    contract = contract_active(organization=organization, at=at)
    overview = Overview(organization=organization, at=at, contract=contract)
    environments = list(
        Environment.objects.filter(project__organization=organization)
        .select_related("project", "owner")
        .order_by("project__name", "kind", "name")
    )
    overview.environments = len(environments)
    if contract is None:
        return overview
    period = contract.period_for(at)
    overview.period = period
    today = at.date()
    chart_start = today - dt.timedelta(days=CHART_DAYS - 1)
    first = min(chart_start, period.start.date())
    # Keyed by the flags' environment_id too: None for organization-wide flags.
    by_id: dict[int | None, Environment] = {e.pk: e for e in environments}

    days = UsageDay.objects.filter(
        environment__project__organization=organization, metric=API_CALLS, day__gte=first
    )
    # Quota environments' calls per day: the chart, the period's total and the forecast.
    daily = dict(
        days.filter(environment__kind__in=QUOTA_KINDS)
        .values("day")
        .annotate(calls=Sum("total"))
        .values_list("day", "calls")
        .order_by()
    )
    overview.daily = [
        (chart_start + dt.timedelta(days=i), int(daily.get(chart_start + dt.timedelta(days=i), 0)))
        for i in range(CHART_DAYS)
    ]
    # Per environment over the period: calls, gauge peaks, and today's calls.
    in_period = Q(day__gte=period.start.date(), day__lt=period.end.date())
    per_env: dict[int, dict[str, int | None]] = {}
    rows = (
        UsageDay.objects.filter(environment__project__organization=organization, day__gte=first)
        .filter(in_period)
        .values("environment_id", "metric")
        .annotate(
            sum_total=Sum("total"),
            max_peak=Max("peak"),
            today_total=Sum("total", filter=Q(day=today)),
        )
        .values_list("environment_id", "metric", "sum_total", "max_peak", "today_total")
        .order_by()
    )
    for env_id, metric, total, peak, today_total in rows:
        slot = per_env.setdefault(env_id, {})
        if metric == API_CALLS:
            slot["calls"] = int(total or 0)
            slot["today"] = int(today_total or 0)
        else:
            slot[f"{metric}_peak"] = peak
    for env_id, metric, value in UsageGauge.objects.filter(
        environment__project__organization=organization
    ).values_list("environment_id", "metric", "value"):
        per_env.setdefault(env_id, {})[f"{metric}_now"] = value
    developer_seats = DeveloperSeat.objects.filter(
        project__organization=organization, freed_at__isnull=True
    ).aggregate(n=Count("id"))["n"]

    used_calls = sum(
        int(per_env.get(e.pk, {}).get("calls") or 0) for e in environments if e.kind in QUOTA_KINDS
    )

    def busiest(key: str, kinds: tuple[str, ...] | None = None) -> tuple[int, str]:
        best, where = 0, ""
        for env in environments:
            if kinds is not None and env.kind not in kinds:
                continue
            value = per_env.get(env.pk, {}).get(key) or 0
            if value > best:
                best, where = int(value), f"{env.project.name} / {env.name}"
        return best, where

    seats, seats_where = busiest(f"{SEATS}_peak")
    tenants, tenants_where = busiest(f"{TENANTS}_peak")
    nonprod, nonprod_where = busiest("today", NONPROD_KINDS)
    figures = [
        (API_CALLS, used_calls, ""),
        (SEATS, seats, seats_where),
        (TENANTS, tenants, tenants_where),
        (DEVELOPER_SEATS, developer_seats, ""),
        (NONPROD_DAILY_API_CALLS, nonprod, nonprod_where),
    ]
    overview.metrics = [
        MetricUsage(
            metric=metric,
            label=LABELS[metric],
            used=used,
            limit=contract.limit_for(metric),
            policy=policy_words(contract, metric),
            where=where,
        )
        for metric, used, where in figures
    ]
    overview.forecast = _forecast(
        daily={d: int(v) for d, v in daily.items()},
        used=used_calls,
        limit=contract.limit_for(API_CALLS),
        period=period,
        at=at,
        starts_on=contract.starts_on,
    )
    overview.peaks = [
        EnvironmentPeak(
            environment=env,
            seats_peak=per_env.get(env.pk, {}).get(f"{SEATS}_peak"),
            seats_now=per_env.get(env.pk, {}).get(f"{SEATS}_now"),
            tenants_peak=per_env.get(env.pk, {}).get(f"{TENANTS}_peak"),
            tenants_now=per_env.get(env.pk, {}).get(f"{TENANTS}_now"),
            calls=int(per_env.get(env.pk, {}).get("calls") or 0),
        )
        for env in environments
    ]
    flags = list(
        OverageFlag.objects.filter(organization=organization, resolved_at__isnull=True).order_by(
            "-raised_at", "-id"
        )
    )
    for flag in flags:
        # The environment from the list above: no query per flag.
        flag.environment_row = by_id.get(flag.environment_id)  # type: ignore[attr-defined]
    overview.flags = flags
    return overview


@dataclass(frozen=True)
class EnvironmentReport:
    last_report: dt.datetime | None
    period_calls: int
    status: str  # never | reporting | silent

    @property
    def label(self) -> str:
        return {
            "never": "Never reported",
            "reporting": "Reporting",
            "silent": "Silent",
        }[self.status]


def environment_reports(
    *, environments: list[Environment], contract: Contract | None, at: dt.datetime
) -> dict[int, EnvironmentReport]:
    """Last report, this period's counted calls and reporting status per environment.
    Two queries whatever the number of environments."""
    ids = [e.pk for e in environments]
    last = dict(
        UsageSeries.objects.filter(environment_id__in=ids)
        .values("environment_id")
        .annotate(last=Max("last_received_at"))
        .values_list("environment_id", "last")
        .order_by()
    )
    calls: dict[int, int] = {}
    if contract is not None:
        period = contract.period_for(at)
        calls = {
            env_id: int(total or 0)
            for env_id, total in UsageDay.objects.filter(
                environment_id__in=ids,
                metric=API_CALLS,
                day__gte=period.start.date(),
                day__lt=period.end.date(),
            )
            .values("environment_id")
            .annotate(sum_total=Sum("total"))
            .values_list("environment_id", "sum_total")
            .order_by()
        }
    silent_after = dt.timedelta(hours=settings.REPORTING_GAP_HOURS)
    out = {}
    for env_id in ids:
        seen = last.get(env_id)
        status = (
            "never" if seen is None else ("silent" if at - seen > silent_after else "reporting")
        )
        out[env_id] = EnvironmentReport(seen, calls.get(env_id, 0), status)
    return out


def project_period_calls(
    *, organization: Organization, contract: Contract | None, at: dt.datetime | None = None
) -> dict[int, int]:
    """This period's counted API calls per project (quota environments). One query."""
    if contract is None:
        return {}
    period = contract.period_for(at or timezone.now())
    return {
        project_id: int(total or 0)
        for project_id, total in UsageDay.objects.filter(
            environment__project__organization=organization,
            environment__kind__in=QUOTA_KINDS,
            metric=API_CALLS,
            day__gte=period.start.date(),
            day__lt=period.end.date(),
        )
        .values("environment__project_id")
        .annotate(sum_total=Sum("total"))
        .values_list("environment__project_id", "sum_total")
        .order_by()
    }
