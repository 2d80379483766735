"""Reads for organizations, their contracts, memberships, projects and environments."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import (
    Contract,
    ContractStatus,
    Environment,
    Membership,
    Organization,
    Project,
    User,
)


def contract_active(
    *, organization: Organization, at: dt.datetime | None = None
) -> Contract | None:
    """The contract in force at `at` (now by default), if any."""
    day = (at or timezone.now()).astimezone(dt.UTC).date()
    return (
        Contract.objects.filter(
            organization=organization,
            status=ContractStatus.ACTIVE,
            starts_on__lte=day,
            ends_on__gt=day,
        )
        .order_by("-starts_on")
        .first()
    )


def organizations_for_user(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).distinct()


def membership_get(*, organization: Organization, user: User) -> Membership | None:
    return Membership.objects.filter(organization=organization, user=user).first()


def projects_for_organization(*, organization: Organization) -> QuerySet[Project]:
    return Project.objects.filter(organization=organization)


def environments_for_project(*, project: Project) -> QuerySet[Environment]:
    return Environment.objects.filter(project=project)
