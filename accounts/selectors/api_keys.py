"""Reads for environment API keys: the key check."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from django.utils import timezone

from accounts import tokens
from accounts.models import API_KEY_KIND, ApiKey

API_KEY_SHAPE = tokens.shape(API_KEY_KIND)


class KeyProblem(enum.Enum):
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"
    ENVIRONMENT_DISABLED = "environment_disabled"


KEY_PROBLEM_MESSAGES = {
    KeyProblem.MISSING: "No API key: send the environment's API key in the Authorization header.",
    KeyProblem.MALFORMED: "The API key is malformed: expected cpk_<prefix>_<secret>.",
    KeyProblem.UNKNOWN: "The API key is not valid.",
    KeyProblem.REVOKED: "The API key has been revoked.",
    KeyProblem.EXPIRED: "The API key has expired.",
    KeyProblem.ENVIRONMENT_DISABLED: "The environment of this API key is disabled.",
}


@dataclass(frozen=True)
class KeyCheck:
    api_key: ApiKey | None
    problem: KeyProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def message(self) -> str:
        return KEY_PROBLEM_MESSAGES[self.problem] if self.problem else ""


def api_key_check(plaintext: str | None, *, at: dt.datetime | None = None) -> KeyCheck:
    """Authenticate an environment API key: shape first (no I/O), then one indexed query
    (key + environment + project + organization), then a constant-time digest comparison."""
    if not plaintext:
        return KeyCheck(None, KeyProblem.MISSING)
    match = API_KEY_SHAPE.match(plaintext)
    if match is None:
        return KeyCheck(None, KeyProblem.MALFORMED)
    api_key = (
        ApiKey.objects.select_related("environment__project__organization")
        .filter(prefix=match.group(1))
        .first()
    )
    if api_key is None or not tokens.matches(plaintext, api_key.digest):
        return KeyCheck(None, KeyProblem.UNKNOWN)
    at = at or timezone.now()
    if api_key.revoked_at is not None and api_key.revoked_at <= at:
        return KeyCheck(api_key, KeyProblem.REVOKED)
    if api_key.expires_at is not None and api_key.expires_at <= at:
        return KeyCheck(api_key, KeyProblem.EXPIRED)
    if not api_key.environment.is_enabled:
        return KeyCheck(api_key, KeyProblem.ENVIRONMENT_DISABLED)
    return KeyCheck(api_key, None)
