"""URL routes of controlpanel/customer (mounted at the site root by controlpanel.urls)."""

from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path

from controlpanel.customer import api, cli_api, licenses, pages, webhooks

ORG = "api/v1/orgs/<slug:org>"
PROJECT = f"{ORG}/projects/<slug:project>"

urlpatterns = [
    # Pages
    path("logout/", LogoutView.as_view(next_page="login"), name="logout"),
    path("login/cli", pages.cli_login, name="cli-login"),
    path("invitations/accept", pages.invitation_accept, name="invitation-accept"),
    # The caller
    path("api/v1/me", api.MeView.as_view(), name="api-me"),
    path("api/v1/projects", api.ProjectsView.as_view(), name="api-projects"),
    path("api/v1/tokens", api.TokensView.as_view(), name="api-tokens"),
    path("api/v1/tokens/<int:token_id>", api.TokenDetailView.as_view(), name="api-token"),
    path(
        "api/v1/invitations/accept",
        api.InvitationAcceptView.as_view(),
        name="api-invitation-accept",
    ),
    # CLI login
    path("api/v1/cli/sessions", cli_api.CliSessionsView.as_view(), name="api-cli-sessions"),
    path(
        "api/v1/cli/sessions/<str:poll_id>",
        cli_api.CliSessionDetailView.as_view(),
        name="api-cli-session",
    ),
    # Organization: members and invitations
    path(f"{ORG}/members", api.MembersView.as_view(), name="api-members"),
    path(f"{ORG}/members/<int:user_id>", api.MemberDetailView.as_view(), name="api-member"),
    path(f"{ORG}/invitations", api.InvitationsView.as_view(), name="api-invitations"),
    path(
        f"{ORG}/invitations/<int:invitation_id>",
        api.InvitationDetailView.as_view(),
        name="api-invitation",
    ),
    path(
        f"{ORG}/invitations/<int:invitation_id>/resend",
        api.InvitationResendView.as_view(),
        name="api-invitation-resend",
    ),
    # Projects: developer seats and personal environments
    path(f"{PROJECT}/seats", api.SeatsView.as_view(), name="api-seats"),
    path(f"{PROJECT}/seats/<int:user_id>", api.SeatDetailView.as_view(), name="api-seat"),
    path(
        f"{PROJECT}/personal-environments",
        api.PersonalEnvironmentsView.as_view(),
        name="api-personal-environments",
    ),
    # Licenses issued to the organization (members), webhook endpoints (owners/admins)
    path(
        f"{ORG}/licenses",
        licenses.OrganizationLicensesView.as_view(),
        name="organization-licenses",
    ),
    path(f"{ORG}/webhooks", webhooks.WebhookListView.as_view(), name="compliance-webhooks"),
    path(
        f"{ORG}/webhooks/<int:endpoint_id>",
        webhooks.WebhookDetailView.as_view(),
        name="compliance-webhook",
    ),
]
