"""The license endpoint's hot path: the key and every standing check in one query."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection, models
from django.utils import timezone

from accounts.licensing.selectors.standing import contract_refusal, developer_refusal_from
from accounts.models import (
    Contract,
    ContractStatus,
    DeveloperSeat,
    EnvironmentKind,
    License,
    Membership,
    Organization,
    User,
)
from accounts.selectors.api_keys import (
    KEY_COLUMNS,
    KEY_LOOKUP_SQL,
    KeyRow,
    key_params,
    key_problem,
    key_shape_problem,
)
from accounts.wcp import WRONG_PROJECT_MESSAGE, WcpRefusal


@dataclass(frozen=True)
class LicenseCaller:
    """A CMS entitled to a license right now: every standing check passed."""

    api_key_id: int
    key_last_used_at: dt.datetime | None
    environment_id: int
    contract_id: int
    cached_license_revoked: bool


class _Standing(NamedTuple):
    organization_slug: str
    contract_id: int | None
    developer_is_member: bool
    developer_has_seat: bool
    cached_license_revoked: bool


def _table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Serves every license request: the key check (accounts' own fragment, KEY_LOOKUP_SQL)
# and every standing check in one query. Hand-written because building the equivalent ORM
# query (a join, a subquery and three EXISTS) cost more Python time than the database spent
# running it. Each lookup is indexed: the key's unique prefix, primary keys, the
# contract's organization, the unique membership, the held-seat index, the unique jti.
_CALLER_SQL = """
WITH k AS ({key_lookup})
SELECT k.*, o.slug,
       (SELECT c.id FROM {contract} c
         WHERE c.organization_id = o.id AND c.status = %(active)s
           AND c.starts_on <= %(today)s AND c.ends_on > %(today)s
         ORDER BY c.starts_on DESC LIMIT 1),
       EXISTS (SELECT 1 FROM {membership} m JOIN {user} u ON u.id = m.user_id
                WHERE m.organization_id = o.id AND m.user_id = k.env_owner_id AND u.is_active),
       EXISTS (SELECT 1 FROM {seat} s JOIN {membership} m ON m.id = s.membership_id
                WHERE m.organization_id = o.id AND m.user_id = k.env_owner_id
                  AND s.project_id = k.project_id AND s.freed_at IS NULL),
       EXISTS (SELECT 1 FROM {license} l
                WHERE l.jti = %(jti)s AND l.revoked_at IS NOT NULL)
  FROM k
  JOIN {organization} o ON o.id = k.organization_id
"""


@functools.cache
def _caller_sql() -> str:
    return _CALLER_SQL.format(
        key_lookup=KEY_LOOKUP_SQL,
        contract=_table(Contract),
        membership=_table(Membership),
        user=_table(User),
        seat=_table(DeveloperSeat),
        license=_table(License),
        organization=_table(Organization),
    )


def _caller_row(
    *, plaintext: str, cached_jti: str | None, at: dt.datetime
) -> tuple[KeyRow, _Standing] | None:
    params = {
        **key_params(plaintext, at),
        "today": at.astimezone(dt.UTC).date(),
        "active": ContractStatus.ACTIVE.value,
        "jti": cached_jti or "",
    }
    with connection.cursor() as cursor:
        cursor.execute(_caller_sql(), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return KeyRow(*row[:KEY_COLUMNS]), _Standing(*row[KEY_COLUMNS:])


def license_caller(
    *,
    plaintext: str,
    org_slug: str,
    project_slug: str,
    cached_jti: str | None = None,
    at: dt.datetime | None = None,
) -> LicenseCaller | WcpRefusal:
    """Authenticate the key (accounts' key check, the statuses and messages of
    accounts.wcp) and run every standing check in ONE query: the key with its
    environment, project and organization, the contract in force, the developer's
    membership and seat (personal environments) and whether the cached license
    `cached_jti` was revoked. Nothing here is cached: it runs on every request."""
    shape = key_shape_problem(plaintext)
    if shape is not None:
        return WcpRefusal(shape.status, shape.message)
    at = at or timezone.now()
    found = _caller_row(plaintext=plaintext, cached_jti=cached_jti, at=at)
    problem = key_problem(found[0] if found else None)
    if problem is not None:
        return WcpRefusal(problem.status, problem.message)
    assert found is not None
    key, standing = found
    if key.project_slug != project_slug or standing.organization_slug != org_slug:
        return WcpRefusal(403, WRONG_PROJECT_MESSAGE)
    if standing.contract_id is None:
        organization = Organization(pk=key.organization_id, slug=standing.organization_slug)
        return WcpRefusal(403, contract_refusal(organization=organization, at=at).message)
    if key.env_kind == EnvironmentKind.PERSONAL:
        refusal = developer_refusal_from(
            project_slug=key.project_slug,
            organization_slug=standing.organization_slug,
            is_member=standing.developer_is_member,
            has_seat=standing.developer_has_seat,
        )
        if refusal is not None:
            return WcpRefusal(403, refusal.message)
    return LicenseCaller(
        api_key_id=key.key_id,
        key_last_used_at=key.last_used_at,
        environment_id=key.env_id,
        contract_id=standing.contract_id,
        cached_license_revoked=cached_jti is not None and standing.cached_license_revoked,
    )
