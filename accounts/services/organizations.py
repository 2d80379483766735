"""Writes for users, organizations, memberships, contracts, projects and environments."""

from __future__ import annotations

from django.db import transaction

from accounts.models import (
    AuditKind,
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
from accounts.services.audit import Actor, audit_record
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
def contract_activate(
    *, organization: Organization, actor: Actor | None = None, **terms: object
) -> Contract:
    """Make a new contract active; the active contracts it overlaps are kept as history
    (`superseded`), while one that does not overlap (a renewal scheduled ahead) stays.
    The exclusion constraint refuses overlapping active contracts in any case."""
    Organization.objects.select_for_update().get(pk=organization.pk)
    contract = Contract(organization=organization, status=ContractStatus.ACTIVE, **terms)
    organization.contracts.filter(
        status=ContractStatus.ACTIVE,
        starts_on__lt=contract.ends_on,
        ends_on__gt=contract.starts_on,
    ).update(status=ContractStatus.SUPERSEDED)
    contract.full_clean(exclude=["organization"])
    contract.save()
    audit_record(
        actor=actor or Actor.system("contract_activate"),
        kind=AuditKind.CONTRACT_CREATED,
        organization=organization,
        target=contract,
        details={
            "plan": contract.plan,
            "from": str(contract.starts_on),
            "to": str(contract.ends_on),
        },
    )
    return contract


@transaction.atomic
def contract_save(
    *, contract: Contract, actor: Actor, changed: list[str] | None = None, reason: str = ""
) -> Contract:
    """Staff's create or edit of a contract (the admin form has validated it, the
    exclusion constraint backs it). The organization's row lock serializes this with
    `contract_activate`."""
    Organization.objects.select_for_update().get(pk=contract.organization_id)
    created = contract.pk is None
    contract.save()
    audit_record(
        actor=actor,
        kind=AuditKind.CONTRACT_CREATED if created else AuditKind.CONTRACT_CHANGED,
        organization=contract.organization,
        target=contract,
        reason=reason,
        details={"changed": changed or [], "status": contract.status},
    )
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


@transaction.atomic  # the change and its audit record
def environment_set_status(
    *, environment: Environment, enabled: bool, actor: Actor | None = None, reason: str = ""
) -> Environment:
    status = EnvironmentStatus.ENABLED if enabled else EnvironmentStatus.DISABLED
    # Conditional update: only a real change is recorded.
    changed = (
        Environment.objects.filter(pk=environment.pk).exclude(status=status).update(status=status)
    )
    environment.status = status
    if changed:
        audit_record(
            actor=actor or Actor.system("environment_set_status"),
            kind=AuditKind.ENVIRONMENT_ENABLED if enabled else AuditKind.ENVIRONMENT_DISABLED,
            organization=environment.project.organization,
            target=environment,
            reason=reason,
        )
    return environment


def environment_delete(*, environment: Environment) -> None:
    if environment.kind == EnvironmentKind.PRODUCTION:
        raise ProtectedEnvironmentError("A production environment cannot be deleted.")
    environment.delete()
