"""The PostgreSQL hot path: the statements and how they are run.

A single reading is ONE statement; a batch is a constant number of statements (arrays
through `unnest`). The statements are prepared once per connection with generic plans,
so a request pays neither for parsing nor for planning. See `metering.ingest` for the
locking order and race safety.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Sequence

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg.types.array import ListBinaryDumper
from psycopg.types.numeric import Int8

from accounts import tokens
from accounts.selectors.api_keys import API_KEY_SHAPE
from accounts.services.api_keys import LAST_USED_RESOLUTION
from metering import counting
from metering.counting import Before, Outcome, Reading
from metering.models import ReadingSource


class _PreparedCursor(psycopg.RawCursor):
    """Server-side binding, prepared once per connection: the hot statements are planned
    once instead of on every request (Django turns automatic preparation off). Results
    come in binary: loading binary timestamps costs less than parsing ISO text. A raw
    cursor: the statements come with PostgreSQL's own placeholders (`Statement`)."""

    def __init__(self, connection, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(connection, **kwargs)
        # The batch statements' arrays go in binary too: psycopg dumps a list element by
        # element in Python, ~1.3 us per reading per array as text, ~0.25 us in binary
        # (~12 us per batched reading over its dozen arrays). This cursor only.
        self.adapters.register_dumper(list, ListBinaryDumper)

    def execute(self, query, params=None, *, prepare=None, binary=None):  # type: ignore[override]
        return super().execute(query, params, prepare=True, binary=True)


# `last_received_at` moves at most once a minute (it feeds reporting-gap detection, which
# counts in hours): an unchanged indexed column lets PostgreSQL update the series row in
# place (HOT), without new entries in the series' four indexes on every reading.

_CURSORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cursor():
    # One lookup of this thread's connection (each `connection.x` goes through a proxy).
    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    raw_connection = conn.connection
    raw = _CURSORS.get(raw_connection)
    if raw is None or raw.closed:
        # Plan the prepared hot statements once: a custom plan per execution costs more
        # than running them. Only our prepared statements are affected (Django binds
        # parameters client-side, so its queries are never prepared).
        raw_connection.execute("SET plan_cache_mode = force_generic_plan")
        # Django sets the threshold to None (never prepare) for the sake of poolers in
        # transaction mode; its own cursors bind client-side and never prepare anyway.
        raw_connection.prepare_threshold = 0
        # One cursor per connection (a connection belongs to one thread), reused.
        raw = _CURSORS[raw_connection] = _PreparedCursor(raw_connection)
    # Django's wrapper, so errors map to django.db errors and tests can count queries.
    return conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)


def _fetch_one(statement: Statement, params: dict[str, object]) -> tuple | None:
    """Run a hot statement; its first row, or None."""
    cursor = _cursor()  # kept open: it is reused (see _cursor)
    statement.run(cursor, params)
    return cursor.fetchone()


def _compact(sql: str) -> str:
    """One line, single spaces: fewer bytes to send and to hash for the prepared-statement
    lookup on every execution."""
    sql = re.sub(r"\s+", " ", sql).strip()
    return re.sub(r" ?(<=|>=|=|<|>|\+|-|,|\(|\)) ?", r"\1", sql)


_NAMED = re.compile(r"%\((\w+)\)s")


