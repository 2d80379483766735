"""Closing billing periods: freeze a true-up per contract and metric, then advance the
organization's `UsageClosedThrough` so later increments go to the next open period.

A period is closed once it ended more than PERIOD_CLOSE_GRACE_HOURS ago. Work is grouped
by window (start, end): windows depend on anchor day and month, not on the number of
contracts, so the number of queries is bounded by the number of distinct windows.

What a true-up holds, per metric:
- api_calls: usage = the period's calls (production + CI/CD), peak = the busiest UTC day,
  overage = max(0, usage - limit).
- seats, tenants: usage = peak = the highest per-environment peak of the period (limits are
  per environment), overage = the sum over environments of max(0, peak - limit).
- developer_seats: usage = peak = seats held at closing time; overage = max(0, usage - limit).
- nonprod_daily_api_calls: usage = the period's non-production calls, peak = the busiest
  environment-day, overage = the sum over environment-days of max(0, calls - limit).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDay
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
)
from metering.compliance.evaluation import NONPROD_KINDS, QUOTA_KINDS
from metering.compliance.flags import JobReport
from metering.compliance.models import TrueUp
from metering.models import UsageClosedThrough, UsageGauge, UsageRollup

MAX_WINDOWS_PER_RUN = 100


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def closable_windows(
    contract: Contract, closed_through: dt.datetime | None, ready_before: dt.datetime
) -> list[periods.Period]:
    """The contract's periods (clipped to its span) that end by `ready_before` and are
    not closed yet."""
    end = _midnight(contract.ends_on)
    cursor = max(_midnight(contract.starts_on), closed_through or _midnight(contract.starts_on))
    out = []
    while cursor < end:
        period = contract.period_for(cursor)
        window = periods.Period(max(period.start, cursor), min(period.end, end))
        if window.end > ready_before:
            break
        out.append(window)
        cursor = window.end
    return out


def close_periods(*, at: dt.datetime | None = None) -> JobReport:
    at = at or timezone.now()
    report = JobReport(job="close-periods")
    ready_before = at - dt.timedelta(hours=settings.PERIOD_CLOSE_GRACE_HOURS)
    closed = dict(UsageClosedThrough.objects.values_list("organization_id", "closed_through"))
    # Active contracts, and ended or superseded ones that ran their full term (a contract
    # superseded early has no record of when it stopped: its successor's periods count).
    candidates = (
        Contract.objects.filter(starts_on__lt=ready_before.date())
        .filter(Q(status=ContractStatus.ACTIVE) | Q(ends_on__lte=ready_before.date()))
        .select_related("organization")
    )
    windows: dict[periods.Period, list[Contract]] = defaultdict(list)
    for contract in candidates:
        if (mark := closed.get(contract.organization_id)) and _midnight(contract.ends_on) <= mark:
            continue
        for window in closable_windows(
            contract, closed.get(contract.organization_id), ready_before
        ):
            windows[window].append(contract)
    todo = sorted(windows, key=lambda w: (w.start, w.end))[:MAX_WINDOWS_PER_RUN]
    rows: list[TrueUp] = []
    advance: dict[int, dt.datetime] = {}
    for window in todo:
        contracts = windows[window]
        rows += _true_ups(window, contracts, at)
        for c in contracts:
            advance[c.organization_id] = max(advance.get(c.organization_id, window.end), window.end)
    with transaction.atomic():
        # The unique (contract, period_start, metric) key: closing twice inserts nothing.
        before = TrueUp.objects.count()
        TrueUp.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        created = TrueUp.objects.count() - before
        UsageClosedThrough.objects.bulk_create(
            [
                UsageClosedThrough(organization_id=o, closed_through=t, updated_at=at)
                for o, t in advance.items()
            ],
            ignore_conflicts=True,
        )
        by_mark: dict[dt.datetime, list[int]] = defaultdict(list)
        for org_id, mark in advance.items():
            by_mark[mark].append(org_id)
        for mark, org_ids in by_mark.items():
            # Conditional UPDATE: the mark only ever moves forward, whoever runs first.
            UsageClosedThrough.objects.filter(
                organization_id__in=org_ids, closed_through__lt=mark
            ).update(closed_through=mark, updated_at=at)
    report.details.update(
        {"periods_closed": sum(len(windows[w]) for w in todo), "true_ups_created": created}
    )
    return report


def _true_ups(window: periods.Period, contracts: list[Contract], at: dt.datetime) -> list[TrueUp]:
    by_org = {c.organization_id: c for c in contracts}
    orgs = list(by_org)
    in_window = Q(hour__gte=window.start, hour__lt=window.end)
    org_field = "environment__project__organization_id"
    api_days: dict[int, list[int]] = defaultdict(list)
    for org_id, _day, total in (
        UsageRollup.objects.filter(in_window, metric=API_CALLS, environment__kind__in=QUOTA_KINDS)
        .filter(**{f"{org_field}__in": orgs})
        .annotate(day=TruncDay("hour"))
        .values(org_field, "day")
        .annotate(total=Sum("total"))
        .values_list(org_field, "day", "total")
    ):
        api_days[org_id].append(total or 0)
    nonprod_days: dict[int, list[int]] = defaultdict(list)
    for org_id, _env, _day, total in (
        UsageRollup.objects.filter(in_window, metric=API_CALLS, environment__kind__in=NONPROD_KINDS)
        .filter(**{f"{org_field}__in": orgs})
        .annotate(day=TruncDay("hour"))
        .values(org_field, "environment_id", "day")
        .annotate(total=Sum("total"))
        .values_list(org_field, "environment_id", "day", "total")
    ):
        nonprod_days[org_id].append(total or 0)
    gauge_peaks: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for org_id, env_id, metric, peak in (
        UsageRollup.objects.filter(in_window, metric__in=(SEATS, TENANTS))
        .filter(**{f"{org_field}__in": orgs})
        .values(org_field, "environment_id", "metric")
        .annotate(peak=Max("peak"))
        .values_list(org_field, "environment_id", "metric", "peak")
    ):
        gauge_peaks[(org_id, metric)][env_id] = peak or 0
    # A gauge unchanged since before the window's end held its value through the window.
    for org_id, env_id, metric, value in UsageGauge.objects.filter(
        observed_at__lt=window.end, **{f"{org_field}__in": orgs}
    ).values_list(org_field, "environment_id", "metric", "value"):
        peaks = gauge_peaks[(org_id, metric)]
        peaks[env_id] = max(peaks.get(env_id, 0), value)
    dev_seats = dict(
        DeveloperSeat.objects.filter(freed_at__isnull=True, membership__organization_id__in=orgs)
        .values("membership__organization_id")
        .annotate(n=Count("id"))
        .values_list("membership__organization_id", "n")
    )

    rows = []
    for org_id, c in by_org.items():

        def row(metric: str, usage: int, peak: int, overage: int, c: Contract = c) -> TrueUp:
            return TrueUp(
                contract=c,
                organization_id=c.organization_id,
                metric=metric,
                period_start=window.start,
                period_end=window.end,
                usage=usage,
                limit=c.limit_for(metric),
                peak=peak,
                overage=max(0, overage),
                closed_at=at,
            )

        def over(value: int, metric: str, c: Contract = c) -> int:
            limit = c.limit_for(metric)
            return 0 if limit is None else max(0, value - limit)

        days = api_days.get(org_id, [])
        total = sum(days)
        rows.append(row(API_CALLS, total, max(days, default=0), over(total, API_CALLS)))
        for metric in (SEATS, TENANTS):
            env_peaks = gauge_peaks.get((org_id, metric), {}).values()
            top = max(env_peaks, default=0)
            rows.append(row(metric, top, top, sum(over(p, metric) for p in env_peaks)))
        n = dev_seats.get(org_id, 0)
        rows.append(row(DEVELOPER_SEATS, n, n, over(n, DEVELOPER_SEATS)))
        days = nonprod_days.get(org_id, [])
        rows.append(
            row(
                NONPROD_DAILY_API_CALLS,
                sum(days),
                max(days, default=0),
                sum(over(d, NONPROD_DAILY_API_CALLS) for d in days),
            )
        )
    return rows
