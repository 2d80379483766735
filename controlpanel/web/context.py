"""Template context for the layout: the signed-in person's organizations (the switcher)
and the organization of the page being shown."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.models import Membership


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships() -> list[Membership]:
        # Lazy: pages that do not draw the navigation bar (JSON, partials) pay nothing.
        return list(
            Membership.objects.filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )

    current = getattr(request, "web_membership", None)
    return {
        "nav_memberships": memberships,
        "nav_membership": current,
        "nav_org": current.organization if current else None,
        "public_url": settings.PUBLIC_URL,
    }
