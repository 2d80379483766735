"""Template tags of the staff console (see accounts.admin_kit)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.admin_kit import calendar_hierarchy

register = template.Library()


@register.inclusion_tag("admin/date_hierarchy.html")
def calendar_date_hierarchy(cl: Any) -> dict[str, Any]:
    return calendar_hierarchy(cl)
