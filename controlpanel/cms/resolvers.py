"""Resolvers of the CMS CLI's GraphQL API (schema.graphql): parse, call one service or
selector, shape the answer. Every refusal is a `CmsError`, a GraphQL error whose message
says what to do; someone else's organization, project or user is an error, never data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ariadne import ObjectType, ScalarType, load_schema_from_path, make_executable_schema
from django.http import HttpRequest
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema
from graphql.utilities import value_from_ast_untyped

from accounts.models import (
    Environment,
    Membership,
    Organization,
    PersonalAccessToken,
    Project,
    User,
)
from accounts.selectors import team as team_selectors
from accounts.selectors.api_keys import KeyProblem, api_key_check
from accounts.selectors.organizations import organizations_for_user
from accounts.services import access, personal
from accounts.services.team import TeamError
from controlpanel.customer import ratelimit


class CmsError(GraphQLError):
    """A refusal the caller can act on. `http_status` is for the few that HTTP should
    say too (429 and 503, with Retry-After); the rest answer 200 with `errors`."""

    def __init__(
        self, message: str, code: str, *, http_status: int = 200, retry_after: int | None = None
    ) -> None:
        super().__init__(message, extensions={"code": code})
        self.http_status = http_status
        self.retry_after = retry_after


def _from_team(error: TeamError) -> CmsError:
    return CmsError(error.message, error.code.upper())


@dataclass
class Context:
    """One request: who calls (resolved on first need) and what HTTP should say."""

    request: HttpRequest
    http_status: int = 200
    retry_after: int | None = None
    _caller: PersonalAccessToken | None = field(default=None, repr=False)

    def note(self, error: CmsError) -> None:
        """The answer's HTTP status is the gravest its errors ask for."""
        if error.http_status > self.http_status:
            self.http_status = error.http_status
            self.retry_after = error.retry_after

    def caller(self) -> PersonalAccessToken:
        if self._caller is None:
            # The CLI sends the PAT as the raw header value; `Bearer ` is accepted too.
            plaintext = self.request.headers.get("authorization", "").strip()
            if plaintext[:7].lower() == "bearer ":
                plaintext = plaintext[7:].strip()
            if not plaintext:
                raise CmsError(
                    "Not logged in: send your personal access token in the authorization "
                    "header (log in with webiny login).",
                    "UNAUTHENTICATED",
                )
            token = access.pat_authenticate(plaintext)
            if token is None:
                raise CmsError(
                    "The personal access token is not valid: it is unknown, revoked or "
                    "expired. Log in again (webiny login).",
                    "UNAUTHENTICATED",
                )
            self._caller = token
        return self._caller


def _context(info: GraphQLResolveInfo) -> Context:
    return info.context


# --- answers ----------------------------------------------------------------------------------
def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def user_json(user: User) -> dict[str, Any]:
    first, last = _split_name(user.name)
    return {
        "id": str(user.pk),
        "email": user.email,
        "first_name": first,
        "last_name": last,
        "last_active_on": user.last_active_at,
    }


def pat_json(token: PersonalAccessToken, plaintext: str) -> dict[str, Any]:
    return {
        "name": token.name,
        "meta": token.meta,
        "token": plaintext,
        "expires_on": token.expires_at,
        "user": user_json(token.user),
    }


def org_json(organization: Organization) -> dict[str, Any]:
    return {"id": organization.slug, "name": organization.name}


def project_json(project: Project) -> dict[str, Any]:
    return {"id": project.slug, "name": project.name, "org": org_json(project.organization)}


def environment_json(environment: Environment, *, api_key: str | None) -> dict[str, Any]:
    project = environment.project
    return {
        "id": str(environment.pk),
        "status": environment.status,
        "name": environment.name,
        "api_key": api_key,
        "org": org_json(project.organization),
        "project": project_json(project),
        "user": user_json(environment.owner) if environment.owner else None,
    }


# --- lookups scoped to the caller ---------------------------------------------------------------
def _membership(user: User, org_id: str) -> Membership:
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_id)
        .first()
    )
    if membership is None:
        raise CmsError(
            f"You are not a member of an organization {org_id!r} (ListOrgs lists yours).",
            "NOT_FOUND",
        )
    return membership


