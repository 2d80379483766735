"""Isolation matrix: every URL pattern of the site, every GraphQL operation the CMS's CLI sends
and every customer API route, called by someone outside a victim organization (anonymous, a
signed-in outsider, a member, an admin and an owner of another organization), with the
victim's identifiers in the path. None may answer the victim's data or change it.

The routes come from the resolver itself, so a new route is in the matrix the day it lands;
a route that is public on purpose is listed in PUBLIC with its reason, and
`test_every_route_is_in_the_matrix_or_public` fails for one that is neither."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from accounts.licensing import services as licensing_services
from accounts.models import (
    ApiKey,
    Environment,
    EnvironmentKind,
    Invitation,
    Membership,
    PersonalAccessToken,
    User,
)
from accounts.services import access
from accounts.services.organizations import environment_create
from accounts.services.team import invitation_create
from metering.compliance import evaluation
from metering.compliance.models import OverageFlag, WebhookEndpoint
from metering.compliance.services import webhook_endpoint_create
from tests.cms import wire
from tests.conftest import TEST_CLOCK, Tenant, make_tenant
from tests.factories import UserFactory
from tests.metering.compliance.usage import add_calls, set_gauge

pytestmark = pytest.mark.django_db

# Routes anyone may call whoever they are: none takes an organization's identifier from the
# path, or the identifier is checked against a key, token or code the caller must present.
PUBLIC: dict[str, str] = {
    "healthz": "liveness probe, answers no data",
    "readyz": "readiness probe, answers no data",
    ".well-known/jwks.json": "the vendor's public signing keys",
    "clients/latest.js": "the CMS telemetry client's source, the same for everyone",
    "transparency": "the telemetry promise page, the same for everyone",
    "api/schema/": "the OpenAPI document",
    "api/docs/": "the Swagger UI page",
    "accounts/^confirm-email/(?P<key>[-:\\w]+)/$": "allauth: the secret key is the path",
    "accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$": (
        "allauth: the reset secret is the path"
    ),
}

# Concrete paths for regex routes (the rest are filled in from their converters).
REGEX_PATHS: dict[str, str] = {
    "admin/^(?P<app_label>auth|account|mfa|accounts|metering|controlpanel)/$": "admin/accounts/",
    "admin/(?P<url>.*)$": "admin/accounts/organization/x",
}

ATTACKERS = ("anonymous", "outsider", "other_member", "other_admin", "other_owner")
ALL_METHODS = ("get", "post", "put", "patch", "delete")
# A body a legitimate caller could send to any write route, so an answer is never a mere
# validation error: authorization must refuse it first.
FORM = {
    "name": "Intruder",
    "email": "intruder@attacker.example",
    "role": "admin",
    "url": "https://attacker.example/hook",
    "status": "disabled",
    "kind": "cicd",
    "slug": "intruder",
    "enabled": "false",
}
REFUSED = {302, 401, 403, 404, 405}
GHOST_ORG = "no-such-organization"
# Routes that act on the caller's own account, key or token and take no organization's
# identifier: any status will do, but no answer may hold the victim's data.
OWN: dict[str, str] = {
    "api/v1/usage": "ingest for the caller's own environment key",
    "api/v1/usage/batch": "ingest for the caller's own environment key",
    "telemetry": "the CMS's telemetry for the caller's own environment key",
    "api/v1/licenses/validate": "checks the license token the caller sends",
    "graphql": "the CLI's API; each operation is checked below",
    "account/": "the caller's own profile",
    "api/v1/tokens": "the caller's own access tokens",
    "api/v1/invitations/accept": "accepts the invitation whose secret token the caller sends",
    "api/v1/cli/sessions": "starts a CLI login of the caller's own",
}


@dataclass
class Victim:
    tenant: Tenant
    ci: Environment
    key: ApiKey
    invitation: Invitation
    webhook: WebhookEndpoint
    pat: PersonalAccessToken
    poll_guess: str
    secrets: tuple[str, ...]  # strings that no answer to an attacker may contain

    def path_values(self) -> dict[str, str]:
        t = self.tenant
        return {
            "org": t.organization.slug,
            "org_id": t.organization.slug,
            "project": t.project.slug,
            "project_id": t.project.slug,
            "env_id": str(t.production.pk),
            "key_id": str(self.key.pk),
            "invitation_id": str(self.invitation.pk),
            "user_id": str(t.member.pk),
            "endpoint_id": str(self.webhook.pk),
            "token_id": str(self.pat.pk),
            "poll_id": self.poll_guess,
            # Django admin: staff only, so any victim object will do.
            "object_id": str(t.organization.pk),
            "id": str(t.owner.pk),
            "content_type_id": "1",
        }


@dataclass
class Attacker:
    user: User | None
    pat: str | None
    env_key: str | None  # their own organization's environment API key


@dataclass
class World:
    victim: Victim
    attackers: dict[str, Attacker]


def build_victim() -> Victim:
    tenant = make_tenant("victimco")
    tenant.organization.name = "Victim Holdings Ltd"
    tenant.organization.save()
    tenant.project.name = "Victimco Secret Project"
    tenant.project.save()
    for role in ("owner", "admin", "member"):
        user = getattr(tenant, role)
        user.email = f"victim-{role}@victim-mail.example"
        user.save()
        EmailAddress.objects.filter(user=user).update(email=user.email)
    ci = environment_create(project=tenant.project, name="victim-ci", kind=EnvironmentKind.CICD)
    now = TEST_CLOCK
    for hours in range(1, 6):
        add_calls(tenant.production, now - dt.timedelta(hours=hours), 400_000)
    set_gauge(tenant.production, "seats", 7, now - dt.timedelta(hours=1))
    evaluation.evaluate()
    assert OverageFlag.objects.filter(organization=tenant.organization).exists()
    webhook, _secret = webhook_endpoint_create(
        organization=tenant.organization,
        url="https://hooks.victim-mail.example/cp",
        created_by=tenant.owner,
    )
    owner_membership = Membership.objects.get(organization=tenant.organization, user=tenant.owner)
    invitation_create(
        organization=tenant.organization,
        email="victim-invitee@victim-mail.example",
        role="member",
        by=owner_membership,
    )
    invitation = Invitation.objects.get(organization=tenant.organization)
    contract = tenant.organization.contracts.get()
    licensing_services.license_issue(environment=tenant.production, contract=contract)
    key = ApiKey.objects.get(environment=tenant.production)
    pat = access.pat_issue(user=tenant.owner).token
    session = access.cli_session_start(client_name="victim laptop").session
    return Victim(
        tenant=tenant,
        ci=ci,
        key=key,
        invitation=invitation,
        webhook=webhook,
        pat=pat,
        poll_guess=f"cls_{session.poll_prefix}_guessedsecret",
        secrets=(
            # Not the slug: answers may echo what the caller sent.
            tenant.organization.name,
            tenant.project.name,
            "victim-mail.example",  # every member's, the invitee's and the webhook's host
            key.prefix,
            pat.prefix,
        ),
    )


def build_world() -> World:
    victim = build_victim()
    other = make_tenant("intruder")
    attackers = {"anonymous": Attacker(None, None, None)}
    cast = {
        "outsider": UserFactory(),
        "other_member": other.member,
        "other_admin": other.admin,
        "other_owner": other.owner,
    }
    for name, user in cast.items():
        pat = access.pat_issue(user=user).plaintext
        env_key = None if name == "outsider" else other.api_key
        attackers[name] = Attacker(user, pat, env_key)
    return World(victim, attackers)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """One victim and one attacking organization for the module, rolled back at its end;
    each test runs in a savepoint inside it, so writes an attacker manages are undone."""
    with (
        django_db_blocker.unblock(),
        time_machine.travel(TEST_CLOCK, tick=True),
        transaction.atomic(),
    ):
        yield build_world()
        transaction.set_rollback(True)


def state(victim: Victim) -> dict[str, Any]:
    """What an attacker's write would change in the victim organization."""
    org = victim.tenant.organization
    return {
        "members": sorted(
            Membership.objects.filter(organization=org).values_list("user_id", "role")
        ),
        "invitations": sorted(
            Invitation.objects.filter(organization=org).values_list("pk", "email", "role")
        ),
        "environments": sorted(
            Environment.objects.filter(project__organization=org).values_list(
                "pk", "name", "kind", "status"
            )
        ),
        "keys": sorted(
            ApiKey.objects.filter(environment__project__organization=org).values_list(
                "pk", "revoked_at"
            )
        ),
        "webhooks": sorted(
            WebhookEndpoint.objects.filter(organization=org).values_list("pk", "url")
        ),
        "projects": sorted(org.projects.values_list("pk", "slug", "name")),
        "org": (org.slug, type(org).objects.get(pk=org.pk).name),
        "pats": sorted(
            PersonalAccessToken.objects.filter(user=victim.tenant.owner).values_list(
                "pk", "revoked_at"
            )
        ),
    }


