"""The counting rules of DESIGN.md as a pure-Python model: the property tests' oracle.

Nothing in the product uses it. It applies the rules one reading at a time, in arrival
order, the plainest reading of DESIGN.md; the product applies them set-based in one SQL
statement per request (`metering.ingest.postgres.write`), and the property tests hold
the two to the same answers, reading by reading and row by row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from metering.counting import Reading

HOUR = dt.timedelta(hours=1)


def floor_hour(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(at: dt.datetime) -> dt.datetime:
    floored = floor_hour(at)
    return floored if floored == at else floored + HOUR


@dataclass(frozen=True)
class Answer:
    """What the API answers for one reading."""

    counted: int
    duplicate: bool
    reset: bool
    late: bool

    def json(self) -> dict:
        return {
            "counted": {"api_calls": self.counted},
            "duplicate": self.duplicate,
            "reset": self.reset,
            "late": self.late,
        }


@dataclass
class Rollup:
    total: int = 0
    late_total: int = 0
    peak: int | None = None
    last: int | None = None
    last_observed_at: dt.datetime | None = None
    readings: int = 0


@dataclass
class Series:
    highest: int
    last_observed_at: dt.datetime


@dataclass
class Model:
    """One environment's usage, as the rules say it should be."""

    closed_through: dt.datetime | None = None
    series: dict[tuple[str, str, int], Series] = field(default_factory=dict)
    instances: set[str] = field(default_factory=set)
    rollups: dict[tuple[str, dt.datetime], Rollup] = field(default_factory=dict)
    days: dict[tuple[str, dt.date], tuple[int, int | None]] = field(default_factory=dict)
    gauges: dict[str, tuple[int, dt.datetime]] = field(default_factory=dict)

    def _generation(self, r: Reading) -> int:
        """Rule 3: without a boot, a lower value observed later than the latest series'
        latest observation is a restart (a new generation); earlier, a late reading."""
        if r.boot:
            return 0
        generations = [g for (i, b, g) in self.series if i == r.instance and b == ""]
        if not generations:
            return 0
        latest = max(generations)
        head = self.series[(r.instance, "", latest)]
        if r.api_calls < head.highest and r.observed_at > head.last_observed_at:
            return latest + 1
        return latest

    def push(self, r: Reading) -> Answer:
        key = (r.instance, r.boot, self._generation(r))
        before = self.series.get(key)
        starts = before is None
        # Rules 1-2: count what the reading adds above the highest value seen.
        highest = 0 if before is None else before.highest
        counted = max(0, r.api_calls - highest)
        # Rule 4: never attributed before the series' previous reading; out of closed
        # periods into the oldest open one.
        seen = None if before is None else before.last_observed_at
        at = r.observed_at if counted == 0 or seen is None else max(r.observed_at, seen)
        hour = floor_hour(at)
        late = self.closed_through is not None and hour < self.closed_through
        if late:
            assert self.closed_through is not None
            hour = ceil_hour(self.closed_through)
        answer = Answer(
            counted=counted,
            duplicate=counted == 0 and not starts,
            reset=starts and r.instance in self.instances,
            late=late,
        )
        self.series[key] = Series(
            max(highest, r.api_calls),
            r.observed_at if seen is None else max(seen, r.observed_at),
        )
        self.instances.add(r.instance)
        calls = self.rollups.setdefault(("api_calls", hour), Rollup())
        calls.total += counted
        calls.late_total += counted if late else 0
        calls.readings += 1
        if calls.last_observed_at is None or r.observed_at > calls.last_observed_at:
            calls.last_observed_at = r.observed_at
        self._day("api_calls", hour, counted, None)
        # Rule 5: gauges; the period's usage is the maximum, the current value the latest.
        for metric, value in (("seats", r.seats), ("tenants", r.tenants)):
            if value is None:
                continue
            rollup = self.rollups.setdefault((metric, hour), Rollup())
            rollup.peak = value if rollup.peak is None else max(rollup.peak, value)
            rollup.readings += 1
            if rollup.last_observed_at is None or r.observed_at >= rollup.last_observed_at:
                rollup.last, rollup.last_observed_at = value, r.observed_at
            self._day(metric, hour, 0, value)
            if metric not in self.gauges or r.observed_at >= self.gauges[metric][1]:
                self.gauges[metric] = (value, r.observed_at)
        return answer

    def _day(self, metric: str, hour: dt.datetime, total: int, peak: int | None) -> None:
        key = (metric, hour.date())
        old_total, old_peak = self.days.get(key, (0, None))
        peaks = [p for p in (old_peak, peak) if p is not None]
        self.days[key] = (old_total + total, max(peaks) if peaks else None)

    def counted(self) -> int:
        return sum(r.total for (metric, _), r in self.rollups.items() if metric == "api_calls")
