"""The notification outbox: one row per message and recipient, sent later.

Producing: a flag flip writes a `FlagEvent` in the flip's own transaction; the notifier
(`fan_out`, the first step of every `send_pending`) turns the events not notified yet into
one row per recipient (the organization's active owners and admins, `STAFF_ALERT_EMAILS`,
its active webhook endpoints) and marks them notified, in transactions of its own. The
event is the durable record, so a crash between the two loses nothing: the next notifier
run picks the event up. Expiry reminders (`enqueue_expiry_reminders`) write their rows
directly in the caller's transaction. The unique (topic, channel, recipient) key makes
writing a row twice a no-op.

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

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import (
    MANAGER_ROLES,
    Contract,
    Membership,
    Role,
    User,
)
from metering.compliance import webhooks
from metering.compliance.models import (
    Channel,
    FlagEvent,
    Notification,
    NotificationStatus,
    OverageFlag,
    WebhookEndpoint,
)
from metering.compliance.sql import (
    FLAG_LABEL,
    array_cursor,
    flag_context_joins,
    id_clause,
    utc_isoformat,
)

MAX_BACKOFF_SECONDS = 6 * 3600


# --- producing -----------------------------------------------------------------------------
def _recipients_sql(roles: Sequence[str]) -> tuple[str, list]:
    """SQL (and its parameters) for who an organization notifies, besides the
    `STAFF_ALERT_EMAILS` addresses: its active members with one of `roles` by email, and
    its active webhook endpoints. Columns: organization_id, channel, recipient,
    endpoint_id. The one definition both the flag-event fan-out and reminders use."""
    q = connection.ops.quote_name
    sql = (
        f"SELECT m.organization_id AS organization_id, '{Channel.EMAIL.value}' AS channel, "
        "u.email AS recipient, CAST(NULL AS bigint) AS endpoint_id "
        f"FROM {q(Membership._meta.db_table)} m JOIN {q(User._meta.db_table)} u "
        f"ON u.id = m.user_id WHERE m.role IN ({', '.join(['%s'] * len(roles))}) "
        f"AND u.is_active UNION ALL SELECT w.organization_id, '{Channel.WEBHOOK.value}', w.url, "
        f"w.id FROM {q(WebhookEndpoint._meta.db_table)} w WHERE w.is_active"
    )
    return sql, list(roles)


def _recipients(
    *, organization_ids: Iterable[int], roles: Sequence[str]
) -> dict[int, list[tuple[str, str, int | None]]]:
    """(channel, recipient, endpoint id) per organization: members with `roles`, staff
    alert addresses, active webhook endpoints. One query whatever the number of
    organizations."""
    org_ids = sorted(set(organization_ids))
    out: dict[int, list[tuple[str, str, int | None]]] = defaultdict(list)
    staff = [(Channel.EMAIL.value, email, None) for email in settings.STAFF_ALERT_EMAILS]
    for org_id in org_ids:
        out[org_id].extend(staff)
    recipients, params = _recipients_sql(roles)
    clause, id_params = id_clause("r.organization_id", org_ids)
    with array_cursor() as cursor:
        cursor.execute(
            "SELECT r.organization_id, r.channel, r.recipient, r.endpoint_id "
            f"FROM ({recipients}) r WHERE {clause}",
            [*params, *id_params],
        )
        for org_id, channel, recipient, endpoint_id in cursor.fetchall():
            out[org_id].append((channel, recipient, endpoint_id))
    return out


_COLUMNS: tuple[str, ...] = (
    "organization_id",
    "event_id",
    "endpoint_id",
    "topic",
    "channel",
    "recipient",
)
_COLUMNS += ("subject", "payload")


def _insert(rows: list[tuple]) -> None:
    """Insert outbox rows given as tuples in `_COLUMNS` order (payload a dict), in one
    INSERT over column arrays (a run that flips tens of thousands of flags notifies each
    of them; bench/overage)."""
    if not rows:
        return
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


def fan_out(*, batch: int = 10_000) -> int:
    """Write the outbox rows of every flag event not notified yet; returns how many events.

    Batches of `batch` events, each in its own transaction: claim them (`FOR UPDATE SKIP
    LOCKED`, so two notifiers take disjoint batches), insert their rows,
    mark them notified. Events of a transaction still open are not visible yet; the next
    run takes them."""
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                FlagEvent.objects.filter(notified_at__isnull=True)
                .order_by("id")
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:batch]
            )
            if not ids:
                return total
            _insert_for_flag_events(ids)
            FlagEvent.objects.filter(id__in=ids).update(notified_at=timezone.now())
        total += len(ids)


def _insert_for_flag_events(event_ids: Sequence[int]) -> None:
    """The outbox rows of these flag events, built by the database from the events, their
    flags and the recipients in one INSERT ... SELECT. Nothing per row travels through
    Python: one evaluation can flip tens of thousands of flags (bench/overage).

    The payload: `{"type": "flag.raised" | "flag.resolved", "flag_id", "organization",
    "metric", "scope", "environment" ("project/environment" or null), "level", "value",
    "limit", "period_start", "at"}` (datetimes as Python's isoformat() gives them); the
    subject: `[Control Panel] <org>: <metric> <level>[ in <env>] <kind> (<value>[ of
    <limit>])`. Tests pin both."""
    if not event_ids:
        return
    now = timezone.now()
    q = connection.ops.quote_name
    tables = {
        name: q(model._meta.db_table)
        for name, model in (
            ("notification", Notification),
            ("event", FlagEvent),
            ("flag", OverageFlag),
        )
    }
    recipients, recipient_params = _recipients_sql(MANAGER_ROLES)
    staff = settings.STAFF_ALERT_EMAILS
    staff_branch = ""
    if staff:
        emails = " UNION ALL ".join(["SELECT CAST(%s AS text) AS email"] * len(staff))
        staff_branch = (
            f"UNION ALL SELECT x.*, '{Channel.EMAIL.value}', s.email, CAST(NULL AS bigint) "
            f"FROM x CROSS JOIN ({emails}) s"
        )
    sql = f"""
        WITH x AS (
            SELECT f.organization_id AS organization_id, ev.id AS event_id,
                'event:' || CAST(ev.id AS text) AS topic,
                SUBSTR('[Control Panel] ' || o.slug || ': ' || f.metric || ' ' || f.level
                    || COALESCE(' in ' || {FLAG_LABEL}, '') || ' ' || ev.kind || ' ('
                    || CAST(ev.value AS text) || COALESCE(' of ' || CAST(f."limit" AS text), '')
                    || ')', 1, 300) AS subject,
                jsonb_build_object('type', 'flag.' || ev.kind, 'flag_id', f.id,
                    'organization', o.slug, 'metric', f.metric, 'scope', f.scope,
                    'environment', {FLAG_LABEL}, 'level', f.level, 'value', ev.value,
                    'limit', f."limit", 'period_start', {utc_isoformat("f.period_start")},
                    'at', {utc_isoformat("ev.at")}) AS payload
            FROM {tables["event"]} ev
            JOIN {tables["flag"]} f ON f.id = ev.flag_id
            {flag_context_joins("f")}
            WHERE {{events}}
        )
        INSERT INTO {tables["notification"]} (organization_id, event_id, topic, subject,
            payload, channel, recipient, endpoint_id, status, attempts, next_attempt_at,
            claim_token, last_error, created_at)
        SELECT *, %s, 0, %s, '', '', %s FROM (
            SELECT x.*, r.channel, r.recipient, r.endpoint_id FROM x
            JOIN ({recipients}) r ON r.organization_id = x.organization_id
            {staff_branch}
        ) AS rows
        WHERE true
        -- The unique (topic, channel, recipient) key: enqueueing twice writes nothing more.
        ON CONFLICT DO NOTHING
    """
    tail = [NotificationStatus.PENDING.value, now, now, *recipient_params, *staff]
    clause, id_params = id_clause("ev.id", event_ids)
    with array_cursor() as cursor:
        cursor.execute(sql.format(events=clause), [*id_params, *tail])


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
    events: int = 0  # flag events turned into outbox rows by this run
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"send: {self.events} flag event(s) queued, {self.sent} sent, "
            f"{self.retried} to retry, {self.failed} given up"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "job": "send",
            "events": self.events,
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
        }


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
        claim_token=token, claimed_until=now + dt.timedelta(seconds=settings.NOTIFY_CLAIM_SECONDS)
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
    """Queue new flag events' messages (`fan_out`), then send up to `batch` x `max_batches`
    due rows."""
    report = SendReport(events=fan_out())
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
