"""The staff admin: every page loads for staff, none for customers."""

import pytest
from django.urls import reverse

from accounts.models import (
    ApiKey,
    Contract,
    Environment,
    Invitation,
    Membership,
    Organization,
    Project,
    User,
)
from accounts.selectors.api_keys import KeyProblem, api_key_check

pytestmark = pytest.mark.django_db

MODELS = [User, Organization, Membership, Invitation, Contract, Project, Environment, ApiKey]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_load_for_staff(client, staff_user, tenant, model):
    client.force_login(staff_user)
    response = client.get(_url(model, "changelist"), {"q": "acme"})
    assert response.status_code == 200
    obj = model.objects.first()
    if obj is not None:
        assert client.get(_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_is_refused_to_customers(client, tenant, model):
    client.force_login(tenant.owner)
    response = client.get(_url(model, "changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_api_keys_are_shown_by_prefix_and_last_four_only(client, staff_user, tenant):
    client.force_login(staff_user)
    api_key = ApiKey.objects.get(environment=tenant.production)
    page = client.get(_url(ApiKey, "changelist")).content.decode()
    assert f"cpk_{api_key.prefix}_…{api_key.last_four}" in page
    assert api_key.digest not in page
    assert tenant.api_key not in page
    change = client.get(_url(ApiKey, "change", api_key.pk)).content.decode()
    assert api_key.digest not in change


def test_staff_can_revoke_keys_with_the_admin_action(client, staff_user, tenant):
    client.force_login(staff_user)
    api_key = ApiKey.objects.get(environment=tenant.production)
    response = client.post(
        _url(ApiKey, "changelist"),
        {
            "action": "revoke",
            "_selected_action": [api_key.pk],
            "apply_reason": "1",
            "reason": "leaked in a build log",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert api_key_check(tenant.api_key).problem is KeyProblem.REVOKED


def test_production_environment_has_no_delete_in_admin(client, staff_user, tenant):
    client.force_login(staff_user)
    response = client.get(_url(Environment, "delete", tenant.production.pk))
    assert response.status_code == 403
    assert Environment.objects.filter(pk=tenant.production.pk).exists()


def test_organization_search_finds_by_member_email(client, staff_user, tenant, other_tenant):
    client.force_login(staff_user)
    response = client.get(_url(Organization, "changelist"), {"q": tenant.member.email})
    assert list(response.context["cl"].result_list) == [tenant.organization]
