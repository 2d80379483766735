"""Rebuild hourly rollups from the raw readings, and daily rollups from the hours: an
operator's reconciliation tool.

python manage.py recompute_usage --check [--from ISO] [--to ISO]   # report, exit 1 on mismatch
python manage.py recompute_usage [--from ISO] [--to ISO]           # repair
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from metering import selectors, services
from metering.counting import floor_hour
from metering.readings import Invalid, parse_timestamp


class Command(BaseCommand):
    help = "Rebuild usage rollups from raw readings; --check only reports (exit 1 on mismatch)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Report differences only.")
        parser.add_argument(
            "--from", dest="start", help="ISO 8601 start (default: retention start)."
        )
        parser.add_argument("--to", dest="end", help="ISO 8601 end, exclusive (default: no end).")

    def handle(
        self, *args: object, check: bool, start: str | None, end: str | None, **options: object
    ) -> None:
        try:
            since = parse_timestamp(start, field="--from") if start else None
            until = parse_timestamp(end, field="--to") if end else None
        except Invalid as invalid:
            raise CommandError(invalid.message) from None
        if since is None:
            # Older readings may have been pruned, while their rollups are kept forever.
            since = floor_hour(timezone.now() - dt.timedelta(days=settings.RETENTION_DAYS - 1))
        since = floor_hour(since)
        differences = selectors.rollup_differences(start=since, end=until)
        for (env_id, metric, hour), stored, expected in differences:
            self.stdout.write(
                f"environment {env_id} {metric} {hour:%Y-%m-%dT%H:00Z}: "
                f"stored {_show(stored)} expected {_show(expected)}"
            )
        # Days are checked against their hours: the whole UTC days inside the window.
        first, last = selectors.whole_days(since, until)
        days = selectors.day_differences(first=first, last=last)
        for (env_id, metric, day), stored_day, expected_day in days:
            self.stdout.write(
                f"environment {env_id} {metric} day {day:%Y-%m-%d}: "
                f"stored {_show_day(stored_day)} expected {_show_day(expected_day)}"
            )
        if check:
            if differences or days:
                raise CommandError(
                    f"{len(differences)} rollup(s) differ from the raw readings, "
                    f"{len(days)} day(s) from their hours."
                )
            self.stdout.write("Rollups match the raw readings. Days match their hours.")
            return
        fixed = services.rollups_repair(start=since, end=until)
        self.stdout.write(f"Repaired {fixed} rollup(s) and {len(days)} day(s).")


def _show_day(d: tuple[int, int | None] | None) -> str:
    return "(none)" if d is None else f"total={d[0]} peak={d[1]}"


def _show(d: selectors.RollupDelta | None) -> str:
    if d is None:
        return "(none)"
    return f"total={d.total} late={d.late_total} peak={d.peak} last={d.last} readings={d.readings}"
