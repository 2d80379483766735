"""Retention: raw readings go a whole month at a time, once every hour of the month is
older than RETENTION_DAYS (by `attributed_hour`, the partition key): the monthly partition
is detached and dropped (metering.partitions). A month that straddles the cutoff is kept
whole until its last hour expires, so a reading is kept RETENTION_DAYS at least and about
a month longer at most. Rows never get deleted one by one.

Rollups, gauges, series and true-ups are never touched, so usage totals stay what they
were; only the verbatim record behind them ages out.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from metering import partitions
from metering.compliance.flags import JobReport


def prune_readings(*, at: dt.datetime | None = None) -> JobReport:
    cutoff = partitions.retention_cutoff(at or timezone.now())
    dropped = partitions.drop_expired(cutoff=cutoff)
    report = JobReport(job="retention")
    report.details.update({"partitions_dropped": dropped, "cutoff": cutoff.isoformat()})
    return report
