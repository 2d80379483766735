"""Compliance records: overage flags and their flips, the notification outbox, webhook
endpoints, period true-ups and expiry reminders.

They belong to the `metering` app (imported at the end of `metering.models`), so their
migrations live in `metering/migrations`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import METRICS, Contract, Environment, Organization

__all__ = [
    "FLAG_METRICS",
    "ORGANIZATION_SCOPE",
    "REPORTING",
    "Channel",
    "ExpiryReminder",
    "FlagEvent",
    "FlagEventKind",
    "FlagLevel",
    "Notification",
    "NotificationStatus",
    "OverageFlag",
    "TrueUp",
    "WebhookEndpoint",
    "environment_scope",
]

# A flag's metric is a contract metric, or `reporting` for reporting gaps.
REPORTING = "reporting"
FLAG_METRICS = (*METRICS, REPORTING)
# Scope of an organization-wide flag; environment flags use `environment:<id>`.
ORGANIZATION_SCOPE = "organization"


def environment_scope(environment_id: int) -> str:
    return f"environment:{environment_id}"


class FlagLevel(models.TextChoices):
    WARNING = "warning", "Warning (80 %)"
    EXCEEDED = "exceeded", "Exceeded (100 %)"
    OVER_CAP = "over_cap", "Over the policy's cap"
    REPORTING_GAP = "reporting_gap", "Reporting gap"


class OverageFlag(models.Model):
    """One condition raised for one contract, period, metric, scope and level.

    For usage metrics `period_start` is the billing period's start (the day's start for
    `nonprod_daily_api_calls`); for reporting gaps it is the start of the silence, so a
    later, separate gap is a new flag. `resolved_at` is set when the condition ends (seats,
    tenants, developer seats, gaps); the flips themselves are `FlagEvent` rows."""

    # No single-column indexes of their own: the unique key starts with the contract, and
    # (organization, resolved_at) with the organization. A mass evaluation inserts tens
    # of thousands of flags at once (bench/overage); each index costs on every insert.
    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="flags", db_index=False
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="flags", db_index=False
    )
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.CASCADE, related_name="flags"
    )
    metric = models.CharField(max_length=32)
    scope = models.CharField(max_length=64)
    level = models.CharField(max_length=16, choices=FlagLevel.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(null=True, blank=True)
    value = models.BigIntegerField(help_text="Usage when raised (or last re-raised).")
    limit = models.BigIntegerField(null=True, blank=True)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The evaluation run that made the last transition (an audit trail): a run reports only
    # the rows its own conditional INSERT/UPDATE returned, so two runs never both report one flip.
    changed_by_run = models.CharField(max_length=32, blank=True, default="")
    # Staff triage.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # partial index below: almost every flag has none
    )
    # Staff resolve a flag the jobs would not (a billing settlement, a usage dispute) or
    # waive it (the overage is accepted: no further action). Reasons are in the audit trail.
    resolved_by = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # staff resolutions are rare; never queried by person
        help_text="Set when staff resolved it; empty when the condition ended by itself.",
    )
    waived_at = models.DateTimeField(null=True, blank=True)
    waived_by = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at"]
        permissions = [
            ("acknowledge_overageflag", "Can acknowledge overage flags"),
            ("resolve_overageflag", "Can resolve overage flags"),
            ("waive_overageflag", "Can waive overage flags"),
        ]
        constraints = [
            # Raised once: evaluation inserts with ON CONFLICT DO NOTHING on this key.
            models.UniqueConstraint(
                fields=["contract", "period_start", "metric", "scope", "level"],
                name="overage_flag_raised_once",
            ),
            models.CheckConstraint(
                condition=Q(metric__in=FLAG_METRICS), name="overage_flag_metric_valid"
            ),
            models.CheckConstraint(
                condition=Q(level__in=[lv.value for lv in FlagLevel]),
                name="overage_flag_level_valid",
            ),
        ]
        indexes = [
            # Evaluation and gaps: the open flags of current periods.
            models.Index(fields=["period_start", "metric"], name="overage_flag_period_metric"),
            models.Index(fields=["organization", "resolved_at"], name="overage_flag_org_resolved"),
            models.Index(
                fields=["acknowledged_by"],
                condition=Q(acknowledged_by__isnull=False),
                name="overage_flag_acknowledged_by",
            ),
            # No index on changed_by_run: a run gets its flips from the writes' RETURNING.
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.metric} {self.scope} {self.level}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class FlagEventKind(models.TextChoices):
    RAISED = "raised", "Raised"
    RESOLVED = "resolved", "Resolved"


class FlagEvent(models.Model):
    """A flip of a flag (raised, resolved, raised again): the history, and what
    notifications are about."""

    flag = models.ForeignKey(OverageFlag, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=FlagEventKind.choices)
    at = models.DateTimeField(default=timezone.now)
    value = models.BigIntegerField()
    # When the notifier wrote this event's outbox rows (`notifications.fan_out`). The event
    # is the durable record of the flip, written with it; the per-recipient rows follow
    # from it, in the notifier's own transactions, so a run that flips tens of thousands
    # of flags does not also write their deliveries (bench/overage).
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # The notifier's queue: events whose outbox rows are not written yet.
            models.Index(
                fields=["id"], condition=Q(notified_at__isnull=True), name="flag_event_to_notify"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flag} {self.kind} at {self.at:%Y-%m-%d %H:%M}"


def _webhook_secret_help() -> str:
    return "Encrypted with a key derived from SECRET_KEY (see docs/compliance.md)."


class WebhookEndpoint(models.Model):
    """Where an organization wants its compliance notifications POSTed.

    The signing secret is shown once. It is stored (encrypted) rather than hashed because
    we must sign with it on every delivery: a digest cannot produce an HMAC."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret_encrypted = models.TextField(help_text=_webhook_secret_help())
    secret_last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organization", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "url"], name="webhook_url_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} -> {self.url}"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class Notification(models.Model):
    """An outbox row: one message to one recipient. Written in the same transaction as
    the flip or reminder it announces; sent later by `notifications.send_pending`."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.ForeignKey(
        FlagEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,  # partial index below: e-mail rows have none
    )
    # What the message is about, e.g. `event:42` or `expiry:7:30`.
    topic = models.CharField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient = models.CharField(max_length=500, help_text="Email address or endpoint URL.")
    subject = models.CharField(max_length=300)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender owns a row while claimed_until is in the future (claimed by conditional UPDATE).
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("resend_notification", "Can queue notifications again")]
        constraints = [
            # One message per topic and recipient, however often the producer runs.
            models.UniqueConstraint(
                fields=["topic", "channel", "recipient"], name="notification_once_per_recipient"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in NotificationStatus]),
                name="notification_status_valid",
            ),
        ]
        indexes = [
            # The sender's claim query: due pending rows.
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            models.Index(
                fields=["endpoint"],
                condition=Q(endpoint__isnull=False),
                name="notification_endpoint",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} -> {self.channel}:{self.recipient} ({self.status})"


class TrueUp(models.Model):
    """The frozen usage of one closed period, per contract and metric."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="true_ups")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="true_ups"
    )
    metric = models.CharField(max_length=32)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    usage = models.BigIntegerField(help_text="Total (API calls) or peak (gauges) of the period.")
    limit = models.BigIntegerField(null=True, blank=True)
    peak = models.BigIntegerField(
        help_text="Highest hourly (API calls) or per-environment (gauges) value."
    )
    overage = models.BigIntegerField(help_text="max(0, usage - limit); 0 when unlimited.")
    closed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start", "contract", "metric"]
        constraints = [
            # Closing twice changes nothing: inserts ignore this key's conflicts.
            models.UniqueConstraint(
                fields=["contract", "period_start", "metric"], name="true_up_once"
            ),
            models.CheckConstraint(condition=Q(overage__gte=0), name="true_up_overage_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} {self.metric} {self.period_start:%Y-%m-%d}: {self.usage}"


class ExpiryReminder(models.Model):
    """A contract-expiry reminder sent at one threshold (days before the end)."""

    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="expiry_reminders"
    )
    days_before = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    # The run that inserted it: that run, and only it, enqueues the notifications.
    created_by_run = models.CharField(max_length=32, blank=True, default="", db_index=True)

    class Meta:
        constraints = [
            # Once per threshold: inserts ignore this key's conflicts.
            models.UniqueConstraint(
                fields=["contract", "days_before"], name="expiry_reminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contract_id} {self.days_before} days"
