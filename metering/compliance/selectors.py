"""Reads of the compliance area."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Membership, Organization, User
from metering.compliance.models import OverageFlag, WebhookEndpoint


def membership_for(*, user: User, org_slug: str) -> Membership | None:
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )


def webhook_endpoints_for(*, organization: Organization) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=organization).order_by("created_at", "id")


def open_flags_for(*, organization: Organization) -> QuerySet[OverageFlag]:
    return OverageFlag.objects.filter(organization=organization, resolved_at__isnull=True)
