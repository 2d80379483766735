"""The outbox sender: email and signed webhooks, retries with backoff, exactly once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connection

from accounts.models import Role
from metering.compliance import notifications, webhooks
from metering.compliance.models import (
    Channel,
    FlagEvent,
    Notification,
    NotificationStatus,
    OverageFlag,
)
from metering.compliance.services import webhook_endpoint_create
from tests.conftest import make_tenant
from tests.factories import MembershipFactory
from tests.metering.compliance.hooks import receiver

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def twice_at_once(job) -> list:
    """Run `job` in two threads released together (each with its own database
    connection); returns what each returned."""
    start = threading.Barrier(2)
    results = []

    def run():
        try:
            start.wait()
            results.append(job())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def allow_http(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.NOTIFY_BACKOFF_SECONDS = 60
    settings.NOTIFY_MAX_ATTEMPTS = 3


def email_row(org, recipient="owner@acme.example", topic="event:1"):
    return Notification.objects.create(
        organization=org,
        topic=topic,
        channel=Channel.EMAIL,
        recipient=recipient,
        subject="[Control Panel] acme: api_calls warning raised (800 of 1000)",
        payload={"type": "flag.raised", "organization": "acme", "metric": "api_calls"},
    )


def hook_row(org, endpoint, topic="event:1"):
    return Notification.objects.create(
        organization=org,
        topic=topic,
        channel=Channel.WEBHOOK,
        recipient=endpoint.url,
        endpoint=endpoint,
        subject="s",
        payload={"type": "flag.raised", "organization": "acme", "value": 800},
    )


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_email_is_sent_once_and_marked_sent():
    t = make_tenant("acme")
    row = email_row(t.organization)

    assert notifications.send_pending().sent == 1
    assert notifications.send_pending().sent == 0

    assert [(m.to, m.subject) for m in mail.outbox] == [(["owner@acme.example"], row.subject)]
    assert "metric: api_calls" in mail.outbox[0].body
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.claimed_until) == ("sent", 1, NOW, None)


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_webhook_is_signed_and_verifiable_with_the_documented_recipe(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        endpoint, secret = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        row = hook_row(t.organization, endpoint)
        assert notifications.send_pending().sent == 1
    [got] = hook.received
    assert got["json"] == {
        "id": row.id,
        "type": "flag.raised",
        "organization": "acme",
        "value": 800,
    }
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["X-ControlPanel-Delivery"] == str(row.id)
    header = got["headers"]["X-ControlPanel-Signature"]
    assert header.startswith(f"t={int(NOW.timestamp())},v1=")
    now = int(NOW.timestamp())
    assert webhooks.verify(secret=secret, header=header, body=got["body"], now=now)
    assert not webhooks.verify(secret=secret, header=header, body=got["body"] + b" ", now=now)
    assert not webhooks.verify(secret="whsec_other", header=header, body=got["body"], now=now)
    assert not webhooks.verify(secret=secret, header=header, body=got["body"], now=now + 301)
    # The stored secret is encrypted, not the plaintext.
    assert secret not in endpoint.secret_encrypted
    assert webhooks.decrypt_secret(endpoint.secret_encrypted) == secret


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_transient_failures_retry_with_backoff_then_succeed(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        hook.statuses = [503, 500]
        endpoint, _ = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        row = hook_row(t.organization, endpoint)
        assert notifications.send_pending().retried == 1
        assert notifications.send_pending().retried == 0  # not due yet
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 503")
        assert row.next_attempt_at == NOW + dt.timedelta(seconds=60)
        with time_machine.travel(NOW + dt.timedelta(seconds=60), tick=False):
            assert notifications.send_pending().retried == 1
        row.refresh_from_db()
        assert row.next_attempt_at == NOW + dt.timedelta(seconds=60 + 120)
        with time_machine.travel(NOW + dt.timedelta(seconds=180), tick=False):
            assert notifications.send_pending().sent == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, "")
    assert len(hook.received) == 3
    assert set(hook.deliveries()) == {str(row.id)}


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_gives_up_after_the_attempt_limit_and_at_once_on_a_permanent_error(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        hook.statuses = [503, 503, 503, 400]
        endpoint, _ = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        flaky = hook_row(t.organization, endpoint, topic="event:1")
        for minutes in (0, 10, 20):
            with time_machine.travel(NOW + dt.timedelta(minutes=minutes), tick=False):
                notifications.send_pending()
        rejected = hook_row(t.organization, endpoint, topic="event:2")
        with time_machine.travel(NOW + dt.timedelta(minutes=30), tick=False):
            assert notifications.send_pending().failed == 1
    flaky.refresh_from_db()
    rejected.refresh_from_db()
    assert (flaky.status, flaky.attempts) == (NotificationStatus.FAILED, 3)
    assert (rejected.status, rejected.attempts, rejected.last_error) == ("failed", 1, "HTTP 400")


@pytest.mark.django_db
def test_unreachable_endpoint_is_a_transient_failure(allow_http):
    t = make_tenant("acme")
    endpoint, _ = webhook_endpoint_create(
        organization=t.organization, url="http://127.0.0.1:8599/nothing-listens", created_by=None
    )
    row = hook_row(t.organization, endpoint)
    assert notifications.send_pending().retried == 1
    row.refresh_from_db()
    assert row.status == "pending" and row.last_error.startswith("ConnectError")


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_a_claimed_row_is_not_claimed_again_until_its_claim_expires():
    t = make_tenant("acme")
    email_row(t.organization)
    _token, first = notifications.claim(batch=10)
    token, second = notifications.claim(batch=10)
    assert token == ""
    with time_machine.travel(NOW + dt.timedelta(seconds=settings.NOTIFY_CLAIM_SECONDS + 1)):
        _token, after_expiry = notifications.claim(batch=10)
    assert (len(first), len(second), len(after_expiry)) == (1, 0, 1)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_senders_deliver_each_notification_exactly_once(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        hook.delay = 0.01
        endpoint, _ = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        rows = [hook_row(t.organization, endpoint, topic=f"event:{i}") for i in range(60)]
        reports = twice_at_once(lambda: notifications.send_pending(batch=5))
    assert sorted(hook.deliveries(), key=int) == [str(r.id) for r in rows]
    assert sum(r.sent for r in reports) == 60
    assert all(r.sent > 0 for r in reports)  # both really took part
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}


# --- fan-out: flag events into outbox rows --------------------------------------------------
def _flag_event(t, *, environment=None, limit=None, at=NOW, period_start=NOW, kind="raised"):
    flag = OverageFlag.objects.create(
        contract=t.organization.contracts.get(),
        organization=t.organization,
        environment=environment,
        metric="reporting" if environment else "developer_seats",
        scope=f"environment:{environment.id}" if environment else "organization",
        level="reporting_gap" if environment else "exceeded",
        period_start=period_start,
        value=7,
        limit=limit,
    )
    return FlagEvent.objects.create(flag=flag, kind=kind, at=at, value=9)


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_fan_out_writes_one_row_per_recipient_with_the_payload_and_subject_of_the_event(
    settings,
):
    settings.STAFF_ALERT_EMAILS = ["billing@vendor.example", "ops@vendor.example"]
    t = make_tenant("acme")
    endpoint, _ = webhook_endpoint_create(
        organization=t.organization, url="https://hooks.acme.example/cp", created_by=t.owner
    )
    old, _ = webhook_endpoint_create(
        organization=t.organization, url="https://old.acme.example/cp", created_by=t.owner
    )
    old.is_active = False  # inactive endpoints and users get nothing
    old.save()
    MembershipFactory(organization=t.organization, role=Role.ADMIN, user__is_active=False)
    make_tenant("globex")  # another organization's managers get nothing either
    # Datetimes with and without microseconds: the payload carries what isoformat() gives.
    odd = NOW - dt.timedelta(hours=12, microseconds=250)
    with_env = _flag_event(t, environment=t.production, limit=12, at=odd, period_start=odd)
    org_wide = _flag_event(t, kind="resolved")

    assert notifications.fan_out() == 2
    assert notifications.fan_out() == 0
    assert not FlagEvent.objects.filter(notified_at__isnull=True).exists()

    rows = Notification.objects.filter(event=with_env)
    assert sorted(rows.values_list("channel", "recipient", "endpoint_id")) == sorted(
        [
            ("email", "billing@vendor.example", None),
            ("email", "ops@vendor.example", None),
            ("email", t.admin.email, None),
            ("email", t.owner.email, None),
            ("webhook", endpoint.url, endpoint.id),
        ]
    )
    assert {(r.topic, r.status, r.attempts, r.next_attempt_at) for r in rows} == {
        (f"event:{with_env.id}", "pending", 0, NOW)
    }
    label = f"{t.production.project.slug}/{t.production.name}"
    assert {r.subject for r in rows} == {
        f"[Control Panel] acme: reporting reporting_gap in {label} raised (9 of 12)"
    }
    assert rows.first().payload == {
        "type": "flag.raised",
        "flag_id": with_env.flag_id,
        "organization": "acme",
        "metric": "reporting",
        "scope": f"environment:{t.production.id}",
        "environment": label,
        "level": "reporting_gap",
        "value": 9,
        "limit": 12,
        "period_start": odd.isoformat(),
        "at": odd.isoformat(),
    }
    plain = Notification.objects.filter(event=org_wide).first()
    assert plain.subject == "[Control Panel] acme: developer_seats exceeded resolved (9)"
    assert plain.payload["environment"] is None
    assert plain.payload["limit"] is None
    assert plain.payload["at"] == NOW.isoformat() == "2026-11-24T12:00:00+00:00"
    assert Notification.objects.count() == 10


@pytest.mark.django_db
def test_fan_out_in_batches_takes_every_event_once():
    t = make_tenant("acme")
    events = [_flag_event(t, period_start=NOW + dt.timedelta(days=i)) for i in range(7)]
    assert notifications.fan_out(batch=3) == 7
    assert sorted(Notification.objects.values_list("event_id", flat=True)) == sorted(
        e.id
        for e in events
        for _ in range(2)  # owner and admin
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_notifiers_write_each_row_once():
    t = make_tenant("acme")
    for i in range(40):
        _flag_event(t, period_start=NOW + dt.timedelta(days=i))
    counts = twice_at_once(lambda: notifications.fan_out(batch=2))
    assert sum(counts) == 40  # SKIP LOCKED: disjoint batches, every event taken once
    assert Notification.objects.count() == 80
    assert not FlagEvent.objects.filter(notified_at__isnull=True).exists()
