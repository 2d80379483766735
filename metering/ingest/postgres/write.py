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
from metering.ingest.postgres.cursor import Statement
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

# The latest series of each boot-less instance (rule 3 continues from it). Indexed by
# usage_series_unique (environment, instance, boot, generation).
HEADS = Statement(f"""
WITH k AS ({KEY_LOOKUP_SQL})
SELECT DISTINCT ON (s.instance) s.instance, s.generation, s.highest, s.last_observed_at
  FROM k, metering_usageseries s
 WHERE {KEY_USABLE_SQL} AND s.environment_id = k.env_id AND s.boot = ''
   AND s.instance = ANY(%(instances)s::varchar[])
 ORDER BY s.instance, s.generation DESC
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
-- above the highest value seen before it (the series' before this statement, then the
-- earlier readings'). Rule 4: counted calls go to the reading's observation, never
-- before the series' previous observation (a counter cannot have grown before it was
-- last seen lower).
b AS (
    SELECT u.*, s.id AS series_id,
        s.fresh AND row_number() OVER w = 1 AS starts,
        GREATEST(0, u.value - GREATEST(s.previous_highest, max(u.value) OVER earlier))
            AS counted,
        GREATEST(s.previous_observed_at, max(u.observed) OVER earlier) AS seen,
        min(u.n) OVER (PARTITION BY u.instance) AS instance_first
      FROM u JOIN series s USING (instance, boot, generation)
    WINDOW w AS (PARTITION BY u.instance, u.boot, u.generation ORDER BY u.n),
           earlier AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
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
        CASE WHEN NOT c.starts THEN false
             WHEN c.instance_first < c.n THEN true
             ELSE EXISTS (SELECT 1 FROM metering_usageseries p
                           WHERE p.environment_id = c.env_id AND p.instance = c.instance)
        END AS reset
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
-- Each reading's metrics: its counted calls, and its seats and tenants when it has them.
m AS (
    SELECT a.env_id, a.n, a.hour, a.observed, v.metric, v.total, v.late_total, v.gauge
      FROM a CROSS JOIN LATERAL (VALUES
          ('api_calls', a.counted, CASE WHEN a.late THEN a.counted ELSE 0 END, NULL::bigint),
          ('seats', 0, 0, a.seats),
          ('tenants', 0, 0, a.tenants)
      ) AS v(metric, total, late_total, gauge)
     WHERE v.metric = 'api_calls' OR v.gauge IS NOT NULL
),
-- Rule 5: the newest observation is the environment's current value (later arrival wins
-- a tie, as it would arriving alone).
gu AS (
    INSERT INTO metering_usagegauge AS g (environment_id, metric, value, observed_at)
    SELECT DISTINCT ON (m.metric) m.env_id, m.metric, m.gauge, m.observed
      FROM m WHERE m.gauge IS NOT NULL
     ORDER BY m.metric, m.observed DESC, m.n DESC
    {GAUGE_MERGE}
    RETURNING 1
),
ru AS (
    INSERT INTO metering_usagerollup AS r (
        environment_id, metric, hour, total, late_total, peak, last, last_observed_at,
        readings)
    SELECT m.env_id, m.metric, m.hour, sum(m.total), sum(m.late_total), max(m.gauge),
        (array_agg(m.gauge ORDER BY m.observed DESC, m.n DESC))[1], max(m.observed),
        count(*)
      FROM m
     GROUP BY m.env_id, m.metric, m.hour
     ORDER BY m.metric, m.hour
    {ROLLUP_MERGE}
    RETURNING 1
),
du AS (
    INSERT INTO metering_usageday AS d (environment_id, metric, day, total, peak)
    SELECT m.env_id, m.metric, {DAY_OF_HOUR.format(hour="m.hour")}, sum(m.total),
        max(m.gauge)
      FROM m
     GROUP BY 1, 2, 3
     ORDER BY 2, 3
    {DAY_MERGE}
    RETURNING 1
),
o AS (
    SELECT array_agg(a.counted ORDER BY a.n) AS counted,
        array_agg(a.duplicate ORDER BY a.n) AS duplicate,
        array_agg(a.reset ORDER BY a.n) AS reset,
        array_agg(a.late ORDER BY a.n) AS late,
        array_agg(a.hour ORDER BY a.n) AS hour
      FROM a
)
SELECT k.*, o.*,
    (SELECT count(*) FROM rd), (SELECT count(*) FROM gu), (SELECT count(*) FROM ru),
    (SELECT count(*) FROM du)
  FROM k, o
""")


def heads(plaintext_params: dict[str, Any], instances: list[str]) -> dict[str, SeriesHead]:
    """The latest series of each of these boot-less instances (none for a bad key)."""
    rows = HEADS.run({**plaintext_params, "instances": instances})
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
            "instance": [r.instance for r in readings],
            "boot": [r.boot for r in readings],
            "generation": list(generations),
            "value": [r.api_calls for r in readings],
            "observed": [r.observed_at for r in readings],
            "sent": [r.observed_at if r.observed_sent else None for r in readings],
            "seats": [r.seats for r in readings],
            "tenants": [r.tenants for r in readings],
        }
    )
    if not rows:
        return None, []
    row = rows[0]
    counted, duplicate, reset, late, hour = row[KEY_COLUMNS : KEY_COLUMNS + 5]
    if counted is None:  # the key is not usable: nothing was read, nothing written
        return KeyRow(*row[:KEY_COLUMNS]), []
    outcomes = list(map(Outcome, counted, hour, duplicate, reset, late))
    return KeyRow(*row[:KEY_COLUMNS]), outcomes
