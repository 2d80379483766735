"""Helpers shared by the licensing tests: personal environments, fetching licenses and
decoding answers the way the CMS does."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from django.test import Client

from accounts.models import DeveloperSeat, Environment, EnvironmentKind, Membership, User
from accounts.services.api_keys import api_key_issue
from tests.conftest import Tenant


@dataclass
class Personal:
    environment: Environment
    developer: User
    seat: DeveloperSeat
    api_key: str


def make_personal(tenant: Tenant, *, name: str = "dev") -> Personal:
    """The member of `tenant` holds a developer seat and a personal environment. (The team
    helper's services create these in the product; licensing only reads them.)"""
    developer = tenant.member
    membership = Membership.objects.get(organization=tenant.organization, user=developer)
    seat = DeveloperSeat.objects.create(membership=membership, project=tenant.project)
    environment = Environment.objects.create(
        project=tenant.project, name=name, kind=EnvironmentKind.PERSONAL, owner=developer
    )
    key = api_key_issue(environment=environment).plaintext
    return Personal(environment, developer, seat, key)


def license_url(tenant: Tenant) -> str:
    return f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/license"


def fetch(client: Client, url: str, key: str | None):
    """As the CMS does it: the raw key in `authorization`, no `Bearer`."""
    headers = {"authorization": key} if key is not None else {}
    return client.get(url, headers=headers)


def decode_license(answer: dict[str, Any]) -> dict[str, Any]:
    """As the CMS does it: base64, then UTF-8 JSON."""
    return json.loads(base64.b64decode(answer["license"]).decode("utf-8"))


def decode_payload(token: str) -> dict[str, Any]:
    """Reads claims without verifying (for assertions about what was signed)."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
