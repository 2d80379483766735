"""The person behind a request, on the pages and endpoints only signed-in people reach."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


def signed_in_user(request: HttpRequest | Request) -> User:
    """`request.user` as a User. For views behind `login_required`, the admin site or
    DRF's `IsAuthenticated`, where it cannot be AnonymousUser; checked rather than assumed
    (403 if a route ever loses its guard)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user
