"""Two-factor secrets at rest. allauth's MFA keeps each person's TOTP secret and recovery
code seed in its `Authenticator.data`; its adapter's `encrypt`/`decrypt` hooks are where
they get sealed with FIELD_ENCRYPTION_KEY like every secret the product must read again
(accounts.sealing), so no table holds a TOTP secret in the clear."""

from __future__ import annotations

from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator

from accounts import sealing

# The fields allauth passes through `encrypt`, per authenticator type.
SEALED_FIELDS = {
    Authenticator.Type.TOTP: ("secret",),
    Authenticator.Type.RECOVERY_CODES: ("seed",),
}


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        return sealing.seal(text)

    def decrypt(self, encrypted_text: str) -> str:
        return sealing.unseal(encrypted_text)


def mfa_secrets_reseal() -> int:
    """Re-encrypt every sealed TOTP secret and recovery seed with the current key."""
    count = 0
    for authenticator in Authenticator.objects.filter(type__in=SEALED_FIELDS).order_by("pk"):
        data = dict(authenticator.data)
        for field in SEALED_FIELDS[authenticator.type]:
            if field in data:
                data[field] = sealing.reseal(data[field])
        # Conditional update: an authenticator changed meanwhile keeps its new secret.
        count += Authenticator.objects.filter(pk=authenticator.pk, data=authenticator.data).update(
            data=data
        )
    return count
