"""Writes of organization-wide security settings."""

from __future__ import annotations

from accounts.models import Organization


def organization_require_mfa(*, organization: Organization, required: bool) -> Organization:
    Organization.objects.filter(pk=organization.pk).update(mfa_required=required)
    organization.mfa_required = required
    return organization
