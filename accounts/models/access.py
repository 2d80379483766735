"""Personal access tokens and the CLI login sessions that hand them out.

Registered with the `accounts` app through accounts.models.
Every secret here exists only as a SHA-256 digest (see accounts.tokens).
"""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q
from django.utils import timezone


class PersonalAccessToken(models.Model):
    """A person's token for the customer API and the CLI. Wire form `cpt_<prefix>_<secret>`."""

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    # Serves the authentication lookup `PersonalAccessToken.objects.get(prefix=...)`.
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        return f"cpt_{self.prefix}_…{self.last_four}"

    def is_usable(self, at: dt.datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and self.expires_at > at


class CliSessionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DELIVERED = "delivered", "Delivered"
    DENIED = "denied", "Denied"


class CliLoginSession(models.Model):
    """A device-style login: the CLI polls with one secret, the browser approves with another.

    The token is minted only when the CLI collects it after approval, so its plaintext is
    never stored: the row only ever holds digests.
    """

    # Poll secret `cls_<prefix>_<secret>`: the prefix finds the row (unique index).
    poll_prefix = models.CharField(max_length=16, unique=True)
    poll_digest = models.CharField(max_length=64)
    # Approval code `clp_<prefix>_<secret>` in the login URL's `pat` parameter.
    code_prefix = models.CharField(max_length=16, unique=True)
    code_digest = models.CharField(max_length=64)
    client_name = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=16, choices=CliSessionStatus.choices, default=CliSessionStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    user = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="cli_login_sessions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    token = models.OneToOneField(
        PersonalAccessToken,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cli_login_session",
    )
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in CliSessionStatus]),
                name="cli_session_status_valid",
            ),
            # Approved or delivered sessions name the person who approved them.
            models.CheckConstraint(
                condition=Q(status__in=["pending", "denied"]) | Q(user__isnull=False),
                name="cli_session_user_when_approved",
            ),
        ]

    def __str__(self) -> str:
        return f"CLI login {self.poll_prefix} ({self.status})"

    def is_expired(self, at: dt.datetime | None = None) -> bool:
        return self.expires_at <= (at or timezone.now())
