"""The statements of one ingest request: WRITE, which holds counting rules 1, 2, 4 and 5
for any number of readings (a single reading is a batch of one), and HEADS, the read
rule 3 needs when some readings carry no boot (`metering.counting.generations`).

WRITE is one statement, so one transaction: it checks the key (accounts' fragment, and
writes nothing for a key that is not usable), upserts every series the readings belong
to, stores each reading verbatim with what it counted, and merges the gauges, the hourly
rollups and the days. It returns the key's row, for the refusal or the key's last use,
and per reading what it counted.

Race safety: the series upsert (`ON CONFLICT ... DO UPDATE`, unique key
`usage_series_unique`) keeps the locked row's `highest` and `last_observed_at` in
`previous_highest` / `previous_observed_at` as it raises them, and what each reading
counts is computed from those, so what a push counted is exact however many pushes race
for a series: the second waits for the first's row lock and sees its commit. Rollups,
days and gauges are upserts on their unique keys.

Lock order: series (by instance, boot, generation), then gauges (by metric), hourly
rollups (by metric, hour), days (by metric, day); the WCP +1/-1 takes gauge, rollup,
day in the same order, and the API key's last use is written after the commit, in a
transaction of its own. Within each table the rows are locked in the ORDER BY of the
INSERT's SELECT. Across tables the order is the one in which the final SELECT reads the
CTEs (PostgreSQL runs a data-modifying CTE as its output is read, and runs any nobody
reads after the main query): that is how PostgreSQL executes it, not a documented
guarantee, so a deadlock (which would need two writers of one environment to meet in
another order) is retried by `metering.ingest.record` like any other: the statement is
rolled back whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from accounts.selectors.api_keys import KEY_COLUMNS, KEY_LOOKUP_SQL, KEY_USABLE_SQL, KeyRow
from metering.counting import Outcome, Reading, SeriesHead
from metering.ingest.postgres.cursor import Statement, ints_array, labels_array, times_array
from metering.ingest.postgres.rules import (
    ATTRIBUTED_HOUR,
    DAY_MERGE,
    DAY_OF_HOUR,
    GAUGE_MERGE,
    LATE,
    ROLLUP_MERGE,
)

# `last_received_at` moves at most once a minute (it feeds reporting-gap detection, which
# counts in hours): an unchanged indexed column lets PostgreSQL update the series row in
# place (HOT), without new entries in the series' indexes on every reading.
SEEN_RESOLUTION = dt.timedelta(minutes=1)

# The latest series of each boot-less instance (rule 3 continues from it): one backward
# probe of usage_series_unique (environment, instance, boot, generation) per instance. (As
# `instance = ANY(...)` the generic plan scanned all of the environment's series.)
HEADS = Statement(f"""
WITH k AS ({KEY_LOOKUP_SQL})
SELECT h.instance, h.generation, h.highest, h.last_observed_at
  FROM k, unnest(%(instances)s::text[]) AS i(instance)
  CROSS JOIN LATERAL (
      SELECT s.instance, s.generation, s.highest, s.last_observed_at
        FROM metering_usageseries s
       WHERE s.environment_id = k.env_id AND s.instance = i.instance AND s.boot = ''
       ORDER BY s.generation DESC LIMIT 1
  ) AS h
 WHERE {KEY_USABLE_SQL}
