"""The SQL of the counting rules that every writer of usage shares: the native write
statement (`write`) and the CMS protocol's +1/-1 (`metering.services.gauge_step`). Each
merge is an `ON CONFLICT` clause on the table's unique key, so racing writers serialise
on the row and each merges into what the other committed.
"""

from __future__ import annotations

# Rule 4, the closed-period half: counted calls whose hour (`{hour}`, a timestamptz on the
# hour) is before the organization's closed-through instant (`{closed}`, NULL when nothing
# is closed) go to the oldest open hour and are marked late.
LATE = "({closed} IS NOT NULL AND {hour} < {closed})"
ATTRIBUTED_HOUR = (
    "CASE WHEN {closed} IS NOT NULL AND {hour} < {closed}"
    " THEN date_trunc('hour', {closed} - interval '1 microsecond', 'UTC') + interval '1 hour'"
    " ELSE {hour} END"
)

# Rule 5 and the hourly rollup (alias `r`): calls add up, the peak is the max, `last`
# follows the latest observation (an older one arriving late changes nothing).
ROLLUP_MERGE = """ON CONFLICT (environment_id, metric, hour) DO UPDATE SET
        total = r.total + EXCLUDED.total,
        late_total = r.late_total + EXCLUDED.late_total,
        peak = GREATEST(r.peak, EXCLUDED.peak),
        last = CASE WHEN r.last_observed_at IS NULL
                      OR EXCLUDED.last_observed_at >= r.last_observed_at
                    THEN COALESCE(EXCLUDED.last, r.last) ELSE r.last END,
        last_observed_at = GREATEST(r.last_observed_at, EXCLUDED.last_observed_at),
        readings = r.readings + EXCLUDED.readings"""

# A day (alias `d`) absorbs what its hours absorbed: calls add up, the peak is the max.
DAY_MERGE = """ON CONFLICT (environment_id, metric, day) DO UPDATE SET
        total = d.total + EXCLUDED.total,
        peak = GREATEST(d.peak, EXCLUDED.peak)"""
# The UTC day of an hour (a timestamptz).
DAY_OF_HOUR = "({hour} AT TIME ZONE 'UTC')::date"

# Rule 5, the current value (alias `g`): a gauge takes the newest observation; an older one
# arriving late changes nothing.
GAUGE_MERGE = """ON CONFLICT (environment_id, metric) DO UPDATE SET
        value = EXCLUDED.value, observed_at = EXCLUDED.observed_at
        WHERE g.observed_at <= EXCLUDED.observed_at"""
