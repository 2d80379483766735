"""Signing keys: where the private key comes from, thumbprints, the JWS format, and the
`license_keys` command (list, rotate, retire)."""

from __future__ import annotations

import base64
import io
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from accounts.licensing import keys
from accounts.licensing import services as licensing_services
from accounts.models import License, SigningKey, SigningKeyStatus
from tests.accounts.licensing_support import fetch, license_url

# RFC 8037, appendix A: the Ed25519 example key, its thumbprint and a signature.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def rfc_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(RFC8037_D + "="))


def test_kid_is_the_rfc7638_thumbprint_of_rfc8037s_example():
    pair = keys.keypair(rfc_key())

    assert pair.public_jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC8037_X,
        "kid": RFC8037_THUMBPRINT,
        "alg": "EdDSA",
        "use": "sig",
    }
    assert pair.kid == RFC8037_THUMBPRINT


def test_signature_matches_rfc8037s_example():
    signing_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"

    assert keys.b64url(rfc_key().sign(signing_input)) == RFC8037_SIGNATURE


def test_embedded_key_is_generated_once_with_mode_0600(settings, tmp_path):
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = ""
    settings.DATA_DIR = tmp_path / "data"

    first = keys.signing_keypair()
    second = keys.signing_keypair()

    path = tmp_path / "data" / "keys" / "license-signing-key.pem"
    assert first.kid == second.kid
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert keys.keypair(keys.private_key_from_pem(path.read_bytes(), source="t")).kid == first.kid


def test_concurrent_first_use_agrees_on_one_key(settings, tmp_path):
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = ""
    settings.DATA_DIR = tmp_path
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        kids.append(keys.signing_keypair().kid)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(kids) == 8
    assert len(set(kids)) == 1
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["license-signing-key.pem"]


def test_default_data_dir_key_stays_out_of_git():
    gitignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert "/var/" in gitignore  # DATA_DIR's default


def test_key_from_environment_pem_with_escaped_newlines(settings):
    pem = keys.private_key_to_pem(rfc_key()).decode()
    settings.LICENSE_SIGNING_KEY = pem.replace("\n", "\\n")
    settings.LICENSE_SIGNING_KEY_FILE = "/nonexistent/ignored.pem"

    assert keys.signing_keypair().kid == RFC8037_THUMBPRINT


def test_key_from_file(settings, tmp_path):
    path = tmp_path / "k.pem"
    path.write_bytes(keys.private_key_to_pem(rfc_key()))
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = str(path)

    assert keys.signing_keypair().kid == RFC8037_THUMBPRINT


def test_missing_file_or_wrong_key_type_says_what_is_wrong(settings, tmp_path):
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "missing.pem")
    with pytest.raises(keys.KeyConfigurationError, match="does not exist"):
        keys.signing_keypair()

    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    settings.LICENSE_SIGNING_KEY = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(keys.KeyConfigurationError, match="not an Ed25519 key"):
        keys.signing_keypair()


def test_database_keeps_public_keys_only(client, tenant):
    fetch(client, license_url(tenant), tenant.api_key)

    key = SigningKey.objects.get()
    assert set(key.public_jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert key.status == SigningKeyStatus.ACTIVE
    assert key.retired_at is None


def test_first_use_of_a_new_configured_key_retires_the_previous_one(
    client, tenant, settings, tmp_path
):
    fetch(client, license_url(tenant), tenant.api_key)
    old = SigningKey.objects.get()
    # An operator deploys a new key through the environment.
    settings.LICENSE_SIGNING_KEY = keys.private_key_to_pem(rfc_key()).decode()
    licensing_services.license_issue(
        environment=tenant.production, contract=tenant.organization.contracts.get()
    )

    old.refresh_from_db()
    assert old.status == SigningKeyStatus.RETIRED
    assert old.retired_at is not None
    assert SigningKey.objects.get(status=SigningKeyStatus.ACTIVE).kid == RFC8037_THUMBPRINT


def test_a_withdrawn_configured_key_stops_signing(client, tenant, settings, tmp_path):
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "k.pem")
    keys.write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate(), replace=False)
    fetch(client, license_url(tenant), tenant.api_key)
    SigningKey.objects.update(status=SigningKeyStatus.RETIRED, retired_at="2026-01-01T00:00Z")
    SigningKey.objects.update(withdrawn_at="2026-01-02T00:00Z")

    with pytest.raises(licensing_services.LicensingError, match="withdrawn"):
        licensing_services.license_issue(
            environment=tenant.production, contract=tenant.organization.contracts.get()
        )


