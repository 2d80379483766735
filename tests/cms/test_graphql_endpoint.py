"""The /graphql endpoint itself: request shapes it refuses, introspection only in DEBUG,
errors without stack traces, the server's own failures as 500/503, and GenerateUserPat's
rate limit (shared with POST /api/v1/cli/sessions)."""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError
from django.test import Client

from accounts.models import CliLoginSession, PersonalAccessToken
from accounts.services import access
from tests.cms import wire

pytestmark = pytest.mark.django_db

INTROSPECTION = "query { __schema { queryType { name } } }"


def post(body: object, *, content_type: str = "application/json", **headers: str):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return Client(headers=headers).post("/graphql", data, content_type=content_type)


def test_only_post_of_a_json_object_is_a_request():
    get = Client().get("/graphql")
    assert (get.status_code, get["Allow"], get.json()) == (
        405,
        "POST",
        {"message": "GET is not allowed on /graphql: use POST.", "code": "method_not_allowed"},
    )
    for response, status, message in [
        (
            post({"query": "{}"}, content_type="text/plain"),
            415,
            "Send the GraphQL request as JSON (Content-Type: application/json).",
        ),
        (post(b"{not json"), 400, "The body is not valid JSON."),
        (post(b"[" * 100_000), 400, "The body is not valid JSON: it is nested too deeply."),
        (post([{"query": "{}"}]), 400, 'The body must be a JSON object: {"query", "variables"}.'),
    ]:
        assert response.status_code == status
        assert response.json() == {
            "message": message,
            "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}],
        }


def test_a_bad_document_is_a_400_naming_the_problem():
    response = post({"query": "{ users { nope } }"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "message": "Cannot query field 'nope' on type 'UsersQuery'.",
            "locations": [{"line": 1, "column": 11}],
            "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
        }
    ]
    missing = post({"query": wire.GET_USER_PAT})  # $token: ID! not given
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["message"] == (
        "Variable '$token' has invalid value: Expected a value of non-null type 'ID!' to be "
        "provided."
    )


def test_introspection_only_in_debug(settings):
    settings.DEBUG = False
    refused = post({"query": INTROSPECTION})
    assert refused.status_code == 400
    assert "introspection" in refused.json()["errors"][0]["message"].lower()
    settings.DEBUG = True
    allowed = post({"query": INTROSPECTION})
    assert allowed.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


def test_server_failures_carry_no_details(monkeypatch):
    def broken() -> str:
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr(access, "pending_pat_start", broken)
    failed = post({"query": wire.GENERATE_USER_PAT})
    assert failed.status_code == 500
    assert failed.json() == {
        "data": {"users": {"generateUserPat": None}},
        "errors": [
            {
                "message": "Internal server error: the Control Panel logged it.",
                "locations": [{"line": 4, "column": 13}],
                "path": ["users", "generateUserPat"],
                "extensions": {"code": "INTERNAL"},
            }
        ],
    }

    def down() -> str:
        raise DatabaseError("connection refused to 10.0.0.5")

    monkeypatch.setattr(access, "pending_pat_start", down)
    unavailable = post({"query": wire.GENERATE_USER_PAT})
    assert (unavailable.status_code, unavailable["Retry-After"]) == (503, "30")
    assert unavailable.json()["errors"][0]["message"] == (
        "Temporarily unavailable: try again in a moment."
    )
    assert "10.0.0.5" not in unavailable.content.decode()


def test_generate_user_pat_shares_the_cli_login_rate_limit(settings):
    settings.RATE_LIMIT_CLI_SESSIONS = "3/600"
    assert (
        Client().post("/api/v1/cli/sessions", {}, content_type="application/json").status_code
        == 201
    )
    for _ in range(2):
        assert post({"query": wire.GENERATE_USER_PAT}).json()["data"]["users"]["generateUserPat"]
    limited = post({"query": wire.GENERATE_USER_PAT})
    assert limited.status_code == 429
    wait = int(limited["Retry-After"])
    assert 1 <= wait <= 600
    assert limited.json()["errors"][0]["message"] == (
        f"Too many logins started from here: try again in {wait} seconds."
    )
    assert limited.json()["errors"][0]["extensions"] == {"code": "RATE_LIMITED"}
    assert CliLoginSession.objects.count() == 3


def test_json_meta_may_be_written_inline(tenant):
    token = access.pat_issue(user=tenant.member).plaintext
    document = (
        'mutation { users { createUserPat(data: {meta: {orgId: "acme", n: [1, 2.5, true, null]}})'
        " { meta expiresOn } } }"
    )
    answer = post({"query": document}, authorization=token).json()
    assert answer["data"]["users"]["createUserPat"]["meta"] == {
        "orgId": "acme",
        "n": [1, 2.5, True, None],
    }
    assert PersonalAccessToken.objects.filter(meta__orgId="acme").count() == 1


def test_get_user_pat_of_an_unknown_token():
    answer = post({"query": wire.GET_USER_PAT, "variables": {"token": "cpt_x"}}).json()
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert answer["data"] == {"users": {"getUserPat": None}}
