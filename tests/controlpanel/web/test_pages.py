"""What the pages show and do, beyond who may open them."""

import datetime as dt
import re

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts.models import (
    ApiKey,
    AuditEvent,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Invitation,
    Membership,
    Organization,
    PersonalAccessToken,
)
from accounts.selectors.api_keys import api_key_check
from accounts.services import seats
from metering.compliance.models import Notification, WebhookEndpoint

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_front_door_signed_out_is_sign_in_and_signed_in_the_last_organization(tenant, other_tenant):
    assert Client().get("/")["Location"] == "/login/"
    Membership.objects.create(
        organization=other_tenant.organization, user=tenant.owner, role="member"
    )
    client = client_for(tenant.owner)
    assert client.get("/")["Location"] == "/acme/"  # alphabetical first: Acme
    client.get("/globex/")
    assert client.get("/")["Location"] == "/globex/"


def test_front_door_without_organization_says_what_to_do(outsider):
    response = client_for(outsider).get("/")
    assert response.status_code == 200
    assert "You are not in any organization yet" in response.content.decode()


def test_issued_api_key_is_shown_once_and_works(tenant):
    client = client_for(tenant.admin)
    url = f"/acme/projects/website/environments/{tenant.production.pk}/keys"
    response = client.post(url, {"name": "deploy"})
    html = response.content.decode()
    plaintext = re.search(r'<code id="new-api-key">(cpk_[^<]+)</code>', html).group(1)
    assert api_key_check(plaintext).api_key.name == "deploy"
    again = client.get("/acme/projects/website/").content.decode()
    assert plaintext not in again
    assert ApiKey.objects.get(name="deploy").display in again


def test_rotate_keeps_the_old_key_for_the_grace_period(tenant):
    key = tenant.production.api_keys.get()
    client = client_for(tenant.owner)
    with time_machine.travel(dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC), tick=False):
        response = client.post(
            f"/acme/projects/website/environments/{tenant.production.pk}/keys/{key.pk}/rotate",
            {"grace_days": "7"},
        )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.expires_at == dt.datetime(2026, 11, 17, 12, tzinfo=dt.UTC)
    assert key.replaced_by is not None
    assert "new-api-key" in response.content.decode()


def test_revoke_and_disable(tenant):
    key = tenant.production.api_keys.get()
    client = client_for(tenant.owner)
    env = f"/acme/projects/website/environments/{tenant.production.pk}"
    assert client.post(f"{env}/keys/{key.pk}/revoke").status_code == 302
    assert api_key_check(tenant.api_key).api_key is None or not api_key_check(tenant.api_key).ok
    assert client.post(f"{env}/status", {"enabled": "0"}).status_code == 302
    assert Environment.objects.get(pk=tenant.production.pk).status == "disabled"
    assert client.post(f"{env}/status", {"enabled": "1"}).status_code == 302
    assert Environment.objects.get(pk=tenant.production.pk).status == "enabled"


