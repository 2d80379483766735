"""The outbox sender: email and signed webhooks, retries with backoff, exactly once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.core import mail
from django.db import connection

from metering.compliance import notifications, webhooks
from metering.compliance.models import Channel, Notification, NotificationStatus
from metering.compliance.services import webhook_endpoint_create
from tests.conftest import make_tenant
from tests.metering.compliance.hooks import receiver

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


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
def test_webhook_is_signed_and_verifiable_with_the_documented_recipe(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        endpoint, secret = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        row = hook_row(t.organization, endpoint)
        with time_machine.travel(NOW, tick=False):
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
def test_transient_failures_retry_with_backoff_then_succeed(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        hook.statuses = [503, 500]
        endpoint, _ = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        row = hook_row(t.organization, endpoint)
        with time_machine.travel(NOW, tick=False):
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
def test_a_claimed_row_is_not_claimed_again_until_its_claim_expires():
    t = make_tenant("acme")
    email_row(t.organization)
    with time_machine.travel(NOW, tick=False):
        _token, first = notifications.claim(batch=10)
        token, second = notifications.claim(batch=10)
        assert token == ""
    with time_machine.travel(NOW + dt.timedelta(seconds=notifications.CLAIM_SECONDS + 1)):
        _token, after_expiry = notifications.claim(batch=10)
    assert (len(first), len(second), len(after_expiry)) == (1, 0, 1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_senders_deliver_each_notification_exactly_once(allow_http):
    t = make_tenant("acme")
    with receiver() as hook:
        hook.delay = 0.01
        endpoint, _ = webhook_endpoint_create(
            organization=t.organization, url=hook.url, created_by=t.owner
        )
        rows = [hook_row(t.organization, endpoint, topic=f"event:{i}") for i in range(60)]
        start = threading.Barrier(2)
        reports = []

        def sender():
            try:
                start.wait()
                reports.append(notifications.send_pending(batch=5))
            finally:
                connection.close()

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(hook.deliveries(), key=int) == [str(r.id) for r in rows]
    assert sum(r.sent for r in reports) == 60
    assert all(r.sent > 0 for r in reports)  # both really took part
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 1)}
