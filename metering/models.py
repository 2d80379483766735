"""Usage storage: series, raw readings, hourly rollups, current gauges, closed periods.

Counting rules live in `metering.ingest`; this module only fixes the shapes and the
database guarantees the rules rely on:

- `UsageSeries` keeps the highest cumulative value per (environment, instance, boot,
  generation). Its unique key is what makes concurrent pushes safe: the ingest path
  upserts the series and raises `highest` in one statement, so two pushes never both
  count the same calls.
- `UsageReading` is the append-only record of every accepted reading and what it counted.
- `UsageRollup` holds one row per (environment, metric, hour): API calls summed; seats and
  tenants as max and last. Maintained in the same transaction as the reading.
- `UsageDay` holds one row per (environment, metric, UTC day): the day's hourly rollups
  summed (calls) and maxed (gauge peak), written in the same statement as the hour, so
  contract evaluation reads ~24x fewer rows and never has to build anything first.
- `UsageGauge` is the current seats / tenants of an environment (WCP +1/-1 and the
  native API's absolute readings both write it).
- `UsageClosedThrough` marks, per organization, the instant before which periods are
  closed: increments attributed earlier go to the oldest open period and are marked late.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import API_CALLS, SEATS, TENANTS, Environment, Organization

USAGE_METRICS = (API_CALLS, SEATS, TENANTS)
GAUGE_METRICS = (SEATS, TENANTS)


class ReadingSource(models.TextChoices):
    NATIVE = "native", "Native usage API"
    WCP_SEATS = "wcp_seats", "WCP seat +1/-1"
    WCP_TENANTS = "wcp_tenants", "WCP tenant +1/-1"
    TELEMETRY = "telemetry", "WCP telemetry batch"


class UsageSeries(models.Model):
    """One counter source since one boot. `boot` is '' when the instance sends none; then
    `generation` counts the implicit restarts (DESIGN rule 3)."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="usage_series", db_index=False
    )  # indexed as the first column of a composite key below
    instance = models.CharField(max_length=128)
    boot = models.CharField(max_length=128, blank=True, default="")
    generation = models.PositiveIntegerField(default=0)
    highest = models.BigIntegerField(default=0)
    # The latest `observed_at` seen: a lower value observed later is a restart (no boot).
    last_observed_at = models.DateTimeField()
    # `highest` and `last_observed_at` as they were before the latest upsert. The upsert
    # sets them from the locked row (`SET previous_highest = highest, ...`), so what a
    # push counted is `highest - previous_highest`, exact even when pushes race.
    previous_highest = models.BigIntegerField(default=0)
    previous_observed_at = models.DateTimeField(null=True, blank=True)
    first_received_at = models.DateTimeField(default=timezone.now)
    last_received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # The upsert target of every reading: one row per series, so `highest` is raised
            # by a single `INSERT ... ON CONFLICT DO UPDATE` and never double counts.
            models.UniqueConstraint(
                fields=["environment", "instance", "boot", "generation"],
                name="usage_series_unique",
            ),
            models.CheckConstraint(condition=Q(highest__gte=0), name="usage_series_highest_gte_0"),
        ]
        indexes = [
            # Reporting gaps: latest receipt per environment.
            models.Index(fields=["environment", "last_received_at"], name="usage_series_env_seen"),
        ]
        verbose_name_plural = "usage series"

    def __str__(self) -> str:
        return f"{self.environment_id}/{self.instance}/{self.boot or '-'}#{self.generation}"


