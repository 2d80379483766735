"""End to end: the real CLI, as a subprocess, against a live server; the approval goes
through the real sign-in and approval pages with an HTTP client, as a browser would."""

import base64
import json
import re
import subprocess
import sys

import httpx
import pytest
from django.conf import settings as django_settings

from accounts.models import Membership, PersonalAccessToken
from accounts.selectors.api_keys import api_key_check
from accounts.services import access, seats
from tests.conftest import make_tenant

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def cli(*args, config):
    return [sys.executable, "-m", "controlpanel.cli", *args, "--config", str(config)]


def approve_in_browser(login_url: str, email: str, password: str) -> None:
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        page = browser.get(login_url)  # signed out: lands on the sign-in page
        assert page.url.path == "/login/"
        csrf = CSRF.search(page.text).group(1)
        page = browser.post(
            str(page.url),
            data={
                "username": email,
                "password": password,
                "next": page.url.params["next"],
                "csrfmiddlewaretoken": csrf,
            },
        )
        assert page.url.path == "/login/cli"
        assert "Authorize the command line?" in page.text
        assert email in page.text
        csrf = CSRF.search(page.text).group(1)
        done = browser.post(
            str(page.url), data={"decision": "approve", "csrfmiddlewaretoken": csrf}
        )
        assert done.status_code == 200
        assert "CLI login approved" in done.text


def test_cli_login_whoami_and_env_against_a_live_server(live_server, settings, tmp_path):
    settings.PUBLIC_URL = live_server.url
    settings.CLI_LOGIN_POLL_INTERVAL = 0.2
    # The live server speaks plain HTTP; a browser would not send Secure cookies over it.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    tenant = make_tenant("acme")
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    config = tmp_path / "cli.json"

    login = subprocess.Popen(
        cli("login", "--url", live_server.url, "--client", "e2e laptop", config=config),
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "HOME": str(tmp_path)},
    )
    try:
        lines = [login.stdout.readline() for _ in range(3)]
        assert lines[0] == "Open this URL in your browser, sign in and approve the login:\n"
        login_url = lines[1].strip()
        assert login_url.startswith(f"{live_server.url}/login/cli?pat=clp_")
        assert lines[2] == "Waiting for approval...\n"
        approve_in_browser(login_url, tenant.member.email, "correct horse battery")
        rest, errors = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, errors
    token = PersonalAccessToken.objects.get(user=tenant.member)
    assert rest == (
        f"Logged in as {tenant.member.email} (token cpt_{token.prefix}_…{token.last_four}).\n"
        f"Token saved to {config}\n"
    )
    saved = json.loads(config.read_text())
    assert saved["user"]["email"] == tenant.member.email
    assert saved["token"].startswith(f"cpt_{token.prefix}_")
    assert config.stat().st_mode & 0o777 == 0o600

    whoami = subprocess.run(
        cli("whoami", config=config),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.splitlines() == [
        f"{tenant.member.email} ({tenant.member.name})",
        "  acme: member",
        "  project acme/website (developer seat)",
    ]

    env = subprocess.run(
        cli("env", "acme/website", "--name", "dev", config=config),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert env.returncode == 0, env.stderr
    comment, wcp_line, url_line = env.stdout.splitlines()
    assert re.fullmatch(r"# Personal environment dev \(\d+\) created\.", comment)
    assert url_line == f"export WCP_API_URL={live_server.url}"
    value = json.loads(base64.b64decode(wcp_line.removeprefix("export WCP_PROJECT_ENVIRONMENT=")))
    assert value["org"] == {"id": "acme"}
    assert value["project"] == {"id": "website"}
    check = api_key_check(value["apiKey"])
    assert check.ok
    assert str(check.api_key.environment.pk) == value["id"]
    assert check.api_key.environment.owner == tenant.member


def test_cli_without_a_seat_reports_the_refusal(live_server, tmp_path):
    tenant = make_tenant("acme")
    token = access.pat_issue(user=tenant.member)
    config = tmp_path / "cli.json"
    config.write_text(json.dumps({"url": live_server.url, "token": token.plaintext}))
    result = subprocess.run(
        cli("env", "acme/website", config=config),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: You hold no developer seat on this project: ask an owner or admin of the "
        "organization to assign you one.\n"
    )


def test_the_cms_cli_login_in_a_real_browser(live_server, tmp_path):
    """The approval page as a person sees it: the CMS CLI's pending token (GenerateUserPat)
    opened in Chromium, signed in, approved; the page passes axe-core and is kept as a
    screenshot."""
    from tests.e2e.browser import axe_violations, open_context, playwright_running, screenshot

    tenant = make_tenant("acme")
    generated = httpx.post(
        f"{live_server.url}/graphql",
        json={"query": "mutation GenerateUserPat { users { generateUserPat } }"},
        timeout=30,
    ).json()
    token = generated["data"]["users"]["generateUserPat"]
    url = f"{live_server.url}/login/cli?pat={token}&pat_name=Webiny%20CLI&ref=cli"
    with playwright_running() as playwright:
        context = open_context(playwright, tmp_path / "profile")
        page = context.new_page()
        page.goto(url)
        page.get_by_label("Email").fill(tenant.member.email)
        page.get_by_label("Password").fill("correct horse battery")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Authorize the command line?").wait_for()
        assert "Webiny CLI" in page.content()
        screenshot(page, "18-cli-approve")
        assert axe_violations(page) == []
        page.get_by_role("button", name="Approve").click()
        page.get_by_text("CLI login approved").wait_for()
        context.close()
    answer = httpx.post(
        f"{live_server.url}/graphql",
        json={
            "query": "query GetUserPat($token: ID!) { users { getUserPat(token: $token) "
            "{ token user { email } } } }",
            "variables": {"token": token},
        },
        timeout=30,
    ).json()
    assert answer["data"]["users"]["getUserPat"] == {
        "token": token,
        "user": {"email": tenant.member.email},
    }
    assert PersonalAccessToken.objects.filter(user=tenant.member).count() == 1
