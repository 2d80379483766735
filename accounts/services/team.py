"""Writes for teams: invitations, roles and member removal (seats: accounts.services.seats).

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
    MANAGER_ROLES,
    ApiKey,
    AuditKind,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    EnvironmentStatus,
    Invitation,
    Membership,
    Organization,
    PersonalAccessToken,
    Role,
    User,
)
from accounts.services.audit import Actor, audit_record
from accounts.services.emails import email_mark_verified
from accounts.services.errors import ServiceError

INVITATION_KIND = "cpi"
INVITATION_LIFETIME = dt.timedelta(days=7)


class TeamError(ServiceError):
    """A refused team operation: `code` and `status` say how the API answers it."""

    def __init__(self, message: str, *, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def forbidden(message: str) -> TeamError:
    return TeamError(message, code="forbidden", status=403)


def conflict(message: str, code: str = "conflict") -> TeamError:
    return TeamError(message, code=code, status=409)


def lock_organization(organization: Organization) -> None:
    # Row lock on the organization: serializes every team write of this organization.
    Organization.objects.select_for_update().only("pk").get(pk=organization.pk)


def _lock_memberships(organization: Organization) -> list[Membership]:
    lock_organization(organization)
    # Row locks in primary-key order (the fixed order), so concurrent writers queue.
    return list(
        Membership.objects.select_for_update()
        .filter(organization=organization)
        .select_related("user")
        .order_by("pk")
    )


def require_manager(by: Membership) -> None:
    if by.role not in MANAGER_ROLES:
        raise forbidden("Only an owner or an admin of the organization can do this.")


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
    accept_url: str


def invitation_accept_url(token: str, *, base_url: str = "") -> str:
    """The link of the invitation email: on `base_url` (where the inviter's request came
    in), PUBLIC_URL when set, with or without a trailing slash."""
    base = (settings.PUBLIC_URL or base_url).rstrip("/")
    return f"{base}/invitations/accept?token={token}"


def _send_invitation(invitation: Invitation, url: str, by: User | None) -> None:
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
    *, organization: Organization, email: str, role: str, by: Membership, base_url: str = ""
) -> IssuedInvitation:
    """Invite `email`. Inviting an address with an invitation still open re-sends that
    invitation with the new role (a fresh token and expiry)."""
    require_manager(by)
    _check_role(role)
    if role == Role.OWNER and by.role != Role.OWNER:
        raise forbidden("Only an owner can invite another owner.")
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise TeamError(f"{email!r} is not a valid email address.", code="invalid_email") from None
    lock_organization(organization)
    if Membership.objects.filter(organization=organization, user__email=email).exists():
        raise conflict(f"{email} is already a member of this organization.", "already_member")
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
    url = invitation_accept_url(issued.plaintext, base_url=base_url)
    _send_invitation(invitation, url, by.user)
    audit_record(
        actor=Actor.of(by.user),
        kind=AuditKind.MEMBER_INVITED,
        organization=organization,
        target=invitation,
        details={"email": email, "role": role},
    )
    return IssuedInvitation(invitation, issued.plaintext, url)


@transaction.atomic
def invitation_resend(
    *, invitation: Invitation, by: Membership, base_url: str = ""
) -> IssuedInvitation:
    """A new token (the old link stops working) and a new 7-day expiry, sent again."""
    require_manager(by)
    if invitation.role == Role.OWNER and by.role != Role.OWNER:
        raise forbidden("Only an owner can re-send an owner's invitation.")
    issued = tokens.issue(INVITATION_KIND)
    now = timezone.now()
    # Conditional update: an invitation accepted or revoked meanwhile is left alone.
    changed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        token_digest=issued.digest, expires_at=now + INVITATION_LIFETIME
    )
    if not changed:
        raise conflict("This invitation was already accepted or revoked.", "invitation_closed")
    invitation.refresh_from_db()
    url = invitation_accept_url(issued.plaintext, base_url=base_url)
    _send_invitation(invitation, url, by.user)
    return IssuedInvitation(invitation, issued.plaintext, url)


def invitation_revoke(*, invitation: Invitation, by: Membership) -> Invitation:
    require_manager(by)
    # Conditional update: revoking twice, or after acceptance, changes nothing.
    changed = Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    if not changed:
        raise conflict("This invitation was already accepted or revoked.", "invitation_closed")
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
        raise forbidden(
            f"This invitation is for {invitation.email}; you are signed in as {user.email}."
        )
    lock_organization(invitation.organization)
    # Conditional update: only one acceptance of a single-use token wins.
    claimed = Invitation.objects.filter(
        pk=invitation.pk, accepted_at=None, revoked_at=None, token_digest=invitation.token_digest
    ).update(accepted_at=timezone.now())
    if not claimed:
        raise TeamError(
            "This invitation was just used or revoked.", code="invitation_invalid", status=404
        )
    # The unique (organization, user) constraint backs this get-or-create.
    membership, joined = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    if joined:
        audit_record(
            actor=Actor.of(user),
            kind=AuditKind.MEMBER_JOINED,
            organization=invitation.organization,
            target=membership,
            details={"role": membership.role, "invitation": invitation.pk},
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
        raise conflict(
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
        raise conflict(
            f"An account for {invitation.email} exists already: sign in to accept.",
            "account_exists",
        ) from None
    # The invitation link reached this address: it is verified.
    email_mark_verified(user=user)
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
    require_manager(by)
    memberships = _lock_memberships(membership.organization)
    target = _find(memberships, membership)
    actor = _find(memberships, by)
    if Role.OWNER in (role, target.role) and actor.role != Role.OWNER:
        raise forbidden("Only an owner can make someone an owner or change an owner's role.")
    if target.role == Role.OWNER and role != Role.OWNER and _owners(memberships) == 1:
        raise conflict(
            "This is the organization's last owner: make someone else an owner first.",
            "last_owner",
        )
    before = target.role
    target.role = role
    target.save(update_fields=["role"])
    if before != role:
        audit_record(
            actor=Actor.of(actor.user),
            kind=AuditKind.MEMBER_ROLE_CHANGED,
            organization=membership.organization,
            target=target,
            details={"email": target.user.email, "from": before, "to": role},
        )
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
        require_manager(actor)
        if target.role == Role.OWNER and actor.role != Role.OWNER:
            raise forbidden("Only an owner can remove an owner.")
    if target.role == Role.OWNER and _owners(memberships) == 1:
        raise conflict(
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
    removal = Removal(seats, disabled, keys, pats)
    audit_record(
        actor=Actor.of(actor.user),
        kind=AuditKind.MEMBER_REMOVED,
        organization=membership.organization,
        target=target,
        details={"email": target.user.email, "role": target.role, **removal.__dict__},
    )
    target.delete()
    return removal
