"""Demo data for the embedded mode: one customer with a contract near its limits, two
projects, a team (owner, admin, a developer with a seat), a webhook, and a staff login.
Idempotent: it is `provision` plus passwords and skipped steps, and it keeps the demo API
keys in DATA_DIR (never in the repository) so every run can print them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import Environment, Invitation, Membership, Organization, Project, Role, User
from accounts.services.emails import email_mark_verified
from accounts.services.organizations import membership_set
from accounts.services.personal import personal_environment_get_or_create
from accounts.services.provisioning import provision
from accounts.services.seats import seat_assign
from accounts.services.team import invitation_create
from metering.compliance.evaluation import evaluate
from metering.compliance.gaps import detect_gaps
from metering.compliance.models import WebhookEndpoint
from metering.compliance.services import webhook_endpoint_create, webhook_test_enqueue
from tools.fleet.demo import demo_usage

STAFF_LOGIN = ("staff@example.com", "staff")
OWNER_LOGIN = ("owner@acme.example", "demo")
ADMIN_LOGIN = ("admin@acme.example", "demo")
DEVELOPER_LOGIN = ("dev@acme.example", "demo")
INVITED = "designer@acme.example"
WEBHOOK_URL = "https://hooks.acme.example/control-panel"
# A week of history (the dashboard's chart and forecast need days, not hours); the
# contract's period started 5 days ago, and its limits sit just under that usage, so
# every dashboard figure, flag and forecast has something to show.
DEMO_HOURS = 7 * 24
PERIOD_STARTED_DAYS_AGO = 5


def demo_spec() -> dict[str, Any]:
    today = timezone.now().date()
    starts_on = today - dt.timedelta(days=PERIOD_STARTED_DAYS_AGO)
    return {
        "organization": {"slug": "acme", "name": "Acme Publishing"},
        "owner_email": OWNER_LOGIN[0],
        "contract": {
            "plan": "business",
            "starts_on": starts_on.isoformat(),
            "ends_on": (starts_on + dt.timedelta(days=365)).isoformat(),
            "api_calls_per_period": 600_000,
            "seats_per_environment": 10,
            "tenants_per_environment": 3,
            "developer_seats": 2,
            "nonprod_daily_api_calls": 5000,
            "features": {
                "advancedPublishingWorkflow": True,
                "advancedAccessControlLayer": {
                    "teams": True,
                    "privateFiles": True,
                    "folderLevelPermissions": False,
                },
                "auditLogs": True,
                "recordLocking": False,
            },
            "overage_policy": {
                "api_calls": "allow",
                "seats": "block",
                "tenants": {"allow_up_to": 1.5},
            },
        },
        "projects": [
            {
                "slug": "website",
                "name": "Website",
                "environments": [
                    {"name": "production", "kind": "production"},
                    {"name": "ci", "kind": "cicd"},
                ],
            },
            {
                "slug": "docs",
                "name": "Docs portal",
                "environments": [{"name": "production", "kind": "production"}],
            },
        ],
    }


def _set_password(email: str, password: str, **flags: bool) -> None:
    user, _ = User.objects.get_or_create(email=email, defaults=flags)
    for name, value in flags.items():
        setattr(user, name, value)
    user.set_password(password)  # demo passwords skip the strength validators on purpose
    user.save()
    email_mark_verified(user=user)  # demo addresses receive no mail: sign in at once


def _demo_team() -> None:
    """An admin, a developer holding a seat with a personal environment, an open
    invitation. Each step is skipped when already done."""
    organization = Organization.objects.get(slug="acme")
    owner = Membership.objects.get(organization=organization, user__email=OWNER_LOGIN[0])
    admin, _ = User.objects.get_or_create(email=ADMIN_LOGIN[0], defaults={"name": "Ada Admin"})
    developer, _ = User.objects.get_or_create(
        email=DEVELOPER_LOGIN[0], defaults={"name": "Dev Eloper"}
    )
    membership_set(organization=organization, user=admin, role=Role.ADMIN)
    seat_holder = membership_set(organization=organization, user=developer, role=Role.MEMBER)
    for email, password in (ADMIN_LOGIN, DEVELOPER_LOGIN):
        _set_password(email, password)
    website = Project.objects.get(organization=organization, slug="website")
    seat_assign(project=website, membership=seat_holder, by=owner)
    if not Environment.objects.filter(project=website, owner=developer).exists():
        personal_environment_get_or_create(project=website, user=developer, name="dev")
    if not Invitation.objects.filter(
        organization=organization, email=INVITED, accepted_at=None, revoked_at=None
    ).exists():
        invitation_create(organization=organization, email=INVITED, role=Role.MEMBER, by=owner)


def _demo_webhook() -> None:
    organization = Organization.objects.get(slug="acme")
    if not WebhookEndpoint.objects.filter(organization=organization, url=WEBHOOK_URL).exists():
        endpoint, _ = webhook_endpoint_create(
            organization=organization,
            url=WEBHOOK_URL,
            description="Our on-call bot (demo: nothing listens there)",
            created_by=None,
        )
        webhook_test_enqueue(endpoint=endpoint, by=None)


def load_demo() -> dict[str, Any]:
    result = provision(demo_spec())
    _set_password(*OWNER_LOGIN)
    _set_password(*STAFF_LOGIN, is_staff=True, is_superuser=True)

    keys_file = Path(settings.DATA_DIR) / "demo-keys.json"
    keys: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    for project in result["projects"]:
        for env in project["environments"]:
            if "api_key" in env:
                keys[f"{result['organization']['slug']}/{project['slug']}/{env['name']}"] = env[
                    "api_key"
                ]
    keys_file.write_text(json.dumps(keys, indent=2))
    keys_file.chmod(0o600)
    # Two days of simulated usage through the real ingest endpoints (once per environment).
    usage = demo_usage(keys=keys, hours=DEMO_HOURS)
    _demo_team()
    _demo_webhook()
    # Usage against the contract now, as the scheduled job would: the flags to show.
    evaluate()
    detect_gaps()
    return {
        "logins": {
            "owner": OWNER_LOGIN,
            "admin": ADMIN_LOGIN,
            "developer": DEVELOPER_LOGIN,
            "staff": STAFF_LOGIN,
        },
        "api_keys": keys,
        "organization": result["organization"]["slug"],
        "usage": usage,
    }
