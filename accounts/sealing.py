"""Encryption at rest for the few secrets the product must show again.

A personal environment's API key is fetched again by its developer's CLI on every deploy
(GraphQL `GetEnvironment`), so it cannot be a digest only: it is kept sealed with Fernet
(AES-128-CBC + HMAC-SHA256, from `cryptography`) under `FIELD_ENCRYPTION_KEY`.

`FIELD_ENCRYPTION_KEY` is a comma-separated list of Fernet keys: the first seals, every
one unseals (MultiFernet). Rotation: put a new key first, deploy, run
`python manage.py reseal`, then drop the old key. Without the setting, DEBUG derives a
development key from SECRET_KEY; production refuses to seal or unseal (and
`manage.py check --deploy` says so).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MISSING_KEY = (
    "FIELD_ENCRYPTION_KEY is not set: personal environment keys are stored encrypted. "
    'Generate one with python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())" and set it in the environment.'
)


class SealBroken(Exception):
    """A sealed value no configured key opens (a key was dropped too early)."""


def _keys() -> tuple[str, ...]:
    configured = tuple(k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip())
    if configured:
        return configured
    if settings.DEBUG:
        derived = hashlib.sha256(f"field-encryption:{settings.SECRET_KEY}".encode()).digest()
        return (base64.urlsafe_b64encode(derived).decode(),)
    raise ImproperlyConfigured(MISSING_KEY)


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key ({error})."
        ) from None


def configured() -> bool:
    try:
        _fernet(_keys())
    except ImproperlyConfigured:
        return False
    return True


def seal(plaintext: str) -> str:
    return _fernet(_keys()).encrypt(plaintext.encode()).decode()


def unseal(sealed: str) -> str:
    try:
        return _fernet(_keys()).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise SealBroken(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY: "
            "was a key removed before `manage.py reseal` ran?"
        ) from None


def reseal(sealed: str) -> str:
    """The same secret sealed with the first (current) key."""
    try:
        return _fernet(_keys()).rotate(sealed.encode()).decode()
    except InvalidToken:
        raise SealBroken("A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY.") from None
