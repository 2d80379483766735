"""The notification outbox: rows written with the change they announce, sent later.

Producing: `enqueue_*` insert one row per (topic, channel, recipient) in the caller's
transaction; the unique key makes re-enqueueing a no-op.

Sending: `send_pending` claims due rows with a conditional UPDATE (status pending, not
claimed or claim expired), so two senders never hold one row; it sends outside any
transaction, then marks the row sent (or schedules a retry with exponential backoff, or
gives up after NOTIFY_MAX_ATTEMPTS). A worker that dies after sending but before marking
leaves the row to be retried after the claim expires: receivers dedupe on the delivery id.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import smtplib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import MANAGER_ROLES, Contract, Membership, Role
from metering.compliance import webhooks
from metering.compliance.models import (
    Channel,
    Notification,
    NotificationStatus,
    WebhookEndpoint,
)
from metering.compliance.sql import array_cursor

CLAIM_SECONDS = 600
MAX_BACKOFF_SECONDS = 6 * 3600


# --- producing -----------------------------------------------------------------------------
def _recipients(
    *, organization_ids: Iterable[int], roles: Sequence[str]
) -> dict[int, list[tuple[str, str, int | None]]]:
    """(channel, recipient, endpoint id) per organization: managers' emails, staff alert
    addresses, active webhook endpoints. Two queries whatever the number of organizations."""
    org_ids = set(organization_ids)
    out: dict[int, list[tuple[str, str, int | None]]] = defaultdict(list)
    for org_id, email in Membership.objects.filter(
        organization_id__in=org_ids, role__in=roles, user__is_active=True
    ).values_list("organization_id", "user__email"):
        out[org_id].append((Channel.EMAIL, email, None))
    for org_id in org_ids:
        out[org_id].extend((Channel.EMAIL, email, None) for email in settings.STAFF_ALERT_EMAILS)
    for org_id, endpoint_id, url in WebhookEndpoint.objects.filter(
        organization_id__in=org_ids, is_active=True
    ).values_list("organization_id", "id", "url"):
        out[org_id].append((Channel.WEBHOOK, url, endpoint_id))
    return out


_COLUMNS = ("organization_id", "event_id", "endpoint_id", "topic", "channel", "recipient")
_COLUMNS += ("subject", "payload")


def _insert(rows: list[tuple]) -> None:
    """Insert outbox rows given as tuples in `_COLUMNS` order (payload a dict)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _insert_arrays(rows)
        return
    # The unique (topic, channel, recipient) key: enqueueing twice writes nothing more.
    Notification.objects.bulk_create(
        [Notification(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
        ignore_conflicts=True,
        batch_size=2000,
    )


def _insert_arrays(rows: list[tuple]) -> None:
    """PostgreSQL: the same rows as bulk_create, in one INSERT over column arrays (a run
    that flips tens of thousands of flags notifies each of them; bench/overage)."""
    now = timezone.now()
    dumped: dict[int, str] = {}  # one payload per event, shared by its recipients' rows

    def dump(payload: dict) -> str:
        key = id(payload)
        if key not in dumped:
            dumped[key] = json.dumps(payload)
        return dumped[key]

    columns = list(zip(*((*row[:7], dump(row[7])) for row in rows), strict=True))
    table = connection.ops.quote_name(Notification._meta.db_table)
    with array_cursor() as cursor:
        # The unique (topic, channel, recipient) key: enqueueing twice writes nothing more.
        cursor.execute(
            f"INSERT INTO {table} (organization_id, event_id, endpoint_id, topic, channel, "
            "recipient, subject, payload, status, attempts, next_attempt_at, claim_token, "
            "last_error, created_at) "
            "SELECT o, e, ep, t, c, r, s, p::jsonb, %s, 0, %s, '', '', %s "
            "FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[], "
            "%b::text[], %b::text[], %b::text[]) AS u(o, e, ep, t, c, r, s, p) "
            "ON CONFLICT DO NOTHING",
            [NotificationStatus.PENDING.value, now, now, *(list(col) for col in columns)],
        )


class FlipEvent(NamedTuple):
    """A flag event just written (its flag as the run's RETURNING gave it)."""

    id: int
    flag: Any  # flags.Flip: id, organization_id, metric, scope, level, limit, period_start
    kind: str
    at: dt.datetime
    value: int


def enqueue_for_events(
    *, events: Sequence[FlipEvent], labels: dict[int, tuple[str, str | None]]
) -> None:
    recipients = _recipients(
        organization_ids={e.flag.organization_id for e in events}, roles=MANAGER_ROLES
    )
    rows = []
    for event in events:
        flag = event.flag
        to = recipients.get(flag.organization_id)
        if not to:
            continue
        org_slug, env_label = labels[flag.id]
        payload = {
            "type": f"flag.{event.kind}",
            "flag_id": flag.id,
            "organization": org_slug,
            "metric": flag.metric,
            "scope": flag.scope,
            "environment": env_label,
            "level": flag.level,
            "value": event.value,
            "limit": flag.limit,
            "period_start": flag.period_start.isoformat(),
            "at": event.at.isoformat(),
        }
        where = f" in {env_label}" if env_label else ""
        limit = f" of {flag.limit}" if flag.limit is not None else ""
        subject = f"[Control Panel] {org_slug}: {flag.metric} {flag.level}{where} {event.kind} ({event.value}{limit})"
        for channel, recipient, endpoint_id in to:
            rows.append(
                (
                    flag.organization_id,
                    event.id,
                    endpoint_id,
                    f"event:{event.id}",
                    channel,
                    recipient,
                    subject[:300],
                    payload,
                )
            )
    _insert(rows)


def enqueue_expiry_reminders(*, contracts: Sequence[Contract], days_before: int) -> int:
    recipients = _recipients(
        organization_ids={c.organization_id for c in contracts}, roles=(Role.OWNER,)
    )
    rows = []
    for contract in contracts:
        org_slug = contract.organization.slug
        payload = {
            "type": "contract.expiring",
            "organization": org_slug,
            "plan": contract.plan,
            "ends_on": contract.ends_on.isoformat(),
            "days_before": days_before,
        }
        subject = f"[Control Panel] {org_slug}: contract ends on {contract.ends_on:%Y-%m-%d} (in {days_before} days or less)"
        for channel, recipient, endpoint_id in recipients.get(contract.organization_id, []):
            rows.append(
                (
                    contract.organization_id,
                    None,
                    endpoint_id,
                    f"expiry:{contract.id}:{days_before}",
                    channel,
                    recipient,
                    subject[:300],
                    payload,
                )
            )
    _insert(rows)
    return len(rows)


# --- sending -------------------------------------------------------------------------------
@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"send: {self.sent} sent, {self.retried} to retry, {self.failed} given up"

    def as_dict(self) -> dict[str, object]:
        return {"job": "send", "sent": self.sent, "retried": self.retried, "failed": self.failed}


def _due(now: dt.datetime):
    return Notification.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=NotificationStatus.PENDING,
        next_attempt_at__lte=now,
    )


def claim(*, batch: int, now: dt.datetime | None = None) -> tuple[str, list[Notification]]:
    """Claim up to `batch` due rows. Returns (token, rows); token is "" when nothing was
    due, and rows may be empty when another sender won every row we picked."""
    now = now or timezone.now()
    token = secrets.token_hex(12)
    ids = list(_due(now).order_by("next_attempt_at", "id").values_list("id", flat=True)[:batch])
    if not ids:
        return "", []
    # Conditional UPDATE: the WHERE is re-checked on each row at write time, so of two
    # senders that picked the same rows each row is claimed by exactly one.
    _due(now).filter(id__in=ids).update(
        claim_token=token, claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS)
    )
    claimed = Notification.objects.filter(id__in=ids, claim_token=token).select_related("endpoint")
    return token, list(claimed)


