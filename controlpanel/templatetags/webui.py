"""Template helpers of the web UI: numbers and times for people."""

from __future__ import annotations

import datetime as dt
from typing import SupportsInt

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma, naturaltime
from django.utils import timezone

register = template.Library()


@register.filter
def number(value: SupportsInt | str | None) -> str:
    """1000000 -> "1,000,000"; None -> an en dash."""
    if value is None or value == "":
        return "–"
    return intcomma(value)


@register.filter
def ago(value: dt.datetime | None) -> str:
    """ "3 days ago", "in 2 hours"; None -> "never"."""
    if value is None:
        return "never"
    return naturaltime(value)


@register.filter
def utc(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@register.filter
def in_future(value: dt.datetime | None) -> bool:
    return value is not None and value > timezone.now()
