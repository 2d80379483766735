"""Routes of the web UI. Mounted by controlpanel.urls: the site-wide pages first, the
organization pages (`<org>/...`) after every other app's routes, so an organization slug
can never shadow a fixed path (reserved slugs: controlpanel.web.signup.RESERVED_SLUGS)."""

from __future__ import annotations

from django.urls import include, path

from controlpanel.web.views import (
    account,
    auth,
    dashboard,
    devenvs,
    front,
    notifications,
    projects,
    settings,
    team,
    usage,
    webhooks,
)

# Before allauth's own routes: the one sign-in page is the rate-limited one.
site_patterns = [
    path("", front.front_door, name="front-door"),
    path("login/", auth.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/login/", auth.RateLimitedLoginView.as_view(), name="account_login"),
    path("account/", account.account, name="account"),
    path("accounts/", include("allauth.urls")),
]

app_name = "web"
org_patterns = [
    path("transparency", front.transparency, name="transparency"),
    path("<slug:org>/", dashboard.dashboard, name="dashboard"),
    path("<slug:org>/usage/", usage.usage, name="usage"),
    path("<slug:org>/usage/hour", usage.usage_hour, name="usage-hour"),
    path("<slug:org>/projects/", projects.project_list, name="projects"),
    path("<slug:org>/projects/new", projects.project_create, name="project-create"),
    path("<slug:org>/projects/<slug:project>/", projects.project_detail, name="project"),
    path(
        "<slug:org>/projects/<slug:project>/environments",
        projects.environment_create,
        name="environment-create",
    ),
    path(
        "<slug:org>/projects/<slug:project>/environments/<int:env_id>/status",
        projects.environment_status,
        name="environment-status",
    ),
    path(
        "<slug:org>/projects/<slug:project>/environments/<int:env_id>/keys",
        projects.key_issue,
        name="key-issue",
    ),
    path(
        "<slug:org>/projects/<slug:project>/environments/<int:env_id>/keys/<int:key_id>/revoke",
        projects.key_revoke,
        name="key-revoke",
    ),
    path(
        "<slug:org>/projects/<slug:project>/environments/<int:env_id>/keys/<int:key_id>/rotate",
        projects.key_rotate,
        name="key-rotate",
    ),
    path(
        "<slug:org>/projects/<slug:project>/license",
        projects.license_download,
        name="license-download",
    ),
    path("<slug:org>/team/", team.team_page, name="team"),
    path("<slug:org>/team/invite", team.invite, name="invite"),
    path(
        "<slug:org>/team/invitations/<int:invitation_id>/resend",
        team.invitation_resend,
        name="invitation-resend",
    ),
    path(
        "<slug:org>/team/invitations/<int:invitation_id>/revoke",
        team.invitation_revoke,
        name="invitation-revoke",
    ),
    path("<slug:org>/team/members/<int:user_id>/role", team.member_role, name="member-role"),
    path("<slug:org>/team/members/<int:user_id>/remove", team.member_remove, name="member-remove"),
    path("<slug:org>/team/seats/<slug:project>/<int:user_id>", team.seat_toggle, name="seat"),
    path("<slug:org>/environments/", devenvs.devenvs, name="devenvs"),
    path("<slug:org>/environments/<slug:project>", devenvs.devenv_get, name="devenv-get"),
    path("<slug:org>/webhooks/", webhooks.webhooks, name="webhooks"),
    path("<slug:org>/webhooks/add", webhooks.webhook_add, name="webhook-add"),
    path(
        "<slug:org>/webhooks/<int:endpoint_id>/remove",
        webhooks.webhook_remove,
        name="webhook-remove",
    ),
    path("<slug:org>/webhooks/<int:endpoint_id>/test", webhooks.webhook_test, name="webhook-test"),
    path("<slug:org>/notifications/", notifications.notifications, name="notifications"),
    path("<slug:org>/settings/", settings.org_settings, name="org-settings"),
    # The page the CMS links to when its license lacks a feature (fixed by the CMS).
    path("<slug:org>/<slug:project>/settings", projects.project_settings, name="project-settings"),
]