""")

_HOUR = ATTRIBUTED_HOUR.format(hour="c.hour0", closed="c.closed_through")
_LATE = LATE.format(hour="c.hour0", closed="c.closed_through")

WRITE = Statement(f"""
WITH k AS ({KEY_LOOKUP_SQL}),
ok AS (
    SELECT k.env_id, ct.closed_through
      FROM k LEFT JOIN metering_usageclosedthrough ct
        ON ct.organization_id = k.organization_id
     WHERE {KEY_USABLE_SQL}
),
u AS (
    SELECT ok.env_id, ok.closed_through, u.*
      FROM ok, unnest(%(instance)s::varchar[], %(boot)s::varchar[], %(generation)s::int[],
                      %(value)s::bigint[], %(observed)s::timestamptz[],
                      %(sent)s::timestamptz[], %(seats)s::bigint[], %(tenants)s::bigint[])
           WITH ORDINALITY
           AS u(instance, boot, generation, value, observed, sent, seats, tenants, n)
),
-- Rules 1-2, per series: raise `highest` once to the batch's largest value.
series AS (
    INSERT INTO metering_usageseries AS s (
        environment_id, instance, boot, generation, highest, last_observed_at,
        previous_highest, previous_observed_at, first_received_at, last_received_at)
    SELECT u.env_id, u.instance, u.boot, u.generation, max(u.value), max(u.observed),
        0, NULL, %(now)s, %(now)s
      FROM u
     GROUP BY u.env_id, u.instance, u.boot, u.generation
     ORDER BY u.instance, u.boot, u.generation
    ON CONFLICT (environment_id, instance, boot, generation) DO UPDATE SET
        previous_highest = s.highest,
        previous_observed_at = s.last_observed_at,
        highest = GREATEST(s.highest, EXCLUDED.highest),
        last_observed_at = GREATEST(s.last_observed_at, EXCLUDED.last_observed_at),
        last_received_at = CASE WHEN s.last_received_at <= %(seen_before)s
                                THEN EXCLUDED.last_received_at ELSE s.last_received_at END
    RETURNING s.id, s.instance, s.boot, s.generation, (s.xmax = 0) AS fresh,
        s.previous_highest, s.previous_observed_at
),
-- Rules 1-2, per reading, in arrival order within its series: it counts what it adds
-- above the highest value seen before it. The series' locked row goes first in its
-- partition, as "reading 0" holding the highest value and latest observation the
-- statement found (0 and none for a new series), so the running maxima over the earlier
-- rows start from it (a sort the windows need anyway, instead of a join).
-- Rule 4: counted calls go to the reading's observation, never before the series'
-- previous observation (a counter cannot have grown before it was last seen lower).
r AS (
    SELECT s.instance, s.boot, s.generation, 0::bigint AS n, s.id AS series_id, s.fresh,
        s.previous_highest AS value, s.previous_observed_at AS observed,
        NULL::bigint AS env_id, NULL::timestamptz AS closed_through,
        NULL::timestamptz AS sent, NULL::bigint AS seats, NULL::bigint AS tenants
      FROM series s
    UNION ALL
    SELECT u.instance, u.boot, u.generation, u.n, NULL, NULL, u.value, u.observed,
        u.env_id, u.closed_through, u.sent, u.seats, u.tenants
      FROM u
),
w AS (
    SELECT r.*,
        max(r.series_id) OVER whole AS sid,
        bool_or(r.fresh) OVER whole AS new_series,
        max(r.value) OVER earlier AS highest_before,
        max(r.observed) OVER earlier AS seen,
        count(*) OVER earlier AS position
      FROM r
    -- (Byte order, "C", partitions as well as any order and sorts faster.)
    WINDOW whole AS (PARTITION BY r.instance COLLATE "C", r.boot COLLATE "C", r.generation),
           earlier AS (whole ORDER BY r.n ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
b AS (
    SELECT w.instance, w.boot, w.n, w.value, w.observed, w.env_id, w.closed_through,
        w.sent, w.seats, w.tenants, w.sid AS series_id,
        w.new_series AND w.position = 1 AS starts,
        GREATEST(0, w.value - w.highest_before) AS counted, w.seen
      FROM w
     WHERE w.n > 0
),
c AS (
    SELECT b.*,
        date_trunc('hour', CASE WHEN b.counted = 0 OR b.seen IS NULL THEN b.observed
                                ELSE GREATEST(b.observed, b.seen) END, 'UTC') AS hour0
      FROM b
),
a AS (
    SELECT c.*, {_HOUR} AS hour, {_LATE} AS late,
        c.counted = 0 AND NOT c.starts AS duplicate,
        -- A new series of an instance seen before (stored, or earlier in this batch).
        c.starts AND (
            EXISTS (SELECT 1 FROM u WHERE u.instance = c.instance AND u.n < c.n)
            OR EXISTS (SELECT 1 FROM metering_usageseries p
                        WHERE p.environment_id = c.env_id AND p.instance = c.instance)
        ) AS reset
      FROM c
),
rd AS (
    INSERT INTO metering_usagereading (
        environment_id, series_id, source, instance, boot, observed_at, received_at,
        attributed_hour, api_calls, seats, tenants, counted_api_calls, duplicate, reset, late)
    SELECT a.env_id, a.series_id, %(source)s, a.instance, a.boot, a.sent, %(now)s,
        a.hour, a.value, a.seats, a.tenants, a.counted, a.duplicate, a.reset, a.late
      FROM a ORDER BY a.n
    RETURNING 1
),
-- What each attributed hour's readings add, per metric: calls summed (and those moved
-- out of closed periods), gauges' peak and last (the latest observation; a later arrival
-- wins a tie, as it would arriving alone).
hr AS (
    SELECT a.env_id, a.hour, sum(a.counted) AS calls,
        sum(CASE WHEN a.late THEN a.counted ELSE 0 END) AS late_calls,
        count(*) AS readings, max(a.observed) AS observed,
        max(a.seats) AS seats_peak, count(a.seats) AS seats_readings,
        max(a.observed) FILTER (WHERE a.seats IS NOT NULL) AS seats_observed,
        (array_agg(a.seats ORDER BY a.observed DESC, a.n DESC)
            FILTER (WHERE a.seats IS NOT NULL))[1] AS seats_last,
        max(a.tenants) AS tenants_peak, count(a.tenants) AS tenants_readings,
        max(a.observed) FILTER (WHERE a.tenants IS NOT NULL) AS tenants_observed,
        (array_agg(a.tenants ORDER BY a.observed DESC, a.n DESC)
            FILTER (WHERE a.tenants IS NOT NULL))[1] AS tenants_last
      FROM a
     GROUP BY a.env_id, a.hour
),
m AS (
    SELECT hr.env_id, hr.hour, v.*
      FROM hr CROSS JOIN LATERAL (VALUES
          ('api_calls', hr.calls, hr.late_calls, NULL::bigint, NULL::bigint, hr.observed,
           hr.readings),
          ('seats', 0, 0, hr.seats_peak, hr.seats_last, hr.seats_observed, hr.seats_readings),
          ('tenants', 0, 0, hr.tenants_peak, hr.tenants_last, hr.tenants_observed,
           hr.tenants_readings)
      ) AS v(metric, total, late_total, peak, last, observed, readings)
     WHERE v.readings > 0
),
-- Rule 5: the newest observation is the environment's current value.
gu AS (
    INSERT INTO metering_usagegauge AS g (environment_id, metric, value, observed_at)
    SELECT * FROM (
        (SELECT a.env_id, 'seats', a.seats, a.observed FROM a WHERE a.seats IS NOT NULL
          ORDER BY a.observed DESC, a.n DESC LIMIT 1)
        UNION ALL
        (SELECT a.env_id, 'tenants', a.tenants, a.observed FROM a WHERE a.tenants IS NOT NULL
          ORDER BY a.observed DESC, a.n DESC LIMIT 1)
    ) AS latest
    {GAUGE_MERGE}
    RETURNING 1
),
ru AS (
    INSERT INTO metering_usagerollup AS r (
        environment_id, metric, hour, total, late_total, peak, last, last_observed_at,
        readings)
    SELECT m.env_id, m.metric, m.hour, m.total, m.late_total, m.peak, m.last, m.observed,
        m.readings
      FROM m
     ORDER BY m.metric, m.hour
    {ROLLUP_MERGE}
    RETURNING 1
),
du AS (
    INSERT INTO metering_usageday AS d (environment_id, metric, day, total, peak)
    SELECT m.env_id, m.metric, {DAY_OF_HOUR.format(hour="m.hour")}, sum(m.total),
        max(m.peak)
      FROM m
     GROUP BY 1, 2, 3
     ORDER BY 2, 3
    {DAY_MERGE}
    RETURNING 1
),
-- Per reading, in one pass (so in one order, given by `n`).
o AS (
    SELECT array_agg(a.n) AS n, array_agg(a.counted) AS counted,
        array_agg(a.duplicate) AS duplicate, array_agg(a.reset) AS reset,
        array_agg(a.late) AS late, array_agg(a.hour) AS hour
      FROM a
)
SELECT k.*, o.*,
    (SELECT count(*) FROM rd), (SELECT count(*) FROM gu), (SELECT count(*) FROM ru),
    (SELECT count(*) FROM du)
  FROM k, o