class UsageReading(models.Model):
    """One accepted reading, verbatim, with what it counted. Append-only: never updated,
    deleted only by retention. Holds counts and labels only, never request data.

    The table is partitioned by month of `attributed_hour` (migration 0014,
    metering.partitions): retention drops whole months, and the reads by hour (recompute,
    disputes, the usage explorer) touch only their months. Its database primary key is
    (id, attributed_hour), as PostgreSQL requires of a partitioned table; Django's stays
    `id`, unique because only its identity sequence assigns it and nothing references a
    reading, and kept because Django 5.2's admin refuses models with a composite primary
    key (the staff console lists readings as dispute evidence)."""

    id = models.BigAutoField(primary_key=True)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="usage_readings", db_index=False
    )  # indexed as the first column of a composite key below
    series = models.ForeignKey(
        UsageSeries, null=True, blank=True, on_delete=models.SET_NULL, related_name="readings"
    )
    source = models.CharField(
        max_length=16, choices=ReadingSource.choices, default=ReadingSource.NATIVE
    )
    instance = models.CharField(max_length=128)
    boot = models.CharField(max_length=128, blank=True, default="")
    observed_at = models.DateTimeField(null=True, blank=True, help_text="As sent, if sent.")
    received_at = models.DateTimeField(default=timezone.now)
    # The hour the counted calls were attributed to, after clamping and late handling.
    attributed_hour = models.DateTimeField()
    api_calls = models.BigIntegerField(null=True, blank=True)
    seats = models.BigIntegerField(null=True, blank=True)
    tenants = models.BigIntegerField(null=True, blank=True)
    counted_api_calls = models.BigIntegerField(default=0)
    duplicate = models.BooleanField(default=False)
    reset = models.BooleanField(default=False)
    late = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # recompute_usage and disputes: an environment's readings in time order.
            models.Index(fields=["environment", "attributed_hour"], name="usage_reading_env_hour"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(counted_api_calls__gte=0), name="usage_reading_counted_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"reading {self.pk} env={self.environment_id} +{self.counted_api_calls}"


class UsageRollup(models.Model):
    """Usage of one environment, metric and hour. For `api_calls`, `total` is the sum of
    counted calls; for gauges, `peak` and `last` are the max and the latest value."""

    id = models.BigAutoField(primary_key=True)
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="usage_rollups", db_index=False
    )  # indexed as the first column of a composite key below
    metric = models.CharField(max_length=16)
    hour = models.DateTimeField()
    total = models.BigIntegerField(default=0)
    late_total = models.BigIntegerField(default=0, help_text="Part of total that arrived late.")
    peak = models.BigIntegerField(null=True, blank=True)
    last = models.BigIntegerField(null=True, blank=True)
    last_observed_at = models.DateTimeField(null=True, blank=True)
    readings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # The upsert target of ingest (`ON CONFLICT ... DO UPDATE SET total = total + n`).
            models.UniqueConstraint(
                fields=["environment", "metric", "hour"], name="usage_rollup_unique"
            ),
            models.CheckConstraint(
                condition=Q(metric__in=USAGE_METRICS), name="usage_rollup_metric_valid"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="usage_rollup_total_gte_0"),
        ]
        indexes = [
            # Contract evaluation: all environments' rollups of one metric over a period.
            models.Index(fields=["metric", "hour"], name="usage_rollup_metric_hour"),
            # The admin's list across environments, newest first, with or without a date
            # range. Written once per new (environment, metric, hour) row, never by the
            # `total = total + n` updates (they change no indexed column and stay HOT).
            models.Index(fields=["-hour", "-id"], name="usage_rollup_hour_id"),
        ]

    def __str__(self) -> str:
        return f"{self.environment_id} {self.metric} {self.hour:%Y-%m-%dT%H}"


class UsageDay(models.Model):
    """Usage of one environment, metric and UTC day: `total` is the sum of the day's hourly
    `total`s, `peak` the max of their `peak`s. Every writer of `UsageRollup` writes the
    day in the same transaction, after the hours (the lock order), so a day always equals
    its hours; `recompute_usage --check` verifies it and repairs both.

    Contract evaluation reads a period as at most 31 of these per environment and metric
    instead of 744 hours (bench/overage)."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique key starts with it (one index less to write).
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    metric = models.CharField(max_length=16)
    day = models.DateField()
    total = models.BigIntegerField(default=0)
    peak = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            # The upsert target of ingest. No INCLUDE columns: an update then changes no
            # indexed column, and PostgreSQL updates the row in place (HOT).
            models.UniqueConstraint(
                fields=["environment", "metric", "day"], name="usage_day_unique"
            ),
        ]
        indexes = [
            # Contract evaluation: every environment's days of one metric since a date.
            models.Index(fields=["metric", "day"], name="usage_day_metric_day"),
            # The admin's list across environments, newest first: as usage_rollup_hour_id.
            models.Index(fields=["-day", "-id"], name="usage_day_day_id"),
        ]

    def __str__(self) -> str:
        return f"{self.environment_id} {self.metric} {self.day}: {self.total}/{self.peak}"


class UsageGauge(models.Model):
    """The current value of a gauge metric for one environment."""

    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="usage_gauges", db_index=False
    )  # indexed as the first column of a composite key below
    metric = models.CharField(max_length=16)
    value = models.BigIntegerField(default=0)
    observed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # One row per environment and metric: WCP increments lock it (SELECT ... FOR
            # UPDATE) or update it conditionally, so the limit holds under concurrency.
            models.UniqueConstraint(fields=["environment", "metric"], name="usage_gauge_unique"),
            models.CheckConstraint(
                condition=Q(metric__in=GAUGE_METRICS), name="usage_gauge_metric_valid"
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="usage_gauge_value_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.environment_id} {self.metric}={self.value}"


class UsageClosedThrough(models.Model):
    """Periods of this organization ending at or before `closed_through` are closed:
    counted calls attributed before it go to `closed_through` (the oldest open period)
    and are marked late. Advanced only by the period-closing job."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="usage_closed"
    )
    closed_through = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.organization_id} closed through {self.closed_through:%Y-%m-%d}"


# Compliance records live in their own module but belong to this app (one migrations
# folder); importing them here registers them.
from metering.compliance.models import *  # noqa: E402, F403
