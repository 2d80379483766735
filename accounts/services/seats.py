"""Writes for developer seats: assign and free a member's seat on a project.

The contract's `developer_seats` limit applies across the organization's projects, with
its overage policy. Assignments lock the organization row first, like every team write
(see accounts.services.team), so concurrent assignments count seats nobody else is changing.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import (
    DEVELOPER_SEATS,
    AuditKind,
    DeveloperSeat,
    Membership,
    Organization,
    OverageMode,
    Project,
)
from accounts.selectors.organizations import contract_active
from accounts.services.audit import Actor, audit_record
from accounts.services.team import TeamError, conflict, lock_organization, require_manager


def developer_seats_in_use(*, organization: Organization) -> int:
    return DeveloperSeat.objects.filter(
        project__organization=organization, freed_at__isnull=True
    ).count()


@transaction.atomic
def seat_assign(*, project: Project, membership: Membership, by: Membership) -> DeveloperSeat:
    """Give `membership` a developer seat on `project` (idempotent). The contract's
    `developer_seats` limit applies with its overage policy."""
    require_manager(by)
    organization = project.organization
    if membership.organization_id != organization.pk:
        raise TeamError("No such member.", code="not_found", status=404)
    # The organization lock serializes assignments, so the count below cannot go stale.
    lock_organization(organization)
    held = DeveloperSeat.objects.filter(membership=membership, project=project, freed_at=None)
    existing = held.first()
    if existing is not None:
        return existing
    contract = contract_active(organization=organization)
    if contract is None:
        raise conflict(
            "The organization has no contract in force, so no developer seats can be assigned.",
            "no_contract",
        )
    cap = contract.cap_for(DEVELOPER_SEATS)
    in_use = developer_seats_in_use(organization=organization)
    if cap is not None and in_use >= cap:
        limit = contract.limit_for(DEVELOPER_SEATS)
        mode, _ = contract.policy_for(DEVELOPER_SEATS)
        allowance = f"{limit}" if mode == OverageMode.BLOCK else f"{limit} (up to {cap})"
        raise conflict(
            f"Developer seat limit reached: your contract allows {allowance} developer seats "
            f"and {in_use} are in use. Free a seat or ask us to raise the limit.",
            "developer_seat_limit",
        )
    # The partial unique index (one held seat per member and project) backs this insert.
    seat = DeveloperSeat.objects.create(membership=membership, project=project, assigned_by=by.user)
    audit_record(
        actor=Actor.of(by.user),
        kind=AuditKind.SEAT_ASSIGNED,
        organization=organization,
        target=seat,
        details={"email": membership.user.email, "project": project.slug},
    )
    return seat


@transaction.atomic  # the freed seat and its audit record
def seat_free(*, project: Project, membership: Membership, by: Membership) -> int:
    """Free the member's seat on `project`. Their personal environments stay, but new
    personal environments and licenses need a seat again."""
    require_manager(by)
    # Conditional update: freeing twice keeps the first time.
    freed = DeveloperSeat.objects.filter(
        membership=membership, project=project, freed_at=None
    ).update(freed_at=timezone.now())
    if not freed:
        raise TeamError(
            "This member holds no developer seat on this project.", code="not_found", status=404
        )
    audit_record(
        actor=Actor.of(by.user),
        kind=AuditKind.SEAT_FREED,
        organization=project.organization,
        target=membership,
        details={"email": membership.user.email, "project": project.slug},
    )
    return freed


@transaction.atomic  # the freed seat and its audit record
def seat_release(*, seat: DeveloperSeat, actor: Actor, reason: str = "") -> bool:
    """Staff free a seat (the admin). True when this call freed it."""
    # Conditional update: freeing twice keeps the first time.
    freed = DeveloperSeat.objects.filter(pk=seat.pk, freed_at=None).update(freed_at=timezone.now())
    if freed:
        seat.refresh_from_db()
        audit_record(
            actor=actor,
            kind=AuditKind.SEAT_FREED,
            organization=seat.project.organization,
            target=seat,
            reason=reason,
            details={"email": seat.user.email if seat.user else "", "project": seat.project.slug},
        )
    return bool(freed)
