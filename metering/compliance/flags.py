"""Raising and resolving flags in sets: the part evaluation and reporting gaps share.

Every flip is claimed by a conditional write (INSERT ... ON CONFLICT DO NOTHING, UPDATE ...
WHERE resolved_at IS [NOT] NULL) whose RETURNING clause gives back exactly the rows this run
changed, so when two runs race each flip is reported (and gets its one event, which the
notifier announces) by exactly one. The
rows are tagged with a per-run token (`changed_by_run`) for auditing. On PostgreSQL each
write is one statement over column arrays (unnest), however many flags flip: a run that
raises tens of thousands of flags makes no model instance per flag (bench/overage).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models import Q

from accounts.models import Environment
from metering.compliance.models import FlagEvent, FlagEventKind, OverageFlag
from metering.compliance.sql import array_cursor


class FlagKey(NamedTuple):
    """A flag's unique key. A tuple: an evaluation makes and hashes tens of thousands."""

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
    # Raised and already fallen back within the same run: inserted resolved (one write,
    # not an INSERT then an UPDATE); the run reports it raised and resolved.
    resolved: bool = False


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


class Flip(NamedTuple):
    """A flag a run flipped, as the write's RETURNING clause gives it: plain tuples,
    because one run can flip tens of thousands of flags (bench/overage)."""

    id: int
    contract_id: int
    organization_id: int
    environment_id: int | None
    metric: str
    scope: str
    level: str
    period_start: dt.datetime
    limit: int | None
    value: int


_FLIP_COLUMNS = (
    "id, contract_id, organization_id, environment_id, metric, scope, level, period_start, "
    '"limit", value'
)
# Rows per multi-row INSERT: SQLite allows 32,766 placeholders a statement.
_BATCH = 2000


def _flip(row: tuple) -> Flip:
    flip = Flip._make(row)
    if connection.vendor == "sqlite":  # raw text or a naive datetime there
        parsed = connection.ops.convert_datetimefield_value(flip.period_start, None, connection)
        flip = flip._replace(period_start=parsed)
    return flip


def _batches(items: list, size: int = _BATCH):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def raise_flags(*, wanted: Iterable[WantedFlag], run: str, at: dt.datetime) -> list[Flip]:
    """Insert flags not raised yet; returns those this run inserted."""
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(at)
    token = f"{run}+"
    rows = [
        (
            w.key.contract_id,
            w.organization_id,
            w.environment_id,
            w.key.metric,
            w.key.scope,
            w.key.level,
            ops.adapt_datetimefield_value(w.key.period_start),
            ops.adapt_datetimefield_value(w.period_end),
            w.value,
            w.limit,
            stamp if w.resolved else None,
            f"{run}-" if w.resolved else token,
            stamp,
            "",
        )
        for w in wanted
    ]
    table = connection.ops.quote_name(OverageFlag._meta.db_table)
    columns = (
        "contract_id, organization_id, environment_id, metric, scope, level, period_start, "
        'period_end, value, "limit", resolved_at, changed_by_run, raised_at, note'
    )
    # The unique key (contract, period, metric, scope, level) makes a concurrent or
    # repeated insert of the same flag a no-op; RETURNING gives only our own inserts.
    conflict = f"ON CONFLICT DO NOTHING RETURNING {_FLIP_COLUMNS}"
    out: list[Flip] = []
    if not rows:
        return out
    with array_cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement of column arrays, however many flags.
            types = ("bigint", "bigint", "bigint", "text", "text", "text", "timestamptz")
            types += ("timestamptz", "bigint", "bigint", "timestamptz", "text")
            arrays = ", ".join(f"%b::{t}[]" for t in types)  # %b: binary, no text quoting
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT *, %s::timestamptz, '' "
                f"FROM unnest({arrays}) {conflict}",
                [stamp, *(list(col) for col in zip(*(row[:12] for row in rows), strict=True))],
            )
            return [Flip._make(row) for row in cursor.fetchall()]
        for batch in _batches(rows):
            values = ", ".join(
                ["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(batch)
            )
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} {conflict}",
                [v for row in batch for v in row],
            )
            out += map(_flip, cursor.fetchall())
    return out


