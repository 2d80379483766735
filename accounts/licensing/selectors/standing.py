"""The standing checks behind every license: contract, environment, developer seat.

They run on every license request, also when the signed answer comes from the cache:
stopping an environment, a seat, a member or a contract stops licenses at once.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import (
    Contract,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Membership,
    Organization,
    User,
)
from accounts.selectors.organizations import contract_active


class Code(enum.StrEnum):
    """Validation answers, in the order they are checked (see docs/licenses.md)."""

    MALFORMED = "MALFORMED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    REVOKED = "REVOKED"
    ENVIRONMENT_DISABLED = "ENVIRONMENT_DISABLED"
    CONTRACT_ENDED = "CONTRACT_ENDED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    SEAT_FREED = "SEAT_FREED"
    VALID = "VALID"


@dataclass(frozen=True)
class Refusal:
    code: Code
    message: str


@dataclass(frozen=True)
class Standing:
    """Whether an environment may hold a license now, and under which contract."""

    contract: Contract | None
    refusal: Refusal | None


def contract_refusal(*, organization: Organization, at: dt.datetime) -> Refusal:
    today = at.astimezone(dt.UTC).date()
    latest = (
        Contract.objects.filter(organization=organization, starts_on__lte=today)
        .order_by("-starts_on", "-pk")
        .first()
    )
    if latest is None:
        message = (
            f"Organization '{organization.slug}' has no active contract: no license can be issued."
        )
    elif latest.ends_on <= today:
        message = (
            f"The contract of organization '{organization.slug}' ended on "
            f"{latest.ends_on.isoformat()}: no license can be issued."
        )
    else:
        message = (
            f"The contract of organization '{organization.slug}' has ended: "
            "no license can be issued."
        )
    return Refusal(Code.CONTRACT_ENDED, message)


def developer_refusal_from(
    *, project_slug: str, organization_slug: str, is_member: bool, has_seat: bool
) -> Refusal | None:
    if not is_member:
        return Refusal(
            Code.MEMBER_REMOVED,
            f"The developer of this personal environment is no longer a member of organization "
            f"'{organization_slug}': its license has stopped.",
        )
    if not has_seat:
        return Refusal(
            Code.SEAT_FREED,
            f"The developer's seat on project '{project_slug}' has been freed: this personal "
            "environment's license has stopped.",
        )
    return None


def developer_refusal(*, environment: Environment, developer_id: int | None) -> Refusal | None:
    """A personal environment's license needs its developer to still be a member of the
    organization (with an active account) and to hold a developer seat on the project."""
    project = environment.project
    row = (
        Membership.objects.filter(organization_id=project.organization_id, user_id=developer_id)
        .annotate(
            has_seat=Exists(
                DeveloperSeat.objects.filter(
                    membership=OuterRef("pk"), project_id=project.pk, freed_at__isnull=True
                )
            )
        )
        .values_list("has_seat", "user__is_active")
        .first()
        if developer_id is not None
        else None
    )
    return developer_refusal_from(
        project_slug=project.slug,
        organization_slug=project.organization.slug,
        is_member=row is not None and row[1],
        has_seat=row is not None and row[0],
    )


def environment_disabled_refusal(environment: Environment) -> Refusal:
    return Refusal(
        Code.ENVIRONMENT_DISABLED,
        f"Environment '{environment.name}' is disabled: no license can be issued.",
    )


def license_standing(
    *,
    environment: Environment | None,
    organization: Organization,
    developer: User | None = None,
    at: dt.datetime | None = None,
) -> Standing:
    """Checked in this order: environment, contract, then (personal environments) the
    developer's membership and seat. `developer` defaults to the environment's owner."""
    at = at or timezone.now()
    if environment is None:
        return Standing(
            None, Refusal(Code.ENVIRONMENT_DISABLED, "This environment no longer exists.")
        )
    if not environment.is_enabled:
        return Standing(None, environment_disabled_refusal(environment))
    contract = contract_active(organization=organization, at=at)
    if contract is None:
        return Standing(None, contract_refusal(organization=organization, at=at))
    if environment.kind == EnvironmentKind.PERSONAL:
        refusal = developer_refusal(
            environment=environment,
            developer_id=developer.pk if developer is not None else environment.owner_id,
        )
        if refusal is not None:
            return Standing(None, refusal)
    return Standing(contract, None)
