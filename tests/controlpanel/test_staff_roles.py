"""Staff roles over HTTP: what Support and Billing can and cannot do in the admin, and that
nobody but staff reaches it."""

from __future__ import annotations

import pytest
import time_machine
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from accounts.licensing import services as licensing_services
from accounts.models import AuditEvent, Contract, License, Organization, PlanTemplate
from metering.compliance.models import OverageFlag
from tests.controlpanel.console_scene import NOW, build_scene

pytestmark = pytest.mark.django_db


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def scene():
    with time_machine.travel(NOW, tick=False):
        yield build_scene()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _action(client, model, action, ids, reason="checked with the customer"):
    return client.post(
        _url(model, "changelist"),
        {"action": action, "_selected_action": ids, "apply_reason": "1", "reason": reason},
    )


REGISTERED = sorted(
    (m for m in apps.get_models() if admin.site.is_registered(m) and m._meta.app_label != "auth"),
    key=lambda m: m._meta.label,
)


# --- who reaches the admin -----------------------------------------------------------------
def test_customers_and_anonymous_visitors_are_sent_to_the_staff_login(client, scene):
    login = reverse("admin:login")
    for user in (None, scene.tenant.owner, scene.tenant.member):
        client.logout()
        if user is not None:
            client.force_login(user)
        for url in (reverse("admin:index"), _url(Organization, "changelist")):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(login)


def test_staff_in_no_group_see_an_empty_console(client, scene, clock):
    client.force_login(scene.plain_staff)
    assert client.get(reverse("admin:index")).context["app_list"] == []
    assert client.get(_url(Organization, "changelist")).status_code == 403


# --- Support ------------------------------------------------------------------------------
def test_support_reads_every_list_and_adds_or_deletes_nothing(client, scene, clock):
    client.force_login(scene.support)
    statuses = {m._meta.label: client.get(_url(m, "changelist")).status_code for m in REGISTERED}
    assert set(statuses.values()) == {200}, statuses
    index = client.get(reverse("admin:index")).context["app_list"]
    rights = {
        (m["object_name"], k)
        for a in index
        for m in a["models"]
        for k, v in m["perms"].items()
        if v
    }
    assert {k for _, k in rights} == {"view"}


def test_support_acknowledges_flags_with_a_reason_but_cannot_resolve_or_waive(client, scene, clock):
    client.force_login(scene.support)
    flag = OverageFlag.objects.filter(organization__slug="acme", metric="api_calls").get()
    page = client.get(_url(OverageFlag, "changelist"))
    offered = {name for name, _ in page.context["action_form"].fields["action"].choices}
    assert offered == {"", "acknowledge"}

    for action in ("resolve", "waive"):
        _action(client, OverageFlag, action, [flag.pk])
    flag.refresh_from_db()
    assert (flag.resolved_at, flag.waived_at) == (None, None)

    response = _action(client, OverageFlag, "acknowledge", [flag.pk], "customer ran a load test")
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.acknowledged_by == scene.support
    event = AuditEvent.objects.get(kind="flag.acknowledged")
    assert (event.actor_kind, event.actor_label, event.reason, event.organization_label) == (
        "staff",
        "support@vendor.example",
        "customer ran a load test",
        "acme",
    )


def test_support_cannot_add_or_change_contracts(client, scene, clock):
    client.force_login(scene.support)
    contract = Contract.objects.get(organization__slug="acme")
    assert client.get(_url(Contract, "add")).status_code == 403
    response = client.post(_url(Contract, "change", contract.pk), {"plan": "free"})
    assert response.status_code == 403
    contract.refresh_from_db()
    assert contract.plan == "business"


def test_support_cannot_revoke_licenses(client, scene, clock):
    record = _a_license(scene)
    client.force_login(scene.support)
    _action(client, License, "revoke", [record.pk])
    record.refresh_from_db()
    assert record.revoked_at is None


# --- Billing ------------------------------------------------------------------------------
def test_billing_resolves_and_waives_flags_recording_why(client, scene, clock):
    client.force_login(scene.billing)
    calls = OverageFlag.objects.get(organization__slug="acme", metric="api_calls")
    seats = OverageFlag.objects.get(organization__slug="acme", metric="seats", level="exceeded")
    assert _action(client, OverageFlag, "waive", [calls.pk], "goodwill, renewal").status_code == 302
    assert _action(client, OverageFlag, "resolve", [seats.pk], "seats freed").status_code == 302
    calls.refresh_from_db()
    seats.refresh_from_db()
    assert (calls.waived_by, calls.resolved_at) == (scene.billing, None)
    assert (seats.resolved_by, seats.resolved_at) == (scene.billing, NOW)
    assert sorted(
        AuditEvent.objects.filter(kind__startswith="flag.").values_list("kind", "reason")
    ) == [("flag.resolved", "seats freed"), ("flag.waived", "goodwill, renewal")]


def test_billing_adds_a_contract_and_the_audit_trail_says_so(client, scene, clock):
    client.force_login(scene.billing)
    globex = Organization.objects.get(slug="globex")
    template = PlanTemplate.objects.get()
    form = client.get(_url(Contract, "add"), {"template": template.pk}).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: v for k, v in data.items() if v is not None}
    data.update(
        organization=globex.pk, status="active", starts_on="2027-03-01", ends_on="2028-03-01"
    )
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    response = client.post(_url(Contract, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    contract = Contract.objects.get(organization=globex, starts_on="2027-03-01")
    assert (contract.plan, contract.api_calls_per_period) == ("Growth", 1_000_000)
    event = AuditEvent.objects.get(kind="contract.created")
    assert (event.actor_label, event.target_id) == ("billing@vendor.example", str(contract.pk))


def test_billing_revokes_a_license_with_a_reason(client, scene, clock):
    record = _a_license(scene)
    client.force_login(scene.billing)
    _action(client, License, "revoke", [record.pk], "chargeback")
    record.refresh_from_db()
    assert (record.revoked_by, record.revoked_at) == (scene.billing, NOW)
    assert AuditEvent.objects.get(kind="license.revoked", target_id=str(record.pk)).reason == (
        "chargeback"
    )


def test_billing_deletes_nothing(client, scene, clock):
    client.force_login(scene.billing)
    contract = Contract.objects.get(organization__slug="acme")
    assert client.get(_url(Contract, "delete", contract.pk)).status_code == 403
    assert client.get(_url(Organization, "delete", contract.organization_id)).status_code == 403


def _a_license(scene) -> License:
    contract = Contract.objects.get(organization__slug="acme")
    issued = licensing_services.license_issue(
        environment=scene.tenant.production, contract=contract
    )
    return issued.record
