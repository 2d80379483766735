"""Demo data for the embedded mode: one customer with a contract, two projects, a staff
login and an owner login. Idempotent: it is `provision` plus passwords, and it keeps the
demo API keys in DATA_DIR (never in the repository) so every run can print them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from accounts.services.provisioning import provision
from tools.fleet.demo import demo_usage

STAFF_LOGIN = ("staff@example.com", "staff")
OWNER_LOGIN = ("owner@acme.example", "demo")


def demo_spec() -> dict[str, Any]:
    today = timezone.now().date()
    return {
        "organization": {"slug": "acme", "name": "Acme Publishing"},
        "owner_email": OWNER_LOGIN[0],
        "contract": {
            "plan": "business",
            "starts_on": today.replace(day=1).isoformat(),
            "ends_on": (today.replace(day=1) + dt.timedelta(days=366)).isoformat(),
            "api_calls_per_period": 2_000_000,
            "seats_per_environment": 10,
            "tenants_per_environment": 3,
            "developer_seats": 5,
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
    usage = demo_usage(keys=keys)
    return {
        "logins": {"staff": STAFF_LOGIN, "owner": OWNER_LOGIN},
        "api_keys": keys,
        "usage": usage,
    }
