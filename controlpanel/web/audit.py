"""The web UI's hook into the audit trail.

Every page that changes something calls `record(request, action, target=...)` after the
service call succeeded. Today it only logs; when the append-only audit service (issue 14)
lands, this one function calls it, and the owners' audit page reads it back.
"""

from __future__ import annotations

import logging

from django.db import models
from django.http import HttpRequest

log = logging.getLogger("controlpanel.audit")


def record(request: HttpRequest, action: str, *, target: models.Model | None = None) -> None:
    membership = getattr(request, "web_membership", None)
    log.info(
        "%s by user %s in %s on %s",
        action,
        getattr(request.user, "pk", None),
        membership.organization.slug if membership else "-",
        f"{type(target).__name__}:{target.pk}" if target is not None else "-",
    )
