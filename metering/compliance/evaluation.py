"""Usage against contracts: raise and resolve overage flags, set-based.

One run reads every active contract's current period with a fixed number of queries
(contracts, API calls per contract, gauge peaks and current values per environment,
developer seats, non-production daily calls, existing flags), decides in Python, then
writes the flips in one transaction. Query count does not depend on the number of
contracts (tests/metering/test_evaluation.py pins it).

Levels: `warning` when usage >= 80 % of the limit, `exceeded` at >= 100 %, `over_cap` at
>= the policy's cap (floor(limit x factor), only for `allow_up_to`, where it lies above the
limit; for `block` the cap is the limit itself and `exceeded` says it).

Gauges (seats, tenants per environment; developer seats per organization) raise on the
period's peak and resolve when the current value falls back below the level; a resolved
gauge flag reopens when the current value reaches the level again. API-call flags
(organization-wide, and non-production daily) stand for their period.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
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
    Project,
)
from metering.compliance.flags import (
    FlagKey,
    Flip,
    JobReport,
    WantedFlag,
    new_run_token,
    raise_flags,
    record_flips,
    reopen_flags,
    resolve_flags,
)
from metering.compliance.models import (
    ORGANIZATION_SCOPE,
    FlagLevel,
    OverageFlag,
    environment_scope,
)
from metering.models import UsageDay, UsageGauge

AUTO_RESOLVED = (SEATS, TENANTS, DEVELOPER_SEATS)
QUOTA_KINDS = (EnvironmentKind.PRODUCTION, EnvironmentKind.CICD)
NONPROD_KINDS = (EnvironmentKind.CICD, EnvironmentKind.PERSONAL)


def thresholds(contract: Contract, metric: str) -> tuple[tuple[str, int], ...]:
    """(level, lowest value at that level) for one contract and metric."""
    limit = contract.limit_for(metric)
    if limit is None:
        return ()
    return _thresholds(limit, *contract.policy_for(metric))


@functools.lru_cache(maxsize=4096)
def _thresholds(limit: int, mode: str, factor: Decimal | None) -> tuple[tuple[str, int], ...]:
    # Cached: 10,000 contracts share a few dozen (limit, policy) pairs.
    # ceil(0.8 x limit) in integers; never 0, so an unused zero limit raises nothing.
    out: tuple[tuple[str, int], ...] = (
        (FlagLevel.WARNING.value, max(1, -(-limit * 4 // 5))),
        (FlagLevel.EXCEEDED.value, max(1, limit)),
    )
    cap = periods.policy_cap(limit, mode, factor)
    if cap is not None and cap > limit:
        out += ((FlagLevel.OVER_CAP.value, cap),)
    return out


def _periods_by_anchor(contracts: list[Contract], at: dt.datetime) -> dict[int, periods.Period]:
    """Each anchor day's current period: at most 31, however many contracts."""
    by_day: dict[int, periods.Period] = {}
    for c in contracts:
        if c.starts_on.day not in by_day:
            by_day[c.starts_on.day] = c.period_for(at)
    return by_day