# --- the command ---------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = io.StringIO()
    call_command("license_keys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_rotate_replaces_the_key_file_and_retires_the_old_key(client, tenant, settings, tmp_path):
    path = tmp_path / "k.pem"
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = str(path)
    keys.write_private_key(path, rfc_key(), replace=False)
    fetch(client, license_url(tenant), tenant.api_key)

    output = run("rotate")

    new = SigningKey.objects.get(status=SigningKeyStatus.ACTIVE)
    assert output == f"new active key {new.kid}: private key in {path}\n"
    assert keys.signing_keypair().kid == new.kid  # picked up without a restart
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.objects.get(kid=RFC8037_THUMBPRINT).status == SigningKeyStatus.RETIRED
    listing = run("list")
    assert f"{new.kid}  active" in listing
    assert "[published, configured here]" in listing
    assert f"{RFC8037_THUMBPRINT}  retired" in listing


def test_rotate_with_env_key_needs_out_and_writes_a_new_file(settings, tmp_path, db):
    settings.LICENSE_SIGNING_KEY = keys.private_key_to_pem(rfc_key()).decode()

    with pytest.raises(CommandError, match="pass --out FILE"):
        run("rotate")
    assert SigningKey.objects.count() == 0

    out = tmp_path / "new.pem"
    run("rotate", "--out", str(out))

    new = SigningKey.objects.get(status=SigningKeyStatus.ACTIVE)
    assert keys.keypair(keys.private_key_from_pem(out.read_bytes(), source="t")).kid == new.kid
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with pytest.raises(CommandError, match="already exists"):
        run("rotate", "--out", str(out))


def test_retire_refuses_the_active_key_and_unknown_kids(client, tenant):
    fetch(client, license_url(tenant), tenant.api_key)
    active = SigningKey.objects.get()

    with pytest.raises(CommandError, match="is the active key"):
        run("retire", "--", active.kid)
    with pytest.raises(CommandError, match="No signing key"):
        run("retire", "nope")


def test_withdraw_is_idempotent(client, tenant, settings, tmp_path):
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "k.pem")
    keys.write_private_key(tmp_path / "k.pem", rfc_key(), replace=False)
    fetch(client, license_url(tenant), tenant.api_key)
    run("rotate")

    assert run("retire", RFC8037_THUMBPRINT, "--withdraw") == (
        f"{RFC8037_THUMBPRINT} withdrawn (unpublished now)\n"
    )
    first = SigningKey.objects.get(kid=RFC8037_THUMBPRINT).withdrawn_at
    run("retire", RFC8037_THUMBPRINT, "--withdraw")
    assert SigningKey.objects.get(kid=RFC8037_THUMBPRINT).withdrawn_at == first
    assert License.objects.count() == 1  # records are history, never deleted


def test_list_does_not_generate_the_embedded_key(settings, tmp_path, db):
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = ""
    settings.DATA_DIR = tmp_path

    assert run("list") == "no signing keys yet (one is registered at the first license)\n"
    assert not (tmp_path / "keys").exists()


def test_retire_takes_a_kid_that_starts_with_a_dash(client, tenant):
    """base64url thumbprints start with "-" about once in 64 keys: `--` lets them through."""
    fetch(client, license_url(tenant), tenant.api_key)
    SigningKey.objects.update(kid="-" + SigningKey.objects.get().kid[1:])
    kid = SigningKey.objects.get().kid

    with pytest.raises(CommandError, match="is the active key"):
        run("retire", "--", kid)
