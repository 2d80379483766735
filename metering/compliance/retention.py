"""Retention: raw readings older than RETENTION_DAYS are deleted in bounded batches.

Rollups, gauges, series and true-ups are never touched, so usage totals stay what they
were; only the verbatim record behind them ages out.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from metering.compliance.flags import JobReport
from metering.models import UsageReading


def prune_readings(
    *,
    at: dt.datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> JobReport:
    at = at or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    max_batches = max_batches or settings.RETENTION_MAX_BATCHES
    cutoff = at - dt.timedelta(days=settings.RETENTION_DAYS)
    deleted = batches = 0
    after = 0
    while batches < max_batches:
        # Oldest first in id order: ids grow with `received_at` (both are taken as the
        # reading is stored; a request's few seconds of skew do not matter at a cutoff of
        # days), so no index on `received_at` has to be written for every reading. Each
        # batch is its own short transaction, so ingest never waits long on these rows.
        rows = list(
            UsageReading.objects.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "received_at")[:batch_size]
        )
        old = [reading_id for reading_id, received_at in rows if received_at < cutoff]
        if old:
            n, _ = UsageReading.objects.filter(id__in=old).delete()
            deleted += n
            batches += 1
        if len(old) < len(rows) or len(rows) < batch_size:
            break  # reached readings inside the retention window (or the end)
        after = rows[-1][0]
    report = JobReport(job="retention")
    report.details.update(
        {"readings_deleted": deleted, "batches": batches, "cutoff": cutoff.isoformat()}
    )
    return report
