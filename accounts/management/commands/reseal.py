"""Re-encrypt every sealed secret with the first FIELD_ENCRYPTION_KEY (key rotation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts import sealing
from accounts.mfa import mfa_secrets_reseal
from accounts.services.personal import sealed_keys_reseal


class Command(BaseCommand):
    help = (
        "Re-encrypt the stored personal environment keys and two-factor secrets with the "
        "first key of FIELD_ENCRYPTION_KEY, so older keys can then be removed from it."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            keys = sealed_keys_reseal()
            mfa = mfa_secrets_reseal()
        except sealing.SealBroken as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Re-encrypted {keys} key(s) and {mfa} two-factor secret(s) with the current key."
        )
