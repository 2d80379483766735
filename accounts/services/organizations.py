"""Writes for users, organizations, memberships, contracts, projects and environments."""

from __future__ import annotations

from django.db import transaction

from accounts.models import (
    Contract,
    ContractStatus,
    Environment,
    EnvironmentKind,
    EnvironmentStatus,
    Membership,
    Organization,
    Project,
    ProtectedEnvironmentError,
    Role,
    User,
)
from accounts.services.errors import ServiceError


# --- users and organizations -----------------------------------------------------------
def user_get_or_create(*, email: str, name: str = "") -> tuple[User, bool]:
    email = email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is not None:
        return user, False
    return User.objects.create_user(email=email, name=name), True


@transaction.atomic
def organization_create(*, slug: str, name: str, owner: User | None = None) -> Organization:
    organization = Organization.objects.create(slug=slug, name=name)
    if owner is not None:
        Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    return organization


def membership_set(*, organization: Organization, user: User, role: str) -> Membership:
    # The unique (organization, user) constraint makes this a safe upsert.
    membership, _ = Membership.objects.update_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


# --- contracts ------------------------------------------------------------------------
@transaction.atomic
def contract_activate(*, organization: Organization, **terms: object) -> Contract:
    """Make a new contract the organization's active one; the previous one is kept as
    history (`superseded`). The partial unique index allows one active contract only."""
    Organization.objects.select_for_update().get(pk=organization.pk)
    organization.contracts.filter(status=ContractStatus.ACTIVE).update(
        status=ContractStatus.SUPERSEDED
    )
    contract = Contract(organization=organization, status=ContractStatus.ACTIVE, **terms)
    contract.full_clean(exclude=["organization"])
    contract.save()
    return contract


def contract_end(*, contract: Contract) -> Contract:
    contract.status = ContractStatus.ENDED
    contract.save(update_fields=["status"])
    return contract


# --- projects and environments ----------------------------------------------------------
@transaction.atomic
def project_create(*, organization: Organization, slug: str, name: str) -> Project:
    """A project always has exactly one production environment, created with it."""
    project = Project.objects.create(organization=organization, slug=slug, name=name)
    Environment.objects.create(project=project, name="production", kind=EnvironmentKind.PRODUCTION)
    return project


def environment_create(
    *, project: Project, name: str, kind: str, owner: User | None = None
) -> Environment:
    if kind == EnvironmentKind.PRODUCTION:
        raise ServiceError("A project has exactly one production environment, made with it.")
    environment = Environment(project=project, name=name, kind=kind, owner=owner)
    environment.full_clean(exclude=["project", "owner"], validate_constraints=False)
    environment.save()
    return environment


def environment_set_status(*, environment: Environment, enabled: bool) -> Environment:
    environment.status = EnvironmentStatus.ENABLED if enabled else EnvironmentStatus.DISABLED
    environment.save(update_fields=["status"])
    return environment


def environment_delete(*, environment: Environment) -> None:
    if environment.kind == EnvironmentKind.PRODUCTION:
        raise ProtectedEnvironmentError("A production environment cannot be deleted.")
    environment.delete()