def test_cicd_environment_form_keeps_input_and_shows_the_error_next_to_it(tenant):
    client = client_for(tenant.owner)
    bad = client.post("/acme/projects/website/environments", {"name": "Not Valid!"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert 'value="Not Valid!"' in html
    assert re.search(r'id="id_name_error"><li>1 to 40 lowercase letters', html)
    assert client.post("/acme/projects/website/environments", {"name": "ci"}).status_code == 302
    duplicate = client.post("/acme/projects/website/environments", {"name": "ci"})
    assert "has an environment named &#x27;ci&#x27; already" in duplicate.content.decode()
    assert (
        Environment.objects.filter(project=tenant.project, kind=EnvironmentKind.CICD).count() == 1
    )


def test_project_create_and_duplicate_id(tenant):
    client = client_for(tenant.admin)
    assert (
        client.post("/acme/projects/new", {"name": "Shop", "slug": "shop"})["Location"]
        == "/acme/projects/shop/"
    )
    again = client.post("/acme/projects/new", {"name": "Shop 2", "slug": "shop"})
    assert again.status_code == 400
    assert "A project with this id exists already." in again.content.decode()
    assert 'value="Shop 2"' in again.content.decode()


def test_cms_settings_link_lands_on_the_license(tenant):
    response = client_for(tenant.member).get("/acme/website/settings")
    assert response["Location"] == "/acme/projects/website/#license"
    page = client_for(tenant.member).get("/acme/projects/website/").content.decode()
    assert 'data-feature="recordLocking"' in page
    assert client_for(tenant.member).get("/acme/nothing/settings").status_code == 404


def test_license_download_is_a_signed_token(tenant):
    response = client_for(tenant.owner).post("/acme/projects/website/license")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="acme-website-license.jwt"'
    assert response.content.decode().count(".") == 2


def test_invite_resend_revoke_and_errors_next_to_the_field(
    tenant, django_capture_on_commit_callbacks
):
    client = client_for(tenant.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/acme/team/invite", {"email": "new@example.com", "role": "member"})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["new@example.com"]
    invitation = Invitation.objects.get(email="new@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/acme/team/invitations/{invitation.pk}/resend").status_code == 302
    assert len(mail.outbox) == 2
    assert client.post(f"/acme/team/invitations/{invitation.pk}/revoke").status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    owner_invite = client.post("/acme/team/invite", {"email": "boss@example.com", "role": "owner"})
    assert owner_invite.status_code == 400
    assert "Only an owner can invite another owner." in owner_invite.content.decode()
    assert 'value="boss@example.com"' in owner_invite.content.decode()
    member = client.post("/acme/team/invite", {"email": tenant.member.email, "role": "member"})
    assert "is already a member" in member.content.decode()


def test_role_change_and_last_owner_refusal(tenant):
    client = client_for(tenant.owner)
    assert (
        client.post(f"/acme/team/members/{tenant.admin.pk}/role", {"role": "member"}).status_code
        == 302
    )
    assert Membership.objects.get(user=tenant.admin).role == "member"
    response = client.post(
        f"/acme/team/members/{tenant.owner.pk}/role", {"role": "admin"}, follow=True
    )
    assert "last owner" in response.content.decode()
    assert Membership.objects.get(user=tenant.owner).role == "owner"


def test_seats_assign_free_and_limit(tenant, settings):
    tenant.organization.contracts.update(developer_seats=1, developer_seats_overage="block")
    client = client_for(tenant.owner)
    url = f"/acme/team/seats/website/{tenant.member.pk}"
    client.post(url, {"assign": "1"})
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 1
    page = client.get("/acme/team/").content.decode()
    assert re.search(r"<strong>1</strong> in use of 1\b", page)
    refused = client.post(
        f"/acme/team/seats/website/{tenant.admin.pk}", {"assign": "1"}, follow=True
    )
    assert "Developer seat limit reached" in refused.content.decode()
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 1
    client.post(url, {"assign": "0"})
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 0


def test_member_gets_personal_environment_lines(tenant, settings):
    settings.PUBLIC_URL = "https://cp.example.com"
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    client = client_for(tenant.member)
    response = client.post("/acme/environments/website", {"website-name": "dev"})
    html = response.content.decode()
    assert "WCP_API_URL=https://cp.example.com" in html
    line = re.search(r'<code id="wcp-env">WCP_PROJECT_ENVIRONMENT=([^<]+)</code>', html).group(1)
    import base64
    import json

    document = json.loads(base64.b64decode(line))
    assert document["org"] == {"id": "acme"} and document["project"] == {"id": "website"}
    assert api_key_check(document["apiKey"]).api_key.environment.owner == tenant.member
    bad = client.post("/acme/environments/website", {"website-name": "Bad Name"})
    assert bad.status_code == 400
    assert 'value="Bad Name"' in bad.content.decode()


def test_member_without_seat_sees_the_empty_state_and_cannot_create(tenant):
    client = client_for(tenant.member)
    assert "No developer seat yet" in client.get("/acme/environments/").content.decode()
    response = client.post("/acme/environments/website", {"website-name": "dev"}, follow=True)
    assert "You hold no developer seat on this project" in response.content.decode()
    assert not Environment.objects.filter(kind=EnvironmentKind.PERSONAL).exists()


def test_access_tokens_create_once_and_revoke(tenant):
    client = client_for(tenant.member)
    response = client.post("/account/", {"create": "1", "name": "laptop", "days": "30"})
    plaintext = re.search(
        r'<code id="new-token">(cpt_[^<]+)</code>', response.content.decode()
    ).group(1)
    token = PersonalAccessToken.objects.get(user=tenant.member)
    assert token.name == "laptop"
    assert plaintext not in client.get("/account/").content.decode()
    assert client.post("/account/", {"revoke": token.pk}).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    empty = client.post("/account/", {"create": "1", "name": "", "days": "30"})
    assert empty.status_code == 400


def test_webhook_add_shows_secret_once_test_event_and_errors(tenant):
    client = client_for(tenant.owner)
    response = client.post(
        "/acme/webhooks/add", {"url": "https://hooks.example.com/cp", "description": "ops"}
    )
    assert re.search(r'<code id="webhook-secret">[^<]{20,}</code>', response.content.decode())
    endpoint = WebhookEndpoint.objects.get()
    assert client.post(f"/acme/webhooks/{endpoint.pk}/test").status_code == 302
    test = Notification.objects.get(endpoint=endpoint)
    assert test.payload["type"] == "test" and test.status == "pending"
    page = client.get("/acme/webhooks/").content.decode()
    assert "webhook-secret" not in page and "Pending" in page
    bad = client.post("/acme/webhooks/add", {"url": "http://10.0.0.1/x"})
    assert bad.status_code == 400
    assert 'value="http://10.0.0.1/x"' in bad.content.decode()
    assert WebhookEndpoint.objects.count() == 1
    assert client.post(f"/acme/webhooks/{endpoint.pk}/remove").status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_owner_requires_mfa_only_with_mfa_of_their_own(tenant):
    client = client_for(tenant.owner)
    response = client.post("/acme/settings/", {"mfa_required": "1"}, follow=True)
    assert (
        "Turn on two-factor authentication for your own account first" in response.content.decode()
    )
    assert not Organization.objects.get(pk=tenant.organization.pk).mfa_required


def test_required_mfa_sends_members_without_it_to_set_it_up(tenant):
    Organization.objects.filter(pk=tenant.organization.pk).update(mfa_required=True)
    response = client_for(tenant.member).get("/acme/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/totp/activate/"


def test_unknown_machine_paths_answer_json(db):
    response = Client().get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert response.json()["message"].startswith("Not found: nothing answers /api/v1/nothing-here")
    assert "text/html" in Client().get("/nothing/here/").headers["Content-Type"]


def test_api_docs_are_served_from_static_files(db):
    html = Client().get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_schema_opens_in_a_browser(db):
    browser = Client().get("/api/schema/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert browser["Content-Type"] == "text/plain; charset=utf-8"
    assert browser.content.decode().startswith("openapi: 3")
    tool = Client().get("/api/schema/")
    assert tool["Content-Type"].startswith("application/vnd.oai.openapi")


def test_sign_up_creates_the_organization_and_verifies_the_address(db, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "organization": "Admin",  # a reserved slug: gets admin-2
            "name": "Nora",
            "email": "nora@example.com",
            "password1": "a long and unusual passphrase",
            "password2": "a long and unusual passphrase",
        },
    )
    assert response.status_code == 302
    organization = Organization.objects.get(name="Admin")
    assert organization.slug == "admin-2"
    assert organization.memberships.get().role == "owner"
    assert EmailAddress.objects.get(email="nora@example.com").verified is False
    # Not signed in until the address is verified.
    assert client.get("/admin-2/").status_code == 302
    link = re.search(
        r"https?://testserver(/accounts/confirm-email/[^\s]+)", mail.outbox[-1].body
    ).group(1)
    client.post(link)
    assert EmailAddress.objects.get(email="nora@example.com").verified is True
    assert client.get("/admin-2/").status_code == 200


def test_sign_up_errors_keep_what_was_typed(db):
    response = Client().post(
        "/accounts/signup/",
        {"organization": "", "email": "nora@example.com", "password1": "x", "password2": "y"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'value="nora@example.com"' in html
    assert 'id="id_organization_error"' in html
    assert not Organization.objects.exists()


def test_destructive_actions_ask_for_confirmation(tenant):
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    client = client_for(tenant.owner)
    project = client.get("/acme/projects/website/").content.decode()
    assert 'data-confirm="Revoke cpk_' in project
    assert 'data-confirm="Disable production?' in project
    team_page = client.get("/acme/team/").content.decode()
    assert f'data-confirm="Remove {tenant.member.email}?' in team_page
    assert f"data-confirm=\"Free {tenant.member.email}'s seat" in team_page


def test_password_reset_by_email(tenant):
    client = Client()
    response = client.post("/accounts/password/reset/", {"email": tenant.member.email})
    assert response.status_code == 302
    link = re.search(
        r"https?://testserver(/accounts/password/reset/key/[^\s]+)", mail.outbox[-1].body
    )
    page = client.get(link.group(1), follow=True)
    assert page.status_code == 200
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else link.group(1)
    done = client.post(
        form_url, {"password1": "a brand new passphrase", "password2": "a brand new passphrase"}
    )
    assert done.status_code == 302
    tenant.member.refresh_from_db()
    assert tenant.member.check_password("a brand new passphrase")


def _activate_totp(client: Client) -> None:
    """Turn on TOTP through allauth's own page, as an authenticator app would."""
    import pyotp

    # allauth asks for the password again before a security change.
    client.post("/accounts/reauthenticate/", {"password": "correct horse battery"})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session["mfa.totp.secret"]
    response = client.post("/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.content.decode()[:500]


def test_mfa_changes_and_the_organization_switch_are_in_the_owners_audit_trail(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    client = client_for(tenant.owner)
    with django_capture_on_commit_callbacks(execute=True):  # allauth signals after commit
        _activate_totp(client)
    assert client.post("/acme/settings/", {"mfa_required": "1"}).status_code == 302
    assert Organization.objects.get(pk=tenant.organization.pk).mfa_required
    trail = list(
        AuditEvent.objects.filter(organization=tenant.organization)
        .order_by("id")
        .values_list("kind", "actor_label", "target_label")
    )
    assert trail[-2:] == [
        ("mfa.enabled", tenant.owner.email, tenant.owner.email),
        ("mfa.required", tenant.owner.email, "acme"),
    ]
    page = client.get("/acme/settings/").content.decode()
    assert "Multi-factor authentication required for the organization" in page
    assert "Multi-factor authentication turned on" in page
    # Another organization's trail stays its own; members do not see the settings page.
    assert not AuditEvent.objects.filter(
        organization=other_tenant.organization, kind__startswith="mfa."
    ).exists()
    assert client_for(tenant.member).get("/acme/settings/").status_code in (403, 404)


def test_web_ui_writes_record_the_person_who_made_them(tenant):
    client = client_for(tenant.admin)
    key = api_key_check(tenant.api_key).api_key
    env = tenant.production
    response = client.post(f"/acme/projects/website/environments/{env.pk}/keys/{key.pk}/revoke")
    assert response.status_code == 302
    event = AuditEvent.objects.get(kind="api_key.revoked")
    assert (event.actor_kind, event.actor_label, event.organization_id) == (
        "user",
        tenant.admin.email,
        tenant.organization.pk,
    )
