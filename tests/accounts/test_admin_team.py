"""Staff admin for seats, access tokens and CLI logins: loads, shows prefixes only."""

import pytest
from django.urls import reverse

from accounts.models import CliLoginSession, DeveloperSeat, Membership, PersonalAccessToken
from accounts.services import access, seats

pytestmark = pytest.mark.django_db

MODELS = [DeveloperSeat, PersonalAccessToken, CliLoginSession]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def things(tenant):
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    token = access.pat_issue(user=tenant.member, name="laptop")
    started = access.cli_session_start(client_name="laptop")
    return {"token": token, "session": started}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_pages_load_for_staff_and_show_no_secret_or_digest(client, staff_user, things, model):
    client.force_login(staff_user)
    obj = model.objects.get()
    pages = [
        client.get(
            _url(model, "changelist"), {"q": "laptop" if model is not DeveloperSeat else ""}
        ),
        client.get(_url(model, "change", obj.pk)),
    ]
    secrets = [
        things["token"].plaintext,
        things["token"].token.digest,
        things["session"].poll_id,
        things["session"].code,
        things["session"].session.poll_digest,
        things["session"].session.code_digest,
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert [s for s in secrets if s in html] == []
    assert client.get(_url(model, "add")).status_code == 403


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_refused_to_customers(client, tenant, model):
    client.force_login(tenant.owner)
    assert client.get(_url(model, "changelist")).status_code == 302


def test_token_list_shows_the_prefix(client, staff_user, things):
    client.force_login(staff_user)
    html = client.get(_url(PersonalAccessToken, "changelist")).content.decode()
    assert things["token"].token.display in html


def test_staff_revoke_tokens_and_free_seats(client, staff_user, things):
    client.force_login(staff_user)
    token = things["token"].token
    client.post(
        _url(PersonalAccessToken, "changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert access.pat_authenticate(things["token"].plaintext) is None
    seat = DeveloperSeat.objects.get()
    client.post(
        _url(DeveloperSeat, "changelist"),
        {
            "action": "free",
            "_selected_action": [seat.pk],
            "apply_reason": "1",
            "reason": "left the company",
        },
    )
    seat.refresh_from_db()
    assert seat.freed_at is not None
