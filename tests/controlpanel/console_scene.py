"""A customer with a month of usage, flags, a contract near its end and an audit trail:
what the staff console tests look at."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from accounts.licensing import services as licensing_services
from accounts.models import EnvironmentKind, PlanTemplate, User
from accounts.services.organizations import environment_create
from accounts.services.team import invitation_create
from metering.compliance import evaluation, gaps, notifications
from metering.compliance.services import webhook_endpoint_create
from tests.conftest import Tenant, make_tenant
from tests.factories import UserFactory
from tests.metering.compliance.usage import add_calls, report, set_gauge

NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"


@dataclass
class Scene:
    tenant: Tenant
    quiet: Tenant  # a second customer, silent for two days
    superuser: User
    support: User
    billing: User
    plain_staff: User  # staff, in no group


def staff(email: str, *groups: str, superuser: bool = False) -> User:
    from django.contrib.auth.models import Group

    user = UserFactory(email=email, is_staff=True, is_superuser=superuser)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def build_scene() -> Scene:
    """Call with the clock at NOW (time_machine)."""
    tenant = make_tenant(
        "acme",
        starts_on=dt.date(2026, 1, 15),
        ends_on=dt.date(2026, 12, 15),
        plan="business",
        api_calls_per_period=250_000,
    )
    quiet = make_tenant("globex", starts_on=dt.date(2026, 3, 1), ends_on=dt.date(2027, 3, 1))
    ci = environment_create(project=tenant.project, name="ci", kind=EnvironmentKind.CICD)
    for day in range(40):
        at = NOW - dt.timedelta(days=day, hours=1)
        add_calls(tenant.production, at, 20_000 + 900 * (day % 7))
        add_calls(ci, at, 1_000)
    set_gauge(tenant.production, "seats", 11, NOW - dt.timedelta(hours=2))
    report(tenant.production, NOW - dt.timedelta(minutes=5))
    report(ci, NOW - dt.timedelta(minutes=5))
    add_calls(quiet.production, NOW - dt.timedelta(days=2), 500)
    report(quiet.production, NOW - dt.timedelta(days=2))
    webhook_endpoint_create(
        organization=tenant.organization, url="https://hooks.example/cp", created_by=tenant.owner
    )
    membership = tenant.organization.memberships.get(user=tenant.owner)
    invitation_create(
        organization=tenant.organization, email="new.dev@example.com", role="member", by=membership
    )
    contract = tenant.organization.contracts.get()
    licensing_services.license_issue(environment=tenant.production, contract=contract)
    old = licensing_services.license_issue(environment=ci, contract=contract).record
    licensing_services.license_revoke(license=old, reason="replaced")
    evaluation.evaluate()
    gaps.detect_gaps()
    notifications.fan_out()
    PlanTemplate.objects.create(
        name="Growth",
        description="1M calls, 10 seats",
        api_calls_per_period=1_000_000,
        seats_per_environment=10,
        tenants_per_environment=3,
        developer_seats=5,
    )
    return Scene(
        tenant=tenant,
        quiet=quiet,
        superuser=staff("root@vendor.example", superuser=True),
        support=staff("support@vendor.example", "Support"),
        billing=staff("billing@vendor.example", "Billing"),
        plain_staff=staff("intern@vendor.example"),
    )
