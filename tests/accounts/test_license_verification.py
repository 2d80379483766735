"""License tokens checked by an independent verifier: PyJWT, fed only the JWKS the Control
Panel serves at /.well-known/jwks.json. Nothing here uses the project's own signing or
verification code to decide whether a token is good."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json

import httpx
import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.cache import cache
from django.core.management import call_command

from accounts.licensing import keys as license_keys
from accounts.models import License, SigningKey, SigningKeyStatus
from tests.accounts.licensing_support import decode_license, fetch, license_url, make_personal
from tests.conftest import make_tenant

ISSUER = "https://cp.test"


@pytest.fixture(autouse=True)
def _key_file(settings, tmp_path):
    """Each test signs with its own key file, so rotations stay inside the test."""
    settings.LICENSE_ISSUER = ISSUER
    settings.LICENSE_SIGNING_KEY = ""
    settings.LICENSE_SIGNING_KEY_FILE = str(tmp_path / "signing.pem")
    license_keys.write_private_key(
        tmp_path / "signing.pem", Ed25519PrivateKey.generate(), replace=False
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def served_jwks(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()


def verify(token: str, jwks: dict, **options) -> dict:
    """The whole offline check a CMS would do with PyJWT and the published key set."""
    kid = jwt.get_unverified_header(token).get("kid")
    key = jwt.PyJWKSet.from_dict(jwks)[kid]  # KeyError when the kid is not published
    return jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        issuer=ISSUER,
        options={"require": ["iss", "exp", "nbf", "iat", "jti"]},
        **options,
    )


def split(token: str) -> tuple[dict, dict, str]:
    head, body, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
        signature,
    )


def encode(part: dict) -> str:
    return b64(json.dumps(part, separators=(",", ":")).encode())


@pytest.fixture
def issued(client, tenant):
    response = fetch(client, license_url(tenant), tenant.api_key)
    assert response.status_code == 200
    return response.json()


def test_a_license_verifies_with_the_published_jwks_alone(client, tenant, issued):
    jwks = served_jwks(client)

    claims = verify(issued["token"], jwks)

    assert claims["org"] == "acme"
    assert claims["project"] == "website"
    assert claims["features"] == decode_license(issued)["package"]["features"]
    assert jwt.get_unverified_header(issued["token"]) == {
        "alg": "EdDSA",
        "kid": SigningKey.objects.get().kid,
        "typ": "JWT",
    }
    (published,) = jwks["keys"]
    assert published["kty"] == "OKP"
    assert published["crv"] == "Ed25519"
    assert published["alg"] == "EdDSA"
    assert published["use"] == "sig"
    assert "d" not in published  # never the private half


def test_kid_is_the_rfc7638_thumbprint_of_the_published_key(client, issued):
    (published,) = served_jwks(client)["keys"]
    required = json.dumps(
        {"crv": published["crv"], "kty": published["kty"], "x": published["x"]},
        separators=(",", ":"),
    )
    assert published["kid"] == b64(hashlib.sha256(required.encode()).digest())


def test_tampered_payload_is_rejected(client, issued):
    header, claims, signature = split(issued["token"])
    claims["features"]["seats"]["options"]["maxCount"] = 10_000
    forged = f"{encode(header)}.{encode(claims)}.{signature}"

    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged, served_jwks(client))


def test_token_signed_by_another_key_under_our_kid_is_rejected(client, issued):
    header, claims, _ = split(issued["token"])
    signing_input = f"{encode(header)}.{encode(claims)}"
    signature = Ed25519PrivateKey.generate().sign(signing_input.encode())

    with pytest.raises(jwt.InvalidSignatureError):
        verify(f"{signing_input}.{b64(signature)}", served_jwks(client))


def test_alg_none_is_rejected(client, issued):
    header, claims, _ = split(issued["token"])
    forged = f"{encode({**header, 'alg': 'none'})}.{encode(claims)}."

    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(forged, served_jwks(client))


@pytest.mark.parametrize("secret_from", ["jwk_x", "jwk_json"])
def test_hs256_signed_with_the_public_key_is_rejected(client, issued, secret_from):
    jwks = served_jwks(client)
    (published,) = jwks["keys"]
    secret = published["x"].encode() if secret_from == "jwk_x" else json.dumps(published).encode()
    header, claims, _ = split(issued["token"])
    signing_input = f"{encode({**header, 'alg': 'HS256'})}.{encode(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()

    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(f"{signing_input}.{b64(signature)}", jwks)


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_rsa_signed_under_our_kid_is_rejected(client, issued, alg):
    from cryptography.hazmat.primitives.asymmetric import rsa

    header, claims, _ = split(issued["token"])
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, forger, algorithm=alg, headers={"kid": header["kid"]})

    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(forged, served_jwks(client))


def test_unknown_kid_is_rejected(client, issued):
    stranger = license_keys.keypair(Ed25519PrivateKey.generate())
    _, claims, _ = split(issued["token"])
    forged = license_keys.sign(payload=claims, pair=stranger)

    with pytest.raises(KeyError, match="no key for kid"):
        verify(forged, served_jwks(client))


def test_expired_license_is_rejected(client, tenant, settings):
    settings.LICENSE_EXPIRY_DAYS = 30
    tenant.organization.contracts.update(starts_on=dt.date.today() - dt.timedelta(days=60))
    with time_machine.travel(dt.datetime.now(dt.UTC) - dt.timedelta(days=31), tick=False):
        token = fetch(client, license_url(tenant), tenant.api_key).json()["token"]

    with pytest.raises(jwt.ExpiredSignatureError):
        verify(token, served_jwks(client))


def test_personal_license_verifies_and_names_its_developer(client, tenant):
    personal = make_personal(tenant)
    token = fetch(client, license_url(tenant), personal.api_key).json()["token"]

    claims = verify(token, served_jwks(client))

    assert claims["developer"] == str(personal.developer.pk)
    assert claims["environment"] == str(personal.environment.pk)


def test_a_license_signed_before_rotation_still_verifies_after(client, tenant, issued):
    old_kid = jwt.get_unverified_header(issued["token"])["kid"]

    call_command("license_keys", "rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115
    cache.clear()  # the next fetch signs a fresh license instead of reusing the cached one
    fresh = fetch(client, license_url(tenant), tenant.api_key).json()["token"]
    jwks = served_jwks(client)

    new_kid = jwt.get_unverified_header(fresh)["kid"]
    assert new_kid != old_kid
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    assert verify(issued["token"], jwks)["jti"] == License.objects.get(signing_key__kid=old_kid).jti
    assert verify(fresh, jwks)["jti"] == License.objects.get(signing_key__kid=new_kid).jti
    assert SigningKey.objects.get(kid=old_kid).status == SigningKeyStatus.RETIRED


def test_retired_key_leaves_the_jwks_once_its_licenses_have_expired(client, tenant, issued):
    old_kid = jwt.get_unverified_header(issued["token"])["kid"]
    expires = License.objects.get().expires_at
    call_command("license_keys", "rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115

    with time_machine.travel(expires - dt.timedelta(seconds=1), tick=False):
        assert old_kid in {k["kid"] for k in served_jwks(client)["keys"]}
    with time_machine.travel(expires, tick=False):
        assert old_kid not in {k["kid"] for k in served_jwks(client)["keys"]}


def test_withdrawn_key_is_unpublished_at_once(client, tenant, issued):
    old_kid = jwt.get_unverified_header(issued["token"])["kid"]
    call_command("license_keys", "rotate", stdout=open("/dev/null", "w"))  # noqa: SIM115

    call_command("license_keys", "retire", "--withdraw", "--", old_kid, stdout=io.StringIO())

    jwks = served_jwks(client)
    assert old_kid not in {k["kid"] for k in jwks["keys"]}
    with pytest.raises(KeyError, match="no key for kid"):
        verify(issued["token"], jwks)


@pytest.mark.django_db(transaction=True)
def test_pyjwkclient_fetches_the_jwks_over_http(live_server, settings):
    """The way a CMS does it: PyJWKClient downloads the key set from the URL."""
    tenant = make_tenant("acme")
    with httpx.Client(base_url=live_server.url) as http:
        body = http.get(license_url(tenant), headers={"authorization": tenant.api_key}).json()

    client = jwt.PyJWKClient(f"{live_server.url}/.well-known/jwks.json", cache_keys=False)
    signing_key = client.get_signing_key_from_jwt(body["token"])
    claims = jwt.decode(body["token"], signing_key, algorithms=["EdDSA"], issuer=ISSUER)

    assert claims["sub"] == "acme/website"
    assert claims["limits"] == {"seats": 10, "tenants": {"type": "fixed", "count": 3}}
    stranger = license_keys.sign(
        payload=claims, pair=license_keys.keypair(Ed25519PrivateKey.generate())
    )
    with pytest.raises(jwt.PyJWKClientError):
        client.get_signing_key_from_jwt(stranger)
