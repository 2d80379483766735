"""Writes to the audit trail. Call `audit_record` inside the transaction of the change it
describes, so the change and its record commit or roll back together:

    with transaction.atomic():
        ...change...
        audit_record(actor=Actor.of(request.user), kind=AuditKind.MFA_ENABLED,
                     organization=None, target=request.user)

`organization=None` records a person's own event (MFA, sign-in) once per organization
they belong to, so every organization's owners see it in their trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import timezone

from accounts.models import ApiKey, Membership, Organization, User
from accounts.models.audit import ActorKind, AuditEvent, AuditKind


@dataclass(frozen=True)
class Actor:
    """Who did it: a staff user, a customer user, an environment's API key or a job."""

    kind: str
    label: str
    user_id: int | None = None
    api_key_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        """A signed-in person: staff when they are vendor staff, else a customer."""
        kind = ActorKind.STAFF if user.is_staff else ActorKind.USER
        return cls(kind=kind, label=user.email, user_id=user.pk)

    @classmethod
    def key(cls, api_key: ApiKey) -> Actor:
        return cls(kind=ActorKind.API_KEY, label=api_key.display, api_key_id=api_key.pk)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(kind=ActorKind.SYSTEM, label=job)

    @classmethod
    def of_or_system(cls, user: User | None, job: str) -> Actor:
        return cls.of(user) if user is not None else cls.system(job)


def _target(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    return target._meta.label_lower, str(target.pk), str(target)[:200]


def audit_record(
    *,
    actor: Actor,
    kind: AuditKind | str,
    organization: Organization | None,
    target: models.Model | None = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> list[AuditEvent]:
    """Append one event (one per organization of the target user when `organization` is
    None and the target is a user; none when that user belongs to no organization, plus
    one without organization so staff still see it)."""
    organizations: Iterable[Organization | None]
    if organization is None and isinstance(target, User):
        organizations = [
            m.organization
            for m in Membership.objects.filter(user=target).select_related("organization")
        ] or [None]
    else:
        organizations = [organization]
    target_type, target_id, target_label = _target(target)
    at = at or timezone.now()
    events = [
        AuditEvent(
            at=at,
            kind=kind,
            actor_kind=actor.kind,
            actor_user_id=actor.user_id,
            actor_api_key_id=actor.api_key_id,
            actor_label=actor.label[:200],
            organization=org,
            organization_label=org.slug if org is not None else "",
            target_type=target_type,
            target_id=target_id,
            target_label=target_label,
            reason=reason,
            details=details or {},
        )
        for org in organizations
    ]
    return AuditEvent.objects.bulk_create(events)
