"""The counting rules of DESIGN.md, as pure functions (no database, no clock).

Both ingest paths share them: the PostgreSQL fast path (`metering.ingest`) for batches and
the ORM path (`metering.services`, used on SQLite). The single-reading SQL statement
implements the same rules in SQL; the tests hold the two to the same answers.

Vocabulary:
- a *series* is (environment, instance, boot, generation); `generation` counts the
  implicit restarts of an instance that sends no `boot` (rule 3), and is 0 otherwise;
- a series row keeps `highest` (rule 1) and `last_observed_at`;
- a reading counts `max(0, value - highest)` and raises `highest` (rules 1-2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

HOUR = dt.timedelta(hours=1)
MAX_TOTAL = 2**63 - 1  # BIGINT, as PostgreSQL and SQLite store it


class CountOverflow(ValueError):
    """A total would pass 2^63 - 1 (each count is below it; their sum may not be)."""


@dataclass(frozen=True)
class Reading:
    """One validated reading. `observed_at` is the effective time (receipt time if none
    was sent); `observed_sent` says whether the client sent it."""

    instance: str
    boot: str
    observed_at: dt.datetime
    api_calls: int
    seats: int | None = None
    tenants: int | None = None
    observed_sent: bool = True


@dataclass(frozen=True)
class SeriesHead:
    """What is known of a series before a batch: its generation, highest value and
    latest observation."""

    generation: int
    highest: int
    last_observed_at: dt.datetime


@dataclass(frozen=True)
class Outcome:
    """What one reading counted, and where its count went."""

    counted: int
    attributed_hour: dt.datetime
    duplicate: bool
    reset: bool
    late: bool


SeriesKey = tuple[str, str, int]  # (instance, boot, generation)


def floor_hour(at: dt.datetime) -> dt.datetime:
    at = at.astimezone(dt.UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: dt.datetime) -> dt.datetime:
    floored = floor_hour(at)
    return floored if floored == at else floored + HOUR


def choose_series(readings: Sequence[Reading], heads: dict[str, SeriesHead]) -> list[SeriesKey]:
    """The series each reading belongs to, in order (rule 3).

    `heads` maps an instance sending no boot to its latest generation. A lower value
    with a later `observed_at` starts a new generation (a restart); a lower value with
    an earlier `observed_at` is a late reading of the current one. Readings with a boot
    always belong to generation 0 of that boot.
    """
    state = dict(heads)
    keys: list[SeriesKey] = []
    for r in readings:
        if r.boot:
            keys.append((r.instance, r.boot, 0))
            continue
        head = state.get(r.instance)
        if head is None:
            head = SeriesHead(0, r.api_calls, r.observed_at)
        elif r.api_calls < head.highest and r.observed_at > head.last_observed_at:
            head = SeriesHead(head.generation + 1, r.api_calls, r.observed_at)
        else:
            head = SeriesHead(
                head.generation,
                max(head.highest, r.api_calls),
                max(head.last_observed_at, r.observed_at),
            )
        state[r.instance] = head
        keys.append((r.instance, "", head.generation))
    return keys


def count_series(
    readings: Iterable[Reading], *, highest: int, previous_observed_at: dt.datetime | None
) -> list[tuple[int, dt.datetime]]:
    """Per reading of one series, in arrival order: (counted, attribution time).

    A reading counts what it adds above the highest value seen (rules 1-2). Counted calls
    are attributed to the reading's `observed_at`, but never before the series' previous
    reading (rule 4): a counter cannot have grown before it was last seen lower.
    """
    out: list[tuple[int, dt.datetime]] = []
    seen = previous_observed_at
    for r in readings:
        counted = max(0, r.api_calls - highest)
        highest = max(highest, r.api_calls)
        at = r.observed_at if counted == 0 or seen is None else max(r.observed_at, seen)
        seen = r.observed_at if seen is None else max(seen, r.observed_at)
        out.append((counted, at))
    return out


def attribute(at: dt.datetime, *, closed_through: dt.datetime | None) -> tuple[dt.datetime, bool]:
    """The hour counted calls go to, and whether they were late: anything attributed
    before the organization's closed-through instant goes to the oldest open period."""
    hour = floor_hour(at)
    if closed_through is not None and hour < closed_through:
        return ceil_hour(closed_through), True
    return hour, False


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


