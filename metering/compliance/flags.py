"""Raising and resolving flags in sets: the part evaluation and reporting gaps share.

Every flip is claimed by a conditional write (INSERT ... ON CONFLICT DO NOTHING, UPDATE ...
WHERE resolved_at IS [NOT] NULL) whose RETURNING clause gives back exactly the rows this run
changed, so when two runs race each flip is reported, and gets its one event (which the
notifier announces), by exactly one. The rows are tagged with a per-run token
(`changed_by_run`) for auditing. Each write is one statement over column arrays (unnest),
however many flags flip: a run that raises tens of thousands of flags makes no model
instance per flag (bench/overage).
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection

from metering.compliance.models import FlagEvent, FlagEventKind, OverageFlag
from metering.compliance.sql import (
    FLAG_LABEL,
    array_cursor,
    bool_array,
    flag_context_joins,
    id_clause,
    int8_array,
    text_array,
    timestamptz_array,
)


class FlagKey(NamedTuple):
    """A flag's unique key. A tuple: an evaluation makes and hashes tens of thousands."""

    contract_id: int
    period_start: dt.datetime
    metric: str
    scope: str
    level: str


class WantedFlag(NamedTuple):
    """A flag a run wants raised. A tuple: an evaluation can want tens of thousands."""

    key: FlagKey
    organization_id: int
    environment_id: int | None
    period_end: dt.datetime | None
    value: int
    limit: int | None
    # Raised and already fallen back within the same run: inserted resolved (one write,
    # not an INSERT then an UPDATE); the run reports it raised and resolved.
    resolved: bool = False


class FlagChange(NamedTuple):
    """A flip as operators read it (`compliance <job> --json`). A tuple: one run can
    report tens of thousands."""

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
        return self._asdict()


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


def raise_flags(*, wanted: Iterable[WantedFlag], run: str, at: dt.datetime) -> list[Flip]:
    """Insert flags not raised yet; returns those this run inserted.

    One INSERT over column arrays, however many flags. It returns each inserted flag's id
    with its position in `wanted` (joined back on the unique key), and the flips are made
    from what we sent: no datetimes to parse back, no columns to read."""
    wanted = list(wanted)
    if not wanted:
        return []
    table = connection.ops.quote_name(OverageFlag._meta.db_table)
    columns = (
        "contract_id, organization_id, environment_id, metric, scope, level, period_start, "
        'period_end, value, "limit", resolved_at, changed_by_run, raised_at, note'
    )
    key_columns = ("contract_id", "period_start", "metric", "scope", "level")
    keys, organizations, environments, ends, values, limits, resolved = (
        list(column) for column in zip(*wanted, strict=True)
    )
    contracts, starts, metrics, scopes, levels = (list(c) for c in zip(*keys, strict=True))
    arrays: list[bytes] = [
        int8_array(contracts),
        int8_array(organizations),
        int8_array(environments),
    ]
    arrays += [text_array(metrics), text_array(scopes), text_array(levels)]
    arrays += [timestamptz_array(starts), timestamptz_array(ends)]
    arrays += [int8_array(values), int8_array(limits), bool_array(resolved)]
    # %b: binary arrays, no text quoting.
    types: tuple[str, ...] = ("bigint", "bigint", "bigint", "text", "text", "text", "timestamptz")
    types += ("timestamptz", "bigint", "bigint", "boolean")
    unnest = ", ".join(f"%b::{t}[]" for t in types)
    sql = f"""
        WITH w AS (
            SELECT * FROM unnest({unnest}) WITH ORDINALITY AS w(contract_id, organization_id,
                environment_id, metric, scope, level, period_start, period_end, value, "limit",
                resolved, position)
        ),
        inserted AS (
            INSERT INTO {table} ({columns})
            SELECT contract_id, organization_id, environment_id, metric, scope, level,
                period_start, period_end, value, "limit",
                CASE WHEN resolved THEN %s::timestamptz END,
                CASE WHEN resolved THEN %s ELSE %s END, %s::timestamptz, ''
            FROM w
            -- The unique key (contract, period, metric, scope, level) makes a concurrent
            -- or repeated insert of the same flag a no-op; RETURNING gives only ours.
            ON CONFLICT DO NOTHING
            RETURNING id, {", ".join(key_columns)}
        )
        SELECT inserted.id, w.position FROM inserted JOIN w USING ({", ".join(key_columns)})
    """
    with array_cursor() as cursor:
        cursor.execute(sql, [*arrays, at, f"{run}-", f"{run}+", at])
        inserted = cursor.fetchall()
    out = []
    for flag_id, position in inserted:
        w = wanted[position - 1]
        k = w.key
        out.append(
            Flip(
                flag_id,
                k.contract_id,
                w.organization_id,
                w.environment_id,
                k.metric,
                k.scope,
                k.level,
                k.period_start,
                w.limit,
                w.value,
            )
        )
    return out


def _update_flips(
    *, ids: Iterable[int], assignments: str, condition: str, params: list
) -> list[Flip]:
    ids = list(ids)
    if not ids:
        return []
    table = connection.ops.quote_name(OverageFlag._meta.db_table)
    clause, id_params = id_clause("id", ids)
    with array_cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE {clause} AND {condition} "
            f"RETURNING {_FLIP_COLUMNS}",
            params + id_params,
        )
        return list(map(Flip._make, cursor.fetchall()))


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
        params=[at, f"{run}-"],
    )


def _insert_events(*, rows: list[tuple[int, str, int]], at: dt.datetime) -> None:
    """Insert (flag id, kind, value) history rows."""
    table = connection.ops.quote_name(FlagEvent._meta.db_table)
    flag_ids, kinds, values = zip(*rows, strict=True)
    with array_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (flag_id, kind, at, value) "
            "SELECT f, k, %s::timestamptz, v FROM unnest(%b::bigint[], %b::text[], %b::bigint[]) "
            "AS u(f, k, v)",
            [at, int8_array(flag_ids), text_array(kinds), int8_array(values)],
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
    raised_kind, resolved_kind = FlagEventKind.RAISED.value, FlagEventKind.RESOLVED.value
    flips = [(f, raised_kind, raised_values.get(f.id, f.value)) for f in raised]
    flips += [(f, resolved_kind, resolved_values.get(f.id, f.value)) for f in resolved]
    if not flips:
        return
    # The events are what the notifier turns into outbox rows (notifications.fan_out).
    _insert_events(rows=[(f.id, kind, value) for f, kind, value in flips], at=at)
    labels = _describe(raised + resolved)
    iso = functools.cache(dt.datetime.isoformat)  # a few distinct period starts
    for f, kind, value in flips:
        org_slug, env_label = labels[f.id]
        change = FlagChange(
            kind,
            org_slug,
            f.metric,
            f.scope,
            f.level,
            value,
            f.limit,
            env_label,
            iso(f.period_start),
        )
        (report.raised if kind == raised_kind else report.resolved).append(change)


def _describe(flags: list[Flip]) -> dict[int, tuple[str, str | None]]:
    """Organization slug and `project/environment` label per flag id (one query)."""
    table = connection.ops.quote_name(OverageFlag._meta.db_table)
    labels: dict[int, tuple[str, str | None]] = {}
    clause, params = id_clause("f.id", list({f.id for f in flags}))
    with array_cursor() as cursor:
        cursor.execute(
            f"SELECT f.id, o.slug, {FLAG_LABEL} FROM {table} f {flag_context_joins('f')} "
            f"WHERE {clause}",
            params,
        )
        labels.update((flag_id, (slug, label)) for flag_id, slug, label in cursor.fetchall())
    return labels
