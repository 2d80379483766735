"""Contracts: an organization's terms for a span of time, its limits and overage policies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import BigIntegerRangeField, DateRangeField, RangeOperators
from django.db import models
from django.db.models import Q, Value
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


def _policy_constraints(metric: str, prefix: str = "contract") -> list[models.CheckConstraint]:
    mode, factor = f"{metric}_overage", f"{metric}_overage_factor"
    return [
        models.CheckConstraint(
            condition=Q(**{f"{mode}__in": [m.value for m in OverageMode]}),
            name=f"{prefix}_{metric}_overage_valid",
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
            name=f"{prefix}_{metric}_factor_valid",
        ),
    ]


class DateRange(models.Func):
    """`daterange(starts_on, ends_on, '[)')`: a contract's span as PostgreSQL sees it."""

    function = "DATERANGE"
    output_field = DateRangeField()


class IdRange(models.Func):
    """`int8range(id, id, '[]')`: one id as a range, so that "same organization" is a
    range overlap GiST indexes natively (no btree_gist, which not every PostgreSQL build
    ships: the embedded server's does not)."""

    function = "INT8RANGE"
    output_field = BigIntegerRangeField()


class ContractTerms(models.Model):
    """Limits, feature switches and overage policies: what a contract grants, and what a
    plan template pre-fills."""

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
        abstract = True

    @staticmethod
    def term_names() -> list[str]:
        """The fields a template carries into a new contract."""
        own = {"id", "name", "description", "months", "created_at"}
        return [f.name for f in PlanTemplate._meta.concrete_fields if f.name not in own]


class PlanTemplate(ContractTerms):
    """A named set of terms that staff start a contract from (the contract copies them:
    changing a template never changes a signed contract)."""

    name = models.CharField(max_length=100, unique=True, help_text="Becomes the contract's plan.")
    description = models.CharField(max_length=200, blank=True)
    months = models.PositiveIntegerField(default=12, help_text="Usual length of the term.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(api_calls_per_period__isnull=True) | Q(api_calls_per_period__gte=0),
                name="plan_template_api_calls_nonnegative",
            ),
            *[c for m in METRICS for c in _policy_constraints(m, prefix="plan_template")],
        ]

    def __str__(self) -> str:
        return self.name


class Contract(ContractTerms):
    """The terms of one organization for a span of time.

    Billing periods are monthly, anchored on `starts_on`'s day (UTC). Limits of None mean
    unlimited. An organization's `active` contracts never overlap (an exclusion
    constraint), so a renewal can be scheduled ahead while the current term runs, and at
    most one is in force on any day. Ended and superseded contracts are kept as history.
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

    class Meta:
        ordering = ["organization", "-starts_on"]
        constraints = [
            # No two active contracts of one organization cover the same day. A GiST
            # exclusion over two ranges (the organization's id as a one-value range, the
            # days); the admin form reports a violation through Model.validate_constraints.
            ExclusionConstraint(
                name="contract_active_no_overlap",
                expressions=[
                    (IdRange("organization", "organization", Value("[]")), RangeOperators.OVERLAPS),
                    (DateRange("starts_on", "ends_on", Value("[)")), RangeOperators.OVERLAPS),
                ],
                condition=Q(status=ContractStatus.ACTIVE),
                violation_error_message=(
                    "This organization already has an active contract covering some of "
                    "these days: end it, shorten it, or start this one after it ends."
                ),
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
