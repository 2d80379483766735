"""Every Celery task run, counted and logged from Celery's task signals: a `JobRun` row
per task name (runs, failures, time spent; /metrics and the admin read it) and, under
LOG_FORMAT=json, one log line per run (task name, duration, outcome).

The counts are rows, not the worker's in-process metrics, because a worker is another
container (or host) than the web processes Prometheus scrapes: the database is the one
thing they share, and a row per run costs one upsert for a job that runs every minute
at most.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

from celery.signals import task_postrun, task_prerun
from django.db import DatabaseError
from django.utils import timezone

from controlpanel.models import job_run_finished

log = logging.getLogger("controlpanel.jobs")

# task id -> perf_counter() at its start, in the process that runs it.
_started: dict[str, float] = {}


def _on_prerun(task_id: str, **kwargs: Any) -> None:
    _started[task_id] = perf_counter()


def _on_postrun(task_id: str, task: Any, state: str | None = None, **kwargs: Any) -> None:
    started = _started.pop(task_id, None)
    if started is None:
        return
    seconds = perf_counter() - started
    succeeded = state == "SUCCESS"
    outcome = "success" if succeeded else "failure" if state == "FAILURE" else str(state).lower()
    log.info(
        "task %s: %s in %.0f ms",
        task.name,
        outcome,
        seconds * 1000,
        extra={
            "fields": {
                "task": task.name,
                "duration_ms": round(seconds * 1000, 2),
                "outcome": outcome,
            }
        },
    )
    try:
        job_run_finished(
            name=task.name, finished=timezone.now(), seconds=seconds, succeeded=succeeded
        )
    except DatabaseError:
        log.warning("task %s: its run could not be counted (database unavailable)", task.name)


def connect() -> None:
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="controlpanel.job_runs.prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="controlpanel.job_runs.postrun")
