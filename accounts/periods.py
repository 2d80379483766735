"""Billing periods and policy caps: pure functions, no database.

A contract's periods are monthly, anchored on its start day, in UTC. A period that
starts on the 31st starts on the last day of shorter months (Jan 31, Feb 28, Mar 31...).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Period:
    start: dt.datetime  # inclusive, UTC midnight
    end: dt.datetime  # exclusive, UTC midnight

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


def _anchored(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def add_months(day: dt.date, n: int) -> dt.date:
    """The same day of the month n months later (the month's last day when it is shorter)."""
    year, month = _add_months(day.year, day.month, n)
    return _anchored(year, month, day.day)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def period_containing(anchor: dt.date, at: dt.datetime) -> Period:
    """The monthly period, anchored on `anchor`'s day of month, that contains `at`."""
    day = at.astimezone(dt.UTC).date()
    year, month = day.year, day.month
    start = _anchored(year, month, anchor.day)
    if start > day:
        year, month = _add_months(year, month, -1)
        start = _anchored(year, month, anchor.day)
    else:
        year, month = start.year, start.month
    ny, nm = _add_months(year, month, 1)
    return Period(_midnight(start), _midnight(_anchored(ny, nm, anchor.day)))


def policy_cap(limit: int, mode: str, factor: Decimal | None) -> int | None:
    """The hard ceiling a policy puts on a limit: `block` is the limit itself,
    `allow_up_to` is floor(limit x factor), `allow` has none."""
    if mode == "block":
        return limit
    if mode == "allow_up_to":
        # Decimal keeps 1.1 x 10 == 11 exact, where float would give 11.000000000000002
        # or 10.999999999999998 depending on the factor.
        return math.floor(Decimal(limit) * Decimal(factor if factor is not None else 1))
    return None
