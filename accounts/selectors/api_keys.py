"""Reads for environment API keys: THE key check, written once.

A key is usable when its prefix finds a row, the SHA-256 digest of the whole key equals
the stored digest, it is neither revoked nor expired at the time asked, and its
environment is enabled. That definition is `KEY_LOOKUP_SQL` (the row and its flags, one
indexed lookup) plus `key_problem` (a row's flags to the refusal, or None). Every caller
uses the two: `api_key_check` here (the CMS protocol endpoints, reads), ingest's write
statements and the license caller's query, which embed the fragment as a CTE so the key
costs them no round trip of its own.

The digest is compared with SQL `=`, which is not a constant-time comparison, and that is
safe: what a timing difference could reveal is how much of the stored *digest* a guess's
digest shares, and a guess's SHA-256 cannot be steered towards a chosen digest
(preimage resistance), so learning digest prefixes brings an attacker no closer to a
key. (Comparing plaintext secrets, or a guessable hash, would need constant time.) The
secret carries 256 bits, so a plain digest is enough: there is nothing to guess.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection
from django.utils import timezone

from accounts import tokens
from accounts.models import API_KEY_KIND, ApiKey, Environment, EnvironmentStatus, Project

API_KEY_SHAPE = tokens.shape(API_KEY_KIND)


class KeyProblem(enum.Enum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    ENVIRONMENT_DISABLED = "environment_disabled"

    @property
    def status(self) -> int:
        """The HTTP status of this refusal, for every endpoint: a key that is not (or no
        longer) valid is 401; a valid key of a disabled environment is 403."""
        return 403 if self is KeyProblem.ENVIRONMENT_DISABLED else 401

    @property
    def message(self) -> str:
        return KEY_PROBLEM_MESSAGES[self]


KEY_PROBLEM_MESSAGES = {
    KeyProblem.MISSING: "No API key: send the environment's API key in the Authorization header.",
    KeyProblem.MALFORMED: "The API key is malformed: expected cpk_<prefix>_<secret>.",
    KeyProblem.UNKNOWN: "The API key is not valid.",
    KeyProblem.REVOKED: "The API key has been revoked.",
    KeyProblem.EXPIRED: "The API key has expired.",
    KeyProblem.ENVIRONMENT_DISABLED: "The environment of this API key is disabled.",
}


def key_shape_problem(plaintext: str | None) -> KeyProblem | None:
    """Refusals that need no I/O: no key, or not a key's shape (`cpk_`, a 12-character
    prefix, a 43-character secret)."""
    if not plaintext:
        return KeyProblem.MISSING
    if API_KEY_SHAPE.match(plaintext) is None:
        return KeyProblem.MALFORMED
    return None


# The key's row and what decides it, by the unique index on `prefix`. Placeholders are
# named (`%(key_prefix)s`, `%(key_digest)s`, `%(key_at)s`: `key_params`), so the fragment
# embeds in Django's cursors and in ingest's prepared statements alike. Columns, in order:
# those of `KeyRow`.
KEY_LOOKUP_SQL = f"""
SELECT ak.id AS key_id,
       ak.digest = %(key_digest)s AS key_digest_ok,
       (ak.revoked_at IS NOT NULL AND ak.revoked_at <= %(key_at)s) AS key_revoked,
       (ak.expires_at IS NOT NULL AND ak.expires_at <= %(key_at)s) AS key_expired,
       ak.last_used_at AS key_last_used_at,
       e.id AS env_id,
       e.status = '{EnvironmentStatus.ENABLED.value}' AS env_enabled,
       e.kind AS env_kind,
       e.owner_id AS env_owner_id,
       p.id AS project_id,
       p.slug AS project_slug,
       p.organization_id AS organization_id
  FROM {ApiKey._meta.db_table} ak
  JOIN {Environment._meta.db_table} e ON e.id = ak.environment_id
  JOIN {Project._meta.db_table} p ON p.id = e.project_id
 WHERE ak.prefix = %(key_prefix)s
"""
# The condition a row of KEY_LOOKUP_SQL (aliased `k`) must meet to be usable: the SQL twin
# of `key_problem(row) is None`, for statements that write only for a usable key.
KEY_USABLE_SQL = "k.key_digest_ok AND NOT k.key_revoked AND NOT k.key_expired AND k.env_enabled"
KEY_COLUMNS = 12


class KeyRow(NamedTuple):
    key_id: int
    digest_ok: bool
    revoked: bool
    expired: bool
    last_used_at: dt.datetime | None
    env_id: int
    env_enabled: bool
    env_kind: str
    env_owner_id: int | None
    project_id: int
    project_slug: str
    organization_id: int


def key_params(plaintext: str, at: dt.datetime) -> dict[str, Any]:
    """The fragment's parameters for a key of valid shape (check `key_shape_problem`)."""
    match = API_KEY_SHAPE.match(plaintext)
    assert match is not None, "check the key's shape first"
    return {"key_prefix": match.group(1), "key_digest": tokens.digest(plaintext), "key_at": at}


def key_problem(row: KeyRow | None) -> KeyProblem | None:
    """Why the key of this row is refused, or None when it is usable. Checked in this
    order, so a wrong secret is never told whether its prefix is revoked."""
    if row is None or not row.digest_ok:
        return KeyProblem.UNKNOWN
    if row.revoked:
        return KeyProblem.REVOKED
    if row.expired:
        return KeyProblem.EXPIRED
    if not row.env_enabled:
        return KeyProblem.ENVIRONMENT_DISABLED
    return None


def key_row(plaintext: str, *, at: dt.datetime) -> KeyRow | None:
    """The key's row (key of valid shape), or None when no key has its prefix."""
    with connection.cursor() as cursor:
        cursor.execute(KEY_LOOKUP_SQL, key_params(plaintext, at))
        row = cursor.fetchone()
    return None if row is None else KeyRow(*row)


@dataclass(frozen=True)
class KeyCheck:
    api_key: ApiKey | None  # with its environment, project and organization
    problem: KeyProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def message(self) -> str:
        return self.problem.message if self.problem else ""


def api_key_check(plaintext: str | None, *, at: dt.datetime | None = None) -> KeyCheck:
    """Authenticate an environment API key: shape first (no I/O), then the key's row,
    then, for a key whose secret matched, the key with its environment, project and
    organization. Used where the caller needs those objects (the CMS protocol's +1/-1,
    reads of usage); the hot paths embed the lookup in their own statements."""
    shape = key_shape_problem(plaintext)
    if shape is not None:
        return KeyCheck(None, shape)
    assert plaintext is not None
    row = key_row(plaintext, at=at or timezone.now())
    problem = key_problem(row)
    if row is None or problem is KeyProblem.UNKNOWN:
        return KeyCheck(None, KeyProblem.UNKNOWN)
    api_key = ApiKey.objects.select_related("environment__project__organization").get(pk=row.key_id)
    return KeyCheck(api_key, problem)
