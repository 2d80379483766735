"""Signing keys as published (the JWKS) and issued licenses as listed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import (
    License,
    Organization,
    SigningKey,
    SigningKeyStatus,
)


def signing_keys_published(*, at: dt.datetime | None = None) -> QuerySet[SigningKey]:
    """Every key whose licenses may still be valid: the active key, and any other key
    that signed a license not yet expired. Withdrawn (compromised) keys never."""
    at = at or timezone.now()
    unexpired = License.objects.filter(signing_key=OuterRef("pk"), expires_at__gt=at)
    return (
        SigningKey.objects.filter(withdrawn_at__isnull=True)
        .filter(Q(status=SigningKeyStatus.ACTIVE) | Exists(unexpired))
        .order_by("-created_at")
    )


def jwks(*, at: dt.datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    return {"keys": [key.public_jwk for key in signing_keys_published(at=at)]}


def signing_keys_all() -> QuerySet[SigningKey]:
    unexpired = License.objects.filter(signing_key=OuterRef("pk"), expires_at__gt=timezone.now())
    return SigningKey.objects.annotate(has_unexpired=Exists(unexpired)).order_by("-created_at")


# --- licenses ----------------------------------------------------------------------------------
def licenses_for_organization(*, organization: Organization) -> QuerySet[License]:
    return License.objects.filter(organization=organization).select_related(
        "project", "environment", "signing_key"
    )
