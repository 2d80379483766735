"""The license endpoint's hot path: the key and every standing check in one query."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection, models
from django.utils import timezone

from accounts import tokens
from accounts.licensing.selectors.standing import contract_refusal, developer_refusal_from
from accounts.models import (
    ApiKey,
    Contract,
    ContractStatus,
    DeveloperSeat,
    Environment,
    EnvironmentKind,
    EnvironmentStatus,
    License,
    Membership,
    Organization,
    Project,
    User,
)
from accounts.selectors.api_keys import API_KEY_SHAPE, KEY_PROBLEM_MESSAGES, KeyProblem
from accounts.services.api_keys import LAST_USED_RESOLUTION
from accounts.wcp import WcpRefusal

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
    return _CallerRow(*row)


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
        return WcpRefusal(403, contract_refusal(organization=organization, at=at).message)
    if row.environment_kind == EnvironmentKind.PERSONAL:
        refusal = developer_refusal_from(
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
