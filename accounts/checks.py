"""`manage.py check --deploy`: settings production needs that Django's checks do not know."""

from __future__ import annotations

from typing import Any

from django.core import checks

from accounts import sealing


@checks.register(checks.Tags.security, deploy=True)
def field_encryption_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if sealing.configured():
        return []
    return [checks.Error(sealing.MISSING_KEY, id="accounts.E001")]
