"""`PUBLIC_URL` unset: every URL the product hands out is built on the request's own
scheme, host and port; set, with or without a trailing slash, it is used as it is."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Membership
from accounts.services import access, seats

pytestmark = pytest.mark.django_db

HOST = "cp.internal:8443"


@pytest.fixture
def developer(tenant):
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    return access.pat_issue(user=tenant.member).plaintext


def client(token: str | None = None) -> Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return Client(HTTP_HOST=HOST, headers=headers)


@pytest.mark.parametrize(
    ("public_url", "base"),
    [("", f"http://{HOST}"), ("https://cp.example.com/", "https://cp.example.com")],
)
def test_handed_out_urls(
    public_url, base, settings, tenant, developer, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["cp.internal"]
    settings.PUBLIC_URL = public_url
    environment = client(developer).post(
        "/api/v1/orgs/acme/projects/website/personal-environments",
        {"name": "dev"},
        content_type="application/json",
    )
    assert environment.json()["WCP_API_URL"] == base

    session = client().post("/api/v1/cli/sessions", {}, content_type="application/json")
    assert session.json()["login_url"].startswith(f"{base}/login/cli?pat=clp_")

    owner = Client(HTTP_HOST=HOST)
    owner.force_login(tenant.owner)
    with django_capture_on_commit_callbacks(execute=True):
        invited = owner.post(
            "/api/v1/orgs/acme/invitations",
            {"email": "new@acme.test", "role": "member"},
            content_type="application/json",
        )
    assert invited.status_code == 201
    assert f"{base}/invitations/accept?token=cpi_" in mail.outbox[-1].body

    telemetry_client = client().get("/clients/latest.js").content.decode()
    assert f'const SERVED_BY = "{base}";' in telemetry_client


def test_the_license_issuer_is_an_identifier_without_public_url():
    from django.conf import settings

    # The test settings leave PUBLIC_URL unset (as the README's default).
    assert settings.LICENSE_ISSUER == "control-panel"