# --- the routes ---------------------------------------------------------------------------
def site_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from site_routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


ROUTES = list(dict.fromkeys(site_routes()))  # `accounts/login/` is mounted twice
MATRIX = [route for route in ROUTES if route not in PUBLIC]
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def concrete_path(route: str, values: dict[str, str]) -> str:
    if route in REGEX_PATHS:
        return "/" + REGEX_PATHS[route]
    return "/" + CONVERTER.sub(lambda m: values[m.group(1)], route)


def is_api(route: str) -> bool:
    return route.startswith(("api/", "orgs/", "telemetry", "graphql"))


def client_for(attacker: Attacker, route: str) -> Client:
    """A web session for pages; for API routes the attacker's own credential: a personal
    access token, or for the CMS's key-authenticated routes their organization's API key."""
    if attacker.user is None:
        return Client()
    if not is_api(route):
        client = Client()
        client.force_login(attacker.user)
        return client
    key_routes = ("orgs/", "telemetry", "api/v1/usage", "api/v1/licenses")
    token = attacker.env_key if route.startswith(key_routes) else attacker.pat
    return Client(headers={"authorization": f"Bearer {token or attacker.pat}"})


def call(client: Client, method: str, path: str, api: bool) -> Any:
    if method == "get":
        return client.get(path)
    if api:
        return getattr(client, method)(path, json.dumps(FORM), content_type="application/json")
    if method == "post":
        return client.post(path, FORM)
    return getattr(client, method)(path)


