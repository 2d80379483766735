"""`manage.py compliance <job> [--json]`: run a compliance job now, as the schedule does."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from metering.compliance import jobs


class Command(BaseCommand):
    help = (
        "Run one compliance job now (the same service the schedule runs) and print what it "
        "did. Jobs: evaluate, send (alias notify), gaps, close-periods, reminders, retention, partitions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job", choices=[*jobs.JOBS, *jobs.ALIASES])
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the result as JSON: flags raised and resolved (organization, metric, "
            "scope, level, value, limit) and the job's counts.",
        )

    def handle(self, *args: Any, job: str, json: bool = False, **options: Any) -> None:
        report = jobs.run(job)
        if json:
            self.stdout.write(_dumps(report.as_dict()))
            return
        self.stdout.write(report.summary())
        for change in [*getattr(report, "raised", []), *getattr(report, "resolved", [])]:
            where = f" {change.environment}" if change.environment else ""
            self.stdout.write(
                f"  {change.change:8} {change.organization}{where} {change.metric} "
                f"{change.level}: {change.value} of {change.limit}"
            )


def _dumps(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
