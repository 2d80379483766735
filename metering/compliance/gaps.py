"""Reporting gaps: an enabled production or CI/CD environment that has reported before
and has been silent longer than REPORTING_GAP_HOURS gets a `reporting_gap` flag,
resolved when it reports again (or is disabled, or its contract is no longer in force).

The flag's `period_start` is the last report before the silence, so a later, separate
silence is a new flag while one silence is flagged once.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Contract, Environment, EnvironmentStatus
from metering.compliance.evaluation import QUOTA_KINDS, _in_force
from metering.compliance.flags import (
    FlagKey,
    JobReport,
    WantedFlag,
    new_run_token,
    raise_flags,
    record_flips,
    resolve_flags,
)
from metering.compliance.models import REPORTING, FlagLevel, OverageFlag, environment_scope


def _silent_hours(last: dt.datetime, at: dt.datetime) -> int:
    return int((at - last).total_seconds() // 3600)


def detect_gaps(*, at: dt.datetime | None = None) -> JobReport:
    at = at or timezone.now()
    report = JobReport(job="gaps")
    hours = settings.REPORTING_GAP_HOURS
    cutoff = at - dt.timedelta(hours=hours)
    contract_of = dict(Contract.objects.filter(_in_force(at)).values_list("organization_id", "id"))
    watched = Environment.objects.filter(
        status=EnvironmentStatus.ENABLED,
        kind__in=QUOTA_KINDS,
        project__organization__contracts__in=Contract.objects.filter(_in_force(at)),
    )
    # Environments that reported before (have a series) and not since the cutoff.
    silent = list(
        watched.annotate(last=Max("usage_series__last_received_at"))
        .filter(last__lt=cutoff)
        .values_list("id", "project__organization_id", "last")
    )
    wanted = [
        WantedFlag(
            key=FlagKey(
                contract_of[org_id],
                last,
                REPORTING,
                environment_scope(env_id),
                FlagLevel.REPORTING_GAP,
            ),
            organization_id=org_id,
            environment_id=env_id,
            period_end=None,
            value=_silent_hours(last, at),
            limit=hours,
        )
        for env_id, org_id, last in silent
    ]
    report.details["silent_environments"] = len(silent)
    with transaction.atomic():
        open_gaps = list(
            OverageFlag.objects.filter(metric=REPORTING, resolved_at__isnull=True).only(
                "id", "contract_id", "environment_id", "period_start", "metric", "scope", "level"
            )
        )
        still_silent = {(env_id, last) for env_id, _org, last in silent}
        last_seen = dict(
            Environment.objects.filter(id__in={f.environment_id for f in open_gaps})
            .annotate(last=Max("usage_series__last_received_at"))
            .values_list("id", "last")
        )
        run = new_run_token()
        existing = (
            {
                (f.contract_id, f.period_start, f.scope)
                for f in OverageFlag.objects.filter(
                    metric=REPORTING, period_start__in={w.key.period_start for w in wanted}
                ).only("contract_id", "period_start", "scope")
            }
            if wanted
            else set()
        )
        raised = raise_flags(
            wanted=[
                w
                for w in wanted
                if (w.key.contract_id, w.key.period_start, w.key.scope) not in existing
            ],
            run=run,
            at=at,
        )
        resolved = resolve_flags(
            ids=[f.id for f in open_gaps if (f.environment_id, f.period_start) not in still_silent],
            run=run,
            at=at,
        )
        record_flips(
            raised=raised,
            resolved=resolved,
            raised_values={f.id: f.value for f in raised},
            resolved_values={
                f.id: _silent_hours(
                    f.period_start,
                    (last_seen.get(f.environment_id) if f.environment_id else None) or at,
                )
                for f in resolved
            },
            at=at,
            report=report,
        )
    return report
