"""Contracts: an organization's terms for a span of time, its limits and overage policies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts import periods
from accounts.models.people import Organization

# Metric names, used alike in contracts, flags, APIs and specs.
API_CALLS = "api_calls"
SEATS = "seats"
TENANTS = "tenants"
DEVELOPER_SEATS = "developer_seats"
NONPROD_DAILY_API_CALLS = "nonprod_daily_api_calls"
METRICS = (API_CALLS, SEATS, TENANTS, DEVELOPER_SEATS, NONPROD_DAILY_API_CALLS)


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
