"""Who may open an organization's pages.

`org_page` resolves `<org>` through the caller's own membership, so a page of another
organization answers 404 exactly as if it did not exist (outsiders, members of other
organizations and staff alike); pages that change things need an owner or admin (403).
An organization that requires two-factor authentication sends members without it to set
it up first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Membership, Role
from accounts.requests import signed_in_user

LAST_ORG = "web_last_org"

View = Callable[..., HttpResponse]


def membership_for(request: HttpRequest, org: str) -> Membership | None:
    return (
        Membership.objects.select_related("organization", "user")
        .filter(organization__slug=org, user=signed_in_user(request))
        .first()
    )


def org_page(*, manage: bool = False, owner: bool = False) -> Callable[[View], View]:
    """Decorate `view(request, membership, ...)` for the route `<org>/...`."""

    def decorate(view: View) -> View:
        @login_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, org: str, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = membership_for(request, org)
            if membership is None:
                raise Http404("No such organization.")
            if owner and membership.role != Role.OWNER:
                raise PermissionDenied("Only an owner of the organization can do this.")
            if manage and not membership.can_manage:
                raise PermissionDenied("Only an owner or an admin of the organization can do this.")
            if membership.organization.mfa_required and not is_mfa_enabled(request.user):
                messages.warning(
                    request,
                    f"{membership.organization.name} requires two-factor authentication: "
                    "set up an authenticator app to continue.",
                )
                return redirect("mfa_activate_totp")
            if request.session.get(LAST_ORG) != org:
                request.session[LAST_ORG] = org
            request.web_membership = membership  # type: ignore[attr-defined]
            return view(request, membership, *args, **kwargs)

        return wrapper

    return decorate
