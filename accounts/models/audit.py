"""The audit trail: who did what to which object, when and why. Append-only.

Rows are written by the services (accounts.services.audit.audit_record) in the same
transaction as the change they describe, so a change and its record commit or roll back
together. The database refuses UPDATE and DELETE on the table (a trigger made by
migration 0005); only TRUNCATE (a whole test database being reset) gets through.

Because no row may ever change, the references to people, keys and organizations are
plain ids without foreign-key constraints (`db_constraint=False`, `DO_NOTHING`): deleting a
user must not try to SET NULL on their history, and deleting an organization must not try
to cascade into it. Each reference also carries a label (the email, the key's prefix, the
slug) frozen at the time, so a record still reads after its subject is gone.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class ActorKind(models.TextChoices):
    STAFF = "staff", "Staff user"
    USER = "user", "Customer user"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "System job"


class AuditKind(models.TextChoices):
    """What happened. Dotted names group by subject in filters and exports."""

    API_KEY_ISSUED = "api_key.issued", "API key issued"
    API_KEY_ROTATED = "api_key.rotated", "API key rotated"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    MEMBER_INVITED = "member.invited", "Member invited"
    MEMBER_JOINED = "member.joined", "Member joined"
    MEMBER_REMOVED = "member.removed", "Member removed"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Member's role changed"
    SEAT_ASSIGNED = "seat.assigned", "Developer seat assigned"
    SEAT_FREED = "seat.freed", "Developer seat freed"
    LICENSE_ISSUED = "license.issued", "License issued"
    LICENSE_REVOKED = "license.revoked", "License revoked"
    WEBHOOK_ADDED = "webhook.added", "Webhook endpoint added"
    WEBHOOK_REMOVED = "webhook.removed", "Webhook endpoint removed"
    MFA_ENABLED = "mfa.enabled", "Multi-factor authentication turned on"
    MFA_DISABLED = "mfa.disabled", "Multi-factor authentication turned off"
    MFA_REQUIRED = "mfa.required", "Multi-factor authentication required for the organization"
    MFA_OPTIONAL = "mfa.optional", "Multi-factor authentication optional for the organization"
    SIGN_IN_FAILURES = "sign_in.failures", "Repeated sign-in failures"
    CONTRACT_CREATED = "contract.created", "Contract created"
    CONTRACT_CHANGED = "contract.changed", "Contract changed"
    ENVIRONMENT_DISABLED = "environment.disabled", "Environment disabled"
    ENVIRONMENT_ENABLED = "environment.enabled", "Environment enabled"
    FLAG_ACKNOWLEDGED = "flag.acknowledged", "Flag acknowledged"
    FLAG_RESOLVED = "flag.resolved", "Flag resolved by staff"
    FLAG_WAIVED = "flag.waived", "Flag waived"
    NOTIFICATION_RESENT = "notification.resent", "Notification queued again"
    STAFF_EDIT = "staff.edit", "Staff edit in the admin"


class AuditEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=32, choices=AuditKind.choices)

    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # partial index below
        related_name="+",
    )
    actor_api_key = models.ForeignKey(
        "accounts.ApiKey",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # rarely searched by; the label says which key
        related_name="+",
    )
    # The email, `cpk_<prefix>_…last4` or job name, as it was at the time.
    actor_label = models.CharField(max_length=200)

    organization = models.ForeignKey(
        "accounts.Organization",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # composite index below starts with it
        related_name="+",
    )
    organization_label = models.CharField(max_length=64, blank=True)

    # Which object: `app_label.model` and its primary key, with a label frozen at the time.
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)

    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The admin's list, newest first (its ordering, whole table).
            models.Index(fields=["-at", "-id"], name="audit_at"),
            # The admin's and the owners' list: one organization's events, newest first.
            models.Index(fields=["organization", "-at"], name="audit_org_at"),
            # The admin's filter by kind, newest first.
            models.Index(fields=["kind", "-at"], name="audit_kind_at"),
            # The admin's filter by actor: people only (jobs and keys have labels).
            models.Index(
                fields=["actor_user", "-at"],
                condition=Q(actor_user__isnull=False),
                name="audit_actor_user_at",
            ),
            # A target's own history ("what happened to this key?").
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_kind__in=[k.value for k in ActorKind]),
                name="audit_actor_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.kind} {self.target_label}"
