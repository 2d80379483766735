"""Projects, their environments, environment API keys and developer seats."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models.people import Membership, Organization, User

# Environment API keys on the wire: `cpk_<prefix>_<secret>` (accounts.tokens).
API_KEY_KIND = "cpk"


class Project(models.Model):
    """A customer's project. `slug` is the `projectId` of the wire protocols."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_slug_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class EnvironmentKind(models.TextChoices):
    PRODUCTION = "production", "Production"
    CICD = "cicd", "CI/CD"
    PERSONAL = "personal", "Personal"


class EnvironmentStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class ProtectedEnvironmentError(Exception):
    """A production environment cannot be deleted."""


class EnvironmentQuerySet(models.QuerySet["Environment"]):
    def delete(self) -> tuple[int, dict[str, int]]:
        if self.filter(kind=EnvironmentKind.PRODUCTION).exists():
            raise ProtectedEnvironmentError("A production environment cannot be deleted.")
        return super().delete()


class Environment(models.Model):
    """Where a CMS runs. Usage quotas apply per environment."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=EnvironmentKind.choices)
    status = models.CharField(
        max_length=16, choices=EnvironmentStatus.choices, default=EnvironmentStatus.ENABLED
    )
    owner = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personal_environments",
        help_text="The developer a personal environment belongs to.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = EnvironmentQuerySet.as_manager()

    class Meta:
        ordering = ["project", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(kind=EnvironmentKind.PRODUCTION),
                name="environment_one_production_per_project",
            ),
            models.UniqueConstraint(
                fields=["project", "name"],
                condition=Q(owner__isnull=True),
                name="environment_shared_name_unique",
            ),
            models.UniqueConstraint(
                fields=["project", "owner", "name"],
                condition=Q(owner__isnull=False),
                name="environment_personal_name_unique",
            ),
            # Personal environments, and only they, belong to a developer.
            models.CheckConstraint(
                condition=(Q(kind=EnvironmentKind.PERSONAL) & Q(owner__isnull=False))
                | (~Q(kind=EnvironmentKind.PERSONAL) & Q(owner__isnull=True)),
                name="environment_owner_iff_personal",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in EnvironmentKind]),
                name="environment_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in EnvironmentStatus]),
                name="environment_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project}/{self.name}"

    @property
    def is_enabled(self) -> bool:
        return self.status == EnvironmentStatus.ENABLED

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.kind == EnvironmentKind.PRODUCTION:
            raise ProtectedEnvironmentError("A production environment cannot be deleted.")
        return super().delete(*args, **kwargs)


class ApiKey(models.Model):
    """An environment's key. The secret is shown once; we keep its SHA-256 digest only.

    Wire form: `cpk_<prefix>_<secret>`. The prefix is public and indexed for lookup;
    the digest of the whole key must equal `digest` (the key check:
    accounts.selectors.api_keys, which says why that comparison is safe).
    """

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    # Serves the authentication lookup `ApiKey.objects.get(prefix=...)` on every request.
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    # Personal environments only: the key itself, encrypted (accounts.sealing), because the
    # CMS's CLI asks for it again on every deploy of its developer. Empty for production and
    # CI/CD keys, which are shown once.
    sealed = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        permissions = [("revoke_apikey", "Can revoke API keys")]

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        return f"{API_KEY_KIND}_{self.prefix}_…{self.last_four}"

    def is_usable(self, at: dt.datetime | None = None) -> bool:
        at = at or timezone.now()
        if self.revoked_at is not None and self.revoked_at <= at:
            return False
        return not (self.expires_at is not None and self.expires_at <= at)


class DeveloperSeat(models.Model):
    """A member assigned to a project as a developer: holding one lets them get personal
    environments (and their licenses) on that project. Freed seats are kept as history,
    also when the member leaves the organization: the seat is freed, `membership` becomes
    NULL and `user` still says who held it."""

    membership = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="developer_seats",
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="developer_seats"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="developer_seats")
    assigned_at = models.DateTimeField(default=timezone.now)
    assigned_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    freed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "assigned_at"]
        constraints = [
            # One held seat per member and project; freed ones stay as history.
            models.UniqueConstraint(
                fields=["membership", "project"],
                condition=Q(freed_at__isnull=True),
                name="developer_seat_one_held_per_member_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or 'a former member'} on {self.project}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.user_id is None and self.membership is not None:
            self.user_id = self.membership.user_id
        super().save(*args, **kwargs)
