"""The invitation link's page: sign up, or accept as the signed-in invitee."""

import pytest
from django.test import Client

from accounts.models import Membership, Role, User
from accounts.services import team
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def invite(tenant, email="new@example.com"):
    return team.invitation_create(
        organization=tenant.organization,
        email=email,
        role=Role.ADMIN,
        by=Membership.objects.get(user=tenant.owner),
    )


def test_new_person_signs_up_through_the_link(tenant):
    issued = invite(tenant)
    client = Client()
    page = client.get(f"/invitations/accept?token={issued.token}")
    assert page.status_code == 200
    assert "Create my account" in page.content.decode()
    response = client.post(
        f"/invitations/accept?token={issued.token}",
        {
            "name": "Nova",
            "password": "a sturdy passphrase 42",
            "password2": "a sturdy passphrase 42",
        },
    )
    assert response.status_code == 200
    user = User.objects.get(email="new@example.com")
    assert Membership.objects.get(user=user).role == Role.ADMIN
    assert client.get("/api/v1/me").json()["email"] == "new@example.com"


def test_mismatched_passwords_write_nothing(tenant):
    issued = invite(tenant)
    response = Client().post(
        f"/invitations/accept?token={issued.token}",
        {"password": "a sturdy passphrase 42", "password2": "another"},
    )
    assert response.status_code == 400
    assert "differ" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()


def test_existing_account_is_asked_to_sign_in_then_accepts(tenant):
    invited = UserFactory(email="new@example.com")
    issued = invite(tenant)
    page = Client().get(f"/invitations/accept?token={issued.token}")
    assert "Sign in" in page.content.decode()
    client = Client()
    client.force_login(invited)
    assert client.post(f"/invitations/accept?token={issued.token}").status_code == 200
    assert Membership.objects.get(user=invited).role == Role.ADMIN


def test_signed_in_as_someone_else_cannot_accept(tenant, outsider):
    issued = invite(tenant)
    client = Client()
    client.force_login(outsider)
    assert (
        "this invitation is for new@example.com"
        in client.get(f"/invitations/accept?token={issued.token}").content.decode()
    )
    assert client.post(f"/invitations/accept?token={issued.token}").status_code == 403
    assert not Membership.objects.filter(user=outsider).exists()


def test_invalid_link(tenant):
    response = Client().get("/invitations/accept?token=cpi_nothing")
    assert response.status_code == 404
