"""`{WCP_APP_URL}/{orgId}/{projectId}/settings`, where the CMS sends a person whose license
lacks a feature: it leads to the project's license (what it allows, whom to ask); members
only."""

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
    return browser.get(path, follow=user is not None)


def test_a_member_sees_the_license_and_whom_to_ask():
    tenant = make_tenant("acme", plan="business", audit_logs=True, record_locking=False)
    tenant.owner.name = "Olga Owner"
    tenant.owner.save()
    response = page(tenant.member)
    assert response.redirect_chain == [("/acme/projects/website/#license", 302)]
    html = response.content.decode()
    assert "from the business contract" in html
    audit_logs = html[html.index('data-feature="auditLogs"') :]
    assert audit_logs.index("Yes") < audit_logs.index("</tr>")
    record_locking = html[html.index('data-feature="recordLocking"') :]
    assert record_locking.index("No") < record_locking.index("</tr>")
    ask = html[html.index('id="whom-to-ask"') :]
    owner_at = ask.index(f'Olga Owner &lt;<a href="mailto:{tenant.owner.email}">')
    assert owner_at < ask.index(f"{tenant.admin.email}</a>&gt; (admin)")
    assert tenant.member.email not in ask[: ask.index("</ul>")]


def test_without_an_active_contract_the_page_says_so():
    tenant = make_tenant("acme")
    Contract.objects.filter(organization=tenant.organization).update(status="ended")
    html = page(tenant.member).content.decode()
    assert "No contract in force" in html
    assert "no license can be issued" in html


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
