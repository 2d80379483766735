"""The counting rules of DESIGN.md: where each one lives, and rule 3 itself.

- Rules 1, 2, 4 and 5 (count above the series' highest; duplicates and late readings
  count nothing extra; the attribution hour, clamped and moved out of closed periods;
  gauges and the rollup, day and gauge merges) are ONE set-based SQL statement,
  `metering.ingest.postgres.write.WRITE`, with the merges in
  `metering.ingest.postgres.rules` (shared with the CMS protocol's +1/-1).
- Rule 3 (the implicit restarts of an instance that sends no boot) is sequential: each
  reading continues from the state the previous one left. It is `generations` below,
  run only for requests that have boot-less readings.
- Rule 6 (each reading kept verbatim with what it counted) is the same statement's
  insert into the readings.

`tests/metering/model.py` models all the rules in pure Python, as the property tests'
oracle; nothing in the product uses it.

Vocabulary: a *series* is (environment, instance, boot, generation); `generation`
counts the implicit restarts of an instance that sends no boot, and is 0 otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

HOUR = dt.timedelta(hours=1)


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
    """The latest series of a boot-less instance: its generation, highest value and
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


def floor_hour(at: dt.datetime) -> dt.datetime:
    at = at.astimezone(dt.UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def generations(readings: Sequence[Reading], heads: dict[str, SeriesHead]) -> list[int]:
    """Rule 3: the generation of each reading's series, in order.

    `heads` maps a boot-less instance to its latest stored series. Without a boot, a
    lower value with a later `observed_at` starts a new generation (a restart); a lower
    value with an earlier `observed_at` is a late reading of the current one. Readings
    with a boot always belong to generation 0 of that boot.
    """
    state = dict(heads)
    out: list[int] = []
    for r in readings:
        if r.boot:
            out.append(0)
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
        out.append(head.generation)
    return out
