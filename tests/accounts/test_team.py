"""Team services: invitations, roles, member removal, developer seats."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from accounts import tokens
from accounts.models import (
    ApiKey,
    DeveloperSeat,
    EnvironmentStatus,
    Invitation,
    Membership,
    OverageMode,
    PersonalAccessToken,
    Role,
)
from accounts.services import access, personal, seats, team
from tests.conftest import make_tenant
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def membership(tenant, user):
    return Membership.objects.get(organization=tenant.organization, user=user)


def invite(tenant, email="new@example.com", role=Role.MEMBER, by=None):
    return team.invitation_create(
        organization=tenant.organization,
        email=email,
        role=role,
        by=membership(tenant, by or tenant.owner),
    )


# --- invitations -------------------------------------------------------------------------
def test_invitation_sends_one_email_with_a_single_use_link_after_commit(
    tenant, django_capture_on_commit_callbacks, settings
):
    settings.PUBLIC_URL = "http://127.0.0.1:8000"
    with django_capture_on_commit_callbacks(execute=True):
        issued = invite(tenant, email="New@Example.com", role=Role.ADMIN)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new@example.com"]
    assert issued.accept_url in message.body
    assert issued.accept_url == f"http://127.0.0.1:8000/invitations/accept?token={issued.token}"
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role) == ("new@example.com", Role.ADMIN)
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=7)


def test_invitation_token_is_random_and_only_its_digest_is_stored(tenant):
    first = invite(tenant, email="a@example.com")
    second = invite(tenant, email="b@example.com")
    assert first.token != second.token
    assert tokens.shape("cpi").match(first.token)
    # 43 url-safe characters of secrets.token_urlsafe(32): 256 random bits.
    assert len(first.token.split("_", 2)[2]) == 43
    stored = list(Invitation.objects.values_list("token_digest", flat=True))
    assert sorted(stored) == sorted([tokens.digest(first.token), tokens.digest(second.token)])
    assert all(first.token not in value and second.token not in value for value in stored)


def test_member_cannot_invite_and_admin_cannot_invite_an_owner(tenant):
    with pytest.raises(team.TeamError) as refused:
        invite(tenant, by=tenant.member)
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    with pytest.raises(team.TeamError, match="Only an owner can invite another owner"):
        invite(tenant, role=Role.OWNER, by=tenant.admin)
    assert Invitation.objects.count() == 0


def test_inviting_a_member_again_is_refused(tenant):
    with pytest.raises(team.TeamError, match="already a member") as refused:
        invite(tenant, email=tenant.member.email.upper())
    assert refused.value.status == 409
    assert Invitation.objects.count() == 0


def test_inviting_again_resends_with_a_new_token_and_the_new_role(tenant):
    first = invite(tenant)
    second = invite(tenant, role=Role.ADMIN)
    invitation = Invitation.objects.get()
    assert invitation.role == Role.ADMIN
    assert team.invitation_find(token=first.token) is None
    assert team.invitation_find(token=second.token) == invitation


def test_resend_rotates_the_token_and_extends_the_expiry(tenant):
    with time_machine.travel(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), tick=False):
        first = invite(tenant)
    with time_machine.travel(dt.datetime(2026, 11, 6, tzinfo=dt.UTC), tick=False):
        second = team.invitation_resend(
            invitation=first.invitation, by=membership(tenant, tenant.admin)
        )
    assert second.invitation.expires_at == dt.datetime(2026, 11, 13, tzinfo=dt.UTC)
    assert team.invitation_find(token=first.token) is None


def test_revoked_invitation_cannot_be_accepted(tenant):
    issued = invite(tenant)
    team.invitation_revoke(invitation=issued.invitation, by=membership(tenant, tenant.admin))
    user = UserFactory(email="new@example.com")
    with pytest.raises(team.TeamError) as refused:
        team.invitation_accept(token=issued.token, user=user)
    assert refused.value.status == 404
    assert not Membership.objects.filter(user=user).exists()


def test_expired_invitation_cannot_be_accepted(tenant):
    issued = invite(tenant)
    user = UserFactory(email="new@example.com")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=7, seconds=1)
    with time_machine.travel(later), pytest.raises(team.TeamError, match="expired"):
        team.invitation_accept(token=issued.token, user=user)
    assert not Membership.objects.filter(user=user).exists()


def test_accept_by_existing_user_is_single_use_and_email_must_match(tenant):
    issued = invite(tenant, role=Role.ADMIN)
    stranger = UserFactory(email="someone-else@example.com")
    with pytest.raises(team.TeamError, match=r"is for new@example\.com") as refused:
        team.invitation_accept(token=issued.token, user=stranger)
    assert refused.value.status == 403
    invited = UserFactory(email="new@example.com")
    joined = team.invitation_accept(token=issued.token, user=invited)
    assert (joined.organization, joined.role) == (tenant.organization, Role.ADMIN)
    with pytest.raises(team.TeamError):
        team.invitation_accept(token=issued.token, user=invited)
    assert Membership.objects.filter(user=invited).count() == 1
    assert not Membership.objects.filter(user=stranger).exists()


def test_accept_signup_creates_the_account_with_the_invited_email(tenant):
    issued = invite(tenant)
    user, joined = team.invitation_accept_signup(
        token=issued.token, password="a sturdy passphrase 42", name="Nova"
    )
    assert (user.email, user.name, joined.role) == ("new@example.com", "Nova", Role.MEMBER)
    assert user.check_password("a sturdy passphrase 42")


def test_accept_signup_refuses_weak_password_and_existing_account(tenant):
    issued = invite(tenant)
    with pytest.raises(team.TeamError) as refused:
        team.invitation_accept_signup(token=issued.token, password="123")
    assert refused.value.code == "weak_password"
    UserFactory(email="new@example.com")
    with pytest.raises(team.TeamError) as refused:
        team.invitation_accept_signup(token=issued.token, password="a sturdy passphrase 42")
    assert refused.value.code == "account_exists"
    assert Invitation.objects.get().accepted_at is None
    assert Membership.objects.filter(user__email="new@example.com").count() == 0


# --- roles and removal ---------------------------------------------------------------------
def test_last_owner_cannot_be_demoted_or_removed(tenant):
    owner = membership(tenant, tenant.owner)
    with pytest.raises(team.TeamError, match="last owner") as refused:
        team.member_set_role(membership=owner, role=Role.ADMIN, by=owner)
    assert refused.value.status == 409
    with pytest.raises(team.TeamError, match="last owner"):
        team.member_remove(membership=owner, by=owner)
    assert Membership.objects.get(pk=owner.pk).role == Role.OWNER


def test_owner_can_be_demoted_once_there_is_another_owner(tenant):
    owner = membership(tenant, tenant.owner)
    admin = membership(tenant, tenant.admin)
    team.member_set_role(membership=admin, role=Role.OWNER, by=owner)
    team.member_set_role(membership=owner, role=Role.MEMBER, by=admin)
    roles = dict(
        Membership.objects.filter(organization=tenant.organization).values_list("user", "role")
    )
    assert roles[tenant.owner.pk] == Role.MEMBER
    assert roles[tenant.admin.pk] == Role.OWNER


def test_admin_cannot_touch_owners_and_member_cannot_change_roles(tenant):
    owner = membership(tenant, tenant.owner)
    admin = membership(tenant, tenant.admin)
    member = membership(tenant, tenant.member)
    with pytest.raises(team.TeamError, match="Only an owner"):
        team.member_set_role(membership=member, role=Role.OWNER, by=admin)
    with pytest.raises(team.TeamError, match="Only an owner can remove an owner"):
        team.member_remove(membership=owner, by=admin)
    with pytest.raises(team.TeamError) as refused:
        team.member_set_role(membership=admin, role=Role.MEMBER, by=member)
    assert refused.value.status == 403
    roles = sorted(
        Membership.objects.filter(organization=tenant.organization).values_list("role", flat=True)
    )
    assert roles == [Role.ADMIN, Role.MEMBER, Role.OWNER]


def test_member_can_leave(tenant):
    member = membership(tenant, tenant.member)
    team.member_remove(membership=member, by=member)
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_member_removal_frees_seats_disables_environments_revokes_keys_and_tokens(
    tenant, other_tenant
):
    member = membership(tenant, tenant.member)
    admin = membership(tenant, tenant.admin)
    seats.seat_assign(project=tenant.project, membership=member, by=admin)
    dev = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    pat = access.pat_issue(user=tenant.member, name="laptop")
    # The same person in another organization keeps that organization's environment.
    elsewhere = MembershipFactory(organization=other_tenant.organization, user=tenant.member)
    seats.seat_assign(
        project=other_tenant.project,
        membership=elsewhere,
        by=membership(other_tenant, other_tenant.owner),
    )
    kept = personal.personal_environment_get_or_create(
        project=other_tenant.project, user=tenant.member, name="dev"
    )

    removal = team.member_remove(membership=member, by=admin)

    assert removal == team.Removal(1, 1, 1, 1)
    assert not Membership.objects.filter(pk=member.pk).exists()
    # The freed seat stays as history: who held it, where, from when to when.
    history = DeveloperSeat.objects.get(project=tenant.project)
    assert (history.membership, history.user, history.freed_at is not None) == (
        None,
        tenant.member,
        True,
    )
    assert str(history) == f"{tenant.member} on {tenant.project}"
    dev.environment.refresh_from_db()
    assert dev.environment.status == EnvironmentStatus.DISABLED
    assert ApiKey.objects.get(pk=dev.api_key.pk).revoked_at is not None
    assert PersonalAccessToken.objects.get(pk=pat.token.pk).revoked_at is not None
    assert access.pat_authenticate(pat.plaintext) is None
    kept.environment.refresh_from_db()
    assert kept.environment.status == EnvironmentStatus.ENABLED
    assert ApiKey.objects.get(pk=kept.api_key.pk).revoked_at is None
    assert DeveloperSeat.objects.filter(membership=elsewhere, freed_at=None).count() == 1
    # The production key is not the removed member's: it keeps working.
    assert ApiKey.objects.filter(environment=tenant.production, revoked_at=None).count() == 1


# --- developer seats ------------------------------------------------------------------------
def seat_limit_tenant(limit, mode, factor=None):
    t = make_tenant("seaty")
    t.organization.contracts.update(
        developer_seats=limit, developer_seats_overage=mode, developer_seats_overage_factor=factor
    )
    return t


def assign_new_member(t):
    m = MembershipFactory(organization=t.organization)
    return seats.seat_assign(project=t.project, membership=m, by=membership(t, t.owner))


def test_seat_assignment_is_idempotent(tenant):
    member = membership(tenant, tenant.member)
    first = seats.seat_assign(
        project=tenant.project, membership=member, by=membership(tenant, tenant.admin)
    )
    again = seats.seat_assign(
        project=tenant.project, membership=member, by=membership(tenant, tenant.owner)
    )
    assert first.pk == again.pk
    assert DeveloperSeat.objects.count() == 1


def test_member_cannot_assign_seats(tenant):
    member = membership(tenant, tenant.member)
    with pytest.raises(team.TeamError) as refused:
        seats.seat_assign(project=tenant.project, membership=member, by=member)
    assert refused.value.status == 403
    assert DeveloperSeat.objects.count() == 0


def test_block_policy_refuses_beyond_the_limit_with_limit_and_usage():
    t = seat_limit_tenant(2, OverageMode.BLOCK)
    assign_new_member(t)
    assign_new_member(t)
    with pytest.raises(team.TeamError) as refused:
        assign_new_member(t)
    assert refused.value.status == 409
    assert refused.value.code == "developer_seat_limit"
    assert refused.value.message == (
        "Developer seat limit reached: your contract allows 2 developer seats and 2 are in "
        "use. Free a seat or ask us to raise the limit."
    )
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 2


def test_freed_seat_makes_room_again():
    t = seat_limit_tenant(1, OverageMode.BLOCK)
    seat = assign_new_member(t)
    seats.seat_free(project=t.project, membership=seat.membership, by=membership(t, t.owner))
    assign_new_member(t)
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 1
    assert DeveloperSeat.objects.count() == 2


@pytest.mark.parametrize(
    ("limit", "factor", "cap"),
    [
        (4, Decimal("1.25"), 5),
        (3, Decimal("1.5"), 4),
        (10, Decimal("1.1"), 11),
        (2, Decimal("1"), 2),
    ],
)
def test_allow_up_to_accepts_up_to_floor_of_limit_times_factor(limit, factor, cap):
    t = seat_limit_tenant(limit, OverageMode.ALLOW_UP_TO, factor)
    for _ in range(cap):
        assign_new_member(t)
    with pytest.raises(team.TeamError) as refused:
        assign_new_member(t)
    assert refused.value.message.startswith(
        f"Developer seat limit reached: your contract allows {limit} (up to {cap}) developer "
        f"seats and {cap} are in use."
    )
    assert DeveloperSeat.objects.filter(freed_at=None).count() == cap


def test_allow_policy_accepts_beyond_the_limit():
    t = seat_limit_tenant(1, OverageMode.ALLOW)
    for _ in range(3):
        assign_new_member(t)
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 3


def test_no_contract_no_seat(tenant):
    tenant.organization.contracts.all().delete()
    with pytest.raises(team.TeamError) as refused:
        seats.seat_assign(
            project=tenant.project,
            membership=membership(tenant, tenant.member),
            by=membership(tenant, tenant.owner),
        )
    assert refused.value.code == "no_contract"
    assert DeveloperSeat.objects.count() == 0


def test_seat_of_another_organizations_member_is_refused(tenant, other_tenant):
    with pytest.raises(team.TeamError) as refused:
        seats.seat_assign(
            project=tenant.project,
            membership=membership(other_tenant, other_tenant.member),
            by=membership(tenant, tenant.owner),
        )
    assert refused.value.status == 404
    assert DeveloperSeat.objects.count() == 0
