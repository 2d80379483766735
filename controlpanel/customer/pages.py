"""Browser pages of the team flows: sign in, approve a CLI login, accept an invitation."""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts.models import (
    MANAGER_ROLES,
    CliSessionStatus,
    Contract,
    Membership,
    PersonalAccessToken,
    Project,
    User,
)
from accounts.selectors import team as team_selectors
from accounts.selectors.organizations import contract_active
from accounts.services import access, team
from controlpanel.customer import ratelimit


class RateLimitedLoginView(LoginView):
    """Django's login page; sign-in attempts are counted per client IP and per address."""

    template_name = "customer/login.html"
    redirect_authenticated_user = True
    next_page = "account"  # without `next`, land on the account page

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            wait = ratelimit.check(
                request, "login", "RATE_LIMIT_LOGIN", request.POST.get("username", "")
            )
        except ratelimit.LimiterUnavailable:
            return _unavailable(request)
        if wait:
            response = render(
                request,
                "customer/message.html",
                {
                    "title": "Too many sign-in attempts",
                    "text": f"Try again in {wait} seconds.",
                },
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        ratelimit.sign_in_failed(self.request.POST.get("username", ""))
        return super().form_invalid(form)


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Who you are, your organizations and projects, and your access tokens (revocable)."""
    if request.method == "POST":
        raw = request.POST.get("revoke", "")
        token = (
            PersonalAccessToken.objects.filter(pk=int(raw), user=request.user).first()
            if raw.isdigit()
            else None
        )
        if token is None:
            return _message(request, "Unknown token", "No such access token of yours.", 404)
        access.pat_revoke(token=token)
        return redirect("account")
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("organization")
        .order_by("organization__slug")
    )
    return render(
        request,
        "customer/account.html",
        {
            "memberships": memberships,
            "projects": team_selectors.projects_for_user(user=request.user),
            "tokens": team_selectors.access_tokens_of(user=request.user),
            "now": timezone.now(),
        },
    )


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
            session=session, user=request.user, approve=approve, name=pat_name
        ):
            return _message(request, "CLI login closed", "This CLI login has expired.", 410)
        if approve:
            return _message(
                request,
                "CLI login approved",
                f"The command line is now signed in as {request.user.email}. "
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


@login_required
@require_http_methods(["GET"])
def project_settings(request: HttpRequest, org: str, project: str) -> HttpResponse:
    """Where the CMS sends a person when its license does not permit a feature
    (`{WCP_APP_URL}/{orgId}/{projectId}/settings`): what the project's license allows, and
    who in the organization can change it. Members only (404 otherwise)."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization__slug=org)
        .first()
    )
    the_project = (
        Project.objects.filter(organization=membership.organization, slug=project).first()
        if membership
        else None
    )
    if the_project is None:
        return _message(
            request,
            "Project not found",
            f"You are not a member of an organization with a project {org}/{project}.",
            404,
        )
    contract = contract_active(organization=membership.organization)
    managers = sorted(
        Membership.objects.filter(
            organization=membership.organization, role__in=MANAGER_ROLES
        ).select_related("user"),
        key=lambda m: (MANAGER_ROLES.index(m.role), m.user.email),  # owners first
    )
    return render(
        request,
        "customer/project_settings.html",
        {
            "organization": membership.organization,
            "project": the_project,
            "contract": contract,
            "features": _features(contract) if contract else [],
            "managers": [m for m in managers if m.user_id != request.user.pk],
            "you_manage": membership.can_manage,
        },
    )


def _features(contract: Contract) -> list[tuple[str, bool]]:
    return [
        ("Advanced publishing workflow", contract.advanced_publishing_workflow),
        ("Teams (advanced access control)", contract.aacl_teams),
        ("Private files (advanced access control)", contract.aacl_private_files),
        (
            "Folder-level permissions (advanced access control)",
            contract.aacl_folder_level_permissions,
        ),
        ("Audit logs", contract.audit_logs),
        ("Record locking", contract.record_locking),
    ]


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