def leaked(body: bytes, secrets: tuple[str, ...]) -> list[str]:
    text = body.decode("utf-8", "replace").lower()
    return [s for s in secrets if s.lower() in text]


def test_every_route_is_in_the_matrix_or_public(world):
    """Each route is either public on purpose or called here with a path that resolves back
    to that very route (not shadowed by another), with every parameter filled in."""
    values = world.victim.path_values()
    assert set(PUBLIC) <= set(ROUTES), set(PUBLIC) - set(ROUTES)  # no stale reasons
    assert set(REGEX_PATHS) <= set(MATRIX)
    assert set(OWN) <= set(MATRIX)
    assert all(reason.strip() for reason in OWN.values())
    for route in ROUTES:
        if route in PUBLIC:
            assert PUBLIC[route].strip(), route
            continue
        assert route in MATRIX
        match = resolve(concrete_path(route, values))
        assert match.route == route or route in REGEX_PATHS, (route, match.route)
    assert len(MATRIX) > 250  # the admin console, the web UI, the WCP and customer APIs


@pytest.mark.parametrize("route", MATRIX)
def test_no_route_answers_or_changes_another_organizations_data(world, route):
    victim = world.victim
    values = victim.path_values()
    path = concrete_path(route, values)
    # The same path for an organization that does not exist must be answered alike: the
    # refusal tells nobody which slugs are taken.
    ghost = concrete_path(route, {**values, "org": GHOST_ORG, "org_id": GHOST_ORG})
    api = is_api(route)
    before = state(victim)
    problems = []
    for name in ATTACKERS:
        client = client_for(world.attackers[name], route)
        for method in ALL_METHODS if api else ("get", "post"):
            response = call(client, method, path, api)
            status = response.status_code
            if ghost != path and (alike := call(client, method, ghost, api).status_code) != status:
                problems.append(f"{name} {method.upper()} {path}: {status}, unknown org {alike}")
            body = b"" if response.streaming else response.content
            if found := leaked(body, victim.secrets):
                problems.append(f"{name} {method.upper()} {path}: {status} with {found}")
            elif status not in REFUSED | {200} and route not in OWN:
                problems.append(f"{name} {method.upper()} {path}: {status} {body[:200]!r}")
            elif status == 302:
                assert "victimco" not in response["Location"].split("?")[0], (name, path)
    assert problems == []
    assert state(victim) == before


