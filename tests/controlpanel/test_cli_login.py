"""Device-style CLI login through the API and the browser pages."""

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client

from accounts.models import CliLoginSession, CliSessionStatus, PersonalAccessToken
from accounts.services import access

pytestmark = pytest.mark.django_db


def start(**data):
    response = Client().post("/api/v1/cli/sessions", data, content_type="application/json")
    assert response.status_code == 201
    return response.json()


def code_of(body):
    return body["login_url"].split("pat=")[1]


def test_start_answers_an_id_a_login_url_and_an_interval(tenant, settings):
    settings.PUBLIC_URL = "https://cp.example.com"
    body = start(client="laptop")
    assert body["status"] == "pending"
    assert body["id"].startswith("cls_")
    assert re.fullmatch(
        r"https://cp\.example\.com/login/cli\?pat=clp_[a-z0-9]{12}_\S{43}", body["login_url"]
    )
    assert body["interval"] == 3.0
    assert body["expires_in"] == 600
    assert CliLoginSession.objects.get().client_name == "laptop"


def test_login_page_requires_sign_in(tenant):
    body = start()
    response = Client().get(f"/login/cli?pat={code_of(body)}")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/login/cli%3Fpat%3Dclp_")


def test_full_flow_pending_then_token_once_then_expired(tenant):
    body = start(client="laptop")
    poll = f"/api/v1/cli/sessions/{body['id']}"
    assert Client().get(poll).json() == {"status": "pending", "interval": 3.0}

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(tenant.member)
    page = browser.get(f"/login/cli?pat={code_of(body)}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "laptop" in html and tenant.member.email in html and "Approve" in html
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    # Without the CSRF token the approval is refused and nothing changes.
    refused = browser.post(f"/login/cli?pat={code_of(body)}", {"decision": "approve"})
    assert refused.status_code == 403
    assert CliLoginSession.objects.get().status == CliSessionStatus.PENDING

    approved = browser.post(
        f"/login/cli?pat={code_of(body)}", {"decision": "approve", "csrfmiddlewaretoken": csrf}
    )
    assert approved.status_code == 200
    assert "approved" in approved.content.decode()

    collected = Client().get(poll)
    assert collected.status_code == 200
    result = collected.json()
    assert result["status"] == "approved"
    assert result["user"] == {
        "id": tenant.member.pk,
        "email": tenant.member.email,
        "name": tenant.member.name,
    }
    me = Client(headers={"authorization": f"Bearer {result['token']}"}).get("/api/v1/me")
    assert me.json()["email"] == tenant.member.email

    again = Client().get(poll)
    assert again.status_code == 410
    assert again.json()["status"] == "expired"
    assert PersonalAccessToken.objects.filter(user=tenant.member).count() == 1
    # The approval page cannot be replayed.
    assert browser.get(f"/login/cli?pat={code_of(body)}").status_code == 410


def test_deny(tenant):
    body = start()
    browser = Client()
    browser.force_login(tenant.member)
    response = browser.post(f"/login/cli?pat={code_of(body)}", {"decision": "deny"})
    assert "denied" in response.content.decode()
    polled = Client().get(f"/api/v1/cli/sessions/{body['id']}")
    assert (polled.status_code, polled.json()["status"]) == (410, "denied")
    assert PersonalAccessToken.objects.count() == 0


def test_pending_session_expires_after_ten_minutes(tenant):
    now = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(now, tick=False):
        body = start()
    browser = Client()
    browser.force_login(tenant.member)
    with time_machine.travel(now + dt.timedelta(minutes=10), tick=False):
        page = browser.post(f"/login/cli?pat={code_of(body)}", {"decision": "approve"})
        assert page.status_code == 410
        polled = Client().get(f"/api/v1/cli/sessions/{body['id']}")
        assert (polled.status_code, polled.json()["status"]) == (410, "expired")
    assert PersonalAccessToken.objects.count() == 0


def test_unknown_codes_and_ids(tenant):
    browser = Client()
    browser.force_login(tenant.member)
    assert browser.get("/login/cli?pat=clp_nothing").status_code == 404
    assert browser.get("/login/cli").status_code == 404
    response = Client().get("/api/v1/cli/sessions/cls_aaaaaaaaaaaa_" + "a" * 43)
    assert response.status_code == 404
    assert response.json() == {"message": "No such CLI login.", "code": "not_found"}


def test_login_page_signs_in_with_email_and_password(tenant):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/?next=/login/cli%3Fpat%3Dx")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = client.post(
        "/login/",
        {
            "username": tenant.member.email,
            "password": "correct horse battery",
            "next": "/login/cli?pat=x",
            "csrfmiddlewaretoken": csrf,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/login/cli?pat=x"
    bad = Client().post("/login/", {"username": tenant.member.email, "password": "nope"})
    assert bad.status_code == 200
    assert "did not match" in bad.content.decode()


def test_sign_in_without_next_lands_on_the_front_door(tenant):
    client = Client()
    response = client.post(
        "/login/", {"username": tenant.member.email, "password": "correct horse battery"}
    )
    assert response["Location"] == "/"  # the front door: the organization's dashboard
    assert client.get("/")["Location"] == f"/{tenant.organization.slug}/"
    assert tenant.member.email in client.get("/account/").content.decode()


def test_account_page_lists_and_revokes_own_tokens_only(tenant):
    mine = access.pat_issue(user=tenant.member, name="laptop")
    theirs = access.pat_issue(user=tenant.admin, name="other")
    client = Client()
    client.force_login(tenant.member)
    html = client.get("/account/").content.decode()
    assert mine.token.display in html and theirs.token.display not in html
    assert client.post("/account/", {"revoke": theirs.token.pk}).status_code == 404
    assert client.post("/account/", {"revoke": "x"}).status_code == 404
    assert access.pat_authenticate(theirs.plaintext) is not None
    assert client.post("/account/", {"revoke": mine.token.pk}).status_code == 302
    assert access.pat_authenticate(mine.plaintext) is None
    assert Client().get("/account/").status_code == 302
