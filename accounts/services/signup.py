"""Writes of self-service sign-up: a new person's organization, with them as its owner."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import Organization, User
from accounts.services.organizations import organization_create

SLUG_MAX = 64


def _candidates(base: str):
    yield base
    for n in range(2, 1000):
        suffix = f"-{n}"
        yield f"{base[: SLUG_MAX - len(suffix)]}{suffix}"


def organization_signup(*, user: User, name: str, reserved: frozenset[str]) -> Organization:
    """Create the organization `name` owned by `user`, its slug (the `orgId` on the wire)
    made from the name: the first of `acme`, `acme-2`, ... that is free and not reserved
    (paths of the site itself, such as `admin`)."""
    name = name.strip()[:200]
    base = slugify(name)[:SLUG_MAX].strip("-") or "org"
    for slug in _candidates(base):
        if slug in reserved or Organization.objects.filter(slug=slug).exists():
            continue
        try:
            # The unique slug index decides a race between two sign-ups of one name.
            with transaction.atomic():
                return organization_create(slug=slug, name=name, owner=user)
        except IntegrityError:
            continue
    raise ValueError(f"No free organization slug for {name!r}.")
