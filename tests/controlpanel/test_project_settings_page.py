"""`{WCP_APP_URL}/{orgId}/{projectId}/settings`, where the CMS sends a person whose license
lacks a feature: what the license allows and whom to ask; members only."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Contract
from tests.conftest import make_tenant

pytestmark = pytest.mark.django_db


def page(user, path="/acme/website/settings"):
    browser = Client()
    if user is not None:
        browser.force_login(user)
    return browser.get(path)


def test_a_member_sees_the_license_and_whom_to_ask():
    tenant = make_tenant(
        "acme",
        plan="business",
        seats_per_environment=10,
        audit_logs=True,
        record_locking=False,
    )
    tenant.owner.name = "Olga Owner"
    tenant.owner.save()
    response = page(tenant.member)
    assert response.status_code == 200
    html = response.content.decode()
    assert "The license of this project comes from the <strong>business</strong> contract" in html
    assert "<li>Audit logs: included</li>" in html
    assert "<li>Record locking: <strong>not included</strong></li>" in html
    assert "<dt>CMS users (seats) per environment</dt><dd>10</dd>" in html
    assert "<dt>API calls per billing period</dt><dd>1,000,000</dd>" in html
    owner_at = html.index(f"Olga Owner &lt;{tenant.owner.email}&gt; (owner)")
    assert owner_at < html.index(f"&lt;{tenant.admin.email}&gt; (admin)")
    assert f"&lt;{tenant.member.email}&gt;" not in html


def test_without_an_active_contract_the_page_says_so():
    tenant = make_tenant("acme")
    Contract.objects.filter(organization=tenant.organization).update(status="ended")
    html = page(tenant.member).content.decode()
    assert "<strong>Acme has no active contract</strong>" in html


def test_outsiders_and_unknown_projects_get_404_signed_out_users_the_sign_in(outsider):
    tenant = make_tenant("acme")
    other = make_tenant("globex")
    assert page(outsider).status_code == 404
    assert page(other.owner).status_code == 404
    assert page(tenant.member, "/acme/nope/settings").status_code == 404
    signed_out = page(None)
    assert (signed_out.status_code, signed_out["Location"]) == (
        302,
        "/login/?next=/acme/website/settings",
    )
