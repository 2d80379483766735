"""Notifications: what was sent about this organization, by email and webhook."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse

from accounts.models import Membership
from accounts.requests import signed_in_user
from controlpanel.web.access import org_page
from controlpanel.web.views.common import page
from metering.compliance.models import Notification


@org_page()
def notifications(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = Notification.objects.filter(organization=membership.organization).order_by(
        "-created_at", "-id"
    )
    if not membership.can_manage:
        # Members see what was sent to them; owners and admins see every delivery.
        rows = rows.filter(recipient=signed_in_user(request).email)
    page_obj = Paginator(rows, 50).get_page(request.GET.get("page"))
    return page(
        request,
        "web/notifications.html",
        {"membership": membership, "page_obj": page_obj},
        section="notifications",
        breadcrumbs=[("Notifications", None)],
    )
