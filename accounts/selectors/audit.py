"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import AuditEvent, Organization


def audit_events_for(*, organization: Organization) -> QuerySet[AuditEvent]:
    """One organization's trail, newest first (served by audit_org_at): what its owners
    see in the web UI's settings. Staff-only kinds are kept: the customer sees what staff
    did to their account, with the reason given."""
    return AuditEvent.objects.filter(organization=organization).order_by("-at", "-id")
