"""POST /api/v1/licenses/validate: every code, and the order they are checked in."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.utils import timezone

from accounts.licensing import keys as license_keys
from accounts.licensing import services as licensing_services
from accounts.models import DeveloperSeat, License, Membership, SigningKey
from accounts.services.organizations import contract_end, environment_set_status
from tests.accounts.licensing_support import fetch, license_url, make_personal

URL = "/api/v1/licenses/validate"


def validate(client, token) -> dict:
    response = client.post(URL, {"token": token}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    return {"valid": body["valid"], "code": body["code"]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
    )


def encode(part: dict) -> str:
    return b64(json.dumps(part, separators=(",", ":")).encode())


@pytest.fixture
def token(client, tenant) -> str:
    return fetch(client, license_url(tenant), tenant.api_key).json()["token"]


def test_valid(client, token):
    response = client.post(URL, {"token": token}, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {"valid": True, "code": "VALID", "message": "The license is valid."}


def test_no_authentication_is_needed_and_no_csrf(client, token):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(URL, {"token": token}, content_type="application/json")

    assert response.json()["code"] == "VALID"


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b.c", "a.b", "....", "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.sig", "x" * 20000],
)
def test_malformed(client, db, garbage):
    assert validate(client, garbage) == {"valid": False, "code": "MALFORMED"}


def test_alg_none_is_bad_signature(client, token):
    header, claims = parts(token)

    forged = f"{encode({**header, 'alg': 'none'})}.{encode(claims)}."

    assert validate(client, forged) == {"valid": False, "code": "BAD_SIGNATURE"}


def test_hs256_with_the_public_key_is_bad_signature(client, token):
    header, claims = parts(token)
    x = SigningKey.objects.get().public_jwk["x"].encode()
    signing_input = f"{encode({**header, 'alg': 'HS256'})}.{encode(claims)}"
    signature = hmac.new(x, signing_input.encode(), hashlib.sha256).digest()

    assert validate(client, f"{signing_input}.{b64(signature)}") == {
        "valid": False,
        "code": "BAD_SIGNATURE",
    }


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_every_spelling_of_alg_none_is_bad_signature(client, token, alg):
    header, claims = parts(token)

    for signature in ("", token.rsplit(".", 1)[1]):
        forged = f"{encode({**header, 'alg': alg})}.{encode(claims)}.{signature}"
        assert validate(client, forged) == {"valid": False, "code": "BAD_SIGNATURE"}


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_public_key_are_bad_signature(client, token, alg):
    header, claims = parts(token)
    secret = SigningKey.objects.get().public_jwk["x"].encode()
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{encode({**header, 'alg': alg})}.{encode(claims)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()

    assert validate(client, f"{signing_input}.{b64(signature)}") == {
        "valid": False,
        "code": "BAD_SIGNATURE",
    }


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_rsa_signed_under_our_kid_is_bad_signature(client, token, alg):
    """Algorithm confusion the other way: an RSA key of the forger's, our kid."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    header, claims = parts(token)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, algorithm=alg, headers={"kid": header["kid"]})

    assert validate(client, forged) == {"valid": False, "code": "BAD_SIGNATURE"}


def test_a_key_embedded_in_the_header_is_not_trusted(client, token):
    """A `jwk` header carrying the forger's own key, the token signed with it under our
    kid: only published keys verify."""
    header, claims = parts(token)
    forger = license_keys.keypair(Ed25519PrivateKey.generate())
    forged_header = {**header, "jwk": forger.public_jwk}
    signing_input = f"{encode(forged_header)}.{encode(claims)}"
    signature = forger.private_key.sign(signing_input.encode())

    assert validate(client, f"{signing_input}.{b64(signature)}") == {
        "valid": False,
        "code": "BAD_SIGNATURE",
    }


@pytest.mark.parametrize("kid", [None, "", "../../etc/passwd", "x" * 500, 42])
def test_a_missing_or_strange_kid_is_an_unknown_key(client, token, kid):
    header, claims = parts(token)
    forged_header = {k: v for k, v in header.items() if k != "kid"}
    if kid is not None:
        forged_header["kid"] = kid
    forged = f"{encode(forged_header)}.{encode(claims)}.{token.rsplit('.', 1)[1]}"

    assert validate(client, forged) == {"valid": False, "code": "UNKNOWN_KEY"}


def test_unknown_kid(client, token):
    _, claims = parts(token)

    forged = license_keys.sign(
        payload=claims, pair=license_keys.keypair(Ed25519PrivateKey.generate())
    )

    assert validate(client, forged) == {"valid": False, "code": "UNKNOWN_KEY"}


