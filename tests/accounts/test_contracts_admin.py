"""Contracts: never two active ones over the same days (form and database), plan templates
to start from, history kept once there is usage."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Contract, ContractStatus, PlanTemplate
from accounts.services.organizations import contract_activate
from tests.factories import ContractFactory, OrganizationFactory
from tests.metering.compliance.usage import add_calls

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
ADD = reverse("admin:accounts_contract_add")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _form_data(organization, starts_on: str, ends_on: str, **extra) -> dict:
    data = {
        "organization": organization.pk,
        "plan": "business",
        "status": "active",
        "starts_on": starts_on,
        "ends_on": ends_on,
        "tenants_type": "fixed",
        "nonprod_daily_api_calls": "5000",
        "api_calls_overage": "allow",
        "seats_overage": "block",
        "tenants_overage": "block",
        "developer_seats_overage": "allow",
        "nonprod_daily_api_calls_overage": "allow",
    }
    return {**data, **extra}


def test_the_database_refuses_overlapping_active_contracts_and_allows_a_renewal():
    current = ContractFactory(starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2027, 1, 1))
    organization = current.organization
    with pytest.raises(IntegrityError), transaction.atomic():
        ContractFactory(
            organization=organization, starts_on=dt.date(2026, 12, 31), ends_on=dt.date(2027, 6, 1)
        )
    renewal = ContractFactory(
        organization=organization, starts_on=dt.date(2027, 1, 1), ends_on=dt.date(2028, 1, 1)
    )
    ended = ContractFactory(
        organization=organization,
        status=ContractStatus.ENDED,
        starts_on=dt.date(2026, 6, 1),
        ends_on=dt.date(2026, 9, 1),
    )
    other = ContractFactory(starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2027, 1, 1))
    assert {c.pk for c in Contract.objects.all()} == {current.pk, renewal.pk, ended.pk, other.pk}


def test_the_admin_form_names_the_overlap_and_saves_nothing(client, staff_user):
    current = ContractFactory(starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2027, 1, 1))
    client.force_login(staff_user)
    response = client.post(ADD, _form_data(current.organization, "2026-12-01", "2027-12-01"))
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "This organization already has an active contract covering some of these days: "
        "end it, shorten it, or start this one after it ends."
    ]
    assert Contract.objects.count() == 1
    response = client.post(ADD, _form_data(current.organization, "2027-01-01", "2028-01-01"))
    assert response.status_code == 302
    assert Contract.objects.filter(organization=current.organization).count() == 2


def test_activation_supersedes_only_the_contracts_it_overlaps():
    organization = OrganizationFactory()
    current = ContractFactory(
        organization=organization, starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2027, 1, 1)
    )
    scheduled = ContractFactory(
        organization=organization, starts_on=dt.date(2027, 1, 1), ends_on=dt.date(2028, 1, 1)
    )
    replacement = contract_activate(
        organization=organization,
        plan="enterprise",
        starts_on=dt.date(2026, 11, 24),
        ends_on=dt.date(2027, 1, 1),
    )
    statuses = dict(Contract.objects.values_list("pk", "status"))
    assert statuses == {
        current.pk: ContractStatus.SUPERSEDED,
        scheduled.pk: ContractStatus.ACTIVE,
        replacement.pk: ContractStatus.ACTIVE,
    }


def test_a_plan_template_fills_the_new_contract(client, staff_user):
    template = PlanTemplate.objects.create(
        name="Scale", months=6, api_calls_per_period=5_000_000, developer_seats=20, audit_logs=True
    )
    client.force_login(staff_user)
    initial = client.get(ADD, {"template": template.pk}).context["adminform"].form.initial
    assert {k: initial[k] for k in ("plan", "starts_on", "ends_on", "api_calls_per_period")} == {
        "plan": "Scale",
        "starts_on": dt.date(2026, 11, 24),
        "ends_on": dt.date(2027, 5, 24),
        "api_calls_per_period": 5_000_000,
    }
    assert (initial["developer_seats"], initial["audit_logs"]) == (20, True)
    links = client.get(reverse("admin:accounts_plantemplate_changelist")).content.decode()
    assert f"{ADD}?template={template.pk}" in links


def test_a_contract_with_usage_cannot_be_deleted_one_without_can(client, staff_user, tenant):
    used = tenant.organization.contracts.get()
    add_calls(tenant.production, NOW, 10)
    unused = ContractFactory(status=ContractStatus.ENDED)
    client.force_login(staff_user)
    assert client.get(reverse("admin:accounts_contract_delete", args=[used.pk])).status_code == 403
    response = client.post(
        reverse("admin:accounts_contract_delete", args=[unused.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert list(Contract.objects.values_list("pk", flat=True)) == [used.pk]
    # No bulk delete (it would skip the check): the list has no actions at all.
    assert client.get(reverse("admin:accounts_contract_changelist")).context["action_form"] is None


def test_contracts_ending_within_30_days_are_one_click_from_home(client, staff_user):
    soon = ContractFactory(starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2026, 12, 20))
    ContractFactory(starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2027, 1, 20))
    client.force_login(staff_user)
    home = client.get(reverse("admin:index"))
    assert home.context["attention"].ending == 1
    assert b"/admin/accounts/contract/?ending=30" in home.content
    listed = client.get(reverse("admin:accounts_contract_changelist"), {"ending": "30"})
    assert list(listed.context["cl"].result_list) == [soon]
