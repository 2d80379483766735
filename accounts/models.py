"""Customers, their people, contracts, projects, environments and API keys.

Invariants live in the database (constraints below), so no code path can break them,
whatever it forgets to check.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts import periods

# Metric names, used alike in contracts, flags, APIs and specs.
API_CALLS = "api_calls"
SEATS = "seats"
TENANTS = "tenants"
DEVELOPER_SEATS = "developer_seats"
NONPROD_DAILY_API_CALLS = "nonprod_daily_api_calls"
METRICS = (API_CALLS, SEATS, TENANTS, DEVELOPER_SEATS, NONPROD_DAILY_API_CALLS)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in by email. Vendor staff are `is_staff` users, not members."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: object, **kwargs: object) -> None:
        # One spelling per address: the unique constraint then also means case-insensitive.
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class Organization(models.Model):
    """A customer. `slug` is the `orgId` of the wire protocols."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "user"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGER_ROLES


class Invitation(models.Model):
    """An invitation to join an organization. Only a digest of its token is stored."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="invitation_role_valid"
            ),
            # One open invitation per address and organization; re-sending rotates its token.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} -> {self.organization}"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class OverageMode(models.TextChoices):
    BLOCK = "block", "Block beyond the limit"
    ALLOW = "allow", "Allow and flag"
    ALLOW_UP_TO = "allow_up_to", "Allow up to a factor, then block"


class TenantLimitType(models.TextChoices):
    FIXED = "fixed", "Fixed count"
    SEAT_BASED = "seatBased", "Seat-based"


class ContractStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"
    SUPERSEDED = "superseded", "Superseded"


def _policy_fields(metric: str) -> tuple[models.CharField, models.DecimalField]:
    mode = models.CharField(
        max_length=16,
        choices=OverageMode.choices,
        default=OverageMode.BLOCK if metric in (SEATS, TENANTS) else OverageMode.ALLOW,
        help_text=f"What happens beyond the {metric} limit.",
    )
    factor = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="With allow_up_to: the cap is floor(limit x factor).",
    )
    return mode, factor


def _policy_constraints(metric: str) -> list[models.CheckConstraint]:
    mode, factor = f"{metric}_overage", f"{metric}_overage_factor"
    return [
        models.CheckConstraint(
            condition=Q(**{f"{mode}__in": [m.value for m in OverageMode]}),
            name=f"contract_{metric}_overage_valid",
        ),
        # A factor exactly when the mode needs one, and never below 1x.
        models.CheckConstraint(
            condition=(
                # isnull=False spelled out: NULL >= 1 is NULL, which a CHECK lets through.
                Q(
                    **{
                        mode: OverageMode.ALLOW_UP_TO,
                        f"{factor}__isnull": False,
                        f"{factor}__gte": Decimal(1),
                    }
                )
                | (~Q(**{mode: OverageMode.ALLOW_UP_TO}) & Q(**{f"{factor}__isnull": True}))
            ),
            name=f"contract_{metric}_factor_valid",
        ),
    ]


class Contract(models.Model):
    """The terms of one organization for a span of time.

    Billing periods are monthly, anchored on `starts_on`'s day (UTC). Limits of None mean
    unlimited. At most one contract per organization is `active` (history is kept).
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="contracts"
    )
    plan = models.CharField(max_length=100)
    status = models.CharField(
        max_length=16, choices=ContractStatus.choices, default=ContractStatus.ACTIVE
    )
    starts_on = models.DateField()
    ends_on = models.DateField(help_text="First day no longer covered (exclusive).")
    created_at = models.DateTimeField(default=timezone.now)

    api_calls_per_period = models.BigIntegerField(null=True, blank=True)
    seats_per_environment = models.PositiveIntegerField(null=True, blank=True)
    tenants_per_environment = models.PositiveIntegerField(null=True, blank=True)
    tenants_type = models.CharField(
        max_length=16, choices=TenantLimitType.choices, default=TenantLimitType.FIXED
    )
    developer_seats = models.PositiveIntegerField(null=True, blank=True)
    nonprod_daily_api_calls = models.PositiveIntegerField(default=5000, null=True, blank=True)

    # Feature switches, named after the license document's features.
    advanced_publishing_workflow = models.BooleanField(default=False)
    aacl_teams = models.BooleanField("AACL: teams", default=False)
    aacl_private_files = models.BooleanField("AACL: private files", default=False)
    aacl_folder_level_permissions = models.BooleanField(
        "AACL: folder-level permissions", default=False
    )
    audit_logs = models.BooleanField(default=False)
    record_locking = models.BooleanField(default=False)

    api_calls_overage, api_calls_overage_factor = _policy_fields(API_CALLS)
    seats_overage, seats_overage_factor = _policy_fields(SEATS)
    tenants_overage, tenants_overage_factor = _policy_fields(TENANTS)
    developer_seats_overage, developer_seats_overage_factor = _policy_fields(DEVELOPER_SEATS)
    nonprod_daily_api_calls_overage, nonprod_daily_api_calls_overage_factor = _policy_fields(
        NONPROD_DAILY_API_CALLS
    )

    class Meta:
        ordering = ["organization", "-starts_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(status=ContractStatus.ACTIVE),
                name="contract_one_active_per_organization",
            ),
            models.CheckConstraint(
                condition=Q(ends_on__gt=models.F("starts_on")), name="contract_dates_ordered"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ContractStatus]),
                name="contract_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(api_calls_per_period__isnull=True) | Q(api_calls_per_period__gte=0),
                name="contract_api_calls_nonnegative",
            ),
            *[c for m in METRICS for c in _policy_constraints(m)],
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.plan} {self.starts_on}..{self.ends_on}"

    # --- terms ---------------------------------------------------------------------------
    def limit_for(self, metric: str) -> int | None:
        return {
            API_CALLS: self.api_calls_per_period,
            SEATS: self.seats_per_environment,
            TENANTS: self.tenants_per_environment,
            DEVELOPER_SEATS: self.developer_seats,
            NONPROD_DAILY_API_CALLS: self.nonprod_daily_api_calls,
        }[metric]

    def policy_for(self, metric: str) -> tuple[str, Decimal | None]:
        return getattr(self, f"{metric}_overage"), getattr(self, f"{metric}_overage_factor")

    def cap_for(self, metric: str) -> int | None:
        """The hard ceiling for `metric`: None when nothing is ever refused."""
        limit = self.limit_for(metric)
        if limit is None:
            return None
        mode, factor = self.policy_for(metric)
        return periods.policy_cap(limit, mode, factor)

    # --- time ----------------------------------------------------------------------------
    def covers(self, day: dt.date) -> bool:
        return self.starts_on <= day < self.ends_on

    def is_in_force(self, at: dt.datetime | None = None) -> bool:
        at = at or timezone.now()
        return self.status == ContractStatus.ACTIVE and self.covers(at.astimezone(dt.UTC).date())

    def period_for(self, at: dt.datetime) -> periods.Period:
        return periods.period_containing(self.starts_on, at)


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

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        if self.kind == EnvironmentKind.PRODUCTION:
            raise ProtectedEnvironmentError("A production environment cannot be deleted.")
        return super().delete(*args, **kwargs)


class ApiKey(models.Model):
    """An environment's key. The secret is shown once; we keep its SHA-256 digest only.

    Wire form: `cpk_<prefix>_<secret>`. The prefix is public and indexed for lookup;
    the digest of the whole key is compared in constant time.
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

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.display

    @property
    def display(self) -> str:
        return f"cpk_{self.prefix}_…{self.last_four}"

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

    def save(self, *args, **kwargs) -> None:
        if self.user_id is None and self.membership_id is not None:
            self.user_id = self.membership.user_id
        super().save(*args, **kwargs)


# Team access models live in their own module; importing them here registers them.
from accounts.access_models import (  # noqa: E402, F401
    CliLoginSession,
    CliSessionStatus,
    PersonalAccessToken,
)

# Licensing models live in their own package; importing them here registers them with
# the accounts app.
from accounts.licensing.models import (  # noqa: E402, F401
    License,
    LicenseKind,
    SigningKey,
    SigningKeyStatus,
)
