"""Writes for teams: invitations, roles, member removal and developer seats.

Every write that changes who belongs to an organization, or who holds a developer seat,
first locks the organization row, then (where roles matter) the organization's
memberships in primary-key order. One fixed order for every such write means two of
them can never deadlock, and checks such as "the last owner stays" or "at most N seats"
are made against rows nobody else can change until we commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import (
    DEVELOPER_SEATS,
    MANAGER_ROLES,
    ApiKey,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    EnvironmentStatus,
    Invitation,
    Membership,
    Organization,
    OverageMode,
    PersonalAccessToken,
    Project,
    Role,
    User,
)
from accounts.selectors import contract_active
from accounts.services import ServiceError

INVITATION_KIND = "cpi"
INVITATION_LIFETIME = dt.timedelta(days=7)


class TeamError(ServiceError):
    """A refused team operation: `code` and `status` say how the API answers it."""

    def __init__(self, message: str, *, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def _forbidden(message: str) -> TeamError:
    return TeamError(message, code="forbidden", status=403)


def _conflict(message: str, code: str = "conflict") -> TeamError:
    return TeamError(message, code=code, status=409)


def _lock_organization(organization: Organization) -> None:
    # Row lock on the organization: serializes every team write of this organization.
    Organization.objects.select_for_update().only("pk").get(pk=organization.pk)


def _lock_memberships(organization: Organization) -> list[Membership]:
    _lock_organization(organization)
    # Row locks in primary-key order (the fixed order), so concurrent writers queue.
    return list(
        Membership.objects.select_for_update()
        .filter(organization=organization)
        .select_related("user")
        .order_by("pk")
    )


def _require_manager(by: Membership) -> None:
    if by.role not in MANAGER_ROLES:
        raise _forbidden("Only an owner or an admin of the organization can do this.")


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise TeamError(
            f"Unknown role {role!r}: use one of {', '.join(Role.values)}.", code="invalid_role"
        )


# --- invitations -------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # plaintext, only in the email we send

    @property
    def accept_url(self) -> str:
        return invitation_accept_url(self.token)


def invitation_accept_url(token: str) -> str:
    return f"{settings.PUBLIC_URL}/invitations/accept?token={token}"


def _send_invitation(invitation: Invitation, token: str, by: User | None) -> None:
    url = invitation_accept_url(token)
    inviter = f"{by.email} has" if by else "You have been"
    body = (
        f"{inviter} invited you to join {invitation.organization.name} on the Control Panel "
        f"as {invitation.get_role_display().lower()}.\n\n"
        f"Accept the invitation (valid until {invitation.expires_at:%Y-%m-%d %H:%M} UTC, "
        f"usable once):\n{url}\n\n"
        "If you did not expect this, ignore this email.\n"
    )
    organization = invitation.organization.name
    # After commit: no email for an invitation that was rolled back, no I/O in the transaction.
    transaction.on_commit(
        lambda: send_mail(
            f"Invitation to {organization} on the Control Panel",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [invitation.email],
        )
    )


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, by: Membership
) -> IssuedInvitation:
    """Invite `email`. Inviting an address with an invitation still open re-sends that
    invitation with the new role (a fresh token and expiry)."""
    _require_manager(by)
    _check_role(role)
    if role == Role.OWNER and by.role != Role.OWNER:
        raise _forbidden("Only an owner can invite another owner.")
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise TeamError(f"{email!r} is not a valid email address.", code="invalid_email") from None
    _lock_organization(organization)
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise _conflict(f"{email} is already a member of this organization.", "already_member")
    issued = tokens.issue(INVITATION_KIND)
    now = timezone.now()
    fields = {
        "role": role,
        "token_digest": issued.digest,
        "invited_by": by.user,
        "created_at": now,
        "expires_at": now + INVITATION_LIFETIME,
    }
    # The partial unique index (one open invitation per address) backs this upsert; the
    # organization lock above keeps two inviters from racing on it.
    invitation = Invitation.objects.filter(
        organization=organization, email=email, accepted_at=None, revoked_at=None
    ).first()
    if invitation is None:
        invitation = Invitation.objects.create(organization=organization, email=email, **fields)
    else:
        for name, value in fields.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=list(fields))
    _send_invitation(invitation, issued.plaintext, by.user)
    return IssuedInvitation(invitation, issued.plaintext)


@transaction.atomic
def invitation_resend(*, invitation: Invitation, by: Membership) -> IssuedInvitation:
    """A new token (the old link stops working) and a new 7-day expiry, sent again."""
    _require_manager(by)
    if invitation.role == Role.OWNER and by.role != Role.OWNER:
        raise _forbidden("Only an owner can re-send an owner's invitation.")
    issued = tokens.issue(INVITATION_KIND)
    now = timezone.now()
    # Conditional update: an invitation accepted or revoked meanwhile is left alone.
    changed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        token_digest=issued.digest, expires_at=now + INVITATION_LIFETIME
    )
    if not changed:
        raise _conflict("This invitation was already accepted or revoked.", "invitation_closed")
    invitation.refresh_from_db()
    _send_invitation(invitation, issued.plaintext, by.user)
    return IssuedInvitation(invitation, issued.plaintext)


def invitation_revoke(*, invitation: Invitation, by: Membership) -> Invitation:
    _require_manager(by)
    # Conditional update: revoking twice, or after acceptance, changes nothing.
    changed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    if not changed:
        raise _conflict("This invitation was already accepted or revoked.", "invitation_closed")
    invitation.refresh_from_db()
    return invitation


def invitation_find(*, token: str) -> Invitation | None:
    """The invitation a token opens, if it is still open. One indexed lookup by digest
    (the token carries 256 random bits, so its digest is a safe lookup key)."""
    if not tokens.shape(INVITATION_KIND).match(token or ""):
        return None
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_digest=tokens.digest(token))
        .first()
    )
    if invitation is None or not invitation.is_open:
        return None
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """`user` (signed in) joins with the invitation's role; the email must match."""
    invitation = invitation_find(token=token)
    if invitation is None:
        raise TeamError(
            "This invitation link is not valid: it was used, revoked, replaced by a newer "
            "one, or has expired. Ask for a new invitation.",
            code="invitation_invalid",
            status=404,
        )
    if invitation.email != user.email.lower():
        raise _forbidden(
            f"This invitation is for {invitation.email}; you are signed in as {user.email}."
        )
    _lock_organization(invitation.organization)
    # Conditional update: only one acceptance of a single-use token wins.
    claimed = Invitation.objects.filter(
        pk=invitation.pk, accepted_at=None, revoked_at=None, token_digest=invitation.token_digest
    ).update(accepted_at=timezone.now())
    if not claimed:
        raise TeamError(
            "This invitation was just used or revoked.", code="invitation_invalid", status=404
        )
    # The unique (organization, user) constraint backs this get-or-create.
    membership, _ = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    return membership


