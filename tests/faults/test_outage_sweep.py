"""Every route of the site while PostgreSQL is stopped, anonymous and signed in: none
answers 500; what needs the database answers 503 with Retry-After (JSON on the machine
paths, a page elsewhere); what does not (a wrong method, a malformed body, the probes)
answers as it always does."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern

from controlpanel.edges import is_api_path
from tests.faults.stack import Postgres, app_env, web

pytestmark = pytest.mark.slow

# With the database down no credential can be checked, so any of the right shape reaches
# the same lookup a real one would: a session cookie (sessions live in the database) and
# an environment key as the raw `authorization` value (native, WCP and GraphQL read it).
SESSION = "s" * 32
KEY = "cpk_abcdefghijkl_" + "k" * 43
PAT = "cpt_abcdefghijkl_" + "t" * 43  # the CMS CLI's personal access token, for /graphql
# A CSRF secret of the client's own, sent back as the header: forms pass the CSRF check
# and reach their view.
CSRF = "c" * 32
# Refusals made before any storage is touched: wrong method, malformed id or body.
REFUSED_BEFORE_STORAGE = {400, 404, 405, 415}
NEEDS_NO_DATABASE = {"/healthz", "/clients/latest.js"}
PROBES = {"/healthz", "/readyz"}  # JSON for load balancers, like the machine paths
# The routes the probe found answering a 500 page, with bodies that reach the database.
NAMED = [
    ("POST", "/orgs/acme/projects/website/package/seats", {"operation": "increment"}),
    ("POST", "/orgs/acme/projects/website/package/tenants", {"operation": "decrement"}),
    ("GET", "/api/v1/usage", None),
    ("POST", "/api/v1/usage", {"instance": "i", "api_calls": 1}),
    ("GET", "/api/v1/me", None),
    ("GET", "/api/v1/orgs/acme/members", None),
    ("GET", "/api/v1/projects", None),
    ("POST", "/api/v1/cli/sessions", {}),
    ("GET", "/orgs/acme/projects/website/license", None),
]
GET_USER = {"query": "query GetUser { users { getCurrentUser { id } } }"}


def _routes(patterns: list | None = None, prefix: str = "") -> Iterator[str]:
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + _sample(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + _sample(p.pattern)


def _sample(pattern: object) -> str:
    """A path segment the pattern matches: `1` for each parameter (or an alternation's
    first choice), which every converter and group of the site's routes accepts."""
    text = str(pattern)
    if isinstance(pattern, RoutePattern):
        return re.sub(r"<(?:\w+:)?\w+>", "1", text)
    out, i = [], 0
    text = text.removeprefix("^").removesuffix("$")
    while i < len(text):
        if text.startswith("(?P<", i):
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            inner = text[text.index(">", i) + 1 : j]
            out.append(inner.split("|")[0] if "|" in inner and "[" not in inner else "1")
            i = j + 1
        else:
            out.append(text[i].replace("\\", ""))
            i += 1
    return "".join(out)


def site_paths() -> list[str]:
    paths = sorted({"/" + route for route in _routes()})
    for path in paths:
        resolve(path)  # each sample is a real route of the site, or this raises
    return paths


def test_every_route_answers_503_with_retry_after_while_postgres_is_stopped(pg: Postgres):
    paths = site_paths()
    assert len(paths) > 150
    env = app_env(pg, None)
    failures: list[str] = []
    with web(env) as base, httpx.Client(base_url=base, timeout=30) as client:
        pg.stop()
        try:
            for signed_in in (False, True):
                headers = {"Authorization": KEY, "X-CSRFToken": CSRF} if signed_in else {}
                requests = [(m, p, None) for p in paths for m in ("GET", "POST")]
                for method, path, body in requests + (NAMED if signed_in else []):
                    client.cookies.clear()
                    if signed_in:
                        client.cookies.set("sessionid", SESSION)
                        client.cookies.set("csrftoken", CSRF)
                    answer = client.request(method, path, json=body, headers=headers)
                    problem = _problem(answer, path, signed_in)
                    if problem:
                        failures.append(f"{method} {path} signed_in={signed_in}: {problem}")
            graphql = client.post("/graphql", json=GET_USER, headers={"Authorization": PAT})
            assert graphql.status_code == 503
            assert graphql.headers["Retry-After"].isdigit()
            assert graphql.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        finally:
            pg.start()
    assert failures == [], "\n".join(failures)


def _problem(answer: httpx.Response, path: str, signed_in: bool) -> str | None:
    status = answer.status_code
    if status == 503:
        if not answer.headers.get("Retry-After", "").isdigit():
            return "503 without Retry-After"
        kind = answer.headers.get("Content-Type", "")
        wanted = "application/json" if is_api_path(path) or path in PROBES else "text/html"
        return None if kind.startswith(wanted) else f"503 as {kind}"
    if status >= 500:
        return f"{status} {answer.text[:200]}"
    if signed_in and status not in REFUSED_BEFORE_STORAGE and path not in NEEDS_NO_DATABASE:
        return f"{status} while the database is down"
    return None
