"""Bookkeeping for scheduled jobs: when each last ran, so staff and /readyz can tell that
beat and the workers are alive."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobRun(models.Model):
    name = models.CharField(max_length=100, primary_key=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict, blank=True)
    runs = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def job_run_record(*, name: str, result: dict | None = None) -> None:
    """Upsert the job's row; `F()` so concurrent workers never lose a count."""
    now = timezone.now()
    updated = JobRun.objects.filter(name=name).update(
        last_finished_at=now, last_result=result or {}, runs=models.F("runs") + 1
    )
    if not updated:
        JobRun.objects.get_or_create(
            name=name, defaults={"last_finished_at": now, "last_result": result or {}, "runs": 1}
        )
