"""`/api/v1/orgs/<org_slug>/webhooks`: owners and admins manage their endpoints."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from metering.compliance import webhooks
from metering.compliance.models import WebhookEndpoint

pytestmark = pytest.mark.django_db
URL = "/api/v1/orgs/acme/webhooks"


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def test_owner_creates_an_endpoint_and_sees_the_secret_once(tenant):
    client = client_for(tenant.owner)
    response = client.post(
        URL, {"url": "https://hooks.acme.example/cp", "description": "billing"}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    secret = body.pop("secret")
    assert secret.startswith("whsec_") and len(secret) == 49
    endpoint = WebhookEndpoint.objects.get()
    assert body == {
        "id": endpoint.id,
        "url": "https://hooks.acme.example/cp",
        "description": "billing",
        "is_active": True,
        "secret_last_four": secret[-4:],
        "created_at": endpoint.created_at.isoformat(),
    }
    assert webhooks.decrypt_secret(endpoint.secret_encrypted) == secret
    assert endpoint.created_by == tenant.owner
    listed = client.get(URL).json()
    assert listed == {"webhooks": [body]}
    assert secret not in str(listed)
    assert client.get(f"{URL}/{endpoint.id}").json() == body


def test_admin_deletes_an_endpoint(tenant):
    client = client_for(tenant.admin)
    created = client.post(URL, {"url": "https://hooks.acme.example/a"}, format="json").json()
    assert client.delete(f"{URL}/{created['id']}").status_code == 204
    assert WebhookEndpoint.objects.count() == 0
    assert client.delete(f"{URL}/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "missing_url", "url"),
        ({"url": "not a url"}, "invalid_url", "url"),
        ({"url": "http://hooks.acme.example/x"}, "insecure_url", "url"),
        ({"url": "https://127.0.0.1:6379/"}, "internal_url", "url"),
        ({"url": "https://10.1.2.3/hook"}, "internal_url", "url"),
        ({"url": "https://[::1]/hook"}, "internal_url", "url"),
        ({"url": "https://169.254.169.254/latest"}, "internal_url", "url"),
        ({"url": "https://localhost/hook"}, "internal_url", "url"),
        ({"url": "https://h.example/x", "secret": "mine"}, "unknown_field", "secret"),
        ({"url": "https://h.example/x", "description": 5}, "invalid_description", "description"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(tenant, body, code, field):
    response = client_for(tenant.owner).post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["field"] == field
    assert response.json()["message"]
    assert WebhookEndpoint.objects.count() == 0


def test_a_duplicate_url_is_refused(tenant):
    client = client_for(tenant.owner)
    client.post(URL, {"url": "https://h.example/x"}, format="json")
    response = client.post(URL, {"url": "https://h.example/x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "duplicate_url")
    assert WebhookEndpoint.objects.count() == 1


def test_a_member_is_forbidden_and_writes_nothing(tenant):
    client = client_for(tenant.member)
    assert client.get(URL).status_code == 403
    response = client.post(URL, {"url": "https://h.example/x"}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "message": "Only owners and admins can manage webhooks.",
        "code": "permission_denied",
    }
    assert WebhookEndpoint.objects.count() == 0


def test_other_organizations_and_outsiders_get_404(tenant, other_tenant, outsider):
    endpoint = client_for(tenant.owner).post(URL, {"url": "https://h.example/x"}, format="json")
    endpoint_id = endpoint.json()["id"]
    for user in (other_tenant.owner, outsider):
        client = client_for(user)
        assert client.get(URL).status_code == 404
        assert client.post(URL, {"url": "https://h.example/y"}, format="json").status_code == 404
        assert client.delete(f"{URL}/{endpoint_id}").status_code == 404
    # globex's owner cannot reach acme's endpoint through globex's own URL either.
    other = client_for(other_tenant.owner)
    assert other.delete(f"/api/v1/orgs/globex/webhooks/{endpoint_id}").status_code == 404
    assert other.get("/api/v1/orgs/globex/webhooks").json() == {"webhooks": []}
    assert WebhookEndpoint.objects.count() == 1


def test_anonymous_is_refused(tenant):
    response = client_for(None).get(URL)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert client_for(None).post(URL, {"url": "https://h.example/x"}).status_code == 401
    assert WebhookEndpoint.objects.count() == 0


def test_a_personal_access_token_works_like_a_session(tenant, other_tenant):
    from accounts.services.access import pat_issue

    token = pat_issue(user=tenant.owner).plaintext
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    created = client.post(URL, {"url": "https://h.example/pat"}, format="json")
    assert created.status_code == 201
    assert client.get(URL).json()["webhooks"][0]["url"] == "https://h.example/pat"
    assert client.get("/api/v1/orgs/globex/webhooks").status_code == 404


def test_at_most_ten_endpoints_per_organization(tenant):
    client = client_for(tenant.owner)
    for i in range(10):
        assert client.post(URL, {"url": f"https://h.example/{i}"}, format="json").status_code == 201
    response = client.post(URL, {"url": "https://h.example/11"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "too_many_endpoints")
    assert WebhookEndpoint.objects.count() == 10
