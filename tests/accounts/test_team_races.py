"""Concurrent team writes on PostgreSQL: row locks keep the invariants."""

import threading

import pytest
from django.db import connection

from accounts.models import DeveloperSeat, Membership, OverageMode, Role
from accounts.services import seats, team
from tests.conftest import make_tenant
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*calls):
    """Run each call in its own thread and connection, released at the same moment."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def runner(index, call):
        try:
            barrier.wait()
            outcomes[index] = ("ok", call())
        except Exception as error:
            outcomes[index] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_seat_assignments_never_exceed_the_cap():
    t = make_tenant("racy")
    t.organization.contracts.update(developer_seats=3, developer_seats_overage=OverageMode.BLOCK)
    owner = Membership.objects.get(organization=t.organization, user=t.owner)
    members = [MembershipFactory(organization=t.organization) for _ in range(8)]
    outcomes = run_together(
        *[
            (lambda m=m: seats.seat_assign(project=t.project, membership=m, by=owner))
            for m in members
        ]
    )
    assert sorted(kind for kind, _ in outcomes) == ["error"] * 5 + ["ok"] * 3
    assert {error.code for kind, error in outcomes if kind == "error"} == {"developer_seat_limit"}
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 3


def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    t = make_tenant("racy")
    first = Membership.objects.get(organization=t.organization, user=t.owner)
    second = Membership.objects.get(organization=t.organization, user=t.admin)
    second.role = Role.OWNER
    second.save()
    outcomes = run_together(
        lambda: team.member_set_role(membership=second, role=Role.MEMBER, by=first),
        lambda: team.member_set_role(membership=first, role=Role.MEMBER, by=second),
    )
    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["error", "ok"]
    owners = Membership.objects.filter(organization=t.organization, role=Role.OWNER).count()
    assert owners == 1


def test_two_owners_removing_each_other_at_once_leave_one_owner():
    t = make_tenant("racy")
    first = Membership.objects.get(organization=t.organization, user=t.owner)
    second = Membership.objects.get(organization=t.organization, user=t.admin)
    second.role = Role.OWNER
    second.save()
    outcomes = run_together(
        lambda: team.member_remove(membership=second, by=first),
        lambda: team.member_remove(membership=first, by=second),
    )
    assert sorted(kind for kind, _ in outcomes) == ["error", "ok"]
    assert Membership.objects.filter(organization=t.organization, role=Role.OWNER).count() == 1


def test_concurrent_personal_environments_stay_within_the_per_seat_limit(settings):
    from accounts.models import Environment, EnvironmentKind
    from accounts.services import personal

    settings.PERSONAL_ENVIRONMENTS_PER_SEAT = 2
    t = make_tenant("racy")
    owner = Membership.objects.get(organization=t.organization, user=t.owner)
    member = Membership.objects.get(organization=t.organization, user=t.member)
    seats.seat_assign(project=t.project, membership=member, by=owner)
    outcomes = run_together(
        *[
            (
                lambda n=n: personal.personal_environment_get_or_create(
                    project=t.project, user=t.member, name=f"env-{n}"
                )
            )
            for n in range(5)
        ]
    )
    assert sorted(kind for kind, _ in outcomes) == ["error"] * 3 + ["ok"] * 2
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 2


def test_concurrent_polls_deliver_the_token_once():
    from accounts.models import PersonalAccessToken
    from accounts.services import access

    t = make_tenant("racy")
    started = access.cli_session_start()
    access.cli_session_decide(session=started.session, user=t.member, approve=True)
    outcomes = run_together(
        *[(lambda: access.cli_session_poll(poll_id=started.poll_id).state) for _ in range(6)]
    )
    states = sorted(result.value for _, result in outcomes)
    assert states == ["approved"] + ["expired"] * 5
    assert PersonalAccessToken.objects.count() == 1


def test_concurrent_acceptances_of_one_invitation_make_one_membership():
    from accounts.models import Invitation, User

    t = make_tenant("racy")
    owner = Membership.objects.get(organization=t.organization, user=t.owner)
    issued = team.invitation_create(
        organization=t.organization, email="new@example.com", role=Role.MEMBER, by=owner
    )
    outcomes = run_together(
        *[
            (
                lambda: team.invitation_accept_signup(
                    token=issued.token, password="a sturdy passphrase 42"
                )
            )
            for _ in range(4)
        ]
    )
    assert sorted(kind for kind, _ in outcomes) == ["error"] * 3 + ["ok"]
    assert User.objects.filter(email="new@example.com").count() == 1
    assert Membership.objects.filter(user__email="new@example.com").count() == 1
    assert Invitation.objects.get().accepted_at is not None
