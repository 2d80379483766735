"""Online validation of a license token, checks in a documented order."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from accounts.licensing import keys
from accounts.licensing.selectors.standing import Code, license_standing
from accounts.models import (
    License,
    LicenseKind,
    SigningKey,
)


@dataclass(frozen=True)
class Validation:
    code: Code
    license: License | None = None
    message: str = ""

    @property
    def valid(self) -> bool:
        return self.code is Code.VALID


_REQUIRED_CLAIMS = {"jti": str, "iat": int, "nbf": int, "exp": int, "org": str, "project": str}


def license_validate(*, token: str, at: dt.datetime | None = None) -> Validation:
    """Checked in order: shape, algorithm, key, signature, claims (the offline part, what
    a CMS can check with the JWKS alone), then expiry, revocation and standing (server
    state). The first failing check answers."""
    at = at or timezone.now()
    try:
        parsed = keys.parse(token)
    except keys.MalformedToken:
        return Validation(Code.MALFORMED, message="Not a compact JWS token.")
    if parsed.header.get("alg") != keys.ALGORITHM:
        return Validation(Code.BAD_SIGNATURE, message="Licenses are signed with EdDSA only.")
    kid = parsed.header.get("kid")
    key = (
        SigningKey.objects.filter(kid=kid, withdrawn_at__isnull=True).first()
        if isinstance(kid, str)
        else None
    )
    if key is None:
        return Validation(Code.UNKNOWN_KEY, message="The token's key id is not a signing key.")
    if not keys.signature_valid(parsed, key.public_jwk):
        return Validation(Code.BAD_SIGNATURE, message="The signature does not verify.")
    claims = parsed.payload
    for name, kind in _REQUIRED_CLAIMS.items():
        value = claims.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return Validation(Code.MALFORMED, message=f"Claim '{name}' is missing or invalid.")
    now = int(at.timestamp())
    if claims["exp"] <= now:
        return Validation(Code.EXPIRED, message="The license has expired.")
    if claims["nbf"] > now:
        return Validation(Code.NOT_YET_VALID, message="The license is not valid yet.")
    record = (
        License.objects.select_related(
            "environment__project__organization", "organization", "developer"
        )
        .filter(jti=claims["jti"], signing_key=key)
        .first()
    )
    # A correctly signed token without its record can only come from a lost or restored
    # database: it is not a license we stand behind.
    if record is None or record.revoked_at is not None:
        return Validation(Code.REVOKED, record, "The license has been revoked.")
    standing = license_standing(
        environment=record.environment,
        organization=record.organization,
        developer=record.developer if record.kind == LicenseKind.PERSONAL else None,
        at=at,
    )
    if standing.refusal is not None:
        return Validation(standing.refusal.code, record, standing.refusal.message)
    return Validation(Code.VALID, record, "The license is valid.")
