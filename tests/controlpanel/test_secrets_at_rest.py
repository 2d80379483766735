"""Secrets at rest, after a whole customer's life driven through the product's own doors.

One scenario signs up through allauth, creates a project and a CI/CD environment, issues
and rotates its API keys, creates access tokens (account page and customer API), logs the
CLI in both ways (GraphQL GenerateUserPat, approval at /login/cli, GetUserPat; and the REST
CLI session), invites someone, adds a webhook, turns TOTP on (with its recovery codes), gets
a developer's personal environment key and downloads a license, keeping every secret the
product showed once; the server's own keys (SECRET_KEY, FIELD_ENCRYPTION_KEY, the license
signing key) join them. Then every column of every table of the database is read as text
(information_schema, plain SQL; session payloads decoded too) and none of those secrets may
appear: not whole, not without its public prefix, not lowercased, not as hex. A control
proves the same scanner finds values that are stored in clear."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from typing import Protocol

import pyotp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client

from accounts.licensing import keys
from accounts.models import Organization, User
from tests.cms import wire
from tests.factories import ContractFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase"
CONFIRM_LINK = re.compile(r"https?://testserver(/accounts/confirm-email/[^\s]+)")
INVITE_TOKEN = re.compile(r"(cpi_[A-Za-z0-9_-]+)")


def stored_text() -> Iterator[str]:
    """Every value of every column of every table of the public schema, as PostgreSQL
    prints it (`::text`: bytea as hex, json as written), plus each decoded session."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
        )
        columns: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            columns.setdefault(table, []).append(column)
        for table, names in columns.items():
            quote = connection.ops.quote_name
            selected = ", ".join(f"{quote(name)}::text" for name in names)
            cursor.execute(f"SELECT {selected} FROM {quote(table)}")
            for row in cursor.fetchall():
                yield from (value for value in row if value is not None)
    # Session rows are signed base64: look inside them as well.
    for session in Session.objects.all():
        yield json.dumps(session.get_decoded())


def variants(secret: str) -> set[str]:
    """The forms a secret could be stored in: whole, without its public prefix
    (`cpk_<id>_`, `whsec_`, ...), and each as hex; compared lowercased. Forms shorter than
    8 characters would match by chance and are left out."""
    forms = {secret}
    if re.match(r"^[a-z]+_", secret):  # cpk_, cpt_, cpi_, whsec_
        forms.add(secret.split("_", 1)[1])
    if re.match(r"^cp[a-z]_[a-z0-9]{12}_", secret):  # the lookup id is public too
        forms.add(secret.split("_", 2)[2])
    forms |= {form.encode().hex() for form in forms}
    return {form.lower() for form in forms if len(form) >= 8}


def found(secrets: dict[str, str]) -> set[str]:
    haystack = [value.lower() for value in stored_text()]
    return {
        name
        for name, secret in secrets.items()
        if any(form in value for form in variants(secret) for value in haystack)
    }


def first(pattern: str | re.Pattern[str], text: str) -> str:
    match = re.search(pattern, text)
    assert match, text[:2000]
    return match.group(1)


class Page(Protocol):
    content: bytes


def shown(response: Page, pattern: str) -> str:
    """What a page showed once: the first group of `pattern` in its HTML."""
    return first(pattern, response.content.decode())


def emailed(pattern: re.Pattern[str]) -> str:
    return first(pattern, str(mail.outbox[-1].body))


