"""Writes for environment API keys: issue, revoke, rotate, record use."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import API_KEY_KIND, ApiKey, AuditKind, Environment, User
from accounts.services.audit import Actor, audit_record
from accounts.services.errors import ServiceError
from accounts.services.last_use import last_use_record


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def _audit(api_key: ApiKey, kind: AuditKind, actor: Actor, **extra: object) -> None:
    audit_record(
        actor=actor,
        kind=kind,
        organization=api_key.environment.project.organization,
        target=api_key,
        reason=str(extra.pop("reason", "")),
        details={"environment": str(api_key.environment), **extra},
    )


# --- API keys -------------------------------------------------------------------------
@transaction.atomic  # the key and its audit record
def api_key_issue(
    *,
    environment: Environment,
    name: str = "",
    created_by: User | None = None,
    expires_at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> IssuedApiKey:
    issued = tokens.issue(API_KEY_KIND)
    api_key = ApiKey.objects.create(
        environment=environment,
        name=name,
        prefix=issued.prefix,
        digest=issued.digest,
        last_four=issued.last_four,
        created_by=created_by,
        expires_at=expires_at,
    )
    actor = actor or Actor.of_or_system(created_by, "api_key_issue")
    _audit(api_key, AuditKind.API_KEY_ISSUED, actor)
    return IssuedApiKey(api_key=api_key, plaintext=issued.plaintext)


@transaction.atomic  # the revocation and its audit record
def api_key_revoke(
    *,
    api_key: ApiKey,
    at: dt.datetime | None = None,
    actor: Actor | None = None,
    reason: str = "",
) -> ApiKey:
    # Conditional update: revoking twice keeps the first revocation time.
    at = at or timezone.now()
    changed = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=at)
    api_key.refresh_from_db(fields=["revoked_at"])
    if changed:  # recorded once, by the revocation that took effect
        _audit(
            api_key,
            AuditKind.API_KEY_REVOKED,
            actor or Actor.system("api_key_revoke"),
            reason=reason,
        )
    return api_key


@transaction.atomic
def api_key_rotate(
    *,
    api_key: ApiKey,
    grace: dt.timedelta | None = None,
    created_by: User | None = None,
    actor: Actor | None = None,
) -> IssuedApiKey:
    """Issue a replacement. Without `grace` the old key stops now; with it, the old key
    keeps working until now + grace (at most API_KEY_GRACE_MAX_DAYS)."""
    old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if not old.is_usable():
        raise ServiceError("This API key is already revoked or expired; issue a new one.")
    if grace is not None and (
        grace < dt.timedelta(0) or grace > dt.timedelta(days=settings.API_KEY_GRACE_MAX_DAYS)
    ):
        raise ServiceError(
            f"The grace period must be between 0 and {settings.API_KEY_GRACE_MAX_DAYS} days."
        )
    actor = actor or Actor.of_or_system(created_by, "api_key_rotate")
    new = api_key_issue(
        environment=old.environment, name=old.name, created_by=created_by, actor=actor
    )
    now = timezone.now()
    old.replaced_by = new.api_key
    if grace:
        end = now + grace
        old.expires_at = min(old.expires_at, end) if old.expires_at else end
        old.save(update_fields=["replaced_by", "expires_at"])
    else:
        old.revoked_at = now
        old.save(update_fields=["replaced_by", "revoked_at"])
    _audit(
        old,
        AuditKind.API_KEY_ROTATED,
        actor,
        replaced_by=new.api_key.display,
        grace_seconds=int(grace.total_seconds()) if grace else 0,
    )
    api_key.refresh_from_db()
    return new


def api_key_touch(*, api_key_id: int, at: dt.datetime | None = None) -> bool:
    """Record the key's use, at most once a minute (`last_use`). Callers that read the
    key's `last_used_at` anyway call this only when `last_use_due` says so, so a request
    writes nothing most of the time. Returns whether it wrote."""
    return bool(last_use_record(ApiKey.objects.filter(pk=api_key_id), at=at or timezone.now()))
