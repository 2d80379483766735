"""Personal access tokens and CLI login sessions (services)."""

import datetime as dt

import pytest
import time_machine

from accounts import tokens
from accounts.models import CliLoginSession, CliSessionStatus, PersonalAccessToken
from accounts.services import access

pytestmark = pytest.mark.django_db


def test_pat_is_random_expires_in_90_days_and_only_its_digest_is_stored(tenant):
    with time_machine.travel(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), tick=False):
        first = access.pat_issue(user=tenant.member, name="laptop")
    second = access.pat_issue(user=tenant.member)
    assert first.plaintext != second.plaintext
    assert access.PAT_SHAPE.match(first.plaintext)
    assert len(first.plaintext.split("_", 2)[2]) == 43  # 256 bits
    assert first.token.expires_at == dt.datetime(2027, 1, 30, tzinfo=dt.UTC)
    for issued in (first, second):
        row = PersonalAccessToken.objects.filter(pk=issued.token.pk).values().get()
        assert row["digest"] == tokens.digest(issued.plaintext)
        assert all(issued.plaintext not in str(value) for value in row.values())


def test_pat_authenticates_until_revoked_or_expired(tenant):
    issued = access.pat_issue(user=tenant.member)
    assert access.pat_authenticate(issued.plaintext) == issued.token
    assert PersonalAccessToken.objects.get().last_used_at is not None
    tampered = issued.plaintext[:-1] + ("A" if issued.plaintext[-1] != "A" else "B")
    assert access.pat_authenticate(tampered) is None
    assert access.pat_authenticate("cpt_nope") is None
    with time_machine.travel(issued.token.expires_at + dt.timedelta(seconds=1)):
        assert access.pat_authenticate(issued.plaintext) is None
    access.pat_revoke(token=issued.token)
    assert access.pat_authenticate(issued.plaintext) is None


def test_pat_of_an_inactive_user_does_not_authenticate(tenant):
    issued = access.pat_issue(user=tenant.member)
    tenant.member.is_active = False
    tenant.member.save()
    assert access.pat_authenticate(issued.plaintext) is None


def test_cli_session_pending_then_token_once_then_expired(tenant):
    started = access.cli_session_start(client_name="laptop")
    assert access.cli_session_poll(poll_id=started.poll_id).state is access.PollState.PENDING
    session = access.cli_session_by_code(started.code)
    assert session == started.session
    assert access.cli_session_decide(session=session, user=tenant.member, approve=True)
    first = access.cli_session_poll(poll_id=started.poll_id)
    assert first.state is access.PollState.APPROVED
    assert first.issued.token.user == tenant.member
    assert first.issued.token.name == "CLI: laptop"
    assert access.pat_authenticate(first.issued.plaintext) == first.issued.token
    assert access.cli_session_poll(poll_id=started.poll_id).state is access.PollState.EXPIRED
    assert PersonalAccessToken.objects.count() == 1
    row = CliLoginSession.objects.filter(pk=session.pk).values().get()
    assert row["status"] == CliSessionStatus.DELIVERED
    for secret in (started.poll_id, started.code, first.issued.plaintext):
        assert all(secret not in str(value) for value in row.values())


def test_cli_session_expires_after_ten_minutes(tenant):
    start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        started = access.cli_session_start()
    with time_machine.travel(start + dt.timedelta(minutes=9, seconds=59), tick=False):
        assert access.cli_session_poll(poll_id=started.poll_id).state is access.PollState.PENDING
    with time_machine.travel(start + dt.timedelta(minutes=10), tick=False):
        assert access.cli_session_poll(poll_id=started.poll_id).state is access.PollState.EXPIRED
        assert not access.cli_session_decide(
            session=started.session, user=tenant.member, approve=True
        )
    assert CliLoginSession.objects.get().status == CliSessionStatus.PENDING
    assert PersonalAccessToken.objects.count() == 0


def test_denied_cli_session_gives_no_token(tenant):
    started = access.cli_session_start()
    assert access.cli_session_decide(session=started.session, user=tenant.member, approve=False)
    assert access.cli_session_poll(poll_id=started.poll_id).state is access.PollState.DENIED
    assert not access.cli_session_decide(session=started.session, user=tenant.member, approve=True)
    assert PersonalAccessToken.objects.count() == 0


def test_unknown_or_malformed_poll_ids_find_nothing(tenant):
    started = access.cli_session_start()
    assert access.cli_session_poll(poll_id="nope") is None
    assert access.cli_session_poll(poll_id=started.poll_id[:-2] + "xx") is None
    assert access.cli_session_by_code(started.poll_id) is None  # a poll id is not a code
