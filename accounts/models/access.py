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
    # What the CMS's CLI attached to the token (its `CreateUserPat(data: {meta})`), returned
    # as given; the CLI reads `orgId`/`projectId` from it.
    meta = models.JSONField(null=True, blank=True)

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


class CliLoginKind(models.TextChoices):
    # This product's CLI: polls with one secret, the browser approves with another.
    DEVICE = "device", "Control Panel CLI"
    # The CMS's CLI (GraphQL `GenerateUserPat`): the pending token is the future personal
    # access token itself; the CLI polls with it and the login URL carries it.
    PENDING_PAT = "pending_pat", "CMS CLI"


class CliLoginSession(models.Model):
    """A login from a command line, approved or denied in the browser.

    Either kind stores digests only: a device login's token is minted when the CLI
    collects it; a pending PAT becomes a token (same prefix and digest) when approved.
    """

    kind = models.CharField(
        max_length=16, choices=CliLoginKind.choices, default=CliLoginKind.DEVICE
    )
    # Poll secret `cls_<prefix>_<secret>` of a device login: the prefix finds the row
    # (unique index). A pending PAT has none: its code is what the CLI polls with.
    poll_prefix = models.CharField(max_length=16, unique=True, null=True, blank=True)
    poll_digest = models.CharField(max_length=64, blank=True, default="")
    # The login URL's `pat` parameter: a device login's approval code `clp_<prefix>_...`,
    # or the pending `cpt_<prefix>_...` token itself.
    code_prefix = models.CharField(max_length=16, unique=True)
    code_digest = models.CharField(max_length=64)
    # A pending PAT's last four characters, for the token's display once approved.
    code_last_four = models.CharField(max_length=4, blank=True, default="")
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
        verbose_name = "CLI login session"
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
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in CliLoginKind]),
                name="cli_session_kind_valid",
            ),
            # A device login is polled with its own secret; a pending PAT with its code.
            models.CheckConstraint(
                condition=(Q(kind=CliLoginKind.DEVICE) & Q(poll_prefix__isnull=False))
                | (Q(kind=CliLoginKind.PENDING_PAT) & Q(poll_prefix__isnull=True)),
                name="cli_session_poll_secret_iff_device",
            ),
        ]

    def __str__(self) -> str:
        return f"CLI login {self.code_prefix} ({self.status})"

    def is_expired(self, at: dt.datetime | None = None) -> bool:
        return self.expires_at <= (at or timezone.now())
