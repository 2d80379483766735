"""Concurrent team writes on PostgreSQL: row locks keep the invariants."""

import threading

import pytest
from django.db import connection

from accounts import team
from accounts.models import DeveloperSeat, Membership, OverageMode, Role
from tests.conftest import make_tenant
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


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
            (lambda m=m: team.seat_assign(project=t.project, membership=m, by=owner))
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
