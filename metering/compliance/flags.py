"""Raising and resolving flags in sets: the part evaluation and reporting gaps share.

Every flip is claimed by a conditional write tagged with a per-run token, then read back
by that token, so when two runs race each flip is reported (and notified) by exactly one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.db.models import Q

from accounts.models import Environment
from metering.compliance import notifications
from metering.compliance.models import FlagEvent, FlagEventKind, OverageFlag


@dataclass(frozen=True)
class FlagKey:
    contract_id: int
    period_start: dt.datetime
    metric: str
    scope: str
    level: str


@dataclass
class WantedFlag:
    key: FlagKey
    organization_id: int
    environment_id: int | None
    period_end: dt.datetime | None
    value: int
    limit: int | None


@dataclass(frozen=True)
class FlagChange:
    """A flip as operators read it (`compliance <job> --json`)."""

    change: str  # raised | resolved
    organization: str
    metric: str
    scope: str
    level: str
    value: int
    limit: int | None
    environment: str | None
    period_start: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class JobReport:
    job: str
    raised: list[FlagChange] = field(default_factory=list)
    resolved: list[FlagChange] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.job}: {len(self.raised)} flag(s) raised, {len(self.resolved)} resolved"]
        parts += [f"{k}={v}" for k, v in self.details.items()]
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {
            "job": self.job,
            "raised": [c.as_dict() for c in self.raised],
            "resolved": [c.as_dict() for c in self.resolved],
            **self.details,
        }


def new_run_token() -> str:
    return secrets.token_hex(12)


def raise_flags(*, wanted: Iterable[WantedFlag], run: str, at: dt.datetime) -> list[OverageFlag]:
    """Insert flags not raised yet; returns those this run inserted."""
    rows = [
        OverageFlag(
            contract_id=w.key.contract_id,
            organization_id=w.organization_id,
            environment_id=w.environment_id,
            metric=w.key.metric,
            scope=w.key.scope,
            level=w.key.level,
            period_start=w.key.period_start,
            period_end=w.period_end,
            value=w.value,
            limit=w.limit,
            raised_at=at,
            changed_by_run=f"{run}+",
        )
        for w in wanted
    ]
    if not rows:
        return []
    # The unique key (contract, period, metric, scope, level) makes a concurrent or
    # repeated insert of the same flag a no-op; only our own inserts carry our token.
    OverageFlag.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return list(OverageFlag.objects.filter(changed_by_run=f"{run}+"))


def reopen_flags(*, ids: Iterable[int], run: str) -> list[OverageFlag]:
    ids = list(ids)
    if not ids:
        return []
    # Conditional UPDATE: only a resolved flag reopens, and only one run can do it.
    OverageFlag.objects.filter(id__in=ids, resolved_at__isnull=False).update(
        resolved_at=None, changed_by_run=f"{run}^"
    )
    return list(OverageFlag.objects.filter(changed_by_run=f"{run}^"))


def resolve_flags(*, ids: Iterable[int], run: str, at: dt.datetime) -> list[OverageFlag]:
    ids = list(ids)
    if not ids:
        return []
    # Conditional UPDATE: only an open flag resolves, and only one run can do it.
    OverageFlag.objects.filter(id__in=ids, resolved_at__isnull=True).update(
        resolved_at=at, changed_by_run=f"{run}-"
    )
    return list(OverageFlag.objects.filter(changed_by_run=f"{run}-"))


def record_flips(
    *,
    raised: list[OverageFlag],
    resolved: list[OverageFlag],
    raised_values: dict[int, int],
    resolved_values: dict[int, int],
    at: dt.datetime,
    report: JobReport,
) -> None:
    """Write the flips' history rows, their outbox rows, and add them to `report`."""
    events = [
        FlagEvent(flag=f, kind=FlagEventKind.RAISED, at=at, value=raised_values.get(f.id, f.value))
        for f in raised
    ] + [
        FlagEvent(
            flag=f, kind=FlagEventKind.RESOLVED, at=at, value=resolved_values.get(f.id, f.value)
        )
        for f in resolved
    ]
    if not events:
        return
    FlagEvent.objects.bulk_create(events, batch_size=2000)
    labels = _describe(raised + resolved)
    notifications.enqueue_for_events(events=events, labels=labels)
    for event in events:
        flag = event.flag
        org_slug, env_label = labels[flag.id]
        change = FlagChange(
            change=event.kind,
            organization=org_slug,
            metric=flag.metric,
            scope=flag.scope,
            level=flag.level,
            value=event.value,
            limit=flag.limit,
            environment=env_label,
            period_start=flag.period_start.isoformat(),
        )
        (report.raised if event.kind == FlagEventKind.RAISED else report.resolved).append(change)


def _describe(flags: list[OverageFlag]) -> dict[int, tuple[str, str | None]]:
    """Organization slug and `project/environment` label per flag id (two queries)."""
    from accounts.models import Organization

    org_ids = {f.organization_id for f in flags}
    env_ids = {f.environment_id for f in flags if f.environment_id}
    slugs = dict(Organization.objects.filter(id__in=org_ids).values_list("id", "slug"))
    envs = {
        e["id"]: f"{e['project__slug']}/{e['name']}"
        for e in Environment.objects.filter(Q(id__in=env_ids)).values("id", "name", "project__slug")
    }
    return {f.id: (slugs[f.organization_id], envs.get(f.environment_id)) for f in flags}
