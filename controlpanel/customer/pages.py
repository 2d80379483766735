"""Browser pages of the team flows: approve a CLI login, accept an invitation (sign-in and
the account page: controlpanel.web)."""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import CliSessionStatus, User
from accounts.requests import signed_in_user
from accounts.services import access, team
from controlpanel.customer import ratelimit


def _unavailable(request: HttpRequest) -> HttpResponse:
    response = _message(
        request, "Temporarily unavailable", "Please try again in a moment.", status=503
    )
    response["Retry-After"] = str(ratelimit.UNAVAILABLE_RETRY_AFTER)
    return response


def _message(request: HttpRequest, title: str, text: str, status: int = 200) -> HttpResponse:
    return render(request, "customer/message.html", {"title": title, "text": text}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def cli_login(request: HttpRequest) -> HttpResponse:
    """What a CLI opened: this product's CLI (`pat=clp_...`) or the CMS's (`pat=cpt_...`,
    with the `pat_name` it gives its token). Shows what is being authorized, approves or
    denies on an explicit POST."""
    code = request.GET.get("pat", "")
    pat_name = request.GET.get("pat_name", "")[:100]
    session = access.cli_session_by_code(code)
    if session is None:
        return _message(request, "Unknown CLI login", "This login link is not valid.", 404)
    if session.status != CliSessionStatus.PENDING or session.is_expired():
        return _message(
            request,
            "CLI login closed",
            "This CLI login was already approved, denied or has expired. "
            "Run the login command again.",
            410,
        )
    if request.method == "POST":
        approve = request.POST.get("decision") == "approve"
        if not access.cli_session_decide(
            session=session, user=signed_in_user(request), approve=approve, name=pat_name
        ):
            return _message(request, "CLI login closed", "This CLI login has expired.", 410)
        if approve:
            return _message(
                request,
                "CLI login approved",
                f"The command line is now signed in as {signed_in_user(request).email}. "
                "You can close this window.",
            )
        return _message(request, "CLI login denied", "Nothing was authorized.")
    return render(
        request,
        "customer/cli_approve.html",
        {
            "session": session,
            "code": code,
            "pat_name": pat_name,
            "client_name": session.client_name or pat_name or session.get_kind_display(),
            "minutes_left": max(
                0, int((session.expires_at - timezone.now()).total_seconds() // 60)
            ),
        },
    )


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest) -> HttpResponse:
    """The link of the invitation email. Signed in as the invited address: one click.
    No account yet: sign up here. An account but signed out: sign in first."""
    token = request.GET.get("token", "")
    if request.method == "POST":
        try:
            wait = ratelimit.check(
                request, "invitation_accept", "RATE_LIMIT_INVITATION_ACCEPT", token
            )
        except ratelimit.LimiterUnavailable:
            return _unavailable(request)
        if wait:
            response = _message(request, "Too many attempts", f"Try again in {wait} seconds.", 429)
            response["Retry-After"] = str(wait)
            return response
    invitation = team.invitation_find(token=token)
    if invitation is None:
        return _message(
            request,
            "Invitation not valid",
            "This invitation link was used, revoked, replaced by a newer one, or has "
            "expired. Ask for a new invitation.",
            404,
        )
    user = request.user if request.user.is_authenticated else None
    context: dict = {
        "invitation": invitation,
        "token": token,
        "errors": [],
        "signed_in": user is not None,
        "user_matches": user is not None and user.email == invitation.email,
        "has_account": User.objects.filter(email=invitation.email).exists(),
    }
    if request.method == "POST":
        try:
            if user is not None:
                team.invitation_accept(token=token, user=user)
            else:
                if request.POST.get("password") != request.POST.get("password2"):
                    raise team.TeamError("The two passwords differ.", code="password_mismatch")
                user, _ = team.invitation_accept_signup(
                    token=token,
                    password=request.POST.get("password", ""),
                    name=request.POST.get("name", "")[:150],
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        except team.TeamError as error:
            context["errors"] = [error.message]
            return render(request, "customer/invitation.html", context, status=error.status)
        return _message(
            request,
            "Welcome",
            f"You joined {invitation.organization.name} as {invitation.get_role_display().lower()}.",
        )
    return render(request, "customer/invitation.html", context)
