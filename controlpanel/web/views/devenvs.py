"""My development environments: a seat holder's personal environments per project."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from accounts.models import DeveloperSeat, Environment, EnvironmentKind, Membership, Project
from accounts.requests import signed_in_user
from accounts.services.personal import IssuedPersonalEnvironment, personal_environment_get_or_create
from accounts.services.team import TeamError
from controlpanel.web.access import org_page
from controlpanel.web.forms import PersonalEnvironmentForm
from controlpanel.web.views.common import page, refused


def _page(
    request: HttpRequest,
    membership: Membership,
    *,
    issued: IssuedPersonalEnvironment | None = None,
    form_errors: tuple[str, PersonalEnvironmentForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = signed_in_user(request)
    seated = set(
        DeveloperSeat.objects.filter(membership=membership, freed_at=None).values_list(
            "project_id", flat=True
        )
    )
    projects = list(Project.objects.filter(organization=membership.organization).order_by("name"))
    environments: dict[int, list[Environment]] = {}
    for env in Environment.objects.filter(
        project__organization=membership.organization, owner=user, kind=EnvironmentKind.PERSONAL
    ).order_by("name"):
        environments.setdefault(env.project_id, []).append(env)
    rows = []
    for project in projects:
        if project.pk not in seated and project.pk not in environments:
            continue
        form = (
            form_errors[1]
            if form_errors and form_errors[0] == project.slug
            else PersonalEnvironmentForm(prefix=project.slug)
        )
        rows.append((project, project.pk in seated, environments.get(project.pk, []), form))
    return page(
        request,
        "web/devenvs.html",
        {
            "membership": membership,
            "rows": rows,
            "issued": issued,
            "api_url": settings.PUBLIC_URL,
            "per_seat": settings.PERSONAL_ENVIRONMENTS_PER_SEAT,
        },
        section="devenvs",
        breadcrumbs=[("My environments", None)],
        status=status,
    )


@org_page()
def devenvs(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership)


@require_POST
@org_page()
def devenv_get(request: HttpRequest, membership: Membership, project: str) -> HttpResponse:
    """Create the environment, or give an existing one a fresh key (the old one stops):
    either way the ready-to-paste lines are shown once."""
    found = get_object_or_404(Project, organization=membership.organization, slug=project)
    form = PersonalEnvironmentForm(request.POST, prefix=found.slug)
    if form.is_valid():
        try:
            issued = personal_environment_get_or_create(
                project=found, user=signed_in_user(request), name=form.cleaned_data["name"]
            )
        except TeamError as error:
            if error.code == "no_developer_seat":
                return refused(request, error, "web:devenvs", membership.organization.slug)
            form.add_error("name", error.message)
        else:
            return _page(request, membership, issued=issued)
    return _page(request, membership, form_errors=(found.slug, form), status=400)
