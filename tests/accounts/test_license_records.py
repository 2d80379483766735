"""Issued-license records: who can see them (members of the organization only) and how
staff revoke them in the admin."""

from __future__ import annotations

from accounts.models import License
from tests.accounts.licensing_support import decode_payload, fetch, license_url


def test_members_see_their_organizations_licenses(client, tenant, other_tenant):
    token = fetch(client, license_url(tenant), tenant.api_key).json()["token"]
    fetch(client, license_url(other_tenant), other_tenant.api_key)
    client.force_login(tenant.member)

    response = client.get("/api/v1/orgs/acme/licenses")

    assert response.status_code == 200
    (row,) = response.json()["licenses"]
    record = License.objects.get(organization=tenant.organization)
    assert row == {
        "jti": decode_payload(token)["jti"],
        "kind": "project",
        "subject": "acme/website",
        "project": "website",
        "environment": str(tenant.production.pk),
        "kid": record.signing_key.kid,
        "issued_at": record.issued_at.isoformat().replace("+00:00", "Z"),
        "expires_at": record.expires_at.isoformat().replace("+00:00", "Z"),
        "revoked_at": None,
    }


def test_another_organizations_licenses_are_404(client, tenant, other_tenant):
    fetch(client, license_url(tenant), tenant.api_key)
    client.force_login(other_tenant.owner)

    response = client.get("/api/v1/orgs/acme/licenses")

    assert response.status_code == 404
    assert response.json() == {"message": "Not found.", "code": "not_found"}


def test_outsider_gets_404_and_anonymous_is_refused(client, tenant, outsider):
    fetch(client, license_url(tenant), tenant.api_key)

    assert client.get("/api/v1/orgs/acme/licenses").status_code == 401
    client.force_login(outsider)
    assert client.get("/api/v1/orgs/acme/licenses").status_code == 404


def test_staff_revoke_in_the_admin(client, tenant, staff_user):
    fetch(client, license_url(tenant), tenant.api_key)
    record = License.objects.get()
    client.force_login(staff_user)

    page = client.get(f"/admin/accounts/license/{record.pk}/change/")
    assert page.status_code == 200
    asked = client.post(
        "/admin/accounts/license/", {"action": "revoke", "_selected_action": [record.pk]}
    )
    assert asked.status_code == 200 and b'name="reason"' in asked.content  # why, first
    record.refresh_from_db()
    assert record.revoked_at is None
    response = client.post(
        "/admin/accounts/license/",
        {
            "action": "revoke",
            "_selected_action": [record.pk],
            "apply_reason": "1",
            "reason": "contract cancelled",
        },
    )

    assert response.status_code == 302
    record.refresh_from_db()
    assert record.revoked_at is not None
    assert record.revoked_by == staff_user
    assert client.get("/admin/accounts/signingkey/").status_code == 200


def test_admin_cannot_add_or_delete_licenses(client, tenant, staff_user):
    client.force_login(staff_user)

    assert client.get("/admin/accounts/license/add/").status_code == 403
    assert client.get("/admin/accounts/signingkey/add/").status_code == 403