def test_tampered_payload_is_bad_signature(client, token):
    header, claims = parts(token)
    claims["limits"]["seats"] = 9999
    forged = f"{encode(header)}.{encode(claims)}.{token.rsplit('.', 1)[1]}"

    assert validate(client, forged) == {"valid": False, "code": "BAD_SIGNATURE"}


def test_wrong_key_under_our_kid_is_bad_signature(client, token):
    header, claims = parts(token)
    signing_input = f"{encode(header)}.{encode(claims)}"
    signature = Ed25519PrivateKey.generate().sign(signing_input.encode())

    assert validate(client, f"{signing_input}.{b64(signature)}") == {
        "valid": False,
        "code": "BAD_SIGNATURE",
    }


def test_expired(client, tenant, token):
    expires = License.objects.get().expires_at

    with time_machine.travel(expires, tick=False):
        assert validate(client, token) == {"valid": False, "code": "EXPIRED"}


def test_not_yet_valid(client, tenant):
    with time_machine.travel(timezone.now() + dt.timedelta(hours=1), tick=False):
        token = fetch(client, license_url(tenant), tenant.api_key).json()["token"]

    assert validate(client, token) == {"valid": False, "code": "NOT_YET_VALID"}


def test_revoked(client, token, staff_user):
    licensing_services.license_revoke(license=License.objects.get(), by=staff_user)

    assert validate(client, token) == {"valid": False, "code": "REVOKED"}


def test_environment_disabled(client, tenant, token):
    environment_set_status(environment=tenant.production, enabled=False)

    assert validate(client, token) == {"valid": False, "code": "ENVIRONMENT_DISABLED"}


def test_contract_ended(client, tenant, token):
    contract_end(contract=tenant.organization.contracts.get())

    assert validate(client, token) == {"valid": False, "code": "CONTRACT_ENDED"}


def test_seat_freed(client, tenant):
    personal = make_personal(tenant)
    token = fetch(client, license_url(tenant), personal.api_key).json()["token"]
    DeveloperSeat.objects.filter(pk=personal.seat.pk).update(freed_at=timezone.now())

    assert validate(client, token) == {"valid": False, "code": "SEAT_FREED"}


def test_member_removed(client, tenant):
    personal = make_personal(tenant)
    token = fetch(client, license_url(tenant), personal.api_key).json()["token"]
    Membership.objects.filter(user=personal.developer).delete()

    assert validate(client, token) == {"valid": False, "code": "MEMBER_REMOVED"}


def test_rotated_key_still_validates(client, tenant, token, settings, tmp_path):
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "k.pem")
    license_keys.write_private_key(tmp_path / "k.pem", Ed25519PrivateKey.generate(), replace=False)

    call_command("license_keys", "rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert validate(client, token) == {"valid": True, "code": "VALID"}


# --- order: the first failing check answers ----------------------------------------------------
def test_expired_wins_over_revoked_and_disabled(client, tenant, token):
    licensing_services.license_revoke(license=License.objects.get())
    environment_set_status(environment=tenant.production, enabled=False)

    with time_machine.travel(License.objects.get().expires_at, tick=False):
        assert validate(client, token)["code"] == "EXPIRED"
    assert validate(client, token)["code"] == "REVOKED"


def test_revoked_wins_over_disabled_and_contract_ended(client, tenant, token):
    environment_set_status(environment=tenant.production, enabled=False)
    contract_end(contract=tenant.organization.contracts.get())
    assert validate(client, token)["code"] == "ENVIRONMENT_DISABLED"

    licensing_services.license_revoke(license=License.objects.get())

    assert validate(client, token)["code"] == "REVOKED"


def test_bad_signature_wins_over_expiry(client, tenant, token):
    header, claims = parts(token)
    forged = f"{encode(header)}.{encode({**claims, 'exp': 1})}.{token.rsplit('.', 1)[1]}"

    assert validate(client, forged)["code"] == "BAD_SIGNATURE"


# --- bad requests -------------------------------------------------------------------------------
def test_missing_token_is_400(client, db):
    response = client.post(URL, {}, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "message": 'Send {"token": "<compact JWS>"}.',
        "code": "token_required",
    }


def test_unknown_field_is_400(client, token):
    response = client.post(URL, {"token": token, "x": 1}, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"message": "Unknown field 'x'.", "code": "unknown_field"}


def test_not_json_is_400(client, db):
    response = client.post(URL, "{nope", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"message": "The body is not valid JSON.", "code": "invalid_json"}


def test_get_is_405(client, db):
    response = client.get(URL)

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
