"""Monthly partitions of the raw readings (`metering_usagereading`, partitioned by range of
`attributed_hour`, UTC months; docs/decisions/0012-partitioned-readings.md).

A partition is made by one SQL function, `metering_usagereading_partition(month)` (created
by migration metering 0014): `metering_usagereading_y2026m11` holds the readings
attributed to November 2026. The partitions job makes them ahead: from the month the
retention cutoff falls in to MONTHS_AHEAD months after this one, so every hour a reading
can be attributed to (observations are refused beyond the retention window) has its
partition. A reading attributed to a month without one still lands: in the DEFAULT
partition, which the next run of the job empties into the month's new partition.

Retention drops whole months (`drop_expired`): a partition goes once its last hour is
older than the cutoff, so one that straddles the cutoff is kept whole until then.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from metering.compliance.flags import JobReport

TABLE = "metering_usagereading"
DEFAULT = f"{TABLE}_default"
MONTHS_AHEAD = 3
LOCK_TIMEOUT = "2s"
_NAME = re.compile(rf"^{TABLE}_y(\d{{4}})m(\d{{2}})$")

# The months the DEFAULT partition holds readings of (normally none: one empty scan).
_DEFAULT_MONTHS = f"""
SELECT DISTINCT date_trunc('month', attributed_hour AT TIME ZONE 'UTC')::date FROM {DEFAULT}
"""
_MAKE = f"SELECT m, {TABLE}_partition(m) FROM unnest(%s::date[]) AS m ORDER BY m"
_LIST = f"""
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = '{TABLE}'::regclass
"""


@dataclass(frozen=True)
class Partition:
    name: str
    month: dt.date  # the first day

    @property
    def end(self) -> dt.datetime:
        """The first instant after the partition's range (UTC)."""
        first = next_month(self.month)
        return dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC)


def month_of(at: dt.datetime) -> dt.date:
    utc = at.astimezone(dt.UTC)
    return dt.date(utc.year, utc.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def retention_cutoff(at: dt.datetime) -> dt.datetime:
    return at - dt.timedelta(days=settings.RETENTION_DAYS)


def partitions() -> list[Partition]:
    """The monthly partitions, oldest first (the DEFAULT partition is not one)."""
    with connection.cursor() as cursor:
        cursor.execute(_LIST)
        names = [name for (name,) in cursor.fetchall()]
    found = [
        Partition(name, dt.date(int(m[1]), int(m[2]), 1))
        for name in names
        if (m := _NAME.match(name))
    ]
    return sorted(found, key=lambda p: p.month)


def _ddl_transaction() -> None:
    """Settings for a transaction that attaches or detaches a partition."""
    with connection.cursor() as cursor:
        # ALTER TABLE refuses a table with pending deferred foreign-key checks: a caller's
        # transaction that wrote readings (Django's keys are DEFERRABLE INITIALLY
        # DEFERRED) has them checked now instead of at its commit.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # A lock that waits behind a long read holds up every writer queued after it:
        # give up after a moment instead (an error; the job's next run tries again).
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")


def ensure_partitions(*, at: dt.datetime | None = None) -> JobReport:
    """Make the partitions of the window (the cutoff's month to MONTHS_AHEAD ahead) and of
    every month the DEFAULT partition holds readings of, moving those readings in.
    Idempotent: a month that has its partition is left alone."""
    at = at or timezone.now()
    month, last = month_of(retention_cutoff(at)), month_of(at)
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    wanted = set()
    while month <= last:
        wanted.add(month)
        month = next_month(month)
    with transaction.atomic():
        _ddl_transaction()
        with connection.cursor() as cursor:
            cursor.execute(_DEFAULT_MONTHS)
            wanted |= {m for (m,) in cursor.fetchall()}
            cursor.execute(_MAKE, [sorted(wanted)])
            made = [name for _, name in cursor.fetchall() if name]
    report = JobReport(job="partitions")
    report.details.update({"partitions_created": made})
    return report


def drop_expired(*, cutoff: dt.datetime) -> list[str]:
    """Detach and drop every monthly partition that ends at or before `cutoff`; the
    names dropped, oldest first. Each in a short transaction of its own: DETACH takes an
    ACCESS EXCLUSIVE lock on the parent for a moment, and ingest waits behind it."""
    dropped = []
    for partition in partitions():
        if partition.end > cutoff:
            break
        with transaction.atomic():
            _ddl_transaction()
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE {TABLE} DETACH PARTITION "{partition.name}"')
                cursor.execute(f'DROP TABLE "{partition.name}"')
        dropped.append(partition.name)
    return dropped
