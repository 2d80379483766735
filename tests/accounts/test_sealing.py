"""Personal environment keys at rest: Fernet under FIELD_ENCRYPTION_KEY, rotated with
`manage.py reseal`; a dev key only under DEBUG; production without a key refuses."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import checks, sealing
from accounts.models import ApiKey, Membership
from accounts.selectors.team import personal_key_current
from accounts.services import personal, seats

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_seal_and_unseal(settings):
    settings.FIELD_ENCRYPTION_KEY = OLD
    sealed = sealing.seal("cpk_abc_secret")
    assert "secret" not in sealed
    assert sealing.unseal(sealed) == "cpk_abc_secret"
    assert Fernet(OLD.encode()).decrypt(sealed.encode()) == b"cpk_abc_secret"


def test_rotation_keeps_old_seals_readable_and_reseal_moves_them(settings, tenant):
    seats.seat_assign(
        project=tenant.project,
        membership=Membership.objects.get(user=tenant.member),
        by=Membership.objects.get(user=tenant.owner),
    )
    settings.FIELD_ENCRYPTION_KEY = OLD
    issued = personal.personal_environment_get_or_create(
        project=tenant.project, user=tenant.member, name="dev"
    )
    settings.FIELD_ENCRYPTION_KEY = f"{NEW},{OLD}"  # step 1: the new key first
    assert personal_key_current(environment=issued.environment) == issued.plaintext
    out = io.StringIO()
    call_command("reseal", stdout=out)  # step 2
    assert out.getvalue() == (
        "Re-encrypted 1 key(s) and 0 two-factor secret(s) with the current key.\n"
    )
    settings.FIELD_ENCRYPTION_KEY = NEW  # step 3: the old key goes
    assert personal_key_current(environment=issued.environment) == issued.plaintext
    sealed = ApiKey.objects.get(environment=issued.environment).sealed
    assert Fernet(NEW.encode()).decrypt(sealed.encode()).decode() == issued.plaintext

    settings.FIELD_ENCRYPTION_KEY = OLD  # a key dropped before reseal ran
    with pytest.raises(sealing.SealBroken):
        personal_key_current(environment=issued.environment)
    with pytest.raises(CommandError, match="cannot be decrypted with FIELD_ENCRYPTION_KEY"):
        call_command("reseal", stdout=io.StringIO())


def test_a_development_key_only_under_debug(settings):
    settings.FIELD_ENCRYPTION_KEY = ""
    settings.DEBUG = True
    assert sealing.unseal(sealing.seal("x")) == "x"
    assert checks.field_encryption_key() == []
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY is not set"):
        sealing.seal("x")
    assert [(m.id, m.msg) for m in checks.field_encryption_key()] == [
        ("accounts.E001", sealing.MISSING_KEY)
    ]
    settings.FIELD_ENCRYPTION_KEY = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        sealing.seal("x")


def test_show_once_keys_are_never_sealed(tenant):
    assert ApiKey.objects.get(environment=tenant.production).sealed == ""


def test_totp_secrets_are_sealed_at_rest_and_resealed(settings, tenant):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    settings.FIELD_ENCRYPTION_KEY = OLD
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TOTP.activate(tenant.owner, secret)
    stored = Authenticator.objects.get(user=tenant.owner, type="totp").data["secret"]
    assert stored != secret and Fernet(OLD.encode()).decrypt(stored.encode()).decode() == secret
    settings.FIELD_ENCRYPTION_KEY = f"{NEW},{OLD}"
    out = io.StringIO()
    call_command("reseal", stdout=out)
    assert "and 1 two-factor secret(s)" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEY = NEW
    stored = Authenticator.objects.get(user=tenant.owner, type="totp").data["secret"]
    assert Fernet(NEW.encode()).decrypt(stored.encode()).decode() == secret
    # allauth reads it back through the adapter: the code of that secret verifies.
    import pyotp

    totp = TOTP(Authenticator.objects.get(user=tenant.owner, type="totp"))
    assert totp.validate_code(pyotp.TOTP(secret).now())
