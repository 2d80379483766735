"""The audit trail: append-only in the database, written with the change it records, and
written by every service the brief names."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from accounts.models import ApiKey, AuditEvent, Membership, Role
from accounts.services import seats, team
from accounts.services.api_keys import api_key_issue, api_key_revoke, api_key_rotate
from accounts.services.audit import Actor, audit_record
from accounts.services.organizations import contract_activate
from controlpanel.customer import ratelimit
from metering.compliance.models import WebhookEndpoint
from metering.compliance.services import webhook_endpoint_create, webhook_endpoint_delete
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _trail(**filters) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(**filters)
        .order_by("id")
        .values_list("kind", "actor_kind", "actor_label", "organization_label")
    )


def test_the_database_refuses_update_and_delete(tenant):
    event = audit_record(
        actor=Actor.of(tenant.owner), kind="mfa.enabled", organization=tenant.organization
    )[0]
    for statement in (
        f"UPDATE accounts_auditevent SET reason = 'edited' WHERE id = {event.pk}",
        f"DELETE FROM accounts_auditevent WHERE id = {event.pk}",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(statement)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(reason="edited")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_deleting_a_user_keeps_their_history(tenant):
    outsider = UserFactory(email="gone@example.com")
    audit_record(actor=Actor.of(outsider), kind="mfa.enabled", organization=tenant.organization)
    pk = outsider.pk
    outsider.delete()
    event = AuditEvent.objects.get(kind="mfa.enabled")
    assert (event.actor_label, event.actor_user_id) == ("gone@example.com", pk)


def test_a_rolled_back_change_leaves_no_record(tenant):
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        api_key_issue(environment=tenant.production, created_by=tenant.owner)
        raise RuntimeError("the caller's transaction fails after the issue")
    assert AuditEvent.objects.count() == before
    assert ApiKey.objects.filter(environment=tenant.production).count() == 1  # the fixture's


def test_api_key_issue_rotate_and_revoke_are_recorded_once(tenant):
    issued = api_key_issue(environment=tenant.production, created_by=tenant.owner)
    replacement = api_key_rotate(
        api_key=issued.api_key, grace=dt.timedelta(hours=1), created_by=tenant.admin
    )
    api_key_revoke(api_key=replacement.api_key, actor=Actor.of(tenant.owner), reason="leaked")
    api_key_revoke(api_key=replacement.api_key, actor=Actor.of(tenant.owner), reason="again")
    owner, admin = tenant.owner.email, tenant.admin.email
    assert _trail(target_type="accounts.apikey")[1:] == [  # [0]: the fixture's key (system)
        ("api_key.issued", "user", owner, "acme"),
        ("api_key.issued", "user", admin, "acme"),
        ("api_key.rotated", "user", admin, "acme"),
        ("api_key.revoked", "user", owner, "acme"),
    ]
    rotated = AuditEvent.objects.get(kind="api_key.rotated")
    assert rotated.details["grace_seconds"] == 3600
    assert rotated.target_label == issued.api_key.display  # prefix and last four only
    assert AuditEvent.objects.get(kind="api_key.revoked").reason == "leaked"


def test_team_changes_are_recorded_with_who_did_them(tenant):
    owner = Membership.objects.get(user=tenant.owner)
    member = Membership.objects.get(user=tenant.member)
    invited = team.invitation_create(
        organization=tenant.organization, email="dev@example.com", role=Role.MEMBER, by=owner
    )
    newcomer = UserFactory(email="dev@example.com")
    team.invitation_accept(token=invited.token, user=newcomer)
    team.member_set_role(membership=member, role=Role.ADMIN, by=owner)
    seat = seats.seat_assign(project=tenant.project, membership=member, by=owner)
    seats.seat_free(project=tenant.project, membership=member, by=owner)
    team.member_remove(membership=Membership.objects.get(user=newcomer), by=owner)
    o = tenant.owner.email
    assert _trail(organization=tenant.organization, kind__regex=r"^(member|seat)\.") == [
        ("member.invited", "user", o, "acme"),
        ("member.joined", "user", "dev@example.com", "acme"),
        ("member.role_changed", "user", o, "acme"),
        ("seat.assigned", "user", o, "acme"),
        ("seat.freed", "user", o, "acme"),
        ("member.removed", "user", o, "acme"),
    ]
    role = AuditEvent.objects.get(kind="member.role_changed")
    assert (role.details["from"], role.details["to"]) == ("member", "admin")
    assert AuditEvent.objects.get(kind="seat.assigned").target_id == str(seat.pk)


def test_webhooks_added_and_removed_are_recorded(tenant):
    endpoint, _ = webhook_endpoint_create(
        organization=tenant.organization, url="https://h.example/x", created_by=tenant.owner
    )
    webhook_endpoint_delete(endpoint=endpoint, actor=Actor.of(tenant.admin))
    assert not WebhookEndpoint.objects.exists()
    assert _trail(kind__startswith="webhook.") == [
        ("webhook.added", "user", tenant.owner.email, "acme"),
        ("webhook.removed", "user", tenant.admin.email, "acme"),
    ]


def test_a_contract_made_by_a_job_or_staff_is_recorded(tenant):
    staff = UserFactory(is_staff=True)
    contract_activate(
        organization=tenant.organization,
        actor=Actor.of(staff),
        plan="enterprise",
        starts_on=dt.date(2026, 11, 24),
        ends_on=dt.date(2027, 11, 24),
    )
    assert _trail(kind="contract.created") == [("contract.created", "staff", staff.email, "acme")]


def test_a_persons_own_event_reaches_each_of_their_organizations(tenant, other_tenant):
    MembershipFactory(user=tenant.owner, organization=other_tenant.organization)
    audit_record(
        actor=Actor.of(tenant.owner), kind="mfa.enabled", organization=None, target=tenant.owner
    )
    assert sorted(o for *_, o in _trail(kind="mfa.enabled")) == ["acme", "globex"]


def test_sign_in_failures_are_recorded_once_when_they_reach_the_threshold(client, tenant, settings):
    settings.SIGN_IN_FAILURE_AUDIT = "3/900"
    settings.RATE_LIMIT_LOGIN = "100/300"
    for _ in range(5):
        response = client.post(
            reverse("login"), {"username": tenant.owner.email.upper(), "password": "wrong"}
        )
        assert response.status_code == 200  # the form again, with its error
    event = AuditEvent.objects.get(kind="sign_in.failures")
    assert (event.actor_kind, event.organization_label, event.target_id) == (
        "system",
        "acme",
        str(tenant.owner.pk),
    )
    assert event.details == {"email": tenant.owner.email, "failures": 3, "window_seconds": 900}


def test_sign_in_failures_of_an_unknown_address_are_recorded_for_staff(db, settings):
    settings.SIGN_IN_FAILURE_AUDIT = "2/900"
    assert [ratelimit.sign_in_failed("nobody@example.com") for _ in range(3)] == [
        False,
        True,
        False,
    ]
    event = AuditEvent.objects.get(kind="sign_in.failures")
    assert (event.organization_id, event.target_id, event.details["email"]) == (
        None,
        "",
        "nobody@example.com",
    )


def test_the_trail_is_read_only_in_the_admin_for_superusers_too(client, staff_user, tenant):
    event = audit_record(
        actor=Actor.of(tenant.owner), kind="mfa.enabled", organization=tenant.organization
    )[0]
    client.force_login(staff_user)
    base = "admin:accounts_auditevent"
    assert client.get(reverse(f"{base}_add")).status_code == 403
    assert client.get(reverse(f"{base}_delete", args=[event.pk])).status_code == 403
    page = client.get(reverse(f"{base}_change", args=[event.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert (
        client.post(reverse(f"{base}_change", args=[event.pk]), {"reason": "x"}).status_code == 403
    )
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_staff_filter_the_trail_by_organization_actor_and_kind(
    client, staff_user, tenant, other_tenant
):
    audit_record(actor=Actor.of(tenant.owner), kind="mfa.enabled", organization=tenant.organization)
    audit_record(
        actor=Actor.of(other_tenant.owner),
        kind="mfa.enabled",
        organization=other_tenant.organization,
    )
    audit_record(
        actor=Actor.of(tenant.owner), kind="mfa.disabled", organization=tenant.organization
    )
    client.force_login(staff_user)
    url = reverse("admin:accounts_auditevent_changelist")

    def listed(**params) -> list[tuple[str, str]]:
        rows = client.get(url, params).context["cl"].result_list
        return [(e.kind, e.organization_label) for e in rows if e.kind.startswith("mfa.")]

    assert listed(org="globex") == [("mfa.enabled", "globex")]
    assert listed(actor=tenant.owner.email.upper(), kind="mfa.enabled") == [("mfa.enabled", "acme")]
    assert listed(actor_kind="user", kind="mfa.disabled") == [("mfa.disabled", "acme")]
