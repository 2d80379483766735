"""When a secret was last used, written at most once a minute: the one definition, for
environment API keys and personal access tokens alike.

Every authenticated request would otherwise write its key's row; the time is shown to
people ("last used 3 minutes ago"), so a minute's resolution is enough, and the hot
paths then write about once a minute per key instead of on every request.
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q

LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def last_use_due(last_used_at: dt.datetime | None, at: dt.datetime) -> bool:
    """Whether a use at `at` must be recorded, given the recorded one."""
    return last_used_at is None or at - last_used_at >= LAST_USED_RESOLUTION


def last_use_record(rows: models.QuerySet, *, at: dt.datetime) -> int:
    """Record a use at `at` on `rows` (one row, by primary key) when it is due. The
    condition is in the UPDATE, so racing requests write once: each re-checks it on the
    row it locked. Returns the rows written (0 or 1)."""
    return rows.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=at - LAST_USED_RESOLUTION)
    ).update(last_used_at=at)
