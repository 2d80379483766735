"""Bookkeeping for scheduled jobs: when each last ran, how often and how long, so staff,
/readyz and /metrics can tell that beat and the workers are alive."""

from __future__ import annotations

import datetime as dt

from django.db import connection, models


class JobRun(models.Model):
    """One row per Celery task name, written by the worker after every run
    (controlpanel.observability). /metrics reads these rows: the worker's figures reach
    the scrape whatever process, container or host ran the task."""

    name = models.CharField(max_length=100, primary_key=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    runs = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveBigIntegerField(default=0, help_text="Runs that raised.")
    seconds_total = models.FloatField(default=0.0, help_text="Time spent in all runs.")
    last_seconds = models.FloatField(null=True, blank=True)
    last_outcome = models.CharField(max_length=16, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# One statement, whatever runs at once: the primary key's ON CONFLICT makes the first run
# of a name an insert and every other an increment of the row it locks.
_FINISHED = """
INSERT INTO controlpanel_jobrun AS j (
    name, last_started_at, last_finished_at, last_result, runs, failures, seconds_total,
    last_seconds, last_outcome, last_succeeded_at)
VALUES (%(name)s, %(started)s, %(finished)s, '{}', 1, %(failed)s, %(seconds)s,
        %(seconds)s, %(outcome)s, CASE WHEN %(failed)s = 0 THEN %(finished)s END)
ON CONFLICT (name) DO UPDATE SET
    last_started_at = EXCLUDED.last_started_at,
    last_finished_at = EXCLUDED.last_finished_at,
    runs = j.runs + 1,
    failures = j.failures + EXCLUDED.failures,
    seconds_total = j.seconds_total + EXCLUDED.seconds_total,
    last_seconds = EXCLUDED.last_seconds,
    last_outcome = EXCLUDED.last_outcome,
    last_succeeded_at = COALESCE(EXCLUDED.last_succeeded_at, j.last_succeeded_at)
"""


def job_run_finished(*, name: str, finished: dt.datetime, seconds: float, succeeded: bool) -> None:
    """Count one finished run of the task `name`, which took `seconds`."""
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISHED,
            {
                "name": name,
                "started": finished - dt.timedelta(seconds=seconds),
                "finished": finished,
                "failed": 0 if succeeded else 1,
                "seconds": seconds,
                "outcome": "success" if succeeded else "failure",
            },
        )
