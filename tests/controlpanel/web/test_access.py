"""Every page of the web UI, for each of the cast: owners and admins manage, members
read (and manage their own environments and tokens), outsiders get 404, signed-out
visitors are sent to sign in."""

import pytest
from django.test import Client

from accounts.models import ApiKey, Environment, EnvironmentKind, Invitation, Membership
from accounts.services import team
from metering.compliance.models import WebhookEndpoint
from metering.compliance.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db

READ_PAGES = [
    "/acme/",
    "/acme/usage/",
    "/acme/projects/",
    "/acme/projects/website/",
    "/acme/team/",
    "/acme/environments/",
    "/acme/notifications/",
]
MANAGER_PAGES = ["/acme/webhooks/"]
OWNER_PAGES = ["/acme/settings/"]


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", READ_PAGES + MANAGER_PAGES + OWNER_PAGES)
def test_owner_opens_every_page(tenant, path):
    assert client_for(tenant.owner).get(path).status_code == 200


@pytest.mark.parametrize("path", READ_PAGES + MANAGER_PAGES)
def test_admin_opens_every_page_but_the_owner_settings(tenant, path):
    assert client_for(tenant.admin).get(path).status_code == 200
    assert client_for(tenant.admin).get("/acme/settings/").status_code == 403


@pytest.mark.parametrize("path", READ_PAGES)
def test_member_reads_the_pages(tenant, path):
    assert client_for(tenant.member).get(path).status_code == 200


@pytest.mark.parametrize("path", MANAGER_PAGES + OWNER_PAGES)
def test_member_may_not_open_manager_pages(tenant, path):
    assert client_for(tenant.member).get(path).status_code == 403


@pytest.mark.parametrize("path", READ_PAGES + MANAGER_PAGES + OWNER_PAGES)
def test_outsider_and_other_customers_get_404(tenant, other_tenant, outsider, staff_user, path):
    for user in (outsider, other_tenant.owner, staff_user):
        assert client_for(user).get(path).status_code == 404


@pytest.mark.parametrize("path", READ_PAGES)
def test_signed_out_visitors_are_sent_to_sign_in(tenant, path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def _manager_posts(tenant) -> list[tuple[str, dict]]:
    production = tenant.production
    key = ApiKey.objects.filter(environment=production).first()
    issued = team.invitation_create(
        organization=tenant.organization,
        email="new@example.com",
        role="member",
        by=Membership.objects.get(user=tenant.owner),
    )
    endpoint, _ = webhook_endpoint_create(
        organization=tenant.organization, url="https://hooks.example.com/x", created_by=None
    )
    env = f"/acme/projects/website/environments/{production.pk}"
    return [
        ("/acme/projects/new", {"name": "Shop", "slug": "shop"}),
        ("/acme/projects/website/environments", {"name": "ci"}),
        (f"{env}/status", {"enabled": "0"}),
        (f"{env}/keys", {"name": "x"}),
        (f"{env}/keys/{key.pk}/revoke", {}),
        (f"{env}/keys/{key.pk}/rotate", {"grace_days": "1"}),
        ("/acme/projects/website/license", {}),
        ("/acme/team/invite", {"email": "x@example.com", "role": "member"}),
        (f"/acme/team/invitations/{issued.invitation.pk}/resend", {}),
        (f"/acme/team/invitations/{issued.invitation.pk}/revoke", {}),
        (f"/acme/team/members/{tenant.admin.pk}/role", {"role": "member"}),
        (f"/acme/team/members/{tenant.admin.pk}/remove", {}),
        (f"/acme/team/seats/website/{tenant.member.pk}", {"assign": "1"}),
        ("/acme/webhooks/add", {"url": "https://hooks.example.com/y"}),
        (f"/acme/webhooks/{endpoint.pk}/test", {}),
        (f"/acme/webhooks/{endpoint.pk}/remove", {}),
    ]


def test_members_cannot_change_anything_and_nothing_is_written(tenant):
    posts = _manager_posts(tenant)
    client = client_for(tenant.member)
    before = (
        ApiKey.objects.count(),
        Environment.objects.count(),
        Invitation.objects.count(),
        WebhookEndpoint.objects.count(),
        list(Membership.objects.values_list("user_id", "role").order_by("user_id")),
    )
    for path, data in posts:
        assert client.post(path, data).status_code == 403, path
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0
    assert tenant.production.api_keys.get().expires_at is None
    after = (
        ApiKey.objects.count(),
        Environment.objects.count(),
        Invitation.objects.count(),
        WebhookEndpoint.objects.count(),
        list(Membership.objects.values_list("user_id", "role").order_by("user_id")),
    )
    assert after == before
    assert Environment.objects.get(pk=tenant.production.pk).status == "enabled"


def test_outsiders_posts_answer_404_and_write_nothing(tenant, other_tenant):
    posts = _manager_posts(tenant)
    client = client_for(other_tenant.owner)
    keys = ApiKey.objects.count()
    for path, data in posts:
        assert client.post(path, data).status_code == 404, path
    assert ApiKey.objects.count() == keys
    assert not ApiKey.objects.filter(environment=tenant.production, revoked_at__isnull=False)


def test_an_id_of_another_organization_is_not_found(tenant, other_tenant):
    """The owner of acme posting ids that belong to globex."""
    theirs = other_tenant.production
    key = theirs.api_keys.get()
    client = client_for(tenant.owner)
    env = f"/acme/projects/website/environments/{theirs.pk}"
    assert client.post(f"{env}/keys", {}).status_code == 404
    assert client.post(f"{env}/keys/{key.pk}/revoke").status_code == 404
    assert (
        client.get(f"/acme/usage/hour?environment={theirs.pk}&hour=2026-11-01T10:00Z").status_code
        == 404
    )
    assert client.post(f"/acme/team/members/{other_tenant.owner.pk}/remove").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert theirs.api_keys.count() == 1


def test_personal_environments_are_not_managed_from_the_project_page(tenant):
    personal = Environment.objects.create(
        project=tenant.project, name="dev", kind=EnvironmentKind.PERSONAL, owner=tenant.member
    )
    client = client_for(tenant.owner)
    response = client.post(
        f"/acme/projects/website/environments/{personal.pk}/status", {"enabled": "0"}
    )
    assert response.status_code == 404
    personal.refresh_from_db()
    assert personal.status == "enabled"
