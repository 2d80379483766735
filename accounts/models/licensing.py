"""Signing keys (public halves only) and the record of every issued license.

Registered with the `accounts` app through accounts.models.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class SigningKeyStatus(models.TextChoices):
    ACTIVE = "active", "Active (signs new licenses)"
    RETIRED = "retired", "Retired (verifies licenses it signed until they expire)"


class SigningKey(models.Model):
    """The public half of an Ed25519 license signing key. Private keys never reach the
    database: they live in the environment, a file, or DATA_DIR (embedded mode)."""

    kid = models.CharField("key id", max_length=64, unique=True, help_text="RFC 7638 thumbprint.")
    public_jwk = models.JSONField(help_text="The public key as a JWK (OKP, Ed25519).")
    status = models.CharField(
        max_length=16, choices=SigningKeyStatus.choices, default=SigningKeyStatus.ACTIVE
    )
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set for a compromised key: unpublished at once, its licenses stop verifying.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One key signs new licenses at a time; rotation retires the previous one.
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status=SigningKeyStatus.ACTIVE),
                name="signing_key_one_active",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in SigningKeyStatus]),
                name="signing_key_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status=SigningKeyStatus.ACTIVE, retired_at__isnull=True)
                | Q(status=SigningKeyStatus.RETIRED, retired_at__isnull=False),
                name="signing_key_retired_at_iff_retired",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.status})"


class LicenseKind(models.TextChoices):
    PROJECT = "project", "Project"
    PERSONAL = "personal", "Personal environment"


class License(models.Model):
    """One issued license token. The token itself is not kept: its claims are, and its
    `jti` names it, so staff can answer disputes and revoke it."""

    jti = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=LicenseKind.choices)
    subject = models.CharField(max_length=255, help_text="The token's `sub` claim.")
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="licenses"
    )
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="licenses"
    )
    # Records outlive deleted environments and users (history): SET_NULL, not CASCADE.
    environment = models.ForeignKey(
        "accounts.Environment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="licenses",
    )
    developer = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="personal_licenses",
        help_text="The developer a personal-environment license is bound to.",
    )
    signing_key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="licenses")
    claims = models.JSONField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-issued_at"]
        permissions = [("revoke_license", "Can revoke licenses")]
        indexes = [
            # Serves the JWKS query: "does this key still have a license that has not expired?"
            models.Index(fields=["signing_key", "expires_at"], name="license_key_expiry_idx"),
            # Serves the customer/staff listing of an organization's licenses, newest first.
            models.Index(fields=["organization", "-issued_at"], name="license_org_issued_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in LicenseKind]), name="license_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("issued_at")),
                name="license_expires_after_issue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.jti}"

    @property
    def kid(self) -> str:
        return self.signing_key.kid
