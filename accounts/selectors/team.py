"""Reads for teams, seats, personal environments and access tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts import sealing
from accounts.models import (
    MANAGER_ROLES,
    ApiKey,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Invitation,
    Membership,
    Organization,
    PersonalAccessToken,
    Project,
    Role,
    User,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


def members_of(*, organization: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email")
    )


def managers_of(*, organization: Organization) -> list[Membership]:
    """Whom a member asks about the contract and its features: owners first, then admins."""
    rank: dict[str, int] = {Role.OWNER: 0, Role.ADMIN: 1}
    managers = (
        Membership.objects.filter(organization=organization, role__in=MANAGER_ROLES)
        .select_related("user")
        .order_by("user__email")
    )
    return sorted(managers, key=lambda m: rank[m.role])


def invitations_of(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("invited_by")


def seats_of(*, project: Project) -> QuerySet[DeveloperSeat]:
    return (
        DeveloperSeat.objects.filter(project=project, freed_at__isnull=True)
        .select_related("membership__user")
        .order_by("assigned_at")
    )


class SeatAnnotations(TypedDict):
    has_seat: bool
    manages: bool


def projects_for_user(*, user: User) -> QuerySet[WithAnnotations[Project, SeatAnnotations]]:
    """Projects where `user` holds a developer seat or is an owner/admin of the organization,
    annotated with `has_seat`."""
    held = DeveloperSeat.objects.filter(
        project=OuterRef("pk"), membership__user=user, freed_at__isnull=True
    )
    manages = Membership.objects.filter(
        organization=OuterRef("organization"), user=user, role__in=MANAGER_ROLES
    )
    return (
        Project.objects.annotate(has_seat=Exists(held), manages=Exists(manages))
        .filter(Q(has_seat=True) | Q(manages=True))
        .select_related("organization")
        .order_by("organization__slug", "slug")
    )


def personal_environments_of(*, project: Project, user: User) -> QuerySet[Environment]:
    return Environment.objects.filter(
        project=project, owner=user, kind=EnvironmentKind.PERSONAL
    ).order_by("name")


def personal_environment_named(*, project: Project, user: User, name: str) -> Environment | None:
    return personal_environments_of(project=project, user=user).filter(name=name).first()


def developer_seat_held(*, project: Project, user: User) -> bool:
    return DeveloperSeat.objects.filter(
        project=project, membership__user=user, freed_at__isnull=True
    ).exists()


def personal_key_current(*, environment: Environment) -> str | None:
    """The newest usable sealed key of a personal environment, decrypted; None when
    there is none (sealed keys exist for personal environments only)."""
    now = timezone.now()
    api_key = (
        ApiKey.objects.filter(environment=environment, environment__kind=EnvironmentKind.PERSONAL)
        .exclude(sealed="")
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=now))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-created_at", "-pk")
        .first()
    )
    return sealing.unseal(api_key.sealed) if api_key else None


def access_tokens_of(*, user: User) -> QuerySet[PersonalAccessToken]:
    return PersonalAccessToken.objects.filter(user=user)
