"""Reads for licensing: the standing checks behind every license, the JWKS, validation.

The standing checks run on every license request, also when the signed answer comes from
the cache: stopping an environment, a seat, a member or a contract stops licenses at once.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts import tokens
from accounts.licensing import keys
from accounts.licensing.models import License, LicenseKind, SigningKey, SigningKeyStatus
from accounts.models import (
    ApiKey,
    Contract,
    ContractStatus,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    Membership,
    Organization,
    User,
)
from accounts.selectors import API_KEY_SHAPE, KEY_PROBLEM_MESSAGES, KeyProblem, contract_active
from accounts.wcp import WcpRefusal


class Code(enum.StrEnum):
    """Validation answers, in the order they are checked (see docs/licenses.md)."""

    MALFORMED = "MALFORMED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    REVOKED = "REVOKED"
    ENVIRONMENT_DISABLED = "ENVIRONMENT_DISABLED"
    CONTRACT_ENDED = "CONTRACT_ENDED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    SEAT_FREED = "SEAT_FREED"
    VALID = "VALID"


@dataclass(frozen=True)
class Refusal:
    code: Code
    message: str


@dataclass(frozen=True)
class Standing:
    """Whether an environment may hold a license now, and under which contract."""

    contract: Contract | None
    refusal: Refusal | None


def _contract_refusal(*, organization: Organization, at: dt.datetime) -> Refusal:
    today = at.astimezone(dt.UTC).date()
    latest = (
        Contract.objects.filter(organization=organization, starts_on__lte=today)
        .order_by("-starts_on", "-pk")
        .first()
    )
    if latest is None:
        message = (
            f"Organization '{organization.slug}' has no active contract: no license can be issued."
        )
    elif latest.ends_on <= today:
        message = (
            f"The contract of organization '{organization.slug}' ended on "
            f"{latest.ends_on.isoformat()}: no license can be issued."
        )
    else:
        message = (
            f"The contract of organization '{organization.slug}' has ended: "
            "no license can be issued."
        )
    return Refusal(Code.CONTRACT_ENDED, message)


def _developer_refusal_from(
    *, project_slug: str, organization_slug: str, is_member: bool, has_seat: bool
) -> Refusal | None:
    if not is_member:
        return Refusal(
            Code.MEMBER_REMOVED,
            f"The developer of this personal environment is no longer a member of organization "
            f"'{organization_slug}': its license has stopped.",
        )
    if not has_seat:
        return Refusal(
            Code.SEAT_FREED,
            f"The developer's seat on project '{project_slug}' has been freed: this personal "
            "environment's license has stopped.",
        )
    return None


def _developer_refusal(*, environment: Environment, developer_id: int | None) -> Refusal | None:
    """A personal environment's license needs its developer to still be a member of the
    organization (with an active account) and to hold a developer seat on the project."""
    project = environment.project
    row = (
        Membership.objects.filter(organization_id=project.organization_id, user_id=developer_id)
        .annotate(
            has_seat=Exists(
                DeveloperSeat.objects.filter(
                    membership=OuterRef("pk"), project_id=project.pk, freed_at__isnull=True
                )
            )
        )
        .values_list("has_seat", "user__is_active")
        .first()
        if developer_id is not None
        else None
    )
    return _developer_refusal_from(
        project_slug=project.slug,
        organization_slug=project.organization.slug,
        is_member=row is not None and row[1],
        has_seat=row is not None and row[0],
    )


def _environment_disabled(environment: Environment) -> Refusal:
    return Refusal(
        Code.ENVIRONMENT_DISABLED,
        f"Environment '{environment.name}' is disabled: no license can be issued.",
    )


def license_standing(
    *,
    environment: Environment | None,
    organization: Organization,
    developer: User | None = None,
    at: dt.datetime | None = None,
) -> Standing:
    """Checked in this order: environment, contract, then (personal environments) the
    developer's membership and seat. `developer` defaults to the environment's owner."""
    at = at or timezone.now()
    if environment is None:
        return Standing(
            None, Refusal(Code.ENVIRONMENT_DISABLED, "This environment no longer exists.")
        )
    if not environment.is_enabled:
        return Standing(None, _environment_disabled(environment))
    contract = contract_active(organization=organization, at=at)
    if contract is None:
        return Standing(None, _contract_refusal(organization=organization, at=at))
    if environment.kind == EnvironmentKind.PERSONAL:
        refusal = _developer_refusal(
            environment=environment,
            developer_id=developer.pk if developer is not None else environment.owner_id,
        )
        if refusal is not None:
            return Standing(None, refusal)
    return Standing(contract, None)


# --- the license endpoint's hot path ---------------------------------------------------------
WRONG_PROJECT_MESSAGE = (
    "This API key does not belong to an environment of that organization and project."
)


@dataclass(frozen=True)
class LicenseCaller:
    """A CMS entitled to a license right now: every standing check passed."""

    api_key: ApiKey
    environment: Environment
    contract_id: int
    cached_license_revoked: bool


def license_caller(
    *,
    plaintext: str,
    org_slug: str,
    project_slug: str,
    cached_jti: str | None = None,
    at: dt.datetime | None = None,
) -> LicenseCaller | WcpRefusal:
    """Authenticate the key (as accounts.wcp does, same statuses and messages) and run
    every standing check in ONE query: the key with its environment, project and
    organization, annotated with the contract in force, the developer's membership and
    seat (personal environments) and whether the cached license `cached_jti` is revoked.
    Nothing here is cached: it runs on every request."""
    if not plaintext:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.MISSING])
    match = API_KEY_SHAPE.match(plaintext)
    if match is None:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.MALFORMED])
    at = at or timezone.now()
    today = at.astimezone(dt.UTC).date()
    organization_id = OuterRef("environment__project__organization_id")
    owner_id = OuterRef("environment__owner_id")
    contract_in_force = (
        Contract.objects.filter(
            organization_id=organization_id,
            status=ContractStatus.ACTIVE,
            starts_on__lte=today,
            ends_on__gt=today,
        )
        .order_by("-starts_on")
        .values("pk")[:1]
    )
    api_key = (
        ApiKey.objects.select_related("environment__project__organization")
        .filter(prefix=match.group(1))
        .annotate(
            contract_in_force=Subquery(contract_in_force),
            developer_is_member=Exists(
                Membership.objects.filter(
                    organization_id=organization_id, user_id=owner_id, user__is_active=True
                )
            ),
            developer_has_seat=Exists(
                DeveloperSeat.objects.filter(
                    membership__organization_id=organization_id,
                    membership__user_id=owner_id,
                    project_id=OuterRef("environment__project_id"),
                    freed_at__isnull=True,
                )
            ),
            cached_license_revoked=Exists(
                License.objects.filter(jti=cached_jti or "", revoked_at__isnull=False)
            ),
        )
        .first()
    )
    if api_key is None or not tokens.matches(plaintext, api_key.digest):
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.UNKNOWN])
    if api_key.revoked_at is not None and api_key.revoked_at <= at:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.REVOKED])
    if api_key.expires_at is not None and api_key.expires_at <= at:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.EXPIRED])
    environment = api_key.environment
    if not environment.is_enabled:
        return WcpRefusal(403, KEY_PROBLEM_MESSAGES[KeyProblem.ENVIRONMENT_DISABLED])
    project = environment.project
    if project.slug != project_slug or project.organization.slug != org_slug:
        return WcpRefusal(403, WRONG_PROJECT_MESSAGE)
    if api_key.contract_in_force is None:
        refusal = _contract_refusal(organization=project.organization, at=at)
        return WcpRefusal(403, refusal.message)
    if environment.kind == EnvironmentKind.PERSONAL:
        refusal = _developer_refusal_from(
            project_slug=project.slug,
            organization_slug=project.organization.slug,
            is_member=api_key.developer_is_member,
            has_seat=api_key.developer_has_seat,
        )
        if refusal is not None:
            return WcpRefusal(403, refusal.message)
    return LicenseCaller(
        api_key=api_key,
        environment=environment,
        contract_id=api_key.contract_in_force,
        cached_license_revoked=cached_jti is not None and api_key.cached_license_revoked,
    )


# --- keys ------------------------------------------------------------------------------------
def signing_keys_published(*, at: dt.datetime | None = None) -> QuerySet[SigningKey]:
    """Every key whose licenses may still be valid: the active key, and any other key
    that signed a license not yet expired. Withdrawn (compromised) keys never."""
    at = at or timezone.now()
    unexpired = License.objects.filter(signing_key=OuterRef("pk"), expires_at__gt=at)
    return (
        SigningKey.objects.filter(withdrawn_at__isnull=True)
        .filter(Q(status=SigningKeyStatus.ACTIVE) | Exists(unexpired))
        .order_by("-created_at")
    )


def jwks(*, at: dt.datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    return {"keys": [key.public_jwk for key in signing_keys_published(at=at)]}


def signing_keys_all() -> QuerySet[SigningKey]:
    unexpired = License.objects.filter(signing_key=OuterRef("pk"), expires_at__gt=timezone.now())
    return SigningKey.objects.annotate(has_unexpired=Exists(unexpired)).order_by("-created_at")


# --- licenses ----------------------------------------------------------------------------------
def licenses_for_organization(*, organization: Organization) -> QuerySet[License]:
    return License.objects.filter(organization=organization).select_related(
        "project", "environment", "signing_key"
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
