"""The staff admin pages of compliance load, and triage works."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from metering.compliance import evaluation, notifications
from metering.compliance.models import (
    Notification,
    OverageFlag,
    TrueUp,
    WebhookEndpoint,
)
from metering.compliance.services import webhook_endpoint_create
from tests.conftest import make_tenant
from tests.metering.compliance.usage import add_calls

pytestmark = pytest.mark.django_db
MODELS = [OverageFlag, Notification, TrueUp, WebhookEndpoint]
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def flagged():
    with time_machine.travel(NOW, tick=False):
        t = make_tenant("acme", starts_on=dt.date(2026, 1, 15), ends_on=dt.date(2027, 1, 15))
        webhook_endpoint_create(
            organization=t.organization, url="https://h.example/x", created_by=None
        )
        add_calls(t.production, NOW, 900_000)
        evaluation.evaluate()
        notifications.fan_out()
        TrueUp.objects.create(
            contract=t.organization.contracts.get(),
            organization=t.organization,
            metric="api_calls",
            period_start=NOW,
            period_end=NOW,
            usage=1,
            limit=1,
            peak=1,
            overage=0,
        )
    return t


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_pages_load_for_staff_and_not_for_customers(client, staff_user, flagged, model):
    client.force_login(staff_user)
    assert client.get(_url(model, "changelist"), {"q": "acme"}).status_code == 200
    assert client.get(_url(model, "change", model.objects.first().pk)).status_code == 200
    client.force_login(flagged.owner)
    assert client.get(_url(model, "changelist")).status_code == 302


def test_staff_acknowledge_flags(client, staff_user, flagged):
    client.force_login(staff_user)
    flag = OverageFlag.objects.get()
    response = client.post(
        _url(OverageFlag, "changelist"),
        {
            "action": "acknowledge",
            "_selected_action": [flag.pk],
            "apply_reason": "1",
            "reason": "customer called",
        },
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.acknowledged_by == staff_user and flag.acknowledged_at is not None


def test_resend_requeues_failed_rows_but_never_sent_ones(client, staff_user, flagged):
    Notification.objects.filter(channel="webhook").update(status="failed")
    with time_machine.travel(NOW, tick=False):
        assert notifications.send_pending().sent == 2
    client.force_login(staff_user)
    client.post(
        _url(Notification, "changelist"),
        {
            "action": "resend",
            "_selected_action": list(Notification.objects.values_list("pk", flat=True)),
            "apply_reason": "1",
            "reason": "the endpoint is fixed",
        },
    )
    assert sorted(Notification.objects.values_list("channel", "status")) == [
        ("email", "sent"),
        ("email", "sent"),
        ("webhook", "pending"),
    ]
