"""Organization settings (owners): require two-factor authentication for everyone; the
organization's audit trail."""

from __future__ import annotations

from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Membership
from accounts.requests import signed_in_user
from accounts.selectors.audit import audit_events_for
from accounts.services.audit import Actor
from accounts.services.security import organization_require_mfa
from controlpanel.web.access import org_page
from controlpanel.web.views.common import page

AUDIT_SHOWN = 100


@org_page(owner=True)
def org_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    if request.method == "POST":
        require = request.POST.get("mfa_required") == "1"
        if require and not is_mfa_enabled(request.user):
            messages.error(
                request,
                "Turn on two-factor authentication for your own account first, "
                "so you cannot lock yourself out.",
            )
            return redirect("web:org-settings", organization.slug)
        organization_require_mfa(
            organization=organization, required=require, actor=Actor.of(signed_in_user(request))
        )
        messages.success(
            request,
            "Two-factor authentication is now required for every member."
            if require
            else "Two-factor authentication is now optional.",
        )
        return redirect("web:org-settings", organization.slug)
    return page(
        request,
        "web/org_settings.html",
        {
            "membership": membership,
            "mfa_enabled": is_mfa_enabled(request.user),
            "audit_events": audit_events_for(organization=organization)[:AUDIT_SHOWN],
            "audit_shown": AUDIT_SHOWN,
        },
        section="settings",
        breadcrumbs=[("Settings", None)],
    )