def _send_one(notification: Notification) -> webhooks.DeliveryResult:
    if notification.channel == Channel.EMAIL:
        lines = [f"{k}: {v}" for k, v in notification.payload.items() if v is not None]
        try:
            send_mail(
                notification.subject,
                "\n".join(lines) + "\n",
                settings.DEFAULT_FROM_EMAIL,
                [notification.recipient],
            )
        except (smtplib.SMTPException, OSError) as exc:
            permanent = isinstance(exc, smtplib.SMTPRecipientsRefused)
            return webhooks.DeliveryResult(False, not permanent, f"{type(exc).__name__}: {exc}")
        return webhooks.DeliveryResult(True, False)
    endpoint = notification.endpoint
    if endpoint is None or not endpoint.is_active:
        return webhooks.DeliveryResult(False, False, "webhook endpoint disabled")
    return webhooks.deliver(
        url=endpoint.url,
        secret_encrypted=endpoint.secret_encrypted,
        payload={"id": notification.id, **notification.payload},
        delivery_id=str(notification.id),
        timestamp=int(timezone.now().timestamp()),
    )


def send_pending(*, batch: int = 50, max_batches: int = 20) -> SendReport:
    report = SendReport()
    for _ in range(max_batches):
        token, claimed = claim(batch=batch)
        if not token:
            break
        for notification in claimed:
            result = _send_one(notification)
            now = timezone.now()
            mine = Notification.objects.filter(id=notification.id, claim_token=token)
            attempts = notification.attempts + 1
            if result.ok:
                mine.update(
                    status=NotificationStatus.SENT,
                    sent_at=now,
                    attempts=F("attempts") + 1,
                    claimed_until=None,
                    last_error="",
                )
                report.sent += 1
            elif result.transient and attempts < settings.NOTIFY_MAX_ATTEMPTS:
                delay = min(
                    settings.NOTIFY_BACKOFF_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS
                )
                mine.update(
                    attempts=F("attempts") + 1,
                    next_attempt_at=now + dt.timedelta(seconds=delay),
                    claimed_until=None,
                    last_error=result.error,
                )
                report.retried += 1
            else:
                mine.update(
                    status=NotificationStatus.FAILED,
                    attempts=F("attempts") + 1,
                    claimed_until=None,
                    last_error=result.error,
                )
                report.failed += 1
                report.errors.append(result.error)
    return report
