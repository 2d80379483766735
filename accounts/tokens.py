"""Random secrets with a public prefix, stored as digests.

Every secret we hand out (API keys, and later invitation and access tokens) has the
form `<kind>_<prefix>_<secret>`: the prefix finds the row through a unique index, and the
SHA-256 digest of the whole string must equal the stored digest. Comparing digests needs
no constant time (a timing leak tells how much of a digest a guess's digest shares, which
a guess cannot steer: see accounts.selectors.api_keys); `matches` uses
`hmac.compare_digest` anyway. The secret carries 256 bits, so a plain digest (no salt, no
slow hash) is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX_LENGTH = 12
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class IssuedSecret:
    plaintext: str
    prefix: str
    digest: str
    last_four: str


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue(kind: str) -> IssuedSecret:
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    body = secrets.token_urlsafe(32)  # 256 bits
    plaintext = f"{kind}_{prefix}_{body}"
    return IssuedSecret(plaintext, prefix, digest(plaintext), body[-4:])


def shape(kind: str) -> re.Pattern[str]:
    """The exact shape of a `kind` secret, checked before any database work."""
    return re.compile(rf"^{kind}_([a-z0-9]{{{PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{43}}$")


def matches(plaintext: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(plaintext), stored_digest)
