"""The CMS CLI's GraphQL operations over real HTTP, as its v5 CLI sends them: the exact
query documents and variables of webiny/webiny-js (see tests/cms/wire.py for the files),
`Content-Type: application/json`, the PAT as the raw `authorization` header. Covers
`webiny login` through the real sign-in and approval pages (an HTTP client posting the
forms with their CSRF tokens), `webiny login <pat>`, `whoami` / `project link`, both
deploy paths (CI/CD by API key, a developer's personal environment by PAT), and outsiders,
who get errors and never data."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from urllib.parse import urlencode

import httpx
import pytest
import time_machine

from accounts.models import (
    ApiKey,
    CliLoginSession,
    Environment,
    EnvironmentKind,
    EnvironmentStatus,
    Membership,
    PersonalAccessToken,
    User,
)
from accounts.services import access, seats
from accounts.services.api_keys import api_key_issue, api_key_revoke
from tests.cms import wire
from tests.conftest import make_tenant

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PASSWORD = "correct horse battery"


@pytest.fixture
def server(live_server, settings):
    # The live server speaks plain HTTP; a browser would not send Secure cookies over it.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.PUBLIC_URL = ""
    return live_server.url


@pytest.fixture
def acme(db):
    tenant = make_tenant("acme")
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    return tenant


def pat_of(user: User) -> str:
    return access.pat_issue(user=user, name="laptop").plaintext


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def approve_in_browser(url: str, email: str, *, decision: str = "approve") -> httpx.Response:
    """What the person does with the URL the CLI opened: sign in, then decide."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(url)
        assert page.url.path == "/login/"
        page = browser.post(
            str(page.url),
            data={
                "username": email,
                "password": PASSWORD,
                "next": page.url.params["next"],
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        assert page.url.path == "/login/cli"
        assert "Authorize the command line?" in page.text
        assert "Webiny CLI" in page.text and email in page.text
        return browser.post(
            str(page.url),
            data={"decision": decision, "csrfmiddlewaretoken": CSRF.search(page.text).group(1)},
        )


def login_url(app_url: str, token: str) -> str:
    # As login.js builds it: `pat=${generatedPat}&pat_name=${encodeURIComponent("Webiny CLI")}&ref=cli`
    return f"{app_url}/login/cli?pat={token}&pat_name=Webiny%20CLI&ref=cli"


def generate(server: str) -> str:
    token = wire.data_of(wire.cli_post(server, wire.GENERATE_USER_PAT))["users"]["generateUserPat"]
    assert re.fullmatch(r"cpt_[a-z0-9]{12}_[A-Za-z0-9_-]{43}", token)
    return token


def poll(server: str, token: str) -> wire.Answer:
    # login.js: `Authorization: generatedPat`, variables {token}.
    return wire.cli_post(
        server,
        wire.GET_USER_PAT,
        {"token": token},
        authorization=token,
        header_name="Authorization",
    )


# --- webiny login ---------------------------------------------------------------------------------
def test_webiny_login_pending_then_approved_in_the_browser(server, acme):
    token = generate(server)

    pending = poll(server, token)
    assert pending.status == 200
    assert pending.json()["data"] == {"users": {"getUserPat": None}}
    assert [(e["message"], e["extensions"]["code"]) for e in wire.errors_of(pending)] == [
        (
            "This login is waiting for approval: sign in and approve it in the browser "
            "window the CLI opened.",
            "LOGIN_PENDING",
        )
    ]
    # Pending, the token authenticates nothing.
    refused = wire.cli_post(server, wire.GET_CURRENT_USER, {}, authorization=token)
    assert wire.errors_of(refused)[0]["extensions"]["code"] == "UNAUTHENTICATED"

    done = approve_in_browser(login_url(server, token), acme.member.email)
    assert done.status_code == 200
    assert "CLI login approved" in done.text

    approved = PersonalAccessToken.objects.get(user=acme.member)
    answer = wire.data_of(poll(server, token))["users"]["getUserPat"]
    assert answer == {
        "name": "Webiny CLI",
        "meta": None,
        "token": token,
        "expiresOn": iso(approved.expires_at),
        "user": {"email": acme.member.email},
    }
    # Stored as a digest only, and the CLI's token now works (and keeps working: the CLI
    # stores it as it is).
    assert approved.digest == hashlib.sha256(token.encode()).hexdigest()
    secret = token.split("_", 2)[2]
    session = CliLoginSession.objects.get()
    assert secret not in json.dumps(
        [str(v) for v in PersonalAccessToken.objects.values().get().values()]
    )
    assert secret not in json.dumps(
        [str(v) for v in CliLoginSession.objects.values().get().values()]
    )
    assert session.token == approved
    assert approved.expires_at - approved.created_at == dt.timedelta(days=90)
    me = wire.data_of(wire.cli_post(server, wire.GET_CURRENT_USER, {}, authorization=token))
    assert me["users"]["getCurrentUser"]["email"] == acme.member.email
    # Polling again answers the same token; the approval page cannot be replayed.
    assert wire.data_of(poll(server, token))["users"]["getUserPat"]["token"] == token
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.get(login_url(server, token)).status_code == 302  # sign-in first


def test_webiny_login_denied_in_the_browser(server, acme):
    token = generate(server)
    done = approve_in_browser(login_url(server, token), acme.member.email, decision="deny")
    assert "CLI login denied" in done.text
    denied = poll(server, token)
    assert denied.json()["data"] == {"users": {"getUserPat": None}}
    assert wire.errors_of(denied)[0]["extensions"]["code"] == "LOGIN_DENIED"
    assert wire.errors_of(denied)[0]["message"] == (
        "This login was denied in the browser. Log in again (webiny login)."
    )
    assert PersonalAccessToken.objects.count() == 0


def test_a_pending_token_expires_after_ten_minutes(server, acme):
    start = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        token = generate(server)
    with time_machine.travel(start + dt.timedelta(minutes=9, seconds=59), tick=False):
        assert wire.errors_of(poll(server, token))[0]["extensions"]["code"] == "LOGIN_PENDING"
    with time_machine.travel(start + dt.timedelta(minutes=10), tick=False):
        expired = poll(server, token)
        assert [(e["message"], e["extensions"]["code"]) for e in wire.errors_of(expired)] == [
            (
                "This login has expired or its token was already exchanged. Log in again "
                "(webiny login).",
                "LOGIN_EXPIRED",
            )
        ]
        browser = httpx.Client(timeout=30)
        page = browser.get(f"{server}/login/")
        browser.post(
            f"{server}/login/",
            data={
                "username": acme.member.email,
                "password": PASSWORD,
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        closed = browser.get(login_url(server, token))
        assert closed.status_code == 410
        assert "CLI login closed" in closed.text
    assert PersonalAccessToken.objects.count() == 0


def test_webiny_login_with_a_pat_argument_gets_a_long_lived_one(server, acme):
    # `webiny login <pat>`: GetUserPat with the PAT as header and variable; it has an
    # expiry, so the CLI asks CreateUserPat({data: {meta}}) for a long-lived one.
    given = access.pat_issue(
        user=acme.member, name="from the web", expires_in=dt.timedelta(hours=1)
    )
    given.token.meta = {"orgId": "acme", "projectId": "website"}
    given.token.save(update_fields=["meta"])
    first = wire.cli_post(
        server, wire.GET_USER_PAT, {"token": given.plaintext}, authorization=given.plaintext
    )
    pat = wire.data_of(first)["users"]["getUserPat"]
    assert pat["meta"] == {"orgId": "acme", "projectId": "website"}
    assert pat["expiresOn"] == iso(given.token.expires_at)

    created = wire.cli_post(
        server,
        wire.CREATE_USER_PAT,
        {"data": {"meta": pat["meta"]}},
        authorization=given.plaintext,
    )
    long_lived = wire.data_of(created)["users"]["createUserPat"]
    stored = PersonalAccessToken.objects.get(
        user=acme.member,
        name="from the web",
        meta__isnull=False,
        expires_at__gt=given.token.expires_at,
    )
    assert long_lived == {
        "name": "from the web",
        "meta": {"orgId": "acme", "projectId": "website"},
        "token": long_lived["token"],
        "expiresOn": iso(stored.expires_at),
        "user": {"email": acme.member.email},
    }
    assert stored.digest == hashlib.sha256(long_lived["token"].encode()).hexdigest()
    assert stored.expires_at - stored.created_at == dt.timedelta(days=90)
    # Both keep working: the given one was not consumed.
    for token in (given.plaintext, long_lived["token"]):
        me = wire.cli_post(server, wire.GET_CURRENT_USER, {}, authorization=token)
        assert wire.data_of(me)["users"]["getCurrentUser"]["id"] == str(acme.member.pk)


def test_create_user_pat_honours_expires_in_and_a_pending_token(server, acme):
    caller = pat_of(acme.member)
    short = wire.cli_post(
        server, wire.CREATE_USER_PAT, {"expiresIn": 3600, "data": None}, authorization=caller
    )
    token = wire.data_of(short)["users"]["createUserPat"]
    stored = PersonalAccessToken.objects.get(prefix=token["token"].split("_")[1])
    assert stored.expires_at - stored.created_at == dt.timedelta(seconds=3600)
    assert token["meta"] is None

    # `token`: a pending token from GenerateUserPat is approved as the caller's.
    pending = generate(server)
    approved = wire.cli_post(
        server,
        wire.CREATE_USER_PAT,
        {"token": pending, "data": {"meta": {"orgId": "acme"}}},
        authorization=caller,
    )
    answer = wire.data_of(approved)["users"]["createUserPat"]
    assert (answer["token"], answer["meta"], answer["user"]) == (
        pending,
        {"orgId": "acme"},
        {"email": acme.member.email},
    )
    assert wire.data_of(poll(server, pending))["users"]["getUserPat"]["token"] == pending

    for variables, message in [
        (
            {"expiresIn": 59},
            "expiresIn is a number of seconds from 60 to 7776000 (90 days, PAT_EXPIRY_DAYS).",
        ),
        ({"token": pending}, "That login was already approved, denied or has expired."),
        ({"token": "cpt_nope"}, "token is not a pending token from GenerateUserPat."),
        (
            {"data": {"meta": {"blob": "x" * 5000}}},
            "data.meta must be at most 4096 bytes of JSON.",
        ),
    ]:
        refused = wire.cli_post(server, wire.CREATE_USER_PAT, variables, authorization=caller)
        assert [e["message"] for e in wire.errors_of(refused)] == [message]
        assert refused.json()["data"] == {"users": {"createUserPat": None}}
    assert PersonalAccessToken.objects.filter(user=acme.member).count() == 3


# --- whoami, project link ---------------------------------------------------------------------------
def test_whoami_and_project_link(server, acme, other_tenant):
    acme.member.name = "Ada King Lovelace"
    acme.member.save()
    Membership.objects.create(user=acme.member, organization=other_tenant.organization)
    token = pat_of(acme.member)

    user = wire.cli_post(server, wire.GET_CURRENT_USER, {}, authorization=token)
    assert wire.data_of(user) == {
        "users": {
            "getCurrentUser": {
                "id": str(acme.member.pk),
                "email": acme.member.email,
                "firstName": "Ada",
                "lastName": "King Lovelace",
            }
        }
    }
    orgs = wire.cli_post(server, wire.LIST_ORGS, {}, authorization=token)
    assert wire.data_of(orgs) == {
        "orgs": {
            "listOrgs": {
                "data": [{"id": "acme", "name": "Acme"}, {"id": "globex", "name": "Globex"}]
            }
        }
    }
    projects = wire.cli_post(server, wire.LIST_PROJECTS, {"orgId": "acme"}, authorization=token)
    assert wire.data_of(projects) == {
        "projects": {
            "listProjects": {
                "data": [
                    {
                        "id": "website",
                        "name": acme.project.name,
                        "org": {"id": "acme", "name": "Acme"},
                    }
                ]
            }
        }
    }


def test_bearer_is_accepted_and_bad_tokens_are_refused(server, acme):
    token = pat_of(acme.member)
    bearer = wire.cli_post(server, wire.GET_CURRENT_USER, {}, authorization=f"Bearer {token}")
    assert wire.data_of(bearer)["users"]["getCurrentUser"]["email"] == acme.member.email
    for authorization, message in [
        (
            None,
            "Not logged in: send your personal access token in the authorization header "
            "(log in with webiny login).",
        ),
        (
            token[:-1] + ("A" if token[-1] != "A" else "B"),
            "The personal access token is not valid: it is unknown, revoked or expired. "
            "Log in again (webiny login).",
        ),
    ]:
        answer = wire.cli_post(server, wire.LIST_ORGS, {}, authorization=authorization)
        assert answer.status == 200
        assert answer.json() == {
            "data": {"orgs": {"listOrgs": None}},
            "errors": [
                {
                    "message": message,
                    "locations": [{"line": 4, "column": 13}],
                    "path": ["orgs", "listOrgs"],
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        }


# --- deploys ------------------------------------------------------------------------------------------
def test_a_developer_deploy_gets_the_same_personal_key_every_time(server, acme):
    """hooks.js without an API key: GetUser + ListOrgs/ListProjects, then GetEnvironment
    for `--env dev`; it fails at first, so CreateEnvironment; every later deploy gets the
    same key from GetEnvironment; then UpdateLastActiveToNow."""
    token = pat_of(acme.member)
    user_id = str(acme.member.pk)
    asked = {"orgId": "acme", "projectId": "website", "userId": user_id, "environmentId": "dev"}
    first = wire.cli_post(server, wire.GET_ENVIRONMENT, asked, authorization=token)
    assert [(e["message"], e["extensions"]["code"]) for e in wire.errors_of(first)] == [
        (
            "You have no personal environment 'dev' on acme/website yet: CreateEnvironment "
            "creates it.",
            "NOT_FOUND",
        )
    ]
    created = wire.cli_post(
        server,
        wire.CREATE_ENVIRONMENT,
        {"orgId": "acme", "projectId": "website", "userId": user_id, "data": {"name": "dev"}},
        authorization=token,
    )
    environment = Environment.objects.get(kind=EnvironmentKind.PERSONAL)
    answer = wire.data_of(created)["projects"]["createEnvironment"]
    key = answer["apiKey"]
    assert answer == {
        "id": str(environment.pk),
        "status": "enabled",
        "name": "dev",
        "apiKey": key,
        "org": {"id": "acme", "name": "Acme"},
        "project": {"id": "website", "name": acme.project.name},
        "user": {"id": user_id, "email": acme.member.email},
    }
    for _ in range(2):
        again = wire.cli_post(server, wire.GET_ENVIRONMENT, asked, authorization=token)
        assert wire.data_of(again)["projects"]["getEnvironment"] == answer
    # CreateEnvironment again (two deploys racing past a failed GetEnvironment) too.
    twice = wire.cli_post(
        server,
        wire.CREATE_ENVIRONMENT,
        {"orgId": "acme", "projectId": "website", "userId": user_id, "data": {"name": "dev"}},
        authorization=token,
    )
    assert wire.data_of(twice)["projects"]["createEnvironment"] == answer

    # Encrypted at rest, never in plaintext; and it is a working key of that environment.
    stored = ApiKey.objects.get(environment=environment)
    assert stored.sealed and key not in stored.sealed and key.split("_")[2] not in stored.sealed
    assert stored.digest == hashlib.sha256(key.encode()).hexdigest()
    license = httpx.get(
        f"{server}/orgs/acme/projects/website/license", headers={"authorization": key}
    )
    assert license.status_code == 200
    document = json.loads(base64.b64decode(license.json()["license"]))
    assert (document["orgId"], document["projectId"]) == ("acme", "website")

    with time_machine.travel(dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC), tick=False):
        active = wire.cli_post(server, wire.UPDATE_LAST_ACTIVE_TO_NOW, {}, authorization=token)
    assert wire.data_of(active) == {
        "users": {"updateLastActiveToNow": {"id": user_id, "lastActiveOn": "2026-12-01T09:30:00Z"}}
    }
    acme.member.refresh_from_db()
    assert acme.member.last_active_at == dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def test_a_personal_key_from_the_customer_api_is_the_one_get_environment_returns(server, acme):
    token = pat_of(acme.member)
    issued = httpx.post(
        f"{server}/api/v1/orgs/acme/projects/website/personal-environments",
        json={"name": "dev"},
        headers={"authorization": f"Bearer {token}"},
    ).json()
    asked = {"orgId": "acme", "projectId": "website", "environmentId": "dev"}  # no userId
    answer = wire.cli_post(server, wire.GET_ENVIRONMENT, asked, authorization=token)
    assert wire.data_of(answer)["projects"]["getEnvironment"]["apiKey"] == issued["api_key"]
    assert issued["WCP_API_URL"] == server


def test_a_ci_deploy_reads_its_environment_by_api_key_alone(server, acme):
    ci = Environment.objects.create(project=acme.project, name="ci", kind=EnvironmentKind.CICD)
    ci_key = api_key_issue(environment=ci).plaintext
    for key, environment in [(ci_key, ci), (acme.api_key, acme.production)]:
        answer = wire.cli_post(server, wire.GET_ENVIRONMENT, {"apiKey": key})  # no authorization
        assert wire.data_of(answer) == {
            "projects": {
                "getEnvironment": {
                    "id": str(environment.pk),
                    "status": "enabled",
                    "name": environment.name,
                    "apiKey": key,
                    "org": {"id": "acme", "name": "Acme"},
                    "project": {"id": "website", "name": acme.project.name},
                    "user": None,
                }
            }
        }
    # Show-once keys stay show-once: nothing of them is kept that could be shown again.
    assert list(
        ApiKey.objects.exclude(environment__kind=EnvironmentKind.PERSONAL).values_list(
            "sealed", flat=True
        )
    ) == ["", ""]

    ci.status = EnvironmentStatus.DISABLED
    ci.save()
    disabled = wire.cli_post(server, wire.GET_ENVIRONMENT, {"apiKey": ci_key})
    assert wire.data_of(disabled)["projects"]["getEnvironment"]["status"] == "disabled"

    api_key_revoke(api_key=ApiKey.objects.get(environment=ci))
    for key, message in [
        (ci_key, "The API key has been revoked. Check WCP_PROJECT_ENVIRONMENT_API_KEY."),
        (
            "cpk_nope",
            "The API key is malformed: expected cpk_<prefix>_<secret>. Check WCP_PROJECT_ENVIRONMENT_API_KEY.",
        ),
    ]:
        refused = wire.cli_post(server, wire.GET_ENVIRONMENT, {"apiKey": key})
        assert refused.json()["data"] == {"projects": {"getEnvironment": None}}
        assert [(e["message"], e["extensions"]["code"]) for e in wire.errors_of(refused)] == [
            (message, "INVALID_API_KEY")
        ]
    # The other arguments, when given with the key, must name its environment.
    mismatch = wire.cli_post(
        server, wire.GET_ENVIRONMENT, {"apiKey": acme.api_key, "orgId": "globex"}
    )
    assert wire.errors_of(mismatch)[0]["message"] == (
        "This API key belongs to another environment than the orgId asked for "
        "(production of acme/website)."
    )


def test_create_environment_without_a_seat_says_how_to_get_one(server, acme):
    token = pat_of(acme.admin)  # a member of acme without a developer seat
    refused = wire.cli_post(
        server,
        wire.CREATE_ENVIRONMENT,
        {
            "orgId": "acme",
            "projectId": "website",
            "userId": str(acme.admin.pk),
            "data": {"name": "dev"},
        },
        authorization=token,
    )
    assert [(e["message"], e["extensions"]["code"]) for e in wire.errors_of(refused)] == [
        (
            "You hold no developer seat on this project: ask an owner or admin of the "
            "organization to assign you one.",
            "NO_DEVELOPER_SEAT",
        )
    ]
    bad_name = wire.cli_post(
        server,
        wire.CREATE_ENVIRONMENT,
        {"orgId": "acme", "projectId": "website", "data": {"name": "Dev_1"}},
        authorization=pat_of(acme.member),
    )
    assert wire.errors_of(bad_name)[0]["extensions"]["code"] == "INVALID_NAME"
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 0


def test_outsiders_get_errors_never_data(server, acme, other_tenant, outsider):
    # acme's developer has a personal environment; nobody else may see or make one there.
    mine = pat_of(acme.member)
    wire.data_of(
        wire.cli_post(
            server,
            wire.CREATE_ENVIRONMENT,
            {"orgId": "acme", "projectId": "website", "data": {"name": "dev"}},
            authorization=mine,
        )
    )
    key = ApiKey.objects.get(environment__kind=EnvironmentKind.PERSONAL)
    where = {"orgId": "acme", "projectId": "website"}
    theirs = {**where, "userId": str(acme.member.pk)}
    requests = [
        ("ListProjects", wire.LIST_PROJECTS, {"orgId": "acme"}),
        ("GetEnvironment", wire.GET_ENVIRONMENT, {**theirs, "environmentId": "dev"}),
        ("GetEnvironment", wire.GET_ENVIRONMENT, {**where, "environmentId": "dev"}),
        ("CreateEnvironment", wire.CREATE_ENVIRONMENT, {**theirs, "data": {"name": "dev"}}),
        ("CreateEnvironment", wire.CREATE_ENVIRONMENT, {**where, "data": {"name": "dev"}}),
    ]
    expected = {
        # Not a member of acme: acme does not exist for them.
        outsider: ["NOT_FOUND", "FORBIDDEN", "NOT_FOUND", "FORBIDDEN", "NOT_FOUND"],
        other_tenant.owner: ["NOT_FOUND", "FORBIDDEN", "NOT_FOUND", "FORBIDDEN", "NOT_FOUND"],
        # acme's owner sees acme's projects, never another member's environment, and has
        # no personal environment (nor seat) of their own.
        acme.owner: [None, "FORBIDDEN", "NO_DEVELOPER_SEAT", "FORBIDDEN", "NO_DEVELOPER_SEAT"],
    }
    for who, codes in expected.items():
        token = pat_of(who)
        for (operation, query, variables), code in zip(requests, codes, strict=True):
            answer = wire.cli_post(server, query, variables, authorization=token)
            if code is None:
                listed = wire.data_of(answer)["projects"]["listProjects"]["data"]
                assert [p["id"] for p in listed] == ["website"]
                continue
            body = answer.json()
            assert [e["extensions"]["code"] for e in body["errors"]] == [code], (operation, body)
            assert all(value is None for value in body["data"]["projects"].values()), body
            assert key.last_four not in answer.body.decode()
    # An outsider's own organizations are its own (none here), never acme's.
    orgs = wire.cli_post(server, wire.LIST_ORGS, {}, authorization=pat_of(outsider))
    assert wire.data_of(orgs) == {"orgs": {"listOrgs": {"data": []}}}
    assert Environment.objects.filter(kind=EnvironmentKind.PERSONAL).count() == 1


def test_the_approval_page_shows_the_cms_clis_name(server, acme):
    token = generate(server)
    with httpx.Client(timeout=30, follow_redirects=True) as browser:
        page = browser.get(f"{server}/login/")
        browser.post(
            f"{server}/login/",
            data={
                "username": acme.member.email,
                "password": PASSWORD,
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        query = urlencode({"pat": token, "pat_name": "Webiny CLI <laptop>", "ref": "cli"})
        shown = browser.get(f"{server}/login/cli?{query}")
    assert "<dd>Webiny CLI &lt;laptop&gt;</dd>" in shown.text
    assert f'action="/login/cli?pat={token}&amp;pat_name=Webiny%20CLI%20%3Claptop%3E"' in shown.text
