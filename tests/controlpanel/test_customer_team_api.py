"""Customer API: members, invitations, seats, personal environments, tokens — and who may
see and change what (owner, admin, member, outsider, another organization)."""

import base64
import json

import pytest
from django.core import mail
from django.test import Client

from accounts.models import (
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Invitation,
    Membership,
    PersonalAccessToken,
    Role,
)
from accounts.services import access, personal, seats, team

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def with_token(user) -> Client:
    token = access.pat_issue(user=user).plaintext
    return Client(headers={"authorization": f"Bearer {token}"})


def post(client, url, data):
    return client.post(url, json.dumps(data), content_type="application/json")


def patch(client, url, data):
    return client.patch(url, json.dumps(data), content_type="application/json")


def seat(tenant, user):
    by = Membership.objects.get(organization=tenant.organization, user=tenant.owner)
    m = Membership.objects.get(organization=tenant.organization, user=user)
    return seats.seat_assign(project=tenant.project, membership=m, by=by)


ORG = "/api/v1/orgs/acme"
PROJECT = f"{ORG}/projects/website"


# --- authentication -------------------------------------------------------------------------
def test_anonymous_gets_401_with_a_message(tenant):
    response = Client().get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_bad_token_gets_401(tenant):
    response = Client(headers={"authorization": "Bearer cpt_aaaaaaaaaaaa_" + "x" * 43}).get(
        "/api/v1/me"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert "not valid" in response.json()["message"]


def test_me_with_a_token(tenant, other_tenant):
    Membership.objects.create(organization=other_tenant.organization, user=tenant.member)
    response = with_token(tenant.member).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json() == {
        "id": tenant.member.pk,
        "email": tenant.member.email,
        "name": tenant.member.name,
        "organizations": [
            {"id": "acme", "name": "Acme", "role": "member"},
            {"id": "globex", "name": "Globex", "role": "member"},
        ],
    }


def test_projects_lists_seat_projects_and_managed_ones(tenant, other_tenant):
    assert with_token(tenant.member).get("/api/v1/projects").json() == {"projects": []}
    seat(tenant, tenant.member)
    expected = {
        "id": "website",
        "name": tenant.project.name,
        "org": {"id": "acme", "name": "Acme"},
        "developer_seat": True,
    }
    assert with_token(tenant.member).get("/api/v1/projects").json() == {"projects": [expected]}
    admin_view = with_token(tenant.admin).get("/api/v1/projects").json()
    assert admin_view == {"projects": [{**expected, "developer_seat": False}]}


# --- members --------------------------------------------------------------------------------
def test_members_list(tenant):
    response = as_user(tenant.member).get(f"{ORG}/members")
    assert response.status_code == 200
    assert sorted((m["user"]["email"], m["role"]) for m in response.json()["members"]) == sorted(
        [
            (tenant.owner.email, "owner"),
            (tenant.admin.email, "admin"),
            (tenant.member.email, "member"),
        ]
    )


def test_change_role_and_last_owner_guard(tenant):
    owner = as_user(tenant.owner)
    response = patch(owner, f"{ORG}/members/{tenant.member.pk}", {"role": "admin"})
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    response = patch(owner, f"{ORG}/members/{tenant.owner.pk}", {"role": "admin"})
    assert response.status_code == 409
    assert response.json() == {
        "message": "This is the organization's last owner: make someone else an owner first.",
        "code": "last_owner",
    }
    response = owner.delete(f"{ORG}/members/{tenant.owner.pk}")
    assert response.status_code == 409
    assert Membership.objects.get(user=tenant.owner).role == Role.OWNER


def test_bad_role_is_a_400_naming_the_field(tenant):
    response = patch(as_user(tenant.owner), f"{ORG}/members/{tenant.member.pk}", {"role": "boss"})
    assert response.status_code == 400
    assert response.json()["field"] == "role"
    assert response.json()["code"] == "invalid"
    assert Membership.objects.get(user=tenant.member).role == Role.MEMBER


def test_member_cannot_change_roles_or_remove_others(tenant):
    member = as_user(tenant.member)
    assert patch(member, f"{ORG}/members/{tenant.member.pk}", {"role": "owner"}).status_code == 403
    response = member.delete(f"{ORG}/members/{tenant.admin.pk}")
    assert response.status_code == 403
    assert Membership.objects.filter(organization=tenant.organization).count() == 3


def test_remove_member_over_the_api(tenant):
    seat(tenant, tenant.member)
    personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    access.pat_issue(user=tenant.member)
    response = as_user(tenant.admin).delete(f"{ORG}/members/{tenant.member.pk}")
    assert response.status_code == 200
    assert response.json() == {
        "removed": True,
        "seats_freed": 1,
        "environments_disabled": 1,
        "api_keys_revoked": 1,
        "tokens_revoked": 1,
    }


# --- invitations ---------------------------------------------------------------------------
def test_admin_invites_and_the_invitee_accepts_over_the_api(
    tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            as_user(tenant.admin),
            f"{ORG}/invitations",
            {"email": "dev@example.com", "role": "member"},
        )
    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["role"], body["status"]) == ("dev@example.com", "member", "open")
    assert "token" not in json.dumps(body)
    token = mail.outbox[0].body.split("token=")[1].split()[0]
    response = post(
        Client(),
        "/api/v1/invitations/accept",
        {"token": token, "password": "a sturdy passphrase 42", "name": "Dev"},
    )
    assert response.status_code == 200
    assert response.json()["organization"] == {"id": "acme"}
    assert Membership.objects.get(user__email="dev@example.com").role == Role.MEMBER
    again = post(Client(), "/api/v1/invitations/accept", {"token": token, "password": "x" * 20})
    assert again.status_code == 404
    assert again.json()["code"] == "invitation_invalid"


