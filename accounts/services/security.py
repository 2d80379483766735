"""Writes of organization-wide security settings."""

from __future__ import annotations

from django.db import transaction

from accounts.models import AuditKind, Organization
from accounts.services.audit import Actor, audit_record


@transaction.atomic
def organization_require_mfa(
    *, organization: Organization, required: bool, actor: Actor
) -> Organization:
    """Require two-factor authentication of every member (or stop requiring it)."""
    Organization.objects.filter(pk=organization.pk).update(mfa_required=required)
    organization.mfa_required = required
    audit_record(
        actor=actor,
        kind=AuditKind.MFA_REQUIRED if required else AuditKind.MFA_OPTIONAL,
        organization=organization,
        target=organization,
    )
    return organization
