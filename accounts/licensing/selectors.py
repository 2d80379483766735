"""Reads for licensing: the standing checks behind every license, the JWKS, validation.

The standing checks run on every license request, also when the signed answer comes from
the cache: stopping an environment, a seat, a member or a contract stops licenses at once.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection, models
from django.db.models import Exists, OuterRef, Q, QuerySet
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
    EnvironmentStatus,
    Membership,
    Organization,
    Project,
    User,
)
from accounts.selectors import API_KEY_SHAPE, KEY_PROBLEM_MESSAGES, KeyProblem, contract_active
from accounts.services import LAST_USED_RESOLUTION
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

    api_key_id: int
    key_needs_touch: bool  # last use recorded more than a minute ago
    environment_id: int
    contract_id: int
    cached_license_revoked: bool


class _CallerRow(NamedTuple):
    api_key_id: int
    digest: str
    key_revoked: bool
    key_expired: bool
    key_needs_touch: bool
    environment_id: int
    environment_enabled: bool
    environment_kind: str
    project_slug: str
    organization_id: int
    organization_slug: str
    contract_id: int | None
    developer_is_member: bool
    developer_has_seat: bool
    cached_license_revoked: bool


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Serves every license request. Hand-written because building the equivalent ORM query
# (a join, a subquery and three EXISTS) cost more Python time than the database spent
# running it. Each lookup is indexed: the key's unique prefix, primary keys, the
# contract's organization, the unique membership, the held-seat index, the unique jti.
_CALLER_SQL = """
SELECT k.id, k.digest,
       (k.revoked_at IS NOT NULL AND k.revoked_at <= %(now)s),
       (k.expires_at IS NOT NULL AND k.expires_at <= %(now)s),
       (k.last_used_at IS NULL OR k.last_used_at < %(touch_before)s),
       e.id, e.status = %(enabled)s, e.kind, p.slug, o.id, o.slug,
       (SELECT c.id FROM {contract} c
         WHERE c.organization_id = o.id AND c.status = %(active)s
           AND c.starts_on <= %(today)s AND c.ends_on > %(today)s
         ORDER BY c.starts_on DESC LIMIT 1),
       EXISTS (SELECT 1 FROM {membership} m JOIN {user} u ON u.id = m.user_id
                WHERE m.organization_id = o.id AND m.user_id = e.owner_id AND u.is_active),
       EXISTS (SELECT 1 FROM {seat} s JOIN {membership} m ON m.id = s.membership_id
                WHERE m.organization_id = o.id AND m.user_id = e.owner_id
                  AND s.project_id = p.id AND s.freed_at IS NULL),
       EXISTS (SELECT 1 FROM {license} l
                WHERE l.jti = %(jti)s AND l.revoked_at IS NOT NULL)
  FROM {apikey} k
  JOIN {environment} e ON e.id = k.environment_id
  JOIN {project} p ON p.id = e.project_id
  JOIN {organization} o ON o.id = p.organization_id
 WHERE k.prefix = %(prefix)s
"""


@functools.cache
def _caller_sql() -> str:
    return _CALLER_SQL.format(
        contract=_table(Contract),
        membership=_table(Membership),
        user=_table(User),
        seat=_table(DeveloperSeat),
        license=_table(License),
        apikey=_table(ApiKey),
        environment=_table(Environment),
        project=_table(Project),
        organization=_table(Organization),
    )


def _caller_row(*, prefix: str, cached_jti: str | None, at: dt.datetime) -> _CallerRow | None:
    ops = connection.ops
    params = {
        "now": ops.adapt_datetimefield_value(at),
        "touch_before": ops.adapt_datetimefield_value(at - LAST_USED_RESOLUTION),
        "today": ops.adapt_datefield_value(at.astimezone(dt.UTC).date()),
        "enabled": EnvironmentStatus.ENABLED.value,
        "active": ContractStatus.ACTIVE.value,
        "jti": cached_jti or "",
        "prefix": prefix,
    }
    with connection.cursor() as cursor:
        cursor.execute(_caller_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    flags = {3, 4, 5, 7, 13, 14, 15}  # SQLite answers booleans as 0/1
    return _CallerRow(*(bool(v) if i + 1 in flags else v for i, v in enumerate(row)))


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
    organization, the contract in force, the developer's membership and seat (personal
    environments) and whether the cached license `cached_jti` was revoked. Nothing here is
    cached: it runs on every request."""
    if not plaintext:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.MISSING])
    match = API_KEY_SHAPE.match(plaintext)
    if match is None:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.MALFORMED])
    at = at or timezone.now()
    row = _caller_row(prefix=match.group(1), cached_jti=cached_jti, at=at)
    if row is None or not tokens.matches(plaintext, row.digest):
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.UNKNOWN])
    if row.key_revoked:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.REVOKED])
    if row.key_expired:
        return WcpRefusal(401, KEY_PROBLEM_MESSAGES[KeyProblem.EXPIRED])
    if not row.environment_enabled:
        return WcpRefusal(403, KEY_PROBLEM_MESSAGES[KeyProblem.ENVIRONMENT_DISABLED])
    if row.project_slug != project_slug or row.organization_slug != org_slug:
        return WcpRefusal(403, WRONG_PROJECT_MESSAGE)
    if row.contract_id is None:
        organization = Organization(pk=row.organization_id, slug=row.organization_slug)
        return WcpRefusal(403, _contract_refusal(organization=organization, at=at).message)
    if row.environment_kind == EnvironmentKind.PERSONAL:
        refusal = _developer_refusal_from(
            project_slug=row.project_slug,
            organization_slug=row.organization_slug,
            is_member=row.developer_is_member,
            has_seat=row.developer_has_seat,
        )
        if refusal is not None:
            return WcpRefusal(403, refusal.message)
    return LicenseCaller(
        api_key_id=row.api_key_id,
        key_needs_touch=row.key_needs_touch,
        environment_id=row.environment_id,
        contract_id=row.contract_id,
        cached_license_revoked=cached_jti is not None and row.cached_license_revoked,
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
