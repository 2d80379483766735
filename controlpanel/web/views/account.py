"""Your account: who you are, security (password, two-factor), and access tokens."""

from __future__ import annotations

import datetime as dt

from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import Membership, PersonalAccessToken
from accounts.requests import signed_in_user
from accounts.selectors import team as team_selectors
from accounts.services import access
from controlpanel.web.forms import TokenForm
from controlpanel.web.views.common import page


def _render(
    request: HttpRequest, *, form: TokenForm, issued=None, status: int = 200
) -> HttpResponse:
    user = signed_in_user(request)
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name")
    )
    return page(
        request,
        "web/account.html",
        {
            "memberships": memberships,
            "projects": team_selectors.projects_for_user(user=user),
            "tokens": team_selectors.access_tokens_of(user=user),
            "now": timezone.now(),
            "form": form,
            "issued": issued,
            "mfa_enabled": is_mfa_enabled(user),
        },
        breadcrumbs=[("Your account", None)],
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST `revoke=<id>`: revoke one of your tokens (404 for anyone
    else's). POST `create`: a new token, shown once."""
    if request.method == "POST":
        if "revoke" in request.POST:
            raw = request.POST.get("revoke", "")
            token = (
                PersonalAccessToken.objects.filter(
                    pk=int(raw), user=signed_in_user(request)
                ).first()
                if raw.isdigit()
                else None
            )
            if token is None:
                response = page(
                    request,
                    "customer/message.html",
                    {"title": "Unknown token", "text": "No such access token of yours."},
                    status=404,
                )
                return response
            access.pat_revoke(token=token)
            return redirect("account")
        form = TokenForm(request.POST)
        if form.is_valid():
            issued = access.pat_issue(
                user=signed_in_user(request),
                name=form.cleaned_data["name"],
                expires_in=dt.timedelta(days=form.cleaned_data["days"]),
            )
            return _render(request, form=TokenForm(), issued=issued)
        return _render(request, form=form, status=400)
    return _render(request, form=TokenForm())
