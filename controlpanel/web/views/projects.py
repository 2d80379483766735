"""Projects: the list, one project's environments and API keys, its license."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.licensing import documents
from accounts.licensing.selectors.standing import license_standing
from accounts.licensing.services import LicensingError, license_issue
from accounts.models import ApiKey, Environment, EnvironmentKind, Membership, Project
from accounts.requests import signed_in_user
from accounts.selectors.organizations import contract_active
from accounts.selectors.team import managers_of
from accounts.services import api_keys, organizations
from accounts.services.audit import Actor
from accounts.services.errors import ServiceError
from controlpanel.web.access import org_page
from controlpanel.web.forms import ApiKeyForm, CicdEnvironmentForm, ProjectForm, RotateForm
from controlpanel.web.views.common import done, page, refused
from metering.overview import environment_reports, project_period_calls

FEATURE_LABELS = {
    "seats": "CMS seats",
    "multiTenancy": "Multi-tenancy",
    "advancedPublishingWorkflow": "Advanced publishing workflow",
    "advancedAccessControlLayer": "Advanced access control (teams, private files, folder permissions)",
    "auditLogs": "Audit logs",
    "recordLocking": "Record locking",
}


def _project(membership: Membership, slug: str) -> Project:
    return get_object_or_404(Project, organization=membership.organization, slug=slug)


def _environment(project: Project, env_id: int) -> Environment:
    # Personal environments are their developers' own (My environments), not managed here.
    return get_object_or_404(
        Environment.objects.exclude(kind=EnvironmentKind.PERSONAL), project=project, pk=env_id
    )


@org_page()
def project_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _project_list(request, membership, ProjectForm())


def _project_list(
    request: HttpRequest, membership: Membership, form: ProjectForm, status: int = 200
) -> HttpResponse:
    organization = membership.organization
    contract = contract_active(organization=organization)
    projects = list(
        Project.objects.filter(organization=organization)
        .order_by("name")
        .prefetch_related("environments")
    )
    calls = project_period_calls(organization=organization, contract=contract)
    rows = [(p, calls.get(p.pk, 0), len(p.environments.all())) for p in projects]
    return page(
        request,
        "web/projects.html",
        {"membership": membership, "rows": rows, "form": form, "contract": contract},
        section="projects",
        breadcrumbs=[("Projects", None)],
        status=status,
    )


@require_POST
@org_page(manage=True)
def project_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = ProjectForm(request.POST)
    if form.is_valid():
        try:
            project = organizations.project_create(
                organization=membership.organization,
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
            )
        except IntegrityError:
            form.add_error("slug", "A project with this id exists already.")
        else:
            return done(
                request,
                f"Project {project.name} created with its production environment.",
                "web:project",
                membership.organization.slug,
                project.slug,
            )
    return _project_list(request, membership, form, status=400)


def _project_page(
    request: HttpRequest,
    membership: Membership,
    project: Project,
    *,
    shown_key: tuple[Environment, str] | None = None,
    env_form: CicdEnvironmentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    organization = membership.organization
    contract = contract_active(organization=organization)
    environments = list(
        Environment.objects.filter(project=project)
        .exclude(kind=EnvironmentKind.PERSONAL)
        .order_by("kind", "name")
    )
    personal = (
        Environment.objects.filter(project=project, kind=EnvironmentKind.PERSONAL)
        .select_related("owner")
        .order_by("owner__email", "name")
    )
    reports = environment_reports(
        environments=[*environments, *personal], contract=contract, at=timezone.now()
    )
    keys: dict[int, list[ApiKey]] = {}
    for key in ApiKey.objects.filter(environment__in=environments).order_by("-created_at"):
        keys.setdefault(key.environment_id, []).append(key)
    rows = [(env, reports.get(env.pk), keys.get(env.pk, [])) for env in environments]
    features = []
    if contract is not None:
        for name, feature in documents.package_features(contract).items():
            features.append((FEATURE_LABELS.get(name, name), name, feature))
    return page(
        request,
        "web/project.html",
        {
            "membership": membership,
            "project": project,
            "rows": rows,
            "personal": [(env, reports.get(env.pk)) for env in personal],
            "contract": contract,
            "features": features,
            "managers": [] if membership.can_manage else managers_of(organization=organization),
            "shown_key": shown_key,
            "env_form": env_form or CicdEnvironmentForm(),
            "key_form": ApiKeyForm(),
            "rotate_form": RotateForm(),
            "now": timezone.now(),
        },
        section="projects",
        breadcrumbs=[
            ("Projects", reverse("web:projects", args=[organization.slug])),
            (project.name, None),
        ],
        status=status,
    )


@org_page()
def project_detail(request: HttpRequest, membership: Membership, project: str) -> HttpResponse:
    return _project_page(request, membership, _project(membership, project))


@org_page()
def project_settings(request: HttpRequest, membership: Membership, project: str) -> HttpResponse:
    """Where the CMS links when its license does not permit a feature: the project's
    license, features first."""
    found = _project(membership, project)
    return redirect(
        reverse("web:project", args=[membership.organization.slug, found.slug]) + "#license"
    )


@require_POST
@org_page(manage=True)
def environment_create(request: HttpRequest, membership: Membership, project: str) -> HttpResponse:
    found = _project(membership, project)
    form = CicdEnvironmentForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"]
        if Environment.objects.filter(project=found, name=name, owner=None).exists():
            form.add_error("name", f"This project has an environment named {name!r} already.")
        else:
            try:
                organizations.environment_create(
                    project=found, name=name, kind=EnvironmentKind.CICD
                )
            except (ServiceError, IntegrityError) as error:
                form.add_error("name", str(error))
            else:
                return done(
                    request,
                    f"CI/CD environment {name} created. Issue it an API key below.",
                    "web:project",
                    membership.organization.slug,
                    found.slug,
                )
    return _project_page(request, membership, found, env_form=form, status=400)


@require_POST
@org_page(manage=True)
def environment_status(
    request: HttpRequest, membership: Membership, project: str, env_id: int
) -> HttpResponse:
    found = _project(membership, project)
    environment = _environment(found, env_id)
    enable = request.POST.get("enabled") == "1"
    organizations.environment_set_status(
        environment=environment, enabled=enable, actor=Actor.of(signed_in_user(request))
    )
    state = "enabled" if enable else "disabled: its API keys and licenses stop working"
    return done(
        request,
        f"{environment.name} is {state}.",
        "web:project",
        membership.organization.slug,
        found.slug,
    )


@require_POST
@org_page(manage=True)
def key_issue(
    request: HttpRequest, membership: Membership, project: str, env_id: int
) -> HttpResponse:
    found = _project(membership, project)
    environment = _environment(found, env_id)
    form = ApiKeyForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    issued = api_keys.api_key_issue(
        environment=environment, name=name, created_by=signed_in_user(request)
    )
    # Rendered in this response only: the plaintext is never stored, nor put in a session.
    return _project_page(request, membership, found, shown_key=(environment, issued.plaintext))


def _key(found: Project, env_id: int, key_id: int) -> ApiKey:
    environment = _environment(found, env_id)
    return get_object_or_404(ApiKey, environment=environment, pk=key_id)


@require_POST
@org_page(manage=True)
def key_revoke(
    request: HttpRequest, membership: Membership, project: str, env_id: int, key_id: int
) -> HttpResponse:
    found = _project(membership, project)
    key = _key(found, env_id, key_id)
    api_keys.api_key_revoke(api_key=key, actor=Actor.of(signed_in_user(request)))
    return done(
        request,
        f"Key {key.display} revoked.",
        "web:project",
        membership.organization.slug,
        found.slug,
    )


@require_POST
@org_page(manage=True)
def key_rotate(
    request: HttpRequest, membership: Membership, project: str, env_id: int, key_id: int
) -> HttpResponse:
    found = _project(membership, project)
    key = _key(found, env_id, key_id)
    form = RotateForm(request.POST)
    if not form.is_valid():
        return refused(
            request,
            ValueError(form.errors.as_text()),
            "web:project",
            membership.organization.slug,
            found.slug,
        )
    days = form.cleaned_data["grace_days"]
    try:
        issued = api_keys.api_key_rotate(
            api_key=key,
            grace=dt.timedelta(days=days) if days else None,
            created_by=signed_in_user(request),
        )
    except ServiceError as error:
        return refused(request, error, "web:project", membership.organization.slug, found.slug)
    return _project_page(request, membership, found, shown_key=(key.environment, issued.plaintext))


@require_POST
@org_page(manage=True)
def license_download(request: HttpRequest, membership: Membership, project: str) -> HttpResponse:
    """A signed license token for the project's production environment, as a file."""
    found = _project(membership, project)
    production = get_object_or_404(Environment, project=found, kind=EnvironmentKind.PRODUCTION)
    standing = license_standing(environment=production, organization=membership.organization)
    if standing.refusal is not None:
        return refused(
            request,
            ValueError(standing.refusal.message),
            "web:project",
            membership.organization.slug,
            found.slug,
        )
    assert standing.contract is not None  # a standing without a refusal has its contract
    try:
        issued = license_issue(environment=production, contract=standing.contract)
    except LicensingError as error:
        return refused(request, error, "web:project", membership.organization.slug, found.slug)
    response = HttpResponse(issued.token + "\n", content_type="application/jwt")
    filename = f"{membership.organization.slug}-{found.slug}-license.jwt"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