def _project(user: User, org_id: str, project_id: str) -> Project:
    membership = _membership(user, org_id)
    project = (
        Project.objects.select_related("organization")
        .filter(organization=membership.organization, slug=project_id)
        .first()
    )
    if project is None:
        raise CmsError(
            f"The organization {org_id!r} has no project {project_id!r} (ListProjects lists them).",
            "NOT_FOUND",
        )
    return project


def _yourself(caller: PersonalAccessToken, user_id: str | None) -> User:
    if user_id is not None and str(user_id) != str(caller.user.pk):
        raise CmsError(
            "You can only use your own personal environments: userId must be your id "
            "(GetUser answers it) or left out.",
            "FORBIDDEN",
        )
    return caller.user


# --- users ----------------------------------------------------------------------------------------
users_query = ObjectType("UsersQuery")
users_mutation = ObjectType("UsersMutation")


@users_mutation.field("generateUserPat")
def resolve_generate_user_pat(_: Any, info: GraphQLResolveInfo) -> str:
    request = _context(info).request
    try:
        # Shares the budget of POST /api/v1/cli/sessions: one login budget per client.
        wait = ratelimit.check(request, "cli_sessions", "RATE_LIMIT_CLI_SESSIONS")
    except ratelimit.LimiterUnavailable:
        raise CmsError(
            "Temporarily unavailable: try again in a moment.",
            "UNAVAILABLE",
            http_status=503,
            retry_after=ratelimit.UNAVAILABLE_RETRY_AFTER,
        ) from None
    if wait:
        raise CmsError(
            f"Too many logins started from here: try again in {wait} seconds.",
            "RATE_LIMITED",
            http_status=429,
            retry_after=wait,
        )
    return access.pending_pat_start()


@users_query.field("getUserPat")
def resolve_get_user_pat(_: Any, info: GraphQLResolveInfo, token: str) -> dict[str, Any]:
    # The token authenticates itself (256 random bits); the header adds nothing to it.
    try:
        found = access.user_pat_get(plaintext=str(token))
    except TeamError as error:
        raise _from_team(error) from None
    return pat_json(found, str(token))


