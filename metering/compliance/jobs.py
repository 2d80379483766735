"""The compliance jobs by name: what the schedule, the Celery tasks and
`manage.py compliance <job>` all run."""

from __future__ import annotations

from collections.abc import Callable

from metering import partitions
from metering.compliance import (
    evaluation,
    gaps,
    notifications,
    periods,
    reminders,
    retention,
)


def _send() -> notifications.SendReport:
    return notifications.send_pending()


JOBS: dict[str, Callable[[], object]] = {
    "evaluate": evaluation.evaluate,
    "send": _send,
    "gaps": gaps.detect_gaps,
    "close-periods": periods.close_periods,
    "reminders": reminders.send_expiry_reminders,
    "retention": retention.prune_readings,
    "partitions": partitions.ensure_partitions,
}
ALIASES = {"notify": "send"}


def run(name: str):
    return JOBS[ALIASES.get(name, name)]()