@transaction.atomic
def invitation_accept_signup(
    *, token: str, password: str, name: str = ""
) -> tuple[User, Membership]:
    """A new person signs up through their invitation (the account gets its email)."""
    invitation = invitation_find(token=token)
    if invitation is None:
        raise TeamError(
            "This invitation link is not valid: it was used, revoked, replaced by a newer "
            "one, or has expired. Ask for a new invitation.",
            code="invitation_invalid",
            status=404,
        )
    if User.objects.filter(email=invitation.email).exists():
        raise _conflict(
            f"An account for {invitation.email} exists already: sign in to accept.",
            "account_exists",
        )
    candidate = User(email=invitation.email, name=name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as error:
        raise TeamError(" ".join(error.messages), code="weak_password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=invitation.email, password=password, name=name)
    except IntegrityError:
        raise _conflict(
            f"An account for {invitation.email} exists already: sign in to accept.",
            "account_exists",
        ) from None
    return user, invitation_accept(token=token, user=user)


# --- members -----------------------------------------------------------------------------
def _find(memberships: list[Membership], target: Membership) -> Membership:
    for membership in memberships:
        if membership.pk == target.pk:
            return membership
    raise TeamError("No such member.", code="not_found", status=404)


def _owners(memberships: list[Membership]) -> int:
    return sum(1 for m in memberships if m.role == Role.OWNER)


@transaction.atomic
def member_set_role(*, membership: Membership, role: str, by: Membership) -> Membership:
    _check_role(role)
    _require_manager(by)
    memberships = _lock_memberships(membership.organization)
    target = _find(memberships, membership)
    actor = _find(memberships, by)
    if Role.OWNER in (role, target.role) and actor.role != Role.OWNER:
        raise _forbidden("Only an owner can make someone an owner or change an owner's role.")
    if target.role == Role.OWNER and role != Role.OWNER and _owners(memberships) == 1:
        raise _conflict(
            "This is the organization's last owner: make someone else an owner first.",
            "last_owner",
        )
    target.role = role
    target.save(update_fields=["role"])
    return target


@dataclass(frozen=True)
class Removal:
    seats_freed: int
    environments_disabled: int
    api_keys_revoked: int
    tokens_revoked: int


@transaction.atomic
def member_remove(*, membership: Membership, by: Membership) -> Removal:
    """Remove a member: free their developer seats, disable their personal environments
    on this organization's projects, revoke those environments' API keys and all their
    personal access tokens. All or nothing, in one transaction."""
    memberships = _lock_memberships(membership.organization)
    target = _find(memberships, membership)
    actor = _find(memberships, by)
    if actor.pk != target.pk:
        _require_manager(actor)
        if target.role == Role.OWNER and actor.role != Role.OWNER:
            raise _forbidden("Only an owner can remove an owner.")
    if target.role == Role.OWNER and _owners(memberships) == 1:
        raise _conflict(
            "This is the organization's last owner: make someone else an owner first.",
            "last_owner",
        )
    now = timezone.now()
    seats = DeveloperSeat.objects.filter(membership=target, freed_at=None).update(freed_at=now)
    environments = Environment.objects.filter(
        project__organization=target.organization,
        owner=target.user,
        kind=EnvironmentKind.PERSONAL,
    )
    keys = ApiKey.objects.filter(environment__in=environments, revoked_at=None).update(
        revoked_at=now
    )
    disabled = environments.exclude(status=EnvironmentStatus.DISABLED).update(
        status=EnvironmentStatus.DISABLED
    )
    # Access tokens belong to the person, not the organization: a removed member's CLI
    # must sign in again (and then sees only what it still may).
    pats = PersonalAccessToken.objects.filter(user=target.user, revoked_at=None).update(
        revoked_at=now
    )
    target.delete()
    return Removal(seats, disabled, keys, pats)


# --- developer seats -----------------------------------------------------------------------
def developer_seats_in_use(*, organization: Organization) -> int:
    return DeveloperSeat.objects.filter(
        project__organization=organization, freed_at__isnull=True
    ).count()


@transaction.atomic
def seat_assign(*, project: Project, membership: Membership, by: Membership) -> DeveloperSeat:
    """Give `membership` a developer seat on `project` (idempotent). The contract's
    `developer_seats` limit applies with its overage policy."""
    _require_manager(by)
    organization = project.organization
    if membership.organization_id != organization.pk:
        raise TeamError("No such member.", code="not_found", status=404)
    # The organization lock serializes assignments, so the count below cannot go stale.
    _lock_organization(organization)
    held = DeveloperSeat.objects.filter(membership=membership, project=project, freed_at=None)
    existing = held.first()
    if existing is not None:
        return existing
    contract = contract_active(organization=organization)
    if contract is None:
        raise _conflict(
            "The organization has no contract in force, so no developer seats can be assigned.",
            "no_contract",
        )
    cap = contract.cap_for(DEVELOPER_SEATS)
    in_use = developer_seats_in_use(organization=organization)
    if cap is not None and in_use >= cap:
        limit = contract.limit_for(DEVELOPER_SEATS)
        mode, _ = contract.policy_for(DEVELOPER_SEATS)
        allowance = f"{limit}" if mode == OverageMode.BLOCK else f"{limit} (up to {cap})"
        raise _conflict(
            f"Developer seat limit reached: your contract allows {allowance} developer seats "
            f"and {in_use} are in use. Free a seat or ask us to raise the limit.",
            "developer_seat_limit",
        )
    # The partial unique index (one held seat per member and project) backs this insert.
    return DeveloperSeat.objects.create(membership=membership, project=project, assigned_by=by.user)


def seat_free(*, project: Project, membership: Membership, by: Membership) -> int:
    """Free the member's seat on `project`. Their personal environments stay, but new
    personal environments and licenses need a seat again."""
    _require_manager(by)
    # Conditional update: freeing twice keeps the first time.
    freed = DeveloperSeat.objects.filter(
        membership=membership, project=project, freed_at=None
    ).update(freed_at=timezone.now())
    if not freed:
        raise TeamError(
            "This member holds no developer seat on this project.", code="not_found", status=404
        )
    return freed