""")


def heads(key: dict[str, Any], instances: list[str]) -> dict[str, SeriesHead]:
    """The latest series of each of these boot-less instances (none for a bad key)."""
    rows = HEADS.run({**key, "instances": labels_array(instances)})
    return {instance: SeriesHead(g, highest, seen) for instance, g, highest, seen in rows}


def write(
    *,
    key: dict[str, Any],
    readings: Sequence[Reading],
    generations: Sequence[int],
    now: dt.datetime,
    source: str,
) -> tuple[KeyRow | None, list[Outcome]]:
    """Run WRITE: the key's row (None: no key has its prefix) and, when the key was
    usable, what each reading counted (else nothing was written and the list is empty)."""
    rows = WRITE.run(
        {
            **key,
            "now": now,
            "seen_before": now - SEEN_RESOLUTION,
            "source": str(source),
            "instance": labels_array([r.instance for r in readings]),
            "boot": labels_array([r.boot for r in readings]),
            "generation": ints_array(generations),
            "value": ints_array([r.api_calls for r in readings]),
            "observed": times_array([r.observed_at for r in readings]),
            "sent": times_array([r.observed_at if r.observed_sent else None for r in readings]),
            "seats": ints_array([r.seats for r in readings]),
            "tenants": ints_array([r.tenants for r in readings]),
        }
    )
    if not rows:
        return None, []
    row = rows[0]
    n, counted, duplicate, reset, late, hour = row[KEY_COLUMNS : KEY_COLUMNS + 6]
    if n is None:  # the key is not usable: nothing was read, nothing written
        return KeyRow(*row[:KEY_COLUMNS]), []
    outcomes: list[Outcome] = [None] * len(n)  # type: ignore[list-item]
    for i, *outcome in zip(n, counted, hour, duplicate, reset, late, strict=True):
        outcomes[i - 1] = Outcome(*outcome)
    return KeyRow(*row[:KEY_COLUMNS]), outcomes
