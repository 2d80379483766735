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
    old = UsageReading.objects.filter(received_at__lt=cutoff)
    deleted = batches = 0
    while batches < max_batches:
        # Oldest first through the received_at index; each batch is its own short
        # transaction, so ingest never waits long on these rows.
        ids = list(old.order_by("received_at", "id").values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        n, _ = UsageReading.objects.filter(id__in=ids).delete()
        deleted += n
        batches += 1
        if len(ids) < batch_size:
            break
    report = JobReport(job="retention")
    report.details.update(
        {"readings_deleted": deleted, "batches": batches, "cutoff": cutoff.isoformat()}
    )
    return report