def merge_rollup(old: RollupDelta, delta: RollupDelta) -> RollupDelta:
    """A stored rollup plus a batch's delta (the same merge the SQL upserts do)."""
    merged = RollupDelta(
        total=old.total + delta.total,
        late_total=old.late_total + delta.late_total,
        readings=old.readings + delta.readings,
    )
    if merged.total > MAX_TOTAL:
        raise CountOverflow(merged.total)
    peaks = [p for p in (old.peak, delta.peak) if p is not None]
    merged.peak = max(peaks) if peaks else None
    if delta.last_observed_at is not None and (
        old.last_observed_at is None or delta.last_observed_at >= old.last_observed_at
    ):
        merged.last = delta.last if delta.last is not None else old.last
        merged.last_observed_at = delta.last_observed_at
    else:
        merged.last, merged.last_observed_at = old.last, old.last_observed_at
    return merged


def day_deltas(
    deltas: dict[tuple[str, dt.datetime], RollupDelta],
) -> dict[tuple[str, dt.date], tuple[int, int | None]]:
    """What hourly deltas add to their UTC days: (calls summed, peak maxed) per (metric,
    day); the same aggregation the SQL day upserts do."""
    days: dict[tuple[str, dt.date], tuple[int, int | None]] = {}
    for (metric, hour), d in deltas.items():
        key = (metric, hour.astimezone(dt.UTC).date())
        total, peak = days.get(key, (0, None))
        peaks = [p for p in (peak, d.peak) if p is not None]
        days[key] = (total + d.total, max(peaks) if peaks else None)
    return days


@dataclass(frozen=True)
class Before:
    """A series as it stood (row locked) just before this batch touched it."""

    fresh: bool
    highest: int
    previous_observed_at: dt.datetime | None


def series_bounds(
    readings: Sequence[Reading], keys: Sequence[SeriesKey]
) -> dict[SeriesKey, tuple[int, dt.datetime, dt.datetime]]:
    """Per series: (largest value, earliest and latest observation) of the batch: what
    the series upsert needs to raise `highest` once per series."""
    out: dict[SeriesKey, tuple[int, dt.datetime, dt.datetime]] = {}
    for r, k in zip(readings, keys, strict=True):
        got = out.get(k)
        if got is None:
            out[k] = (r.api_calls, r.observed_at, r.observed_at)
        else:
            out[k] = (
                max(got[0], r.api_calls),
                min(got[1], r.observed_at),
                max(got[2], r.observed_at),
            )
    return out


def outcomes(
    readings: Sequence[Reading],
    keys: Sequence[SeriesKey],
    before: dict[SeriesKey, Before],
    *,
    known_instances: set[str],
    closed_through: dt.datetime | None,
) -> list[Outcome]:
    """What each reading of a batch counted, given each series' locked prior state."""
    groups: dict[SeriesKey, list[int]] = {}
    first_seen: dict[str, int] = {}
    for i, (r, k) in enumerate(zip(readings, keys, strict=True)):
        groups.setdefault(k, []).append(i)
        first_seen.setdefault(r.instance, i)
    result: list[Outcome | None] = [None] * len(readings)
    for k, indices in groups.items():
        b = before[k]
        counts = count_series(
            (readings[i] for i in indices),
            highest=b.highest,
            previous_observed_at=b.previous_observed_at,
        )
        for position, (i, (counted, at)) in enumerate(zip(indices, counts, strict=True)):
            starts_series = b.fresh and position == 0
            instance = readings[i].instance
            hour, late = attribute(at, closed_through=closed_through)
            result[i] = Outcome(
                counted=counted,
                attributed_hour=hour,
                duplicate=counted == 0 and not starts_series,
                reset=starts_series and (instance in known_instances or first_seen[instance] < i),
                late=late,
            )
    return [o for o in result if o is not None]


def rollup_deltas(
    readings: Sequence[Reading], results: Sequence[Outcome]
) -> dict[tuple[str, dt.datetime], RollupDelta]:
    """The batch's changes per (metric, hour): calls summed, gauges max and last."""
    deltas: dict[tuple[str, dt.datetime], RollupDelta] = {}
    for r, o in zip(readings, results, strict=True):
        deltas.setdefault(("api_calls", o.attributed_hour), RollupDelta()).add_count(
            o.counted, o.late, r.observed_at
        )
        for metric, value in (("seats", r.seats), ("tenants", r.tenants)):
            if value is not None:
                deltas.setdefault((metric, o.attributed_hour), RollupDelta()).add_gauge(
                    value, r.observed_at
                )
    return deltas


def latest_gauges(readings: Sequence[Reading]) -> dict[str, tuple[int, dt.datetime]]:
    """The latest seats / tenants value of the batch, by observation time: an absolute
    reading replaces the environment's running count (reconciliation)."""
    out: dict[str, tuple[int, dt.datetime]] = {}
    for r in readings:
        for metric, value in (("seats", r.seats), ("tenants", r.tenants)):
            if value is not None and (metric not in out or r.observed_at >= out[metric][1]):
                out[metric] = (value, r.observed_at)
    return out