class Statement:
    """A hot statement, written with named placeholders (`%(name)s`) and sent with
    PostgreSQL's own (`$1`, `$2`, ...) through a raw cursor: psycopg passes it on as it
    is. A regular cursor would parse the placeholders out of the text on every execution
    (cached only for statements under 4 KiB; ~130 us for the single-reading statement)."""

    __slots__ = ("names", "sql")

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.sql = _NAMED.sub(number, _compact(sql))
        self.names = tuple(names)

    def run(self, cursor, params: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
        cursor.execute(self.sql, [params[name] for name in self.names])


def _i8(value: int | None) -> Int8 | None:
    return None if value is None else Int8(value)


# How an hour's rollup row absorbs a reading (or a batch's sum for that hour): calls add
# up, the peak is the max, `last` follows the latest observation. Shared by the single and
# the batch statements so the two paths can never merge differently.
_ROLLUP_MERGE = """ON CONFLICT (environment_id, metric, hour) DO UPDATE SET
        total = r.total + EXCLUDED.total,
        late_total = r.late_total + EXCLUDED.late_total,
        peak = GREATEST(r.peak, EXCLUDED.peak),
        last = CASE WHEN r.last_observed_at IS NULL
                      OR EXCLUDED.last_observed_at >= r.last_observed_at
                    THEN COALESCE(EXCLUDED.last, r.last) ELSE r.last END,
        last_observed_at = GREATEST(r.last_observed_at, EXCLUDED.last_observed_at),
        readings = r.readings + EXCLUDED.readings"""

# A gauge takes the newest observation; an older one arriving late changes nothing.
_GAUGE_MERGE = """ON CONFLICT (environment_id, metric) DO UPDATE SET
        value = EXCLUDED.value, observed_at = EXCLUDED.observed_at
        WHERE g.observed_at <= EXCLUDED.observed_at"""

# A day absorbs what its hours absorbed: calls add up, the peak is the max.
_DAY_MERGE = """ON CONFLICT (environment_id, metric, day) DO UPDATE SET
        total = d.total + EXCLUDED.total,
        peak = GREATEST(d.peak, EXCLUDED.peak)"""
# The UTC day of an hour (a timestamptz).
_DAY_OF_HOUR = "({hour} AT TIME ZONE 'UTC')::date"

_AUTH = """
    SELECT ak.id AS key_id, e.id AS env_id, ct.closed_through, ak.last_used_at
    FROM accounts_apikey ak
    JOIN accounts_environment e ON e.id = ak.environment_id
    JOIN accounts_project p ON p.id = e.project_id
    LEFT JOIN metering_usageclosedthrough ct ON ct.organization_id = p.organization_id
    WHERE ak.prefix = %(prefix)s AND ak.digest = %(digest)s
      AND (ak.revoked_at IS NULL OR ak.revoked_at > %(now)s)
      AND (ak.expires_at IS NULL OR ak.expires_at > %(now)s)
      AND e.status = 'enabled'
"""

# The lock order of every writer: series, reading, gauges, hourly rollups, days, API key
# (the WCP +1/-1 path takes gauge, rollup, day in the same order; a single reading writes
# the key's `last_used_at` in a statement of its own, TOUCH, after it is committed). The
# main query reads `a` first (the series upsert) and then counts gu, ru and du in order:
# PostgreSQL runs a data-modifying CTE when it is first read, and runs the ones nobody
# reads (here rd, which locks nothing others wait for) after the main query, in REVERSE
# order of declaration.
# The attribution hour of counted calls (rule 4): observed_at, never before the series'
# previous reading, moved to the first open hour when the organization's period is closed.
SINGLE = f"""
WITH k AS ({_AUTH}),
head AS (
    SELECT s.generation, s.highest, s.last_observed_at
    FROM metering_usageseries s, k
    WHERE %(boot)s = '' AND s.environment_id = k.env_id
      AND s.instance = %(inst)s AND s.boot = ''
    ORDER BY s.generation DESC LIMIT 1
),
up AS (
    INSERT INTO metering_usageseries AS s (
        environment_id, instance, boot, generation, highest, last_observed_at,
        previous_highest, previous_observed_at, first_received_at, last_received_at)
    SELECT k.env_id, %(inst)s, %(boot)s,
        COALESCE((SELECT CASE WHEN %(value)s < head.highest
                               AND %(obs)s > head.last_observed_at
                          THEN head.generation + 1 ELSE head.generation END FROM head), 0),
        %(value)s, %(obs)s, 0, NULL, %(now)s, %(now)s
    FROM k
    ON CONFLICT (environment_id, instance, boot, generation) DO UPDATE SET
        previous_highest = s.highest,
        previous_observed_at = s.last_observed_at,
        highest = GREATEST(s.highest, EXCLUDED.highest),
        last_observed_at = GREATEST(s.last_observed_at, EXCLUDED.last_observed_at),
        last_received_at = CASE WHEN s.last_received_at < %(stale)s
                                THEN EXCLUDED.last_received_at ELSE s.last_received_at END
    RETURNING s.id, s.environment_id, (s.xmax = 0) AS fresh,
        s.highest - s.previous_highest AS counted, s.previous_observed_at
),
h AS (
    SELECT up.*, k.closed_through, k.key_id, k.last_used_at,
        date_trunc('hour', CASE WHEN up.counted = 0 OR up.previous_observed_at IS NULL
                                THEN %(obs)s
                                ELSE GREATEST(%(obs)s, up.previous_observed_at) END,
                   'UTC') AS hour0
    FROM up, k
),
a AS (
    SELECT h.*, (h.closed_through IS NOT NULL AND h.hour0 < h.closed_through) AS late,
        CASE WHEN h.closed_through IS NULL OR h.hour0 >= h.closed_through THEN h.hour0
             ELSE date_trunc('hour', h.closed_through - interval '1 microsecond', 'UTC')
                  + interval '1 hour' END AS hour,
        (h.counted = 0 AND NOT h.fresh) AS duplicate,
        (h.fresh AND EXISTS (SELECT 1 FROM metering_usageseries s, k
                             WHERE s.environment_id = k.env_id AND s.instance = %(inst)s))
            AS reset
    FROM h
),
rd AS (
    INSERT INTO metering_usagereading (
        environment_id, series_id, source, instance, boot, observed_at, received_at,
        attributed_hour, api_calls, seats, tenants, counted_api_calls, duplicate, reset, late)
    SELECT a.environment_id, a.id, %(source)s, %(inst)s, %(boot)s, %(sent)s,
        %(now)s, a.hour, %(value)s, %(seats)s, %(tenants)s, a.counted,
        a.duplicate, a.reset, a.late
    FROM a
    RETURNING 1
),
m AS (
    SELECT a.environment_id, a.hour, v.metric, v.total, v.late_total, v.gauge
    FROM a CROSS JOIN LATERAL (VALUES
        ('api_calls', a.counted, CASE WHEN a.late THEN a.counted ELSE 0 END, NULL::bigint),
        ('seats', 0, 0, %(seats)s::bigint),
        ('tenants', 0, 0, %(tenants)s::bigint)
    ) AS v(metric, total, late_total, gauge)
    WHERE v.metric = 'api_calls' OR v.gauge IS NOT NULL
),
gu AS (
    INSERT INTO metering_usagegauge AS g (environment_id, metric, value, observed_at)
    SELECT m.environment_id, m.metric, m.gauge, %(obs)s
    FROM m WHERE m.gauge IS NOT NULL ORDER BY m.metric
    {_GAUGE_MERGE}
    RETURNING 1
),
ru AS (
    INSERT INTO metering_usagerollup AS r (
        environment_id, metric, hour, total, late_total, peak, last, last_observed_at, readings)
    SELECT m.environment_id, m.metric, m.hour, m.total, m.late_total, m.gauge, m.gauge,
        %(obs)s, 1
    FROM m ORDER BY m.metric
    {_ROLLUP_MERGE}
    RETURNING 1
),
du AS (
    INSERT INTO metering_usageday AS d (environment_id, metric, day, total, peak)
    SELECT m.environment_id, m.metric, {_DAY_OF_HOUR.format(hour="m.hour")}, m.total, m.gauge
    FROM m ORDER BY m.metric
    {_DAY_MERGE}
    RETURNING 1
)
SELECT a.counted, a.duplicate, a.reset, a.late, a.hour, a.key_id, a.last_used_at,
    (SELECT count(*) FROM gu), (SELECT count(*) FROM ru), (SELECT count(*) FROM du)
FROM a
"""
SINGLE = Statement(SINGLE)

# The key's `last_used_at`, at most once a minute: the single-reading statement returns
# the value it read, and this statement writes a new one only when that is due (about once
# a minute per key). An UPDATE inside the single statement cost PostgreSQL ~15-25 us of CPU
# on every reading (its node opens the key table's six indexes on every execution) for a
# write that happens once a minute. The condition keeps concurrent writers to one write.
# A batch runs the same UPDATE inside its write statement (once per batch).
_TOUCH_KEY = """UPDATE accounts_apikey SET last_used_at = %(now)s
    WHERE id = %(key)s AND (last_used_at IS NULL OR last_used_at < %(touch_before)s)
    RETURNING 1"""
TOUCH = Statement(_TOUCH_KEY)


def _key_params(plaintext: str, now: dt.datetime) -> dict[str, object]:
    match = API_KEY_SHAPE.match(plaintext)
    assert match is not None, "check the key's shape first"
    return {"prefix": match.group(1), "digest": tokens.digest(plaintext), "now": now}


def record_one(plaintext: str, r: Reading, now: dt.datetime) -> Outcome | None:
    """Record one reading in one statement; None when the key is not usable."""
    stale = now - LAST_USED_RESOLUTION  # series' last_received_at and the key's last use
    params = {
        **_key_params(plaintext, now),
        "inst": r.instance,
        "boot": r.boot,
        "value": Int8(r.api_calls),
        "obs": r.observed_at,
        "sent": r.observed_at if r.observed_sent else None,
        "seats": _i8(r.seats),
        "tenants": _i8(r.tenants),
        "source": ReadingSource.NATIVE.value,
        "stale": stale,
    }
    row = _fetch_one(SINGLE, params)
    if row is None:
        return None
    counted, duplicate, reset, late, hour, key_id, last_used = row[:7]
    if last_used is None or last_used < stale:
        _fetch_one(TOUCH, {"now": now, "key": key_id, "touch_before": stale})
    return Outcome(counted, hour, duplicate, reset, late)


BATCH_HEADS = f"""
WITH k AS ({_AUTH}),
i AS (
    SELECT DISTINCT s.instance FROM metering_usageseries s, k
    WHERE s.environment_id = k.env_id AND s.instance = ANY(%(instances)s::varchar[])
),
h AS (
    SELECT DISTINCT ON (s.instance) s.instance, s.generation, s.highest, s.last_observed_at
    FROM metering_usageseries s, k
    WHERE s.environment_id = k.env_id AND s.boot = ''
      AND s.instance = ANY(%(instances)s::varchar[])
    ORDER BY s.instance, s.generation DESC
)
SELECT k.key_id, k.env_id, k.closed_through, i.instance, h.generation, h.highest,
    h.last_observed_at
FROM k LEFT JOIN i ON true LEFT JOIN h ON h.instance = i.instance
"""
BATCH_HEADS = Statement(BATCH_HEADS)

BATCH_SERIES = """
INSERT INTO metering_usageseries AS s (
    environment_id, instance, boot, generation, highest, last_observed_at,
    previous_highest, previous_observed_at, first_received_at, last_received_at)
SELECT %(env)s, u.instance, u.boot, u.generation, u.highest, u.observed, 0, NULL,
    %(now)s, %(now)s
FROM unnest(%(instance)s::varchar[], %(boot)s::varchar[], %(generation)s::int[],
            %(highest)s::bigint[], %(observed)s::timestamptz[])
    AS u(instance, boot, generation, highest, observed)
ORDER BY u.instance, u.boot, u.generation
ON CONFLICT (environment_id, instance, boot, generation) DO UPDATE SET
    previous_highest = s.highest,
    previous_observed_at = s.last_observed_at,
    highest = GREATEST(s.highest, EXCLUDED.highest),
    last_observed_at = GREATEST(s.last_observed_at, EXCLUDED.last_observed_at),
    last_received_at = CASE WHEN s.last_received_at < %(stale)s
                            THEN EXCLUDED.last_received_at ELSE s.last_received_at END
RETURNING s.instance, s.boot, s.generation, s.id, (s.xmax = 0) AS fresh,
    s.previous_highest, s.previous_observed_at
"""
BATCH_SERIES = Statement(BATCH_SERIES)

BATCH_WRITE = f"""
WITH rd AS (
    INSERT INTO metering_usagereading (
        environment_id, series_id, source, instance, boot, observed_at, received_at,
        attributed_hour, api_calls, seats, tenants, counted_api_calls, duplicate, reset, late)
    SELECT %(env)s, u.series, %(source)s, u.instance, u.boot, u.observed_sent, %(now)s,
        u.hour, u.api_calls, u.seats, u.tenants, u.counted, u.duplicate, u.reset, u.late
    FROM unnest(%(r_series)s::bigint[], %(r_instance)s::varchar[], %(r_boot)s::varchar[],
                %(r_observed_sent)s::timestamptz[], %(r_hour)s::timestamptz[],
                %(r_api_calls)s::bigint[], %(r_seats)s::bigint[], %(r_tenants)s::bigint[],
                %(r_counted)s::bigint[], %(r_duplicate)s::bool[], %(r_reset)s::bool[],
                %(r_late)s::bool[])
        AS u(series, instance, boot, observed_sent, hour, api_calls, seats, tenants,
             counted, duplicate, reset, late)
    RETURNING 1
),
gu AS (
    INSERT INTO metering_usagegauge AS g (environment_id, metric, value, observed_at)
    SELECT %(env)s, u.metric, u.value, u.observed
    FROM unnest(%(g_metric)s::varchar[], %(g_value)s::bigint[], %(g_observed)s::timestamptz[])
        AS u(metric, value, observed)
    ORDER BY u.metric
    {_GAUGE_MERGE}
    RETURNING 1
),
ru AS (
    INSERT INTO metering_usagerollup AS r (
        environment_id, metric, hour, total, late_total, peak, last, last_observed_at, readings)
    SELECT %(env)s, u.metric, u.hour, u.total, u.late_total, u.peak, u.last, u.observed,
        u.readings
    FROM unnest(%(u_metric)s::varchar[], %(u_hour)s::timestamptz[], %(u_total)s::bigint[],
                %(u_late)s::bigint[], %(u_peak)s::bigint[], %(u_last)s::bigint[],
                %(u_observed)s::timestamptz[], %(u_readings)s::int[])
        AS u(metric, hour, total, late_total, peak, last, observed, readings)
    ORDER BY u.metric, u.hour
    {_ROLLUP_MERGE}
    RETURNING 1
),
du AS (
    INSERT INTO metering_usageday AS d (environment_id, metric, day, total, peak)
    SELECT %(env)s, u.metric, {_DAY_OF_HOUR.format(hour="u.hour")}, SUM(u.total), MAX(u.peak)
    FROM unnest(%(u_metric)s::varchar[], %(u_hour)s::timestamptz[], %(u_total)s::bigint[],
                %(u_peak)s::bigint[])
        AS u(metric, hour, total, peak)
    GROUP BY 2, 3
    ORDER BY 2, 3
    {_DAY_MERGE}
    RETURNING 1
),
touch AS (
    {_TOUCH_KEY}
)
SELECT (SELECT count(*) FROM rd), (SELECT count(*) FROM gu), (SELECT count(*) FROM ru),
    (SELECT count(*) FROM du), (SELECT count(*) FROM touch)
"""
BATCH_WRITE = Statement(BATCH_WRITE)


def record_batch(
    plaintext: str, readings: Sequence[Reading], now: dt.datetime, source: str
) -> list[Outcome] | None:
    """Record a batch in a constant number of statements; None when the key is not
    usable."""
    instances = sorted({r.instance for r in readings})
    cursor = _cursor()
    BATCH_HEADS.run(cursor, {**_key_params(plaintext, now), "instances": instances})
    rows = cursor.fetchall()
    if not rows:
        return None
    key_id, env_id, closed_through = rows[0][:3]
    known = {row[3] for row in rows if row[3] is not None}
    heads = {
        row[3]: counting.SeriesHead(row[4], row[5], row[6]) for row in rows if row[4] is not None
    }
    keys = counting.choose_series(readings, heads)
    bounds = counting.series_bounds(readings, keys)
    ordered = sorted(bounds)
    with transaction.atomic():
        BATCH_SERIES.run(
            cursor,
            {
                "env": env_id,
                "now": now,
                "stale": now - LAST_USED_RESOLUTION,
                "instance": [k[0] for k in ordered],
                "boot": [k[1] for k in ordered],
                "generation": [k[2] for k in ordered],
                "highest": [bounds[k][0] for k in ordered],
                "observed": [bounds[k][2] for k in ordered],
            },
        )
        series_ids: dict[counting.SeriesKey, int] = {}
        before: dict[counting.SeriesKey, Before] = {}
        for instance, boot, generation, sid, fresh, prev_highest, prev_observed in cursor:
            key = (instance, boot, generation)
            series_ids[key] = sid
            before[key] = Before(fresh, prev_highest, prev_observed)
        results = counting.outcomes(
            readings, keys, before, known_instances=known, closed_through=closed_through
        )
        deltas = counting.rollup_deltas(readings, results)
        rollup_keys = sorted(deltas)
        gauges = counting.latest_gauges(readings)
        BATCH_WRITE.run(
            cursor,
            {
                "env": env_id,
                "key": key_id,
                "now": now,
                "touch_before": now - LAST_USED_RESOLUTION,
                "source": str(source),
                "r_series": [series_ids[k] for k in keys],
                "r_instance": [r.instance for r in readings],
                "r_boot": [r.boot for r in readings],
                "r_observed_sent": [r.observed_at if r.observed_sent else None for r in readings],
                "r_hour": [o.attributed_hour for o in results],
                "r_api_calls": [r.api_calls for r in readings],
                "r_seats": [r.seats for r in readings],
                "r_tenants": [r.tenants for r in readings],
                "r_counted": [o.counted for o in results],
                "r_duplicate": [o.duplicate for o in results],
                "r_reset": [o.reset for o in results],
                "r_late": [o.late for o in results],
                "u_metric": [k[0] for k in rollup_keys],
                "u_hour": [k[1] for k in rollup_keys],
                "u_total": [deltas[k].total for k in rollup_keys],
                "u_late": [deltas[k].late_total for k in rollup_keys],
                "u_peak": [deltas[k].peak for k in rollup_keys],
                "u_last": [deltas[k].last for k in rollup_keys],
                "u_observed": [deltas[k].last_observed_at for k in rollup_keys],
                "u_readings": [deltas[k].readings for k in rollup_keys],
                "g_metric": sorted(gauges),
                "g_value": [gauges[m][0] for m in sorted(gauges)],
                "g_observed": [gauges[m][1] for m in sorted(gauges)],
            },
        )
    return results