def _update_flips(
    *, ids: Iterable[int], assignments: str, condition: str, params: list
) -> list[Flip]:
    ids = list(ids)
    if not ids:
        return []
    table = connection.ops.quote_name(OverageFlag._meta.db_table)
    out: list[Flip] = []
    with array_cursor() as cursor:
        if connection.vendor == "postgresql":
            chunks = [ids]  # one array parameter, however many ids
            where = "id = ANY(%b)"
        else:
            chunks = list(_batches(ids))
            where = None
        for chunk in chunks:
            sql_where = where or f"id IN ({', '.join(['%s'] * len(chunk))})"
            chunk_params = [chunk] if where else list(chunk)
            cursor.execute(
                f"UPDATE {table} SET {assignments} WHERE {sql_where} AND {condition} "
                f"RETURNING {_FLIP_COLUMNS}",
                params + chunk_params,
            )
            out += map(_flip, cursor.fetchall())
    return out


def reopen_flags(*, ids: Iterable[int], run: str) -> list[Flip]:
    # Conditional UPDATE: only a resolved flag reopens, and only one run can do it.
    return _update_flips(
        ids=ids,
        assignments="resolved_at = NULL, changed_by_run = %s",
        condition="resolved_at IS NOT NULL",
        params=[f"{run}^"],
    )


def resolve_flags(*, ids: Iterable[int], run: str, at: dt.datetime) -> list[Flip]:
    # Conditional UPDATE: only an open flag resolves, and only one run can do it.
    return _update_flips(
        ids=ids,
        assignments="resolved_at = %s, changed_by_run = %s",
        condition="resolved_at IS NULL",
        params=[connection.ops.adapt_datetimefield_value(at), f"{run}-"],
    )


def _insert_events(*, rows: list[tuple[int, str, int]], at: dt.datetime) -> None:
    """Insert (flag id, kind, value) history rows."""
    stamp = connection.ops.adapt_datetimefield_value(at)
    table = connection.ops.quote_name(FlagEvent._meta.db_table)
    with array_cursor() as cursor:
        if connection.vendor == "postgresql":
            flag_ids, kinds, values = (list(col) for col in zip(*rows, strict=True))
            cursor.execute(
                f"INSERT INTO {table} (flag_id, kind, at, value) "
                "SELECT f, k, %s::timestamptz, v FROM unnest(%b::bigint[], %b::text[], %b::bigint[]) "
                "AS u(f, k, v)",
                [stamp, flag_ids, kinds, values],
            )
            return
        for batch in _batches(rows):
            placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(batch))
            cursor.execute(
                f"INSERT INTO {table} (flag_id, kind, at, value) VALUES {placeholders}",
                [v for flag_id, kind, value in batch for v in (flag_id, kind, stamp, value)],
            )


def record_flips(
    *,
    raised: list[Flip],
    resolved: list[Flip],
    raised_values: dict[int, int],
    resolved_values: dict[int, int],
    at: dt.datetime,
    report: JobReport,
) -> None:
    """Write the flips' history rows (`FlagEvent`: what the notifier turns into outbox rows,
    see notifications.fan_out) and add the flips to `report`."""
    flips = [(f, FlagEventKind.RAISED.value, raised_values.get(f.id, f.value)) for f in raised]
    flips += [
        (f, FlagEventKind.RESOLVED.value, resolved_values.get(f.id, f.value)) for f in resolved
    ]
    if not flips:
        return
    # The events are what the notifier turns into outbox rows (notifications.fan_out).
    _insert_events(rows=[(f.id, kind, value) for f, kind, value in flips], at=at)
    labels = _describe(raised + resolved)
    for f, kind, value in flips:
        org_slug, env_label = labels[f.id]
        change = FlagChange(
            change=kind,
            organization=org_slug,
            metric=f.metric,
            scope=f.scope,
            level=f.level,
            value=value,
            limit=f.limit,
            environment=env_label,
            period_start=f.period_start.isoformat(),
        )
        (report.raised if kind == FlagEventKind.RAISED else report.resolved).append(change)


def _describe(flags: list[Flip]) -> dict[int, tuple[str, str | None]]:
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