def _usage_in_period(
    *,
    by_day: dict[int, periods.Period],
    at: dt.datetime,
    select: str,
    metrics: tuple[str, ...],
    group: str,
    where: str | None = None,
) -> list[tuple]:
    """One pass over the daily rollups (`UsageDay`, aliased `r`: environment_id, metric,
    day, total, peak) of every active contract's current period. Periods start and end
    at UTC midnight, so a period is a whole number of days.

    Raw SQL because each contract has its own period: a small VALUES table maps anchor
    days to period bounds and is joined once per contract, where an ORM CASE expression
    would be evaluated for every row (measured 50x slower in bench/overage).
    """
    values = ", ".join(["(%s, %s, %s)"] * len(by_day))
    params: list[int | str | dt.date] = []
    for day, period in by_day.items():
        params += [day, period.start.date(), period.end.date()]
    today = at.astimezone(dt.UTC).date()
    earliest = min(p.start for p in by_day.values())
    params += [ContractStatus.ACTIVE.value, today, today]
    # One scan of the period's days (a range of the (metric, day) index, or the table),
    # then a hash join: reading each environment's days through a nested loop costs a
    # random heap visit per row (13 s instead of 0.4 s in bench/overage). `OFFSET 0`
    # keeps PostgreSQL from planning that nested loop, and unlike a MATERIALIZED CTE it
    # streams the rows into the join instead of storing them first (-35 %).
    params += [earliest.date(), *metrics]
    sql = f"""
        WITH periods (anchor, p_start, p_end) AS (VALUES {values}),
        cp AS (
            SELECT c.id, c.organization_id, periods.p_start, periods.p_end
            FROM {Contract._meta.db_table} c JOIN periods
                ON periods.anchor = CAST(EXTRACT(DAY FROM c.starts_on) AS integer)
            WHERE c.status = %s AND c.starts_on <= %s AND c.ends_on > %s
        ),
        r AS NOT MATERIALIZED (
            SELECT environment_id, metric, day, total, peak FROM {UsageDay._meta.db_table}
            WHERE day >= %s AND metric IN ({", ".join(["%s"] * len(metrics))}) OFFSET 0
        )
        SELECT {select}
        FROM cp
        JOIN {Project._meta.db_table} pr ON pr.organization_id = cp.organization_id
        JOIN {Environment._meta.db_table} e ON e.project_id = pr.id
        JOIN r ON r.environment_id = e.id
        WHERE r.day >= cp.p_start AND r.day < cp.p_end {f"AND {where}" if where else ""}
        GROUP BY {group}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _in_force(at: dt.datetime) -> Q:
    today = at.astimezone(dt.UTC).date()
    return Q(status=ContractStatus.ACTIVE, starts_on__lte=today, ends_on__gt=today)


def evaluate(*, at: dt.datetime | None = None) -> JobReport:
    at = at or timezone.now()
    report = JobReport(job="evaluate")
    contracts = list(Contract.objects.filter(_in_force(at)).order_by())
    report.details["contracts"] = len(contracts)
    if not contracts:
        return report
    by_day = _periods_by_anchor(contracts, at)
    earliest = min(p.start for p in by_day.values())
    active_orgs = Contract.objects.filter(_in_force(at)).values("organization_id")
    org_to_contract = {c.organization_id: c.id for c in contracts}

    # Organization-wide API calls of the period, production and CI/CD environments.
    api_calls: dict[int, int] = {
        cid: int(total or 0)
        for cid, total in _usage_in_period(
            by_day=by_day,
            at=at,
            select="cp.id, SUM(r.total)",
            metrics=(API_CALLS,),
            where=f"e.kind IN ('{QUOTA_KINDS[0]}', '{QUOTA_KINDS[1]}')",
            group="cp.id",
        )
    }

    # Peak seats and tenants of the period, per environment.
    peaks: dict[tuple[int, int, str], int] = {
        (cid, env_id, metric): peak
        for cid, env_id, metric, peak in _usage_in_period(
            by_day=by_day,
            at=at,
            select="cp.id, e.id, r.metric, MAX(r.peak)",
            metrics=(SEATS, TENANTS),
            group="cp.id, e.id, r.metric",
        )
        if peak is not None
    }

    # Current seats and tenants per environment (a value set last period still counts).
    current: dict[tuple[int, int, str], int] = {}
    for org_id, env_id, metric, value in UsageGauge.objects.filter(
        environment__project__organization_id__in=active_orgs
    ).values_list("environment__project__organization_id", "environment_id", "metric", "value"):
        current[(org_to_contract[org_id], env_id, metric)] = value

    # Developer seats held now, per organization.
    dev_seats = {
        org_to_contract[org_id]: n
        for org_id, n in DeveloperSeat.objects.filter(
            freed_at__isnull=True, membership__organization_id__in=active_orgs
        )
        .values("membership__organization_id")
        .annotate(n=Count("id"))
        .values_list("membership__organization_id", "n")
    }

    # Today's API calls per non-production environment.
    day_start = dt.datetime.combine(at.astimezone(dt.UTC).date(), dt.time(), tzinfo=dt.UTC)
    today = periods.Period(day_start, day_start + dt.timedelta(days=1))
    nonprod = {
        (org_to_contract[org_id], env_id): total
        for org_id, env_id, total in UsageDay.objects.filter(
            metric=API_CALLS,
            day=day_start.date(),
            environment__kind__in=NONPROD_KINDS,
            environment__project__organization_id__in=active_orgs,
        ).values_list("environment__project__organization_id", "environment_id", "total")
    }

    # --- decide ------------------------------------------------------------------------
    by_id = {c.id: c for c in contracts}
    wanted: dict[FlagKey, WantedFlag] = {}
    holding: dict[FlagKey, int] = {}  # gauge flags whose condition holds now -> value now
    limits: dict[tuple[int, str], tuple[tuple[str, int], ...]] = {}  # per contract and metric

    def want(
        c: Contract,
        period: periods.Period,
        metric: str,
        scope: str,
        env_id: int | None,
        value: int,
        now_value: int | None = None,
    ) -> None:
        levels = limits.get((c.id, metric))
        if levels is None:
            levels = limits[(c.id, metric)] = thresholds(c, metric)
        if not levels:
            return
        limit = c.limit_for(metric)
        auto_resolved = metric in AUTO_RESOLVED
        for level, t in levels:
            if value < t:
                continue
            key = FlagKey(c.id, period.start, metric, scope, level)
            holds = False
            if now_value is not None and now_value >= t:
                holds = True
                holding[key] = now_value
            # A gauge flag whose peak reached the level but whose current value is back
            # below it: raised and resolved at once.
            wanted[key] = WantedFlag(
                key,
                c.organization_id,
                env_id,
                period.end,
                value,
                limit,
                auto_resolved and not holds,
            )

    for c in contracts:
        period = by_day[c.starts_on.day]
        want(c, period, API_CALLS, ORGANIZATION_SCOPE, None, api_calls.get(c.id) or 0)
        n = dev_seats.get(c.id, 0)
        want(c, period, DEVELOPER_SEATS, ORGANIZATION_SCOPE, None, n, n)
    for cid, env_id, metric in set(peaks) | set(current):
        c = by_id[cid]
        now_value = current.get((cid, env_id, metric), 0)
        peak = max(peaks.get((cid, env_id, metric), 0), now_value)
        scope = environment_scope(env_id)
        want(c, by_day[c.starts_on.day], metric, scope, env_id, peak, now_value)
    for (cid, env_id), total in nonprod.items():
        scope = environment_scope(env_id)
        want(by_id[cid], today, NONPROD_DAILY_API_CALLS, scope, env_id, total or 0)

    def fallen_to(f: Flip) -> int:
        if f.metric == DEVELOPER_SEATS:
            return dev_seats.get(f.contract_id, 0)
        if f.environment_id is None:  # `current` holds environments' gauges only
            return 0
        return current.get((f.contract_id, f.environment_id, f.metric), 0)

    # --- write -------------------------------------------------------------------------
    with transaction.atomic():
        # Plain tuples: at 10,000 contracts there are tens of thousands of flags.
        fields: tuple[str, ...] = ("id", "contract_id", "environment_id", "period_start")
        fields += ("metric", "scope")
        fields += ("level", "is_resolved")
        existing = {
            _key(f): f
            for f in map(
                _FlagRow._make,
                OverageFlag.objects.filter(
                    Q(period_start__gte=min(earliest, today.start))
                    | Q(resolved_at__isnull=True, metric__in=AUTO_RESOLVED)
                )
                .order_by()
                # A boolean, not the timestamp: tens of thousands fewer datetimes to parse.
                .annotate(
                    is_resolved=ExpressionWrapper(
                        Q(resolved_at__isnull=False), output_field=BooleanField()
                    )
                )
                .values_list(*fields),
            )
        }
        run = new_run_token()
        new = [w for k, w in wanted.items() if k not in existing]
        raised = raise_flags(wanted=new, run=run, at=at)
        raised_values = {f.id: wanted[_key(f)].value for f in raised}
        reopened = reopen_flags(
            ids=[
                f.id
                for k, f in existing.items()
                if f.is_resolved and f.metric in AUTO_RESOLVED and k in holding
            ],
            run=run,
        )
        raised_values.update({f.id: holding[_key(f)] for f in reopened})
        still_open = [
            f for f in existing.values() if not f.is_resolved and f.metric in AUTO_RESOLVED
        ]
        resolved = [f for f in raised if wanted[_key(f)].resolved] + resolve_flags(
            ids=[f.id for f in still_open if _key(f) not in holding], run=run, at=at
        )
        resolved_values = {f.id: fallen_to(f) for f in resolved}
        record_flips(
            raised=raised + reopened,
            resolved=resolved,
            raised_values=raised_values,
            resolved_values=resolved_values,
            at=at,
            report=report,
        )
    return report


class _FlagRow(NamedTuple):
    id: int
    contract_id: int
    environment_id: int | None
    period_start: dt.datetime
    metric: str
    scope: str
    level: str
    is_resolved: bool


def _key(f: OverageFlag | _FlagRow | Flip) -> FlagKey:
    return FlagKey(f.contract_id, f.period_start, f.metric, f.scope, f.level)