# --- GraphQL ------------------------------------------------------------------------------
def graphql_operations(
    victim: Victim, attacker: Attacker, org: str
) -> list[tuple[str, str, dict, bool]]:
    """(name, document, variables, asks for the victim's data) for every CLI operation."""
    t = victim.tenant
    project = t.project.slug
    yours = str(attacker.user.pk) if attacker.user else None
    return [
        ("GenerateUserPat", wire.GENERATE_USER_PAT, {}, False),
        ("GetUserPat", wire.GET_USER_PAT, {"token": f"cpt_{victim.pat.prefix}_guess"}, True),
        ("CreateUserPat", wire.CREATE_USER_PAT, {"data": {"meta": {"by": "intruder"}}}, False),
        ("GetUser", wire.GET_CURRENT_USER, {}, False),
        ("ListOrgs", wire.LIST_ORGS, {}, False),
        ("UpdateLastActiveToNow", wire.UPDATE_LAST_ACTIVE_TO_NOW, {}, False),
        ("ListProjects", wire.LIST_PROJECTS, {"orgId": org}, True),
        *(
            (
                f"GetEnvironment[{label}]",
                wire.GET_ENVIRONMENT,
                {"orgId": org, "projectId": project, "userId": user_id, "environmentId": env},
                True,
            )
            for label, user_id, env in (
                ("victim member, production", str(t.member.pk), t.production.name),
                ("victim member, ci", str(t.member.pk), victim.ci.name),
                ("yourself, production", yours, t.production.name),
                ("no user, ci", None, victim.ci.name),
            )
        ),
        (
            "GetEnvironment[api key guess]",
            wire.GET_ENVIRONMENT,
            {"apiKey": f"cpk_{victim.key.prefix}_guessedsecret"},
            True,
        ),
        *(
            (
                f"CreateEnvironment[{label}]",
                wire.CREATE_ENVIRONMENT,
                {"orgId": org, "projectId": project, "userId": user_id, "data": {"name": "dev"}},
                True,
            )
            for label, user_id in (("victim member", str(t.member.pk)), ("yourself", yours))
        ),
    ]


@pytest.mark.parametrize("caller", ATTACKERS)
def test_no_graphql_operation_answers_another_organizations_data(world, caller):
    victim, attacker = world.victim, world.attackers[caller]
    before = state(victim)
    headers = {"authorization": attacker.pat} if attacker.pat else {}
    client = Client(headers=headers)

    def send(document: str, variables: dict[str, Any]) -> Any:
        payload: dict[str, Any] = {"query": document}
        if variables:
            payload["variables"] = variables
        return client.post("/graphql", wire.js_json(payload), content_type="application/json")

    def messages(answer: dict[str, Any], org: str) -> list[str]:
        return [e["message"].replace(org, "ORG") for e in answer.get("errors", [])]

    slug = victim.tenant.organization.slug
    operations = graphql_operations(victim, attacker, slug)
    ghosts = graphql_operations(victim, attacker, GHOST_ORG)
    assert len({name.split("[")[0] for name, *_ in operations}) == 9  # DESIGN.md's table
    problems = []
    for (name, document, variables, asks_for_victim), ghost in zip(operations, ghosts, strict=True):
        response = send(document, variables)
        if found := leaked(response.content, victim.secrets):
            problems.append(f"{name}: answers {found}")
        answer = response.json()
        if asks_for_victim and not answer.get("errors"):
            problems.append(f"{name}: no errors: {answer}")
        # Refused as if the organization did not exist: no oracle for which slugs are taken.
        if (
            asks_for_victim
            and "orgId" in variables
            and messages(answer, slug) != messages(send(*ghost[1:3]).json(), GHOST_ORG)
        ):
            problems.append(f"{name}: answers unlike for an unknown organization: {answer}")
        if attacker.pat is None and name != "GenerateUserPat" and not answer.get("errors"):
            problems.append(f"{name}: answers without a token: {answer}")
    assert problems == []
    assert state(victim) == before


# --- the detector itself --------------------------------------------------------------------
@pytest.mark.parametrize(
    "route",
    [
        "<slug:org>/",
        "<slug:org>/projects/<slug:project>/",
        "<slug:org>/team/",
        "<slug:org>/webhooks/",
        "api/v1/orgs/<slug:org>/members",
        "api/v1/orgs/<slug:org>/webhooks",
    ],
)
def test_the_victims_own_owner_is_answered_the_data_the_matrix_looks_for(world, route):
    """The same paths, secrets and credentials answer the victim's data to its owner: the
    matrix's silence means refusal, not a wrong path or a blind check."""
    victim = world.victim
    owner = victim.tenant.owner
    me = Attacker(owner, access.pat_issue(user=owner).plaintext, victim.tenant.api_key)
    response = client_for(me, route).get(concrete_path(route, victim.path_values()))
    assert response.status_code == 200
    assert leaked(response.content, victim.secrets)


def test_the_victims_own_owner_is_answered_its_projects_over_graphql(world):
    victim = world.victim
    token = access.pat_issue(user=victim.tenant.owner).plaintext
    payload = {"query": wire.LIST_PROJECTS, "variables": {"orgId": "victimco"}}
    response = Client(headers={"authorization": token}).post(
        "/graphql", wire.js_json(payload), content_type="application/json"
    )
    assert "errors" not in response.json()
    assert leaked(response.content, victim.secrets) == [
        victim.tenant.organization.name,
        victim.tenant.project.name,
    ]