def test_accept_as_signed_in_user_with_a_token(tenant, outsider):
    issued = team.invitation_create(
        organization=tenant.organization,
        email=outsider.email,
        role=Role.ADMIN,
        by=Membership.objects.get(user=tenant.owner),
    )
    response = post(with_token(outsider), "/api/v1/invitations/accept", {"token": issued.token})
    assert response.status_code == 200
    assert response.json()["role"] == "admin"


def test_member_cannot_invite_or_list_invitations(tenant):
    member = as_user(tenant.member)
    response = post(member, f"{ORG}/invitations", {"email": "x@example.com", "role": "member"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert member.get(f"{ORG}/invitations").status_code == 403
    assert Invitation.objects.count() == 0


def test_revoke_and_resend(tenant, django_capture_on_commit_callbacks):
    owner = as_user(tenant.owner)
    with django_capture_on_commit_callbacks(execute=True):
        created = post(owner, f"{ORG}/invitations", {"email": "x@example.com", "role": "admin"})
        pk = created.json()["id"]
        resent = owner.post(f"{ORG}/invitations/{pk}/resend")
    assert resent.status_code == 200
    assert len(mail.outbox) == 2
    first, second = (m.body.split("token=")[1].split()[0] for m in mail.outbox)
    assert first != second
    assert team.invitation_find(token=first) is None
    revoked = owner.delete(f"{ORG}/invitations/{pk}")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert team.invitation_find(token=second) is None
    assert owner.post(f"{ORG}/invitations/{pk}/resend").status_code == 409


# --- seats ------------------------------------------------------------------------------------
def test_admin_assigns_and_frees_a_seat(tenant):
    admin = as_user(tenant.admin)
    response = post(admin, f"{PROJECT}/seats", {"email": tenant.member.email})
    assert response.status_code == 201
    assert response.json()["user"]["email"] == tenant.member.email
    listed = as_user(tenant.member).get(f"{PROJECT}/seats").json()["seats"]
    assert [s["user"]["id"] for s in listed] == [tenant.member.pk]
    assert admin.delete(f"{PROJECT}/seats/{tenant.member.pk}").status_code == 200
    assert admin.delete(f"{PROJECT}/seats/{tenant.member.pk}").status_code == 404
    assert DeveloperSeat.objects.filter(freed_at=None).count() == 0


def test_member_cannot_assign_seats(tenant):
    response = post(as_user(tenant.member), f"{PROJECT}/seats", {"user": tenant.member.pk})
    assert response.status_code == 403
    assert DeveloperSeat.objects.count() == 0


def test_seat_limit_block_message_over_the_api(tenant):
    tenant.organization.contracts.update(developer_seats=1, developer_seats_overage="block")
    owner = as_user(tenant.owner)
    assert post(owner, f"{PROJECT}/seats", {"user": tenant.member.pk}).status_code == 201
    response = post(owner, f"{PROJECT}/seats", {"user": tenant.admin.pk})
    assert response.status_code == 409
    assert response.json() == {
        "message": "Developer seat limit reached: your contract allows 1 developer seats and "
        "1 are in use. Free a seat or ask us to raise the limit.",
        "code": "developer_seat_limit",
    }
    assert DeveloperSeat.objects.count() == 1


def test_seat_for_a_non_member_is_404(tenant, outsider):
    response = post(as_user(tenant.owner), f"{PROJECT}/seats", {"user": outsider.pk})
    assert response.status_code == 404
    assert DeveloperSeat.objects.count() == 0


# --- personal environments ----------------------------------------------------------------------
def test_seat_holder_gets_and_rotates_a_personal_environment_with_a_token(tenant, settings):
    settings.PUBLIC_URL = "https://cp.example.com"
    seat(tenant, tenant.member)
    client = with_token(tenant.member)
    first = post(client, f"{PROJECT}/personal-environments", {"name": "dev"})
    assert first.status_code == 201
    body = first.json()
    env = Environment.objects.get(kind=EnvironmentKind.PERSONAL)
    assert body["WCP_API_URL"] == "https://cp.example.com"
    assert (body["id"], body["name"], body["new"]) == (str(env.pk), "dev", True)
    assert json.loads(base64.b64decode(body["WCP_PROJECT_ENVIRONMENT"])) == {
        "id": str(env.pk),
        "apiKey": body["api_key"],
        "org": {"id": "acme"},
        "project": {"id": "website"},
    }
    second = post(client, f"{PROJECT}/personal-environments", {"name": "dev"})
    assert second.status_code == 200
    assert second.json()["new"] is False
    assert second.json()["api_key"] != body["api_key"]
    listed = client.get(f"{PROJECT}/personal-environments").json()["environments"]
    assert [e["name"] for e in listed] == ["dev"]


def test_wcp_api_url_defaults_to_the_request(tenant, settings):
    settings.PUBLIC_URL = ""
    seat(tenant, tenant.member)
    response = post(as_user(tenant.member), f"{PROJECT}/personal-environments", {"name": "dev"})
    assert response.json()["WCP_API_URL"] == "http://testserver"


def test_token_of_a_user_without_a_seat_gets_no_personal_environment(tenant):
    response = post(with_token(tenant.admin), f"{PROJECT}/personal-environments", {"name": "dev"})
    assert response.status_code == 403
    assert response.json()["code"] == "no_developer_seat"
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 0


# --- tokens -----------------------------------------------------------------------------------
def test_create_list_and_revoke_tokens(tenant):
    client = as_user(tenant.member)
    created = post(client, "/api/v1/tokens", {"name": "ci", "expires_in_days": 7})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("cpt_")
    listed = client.get("/api/v1/tokens").json()["tokens"]
    assert [t["name"] for t in listed] == ["ci"]
    assert "token" not in listed[0]
    pk = created.json()["id"]
    assert client.delete(f"/api/v1/tokens/{pk}").status_code == 200
    response = Client(headers={"authorization": f"Bearer {token}"}).get("/api/v1/me")
    assert response.status_code == 401


# --- isolation: another organization's things are 404 -------------------------------------------
@pytest.fixture
def acme_things(tenant):
    """One of everything in acme: an invitation, a seat, a personal environment, a token."""
    issued = team.invitation_create(
        organization=tenant.organization,
        email="invitee@example.com",
        role=Role.MEMBER,
        by=Membership.objects.get(user=tenant.owner),
    )
    seat(tenant, tenant.member)
    personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    token = access.pat_issue(user=tenant.member).token
    return {"invitation": issued.invitation, "token": token}


def org_requests(tenant, things):
    member = tenant.member.pk
    inv = things["invitation"].pk
    return [
        ("get", f"{ORG}/members", None),
        ("patch", f"{ORG}/members/{member}", {"role": "owner"}),
        ("delete", f"{ORG}/members/{member}", None),
        ("get", f"{ORG}/invitations", None),
        ("post", f"{ORG}/invitations", {"email": "x@example.com", "role": "owner"}),
        ("delete", f"{ORG}/invitations/{inv}", None),
        ("post", f"{ORG}/invitations/{inv}/resend", None),
        ("get", f"{PROJECT}/seats", None),
        ("post", f"{PROJECT}/seats", {"user": member}),
        ("delete", f"{PROJECT}/seats/{member}", None),
        ("get", f"{PROJECT}/personal-environments", None),
        ("post", f"{PROJECT}/personal-environments", {"name": "dev"}),
    ]


def call(client, method, url, data):
    if data is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, json.dumps(data), content_type="application/json")


def snapshot():
    return (
        list(Membership.objects.order_by("pk").values_list("pk", "role")),
        list(Invitation.objects.order_by("pk").values_list("pk", "revoked_at", "token_digest")),
        list(DeveloperSeat.objects.order_by("pk").values_list("pk", "freed_at")),
        list(Environment.objects.order_by("pk").values_list("pk", "status")),
        list(PersonalAccessToken.objects.order_by("pk").values_list("pk", "revoked_at")),
    )


@pytest.mark.parametrize("who", ["outsider", "other_owner", "staff"])
def test_other_organizations_and_outsiders_get_404_on_everything(
    tenant, other_tenant, outsider, staff_user, acme_things, who
):
    user = {"outsider": outsider, "other_owner": other_tenant.owner, "staff": staff_user}[who]
    clients = (as_user(user), with_token(user))
    before = snapshot()
    for client in clients:
        for method, url, data in org_requests(tenant, acme_things):
            response = call(client, method, url, data)
            assert (method, url, response.status_code) == (method, url, 404)
            assert response.json() == {"message": "Not found.", "code": "not_found"}
        token_id = acme_things["token"].pk
        assert client.delete(f"/api/v1/tokens/{token_id}").status_code == 404
        projects = client.get("/api/v1/projects").json()["projects"]
        assert "acme" not in {p["org"]["id"] for p in projects}
    assert snapshot() == before


def test_another_organizations_project_is_404_even_for_a_member_here(tenant, other_tenant):
    seat(tenant, tenant.member)
    response = post(
        as_user(tenant.member),
        "/api/v1/orgs/acme/projects/" + other_tenant.project.slug + "x/personal-environments",
        {"name": "dev"},
    )
    assert response.status_code == 404
    response = post(
        as_user(tenant.member),
        "/api/v1/orgs/globex/projects/website/personal-environments",
        {"name": "dev"},
    )
    assert response.status_code == 404
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 0
