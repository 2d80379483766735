"""API keys: shown once, stored as a digest, found by prefix, refused when revoked or
expired, rotated with an optional grace period."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiKey
from accounts.selectors.api_keys import KeyProblem, api_key_check
from accounts.services.api_keys import api_key_issue, api_key_revoke, api_key_rotate, api_key_touch
from accounts.services.errors import ServiceError
from accounts.services.organizations import environment_set_status

pytestmark = pytest.mark.django_db


def test_plaintext_is_never_stored(tenant):
    issued = api_key_issue(environment=tenant.production)
    row = ApiKey.objects.get(pk=issued.api_key.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apikey WHERE id = %s", [row.pk])
        stored = " ".join(str(v) for v in cursor.fetchone())
    secret = issued.plaintext.split("_", 2)[2]
    assert secret not in stored
    assert row.digest == tokens.digest(issued.plaintext)
    assert row.last_four == issued.plaintext[-4:]
    assert issued.plaintext.startswith(f"cpk_{row.prefix}_")


def test_secrets_are_random_and_long_enough():
    a, b = tokens.issue("cpk"), tokens.issue("cpk")
    assert a.plaintext != b.plaintext and a.prefix != b.prefix
    # 32 random bytes, urlsafe-base64 encoded: 43 characters, 256 bits.
    assert len(a.plaintext.split("_", 2)[2]) == 43


def test_valid_key_authenticates_with_two_queries(tenant, django_assert_num_queries):
    # The key's row and flags (the fragment the hot paths embed), then the key with its
    # environment, project and organization for the caller.
    with django_assert_num_queries(2):
        check = api_key_check(tenant.api_key)
        assert check.ok
        # organization is already loaded: no further query
        assert check.api_key.environment.project.organization == tenant.organization


@pytest.mark.parametrize(
    "value, problem",
    [
        (None, KeyProblem.MISSING),
        ("", KeyProblem.MISSING),
        ("Bearer something", KeyProblem.MALFORMED),
        ("cpk_short_x", KeyProblem.MALFORMED),
    ],
)
def test_missing_or_malformed_key_is_refused_without_touching_the_database(
    value, problem, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert api_key_check(value).problem is problem


def test_key_with_right_prefix_but_wrong_secret_is_unknown(tenant):
    prefix = ApiKey.objects.get(environment=tenant.production).prefix
    forged = f"cpk_{prefix}_{'A' * 43}"
    check = api_key_check(forged)
    assert check.problem is KeyProblem.UNKNOWN
    assert check.api_key is None


def test_revoked_key_is_refused(tenant):
    api_key = api_key_check(tenant.api_key).api_key
    api_key_revoke(api_key=api_key)
    first = ApiKey.objects.get(pk=api_key.pk).revoked_at
    api_key_revoke(api_key=api_key)  # twice: the first time stands
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == first
    assert api_key_check(tenant.api_key).problem is KeyProblem.REVOKED


def test_expired_key_is_refused(tenant):
    issued = api_key_issue(
        environment=tenant.production, expires_at=timezone.now() + dt.timedelta(hours=1)
    )
    assert api_key_check(issued.plaintext).ok
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2)):
        assert api_key_check(issued.plaintext).problem is KeyProblem.EXPIRED


def test_key_of_disabled_environment_is_refused(tenant):
    environment_set_status(environment=tenant.production, enabled=False)
    assert api_key_check(tenant.api_key).problem is KeyProblem.ENVIRONMENT_DISABLED


def test_rotation_without_grace_stops_the_old_key_at_once(tenant):
    old = api_key_check(tenant.api_key).api_key
    new = api_key_rotate(api_key=old)
    assert api_key_check(tenant.api_key).problem is KeyProblem.REVOKED
    assert api_key_check(new.plaintext).ok
    assert ApiKey.objects.get(pk=old.pk).replaced_by_id == new.api_key.pk


def test_rotation_with_grace_keeps_the_old_key_working_until_the_grace_ends(tenant):
    old = api_key_check(tenant.api_key).api_key
    new = api_key_rotate(api_key=old, grace=dt.timedelta(hours=24))
    assert api_key_check(tenant.api_key).ok
    assert api_key_check(new.plaintext).ok
    with time_machine.travel(timezone.now() + dt.timedelta(hours=25)):
        assert api_key_check(tenant.api_key).problem is KeyProblem.EXPIRED
        assert api_key_check(new.plaintext).ok


def test_rotation_refuses_a_grace_beyond_the_maximum_and_writes_nothing(tenant, settings):
    settings.API_KEY_GRACE_MAX_DAYS = 7
    old = api_key_check(tenant.api_key).api_key
    with pytest.raises(ServiceError, match="between 0 and 7 days"):
        api_key_rotate(api_key=old, grace=dt.timedelta(days=8))
    assert ApiKey.objects.filter(environment=tenant.production).count() == 1
    assert api_key_check(tenant.api_key).ok


def test_last_used_is_written_at_most_once_a_minute(tenant):
    api_key = api_key_check(tenant.api_key).api_key
    now = timezone.now()
    assert api_key_touch(api_key_id=api_key.pk, at=now) is True
    # The condition is in the UPDATE: racing requests write once a minute at most.
    assert api_key_touch(api_key_id=api_key.pk, at=now + dt.timedelta(seconds=30)) is False
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == now
    assert api_key_touch(api_key_id=api_key.pk, at=now + dt.timedelta(seconds=60)) is True
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == now + dt.timedelta(seconds=60)