def test_no_secret_the_scenario_saw_is_stored_in_clear(
    settings, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    secrets: dict[str, str] = {"password": PASSWORD}
    browser = Client()

    # Sign up with a password; the confirmation link's key is a secret too.
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            "/accounts/signup/",
            {
                "organization": "Initech Systems",
                "name": "Nora",
                "email": "nora@example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    assert response.status_code == 302
    link = emailed(CONFIRM_LINK)
    secrets["email confirmation key"] = link.rstrip("/").rsplit("/", 1)[-1]
    assert browser.post(link).status_code == 302
    organization = Organization.objects.get(name="Initech Systems")
    slug = organization.slug
    nora = User.objects.get(email="nora@example.com")
    ContractFactory(organization=organization)  # staff sets the terms: not a customer door

    # A project, a CI/CD environment, its keys issued and rotated.
    assert (
        browser.post(f"/{slug}/projects/new", {"name": "Shop", "slug": "shop"}).status_code == 302
    )
    assert browser.post(f"/{slug}/projects/shop/environments", {"name": "ci"}).status_code == 302
    ci = organization.projects.get(slug="shop").environments.get(name="ci")
    keys_url = f"/{slug}/projects/shop/environments/{ci.pk}/keys"
    new_key = r'<code id="new-api-key">(cpk_[^<]+)</code>'
    secrets["issued api key"] = shown(browser.post(keys_url, {"name": "deploy"}), new_key)
    issued = ci.api_keys.get(name="deploy")
    secrets["rotated api key"] = shown(
        browser.post(f"{keys_url}/{issued.pk}/rotate", {"grace_days": "1"}), new_key
    )

    # A personal access token from the account page.
    secrets["access token"] = shown(
        browser.post("/account/", {"create": "1", "name": "laptop", "days": "30"}),
        r'<code id="new-token">(cpt_[^<]+)</code>',
    )

    # `webiny login`: GenerateUserPat, approval in the browser, GetUserPat answers the PAT.
    generated = browser.post(
        "/graphql", {"query": wire.GENERATE_USER_PAT}, content_type="application/json"
    ).json()["data"]["users"]["generateUserPat"]
    secrets["cli login token"] = generated
    approval = f"/login/cli?pat={generated}&pat_name=Webiny%20CLI&ref=cli"
    assert browser.get(approval).status_code == 200
    assert "CLI login approved" in browser.post(approval, {"decision": "approve"}).content.decode()
    answered = Client().post(
        "/graphql",
        {"query": wire.GET_USER_PAT, "variables": {"token": generated}},
        content_type="application/json",
        HTTP_AUTHORIZATION=generated,
    )
    assert answered.json()["data"]["users"]["getUserPat"]["token"] == generated

    # A token from the customer API, and a CLI login through its REST door: the poll id,
    # the approval code in the login URL, and the token the poll hands over.
    created = browser.post(
        "/api/v1/tokens", {"name": "ci", "expires_in_days": 7}, content_type="application/json"
    )
    assert created.status_code == 201
    secrets["customer api token"] = created.json()["token"]
    started = Client().post("/api/v1/cli/sessions", {}, content_type="application/json").json()
    secrets["cli session poll id"] = started["id"]
    secrets["cli session code"] = started["login_url"].split("pat=")[1]
    code_url = f"/login/cli?pat={secrets['cli session code']}"
    assert browser.get(code_url).status_code == 200
    assert browser.post(code_url, {"decision": "approve"}).status_code == 200
    polled = Client().get(f"/api/v1/cli/sessions/{started['id']}").json()
    assert polled["status"] == "approved"
    secrets["cli session token"] = polled["token"]

    # An invitation: its token is in the email only.
    with django_capture_on_commit_callbacks(execute=True):
        invited = browser.post(
            f"/{slug}/team/invite", {"email": "new@example.com", "role": "member"}
        )
    assert invited.status_code == 302
    secrets["invitation token"] = emailed(INVITE_TOKEN)

    # A webhook: its signing secret is shown once.
    secrets["webhook secret"] = shown(
        browser.post(f"/{slug}/webhooks/add", {"url": "https://hooks.example.com/cp"}),
        r'<code id="webhook-secret">([^<]+)</code>',
    )

    # TOTP through allauth's own pages, and the recovery codes it hands out.
    assert browser.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    assert browser.get("/accounts/2fa/totp/activate/").status_code == 200
    totp_secret = browser.session["mfa.totp.secret"]
    secrets["totp secret"] = totp_secret
    secrets["totp secret bytes"] = base64.b32decode(
        totp_secret + "=" * (-len(totp_secret) % 8)
    ).hex()
    with django_capture_on_commit_callbacks(execute=True):
        activated = browser.post(
            "/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(totp_secret).now()}
        )
    assert activated.status_code == 302, activated.content.decode()[:500]
    codes = shown(
        browser.get("/accounts/2fa/recovery-codes/"),
        r'<textarea[^>]*id="recovery_codes"[^>]*>([^<]+)</textarea>',
    ).split()
    assert len(codes) == 10, codes
    secrets |= {f"recovery code {number}": code for number, code in enumerate(codes)}

    # A developer's personal environment: a seat, then the key the CLI deploys with.
    assert browser.post(f"/{slug}/team/seats/shop/{nora.pk}", {"assign": "1"}).status_code == 302
    line = shown(
        browser.post(f"/{slug}/environments/shop", {"shop-name": "dev"}),
        r'<code id="wcp-env">WCP_PROJECT_ENVIRONMENT=([^<]+)</code>',
    )
    secrets["personal environment key"] = json.loads(base64.b64decode(line))["apiKey"]

    # A license issued.
    license_download = browser.post(f"/{slug}/projects/shop/license")
    assert license_download.status_code == 200
    assert license_download.content.decode().count(".") == 2

    # The server's own keys never reach a table either.
    private_key = keys.signing_keypair().private_key
    pem = keys.private_key_to_pem(private_key).decode()
    secrets["license signing key (PEM)"] = "".join(pem.splitlines()[1:-1])
    raw = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secrets["license signing key (JWK d)"] = keys.b64url(raw)
    secrets["license signing key (raw)"] = raw.hex()
    secrets["SECRET_KEY"] = settings.SECRET_KEY
    secrets["FIELD_ENCRYPTION_KEY"] = settings.FIELD_ENCRYPTION_KEY

    assert all(secrets.values()) and len(secrets) >= 25, secrets
    assert found(secrets) == set()
    # Control: the same scanner finds what is stored in clear (a slug, a URL, a key's public
    # lookup prefix, a token's digest), so the scan above could fail.
    clear = {
        "organization slug": slug,
        "webhook url": "https://hooks.example.com/cp",
        "api key lookup prefix": secrets["issued api key"][:16],
        "access token digest": hashlib.sha256(secrets["access token"].encode()).hexdigest(),
    }
    assert found(clear) == set(clear)