@users_mutation.field("createUserPat")
def resolve_create_user_pat(
    _: Any,
    info: GraphQLResolveInfo,
    expires_in: int | None = None,
    token: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    caller = _context(info).caller()
    try:
        issued = access.user_pat_create(
            caller=caller,
            expires_in=expires_in,
            pending=None if token is None else str(token),
            meta=(data or {}).get("meta"),
        )
    except TeamError as error:
        raise _from_team(error) from None
    return pat_json(issued.token, issued.plaintext)


@users_query.field("getCurrentUser")
def resolve_get_current_user(_: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    return user_json(_context(info).caller().user)


@users_mutation.field("updateLastActiveToNow")
def resolve_update_last_active(_: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    user = access.user_mark_active(user=_context(info).caller().user)
    return user_json(user)


# --- organizations and projects -------------------------------------------------------------
orgs_query = ObjectType("OrgsQuery")
projects_query = ObjectType("ProjectsQuery")
projects_mutation = ObjectType("ProjectsMutation")


@orgs_query.field("listOrgs")
def resolve_list_orgs(_: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    user = _context(info).caller().user
    return {"data": [org_json(o) for o in organizations_for_user(user=user).order_by("slug")]}


@projects_query.field("listProjects")
def resolve_list_projects(_: Any, info: GraphQLResolveInfo, org_id: str) -> dict[str, Any]:
    membership = _membership(_context(info).caller().user, str(org_id))
    projects = Project.objects.filter(organization=membership.organization).order_by("slug")
    return {"data": [project_json(p) for p in projects.select_related("organization")]}


def _by_api_key(
    plaintext: str,
    *,
    org_id: str | None,
    project_id: str | None,
    name: str | None,
    user_id: str | None,
) -> dict[str, Any]:
    check = api_key_check(plaintext)
    if check.api_key is None or check.problem in (KeyProblem.REVOKED, KeyProblem.EXPIRED):
        raise CmsError(f"{check.message} Check WCP_PROJECT_ENVIRONMENT_API_KEY.", "INVALID_API_KEY")
    # A disabled environment is answered with status "disabled": the deploy hook says so.
    environment = (
        Environment.objects.select_related("project__organization", "owner")
        .filter(pk=check.api_key.environment_id)
        .get()
    )
    project = environment.project
    asked = {
        "orgId": (org_id, project.organization.slug),
        "projectId": (project_id, project.slug),
        "environmentId": (name, environment.name),
        "userId": (user_id, str(environment.owner_id) if environment.owner_id else None),
    }
    for argument, (given, actual) in asked.items():
        if given is not None and str(given) != actual:
            raise CmsError(
                f"This API key belongs to another environment than the {argument} asked for "
                f"({environment.name} of {project}).",
                "NOT_FOUND",
            )
    return environment_json(environment, api_key=plaintext)


@projects_query.field("getEnvironment")
def resolve_get_environment(
    _: Any,
    info: GraphQLResolveInfo,
    environment_id: str | None = None,
    org_id: str | None = None,
    project_id: str | None = None,
    user_id: str | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    if api_key is not None:
        return _by_api_key(
            api_key, org_id=org_id, project_id=project_id, name=environment_id, user_id=user_id
        )
    caller = _context(info).caller()
    if org_id is None or project_id is None or environment_id is None:
        raise CmsError(
            "GetEnvironment needs apiKey, or orgId, projectId and environmentId (the name "
            "of your personal environment, e.g. dev).",
            "BAD_USER_INPUT",
        )
    user = _yourself(caller, user_id)
    project = _project(user, str(org_id), str(project_id))
    if not team_selectors.developer_seat_held(project=project, user=user):
        raise CmsError(personal.NO_SEAT, "NO_DEVELOPER_SEAT")
    environment = team_selectors.personal_environment_named(
        project=project, user=user, name=str(environment_id)
    )
    if environment is None:
        raise CmsError(
            f"You have no personal environment {environment_id!r} on {project} yet: "
            "CreateEnvironment creates it.",
            "NOT_FOUND",
        )
    key = team_selectors.personal_key_current(environment=environment)
    if key is None and environment.is_enabled:
        raise CmsError(
            f"No key of your personal environment {environment_id!r} can be shown again: "
            "CreateEnvironment issues a new one.",
            "NOT_FOUND",
        )
    environment.project = project
    environment.owner = user
    return environment_json(environment, api_key=key)


@projects_mutation.field("createEnvironment")
def resolve_create_environment(
    _: Any,
    info: GraphQLResolveInfo,
    org_id: str,
    project_id: str,
    data: dict[str, Any],
    user_id: str | None = None,
) -> dict[str, Any]:
    caller = _context(info).caller()
    user = _yourself(caller, user_id)
    project = _project(user, str(org_id), str(project_id))
    try:
        ensured = personal.personal_environment_ensure(
            project=project, user=user, name=data["name"]
        )
    except TeamError as error:
        raise _from_team(error) from None
    ensured.environment.owner = user
    return environment_json(ensured.environment, api_key=ensured.plaintext)


# --- the schema -------------------------------------------------------------------------------
query = ObjectType("Query")
mutation = ObjectType("Mutation")
# Namespaces: the operations live one level down (users.getUserPat, ...).
for root, namespaces in ((query, ("users", "orgs", "projects")), (mutation, ("users", "projects"))):
    for namespace in namespaces:
        root.set_field(namespace, lambda *_: {})

datetime_scalar = ScalarType("DateTime")


@datetime_scalar.serializer
def serialize_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


json_scalar = ScalarType(
    "JSON",
    serializer=lambda value: value,
    value_parser=lambda value: value,
    literal_parser=value_from_ast_untyped,
)

schema: GraphQLSchema = make_executable_schema(
    load_schema_from_path(str(Path(__file__).with_name("schema.graphql"))),
    query,
    mutation,
    users_query,
    users_mutation,
    orgs_query,
    projects_query,
    projects_mutation,
    datetime_scalar,
    json_scalar,
    # orgId and firstName on the wire, org_id and first_name in Python.
    convert_names_case=True,
)
