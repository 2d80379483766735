"""Writes for people's email addresses (django-allauth's `EmailAddress` rows)."""

from __future__ import annotations

from allauth.account.models import EmailAddress

from accounts.models import User


def email_mark_verified(*, user: User) -> EmailAddress:
    """The user's address is proven (they followed a link sent to it, e.g. an invitation):
    sign-in will not ask to verify it again. Idempotent."""
    # allauth's unique (user, email) index backs this upsert.
    address, _ = EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    return address
