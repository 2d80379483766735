"""The front door and the public transparency page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import Membership
from controlpanel.web import transparency as facts
from controlpanel.web.access import LAST_ORG


def front_door(request: HttpRequest) -> HttpResponse:
    """Signed out: sign in. Signed in: the dashboard of the organization seen last (or
    the first one), or what to do without any."""
    if not request.user.is_authenticated:
        return redirect("login")
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    last = request.session.get(LAST_ORG)
    chosen = None
    for membership in memberships.order_by("organization__name"):
        if chosen is None or membership.organization.slug == last:
            chosen = membership
    if chosen is not None:
        return redirect("web:dashboard", chosen.organization.slug)
    return render(
        request,
        "web/no_organization.html",
        {"breadcrumbs": [("Start", None)]},
    )


def transparency(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/transparency.html",
        {"facts": facts.facts(), "breadcrumbs": [("What your CMS sends us", None)]},
    )
