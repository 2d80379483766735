"""The compliance jobs by name: what the schedule, the Celery tasks and
`manage.py compliance <job>` all run."""

from __future__ import annotations

from collections.abc import Callable

from metering.compliance import (
    daycache,
    evaluation,
    gaps,
    notifications,
    periods,
    reminders,
    retention,
)
from metering.compliance.flags import JobReport


def _send() -> notifications.SendReport:
    return notifications.send_pending()


def _reset_day_cache() -> JobReport:
    report = JobReport(job="reset-day-cache")
    report.details.update(daycache.reset())
    return report


JOBS: dict[str, Callable[[], object]] = {
    "evaluate": evaluation.evaluate,
    "send": _send,
    "gaps": gaps.detect_gaps,
    "close-periods": periods.close_periods,
    "reminders": reminders.send_expiry_reminders,
    "retention": retention.prune_readings,
    # Not scheduled: after `recompute_usage` repairs rollups, the evaluation's day cache
    # is rebuilt from scratch by the next evaluation.
    "reset-day-cache": _reset_day_cache,
}
ALIASES = {"notify": "send"}


def run(name: str):
    return JOBS[ALIASES.get(name, name)]()
