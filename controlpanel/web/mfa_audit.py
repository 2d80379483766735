"""A person turning two-factor authentication on or off goes into the audit trail of every
organization they belong to.

allauth's MFA flows do the change and announce it with their `authenticator_added` /
`authenticator_removed` signals (its documented extension point; the flows are not ours to
wrap), so these receivers are the one place where those events are recorded. allauth sends
them after its transaction commits, so the record follows the change at once rather than
inside the same transaction. Recovery codes come and go with the factors they back up and
are not recorded on their own.
"""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added, authenticator_removed

from accounts.models import AuditKind
from accounts.services.audit import Actor, audit_record


def _record(kind: AuditKind, user: Any, authenticator: Authenticator) -> None:
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        return
    audit_record(
        actor=Actor.of(user),
        kind=kind,
        organization=None,  # one event per organization of the user
        target=user,
        details={"factor": str(authenticator.type)},
    )


def on_added(sender: Any, *, user: Any, authenticator: Authenticator, **kwargs: Any) -> None:
    _record(AuditKind.MFA_ENABLED, user, authenticator)


def on_removed(sender: Any, *, user: Any, authenticator: Authenticator, **kwargs: Any) -> None:
    _record(AuditKind.MFA_DISABLED, user, authenticator)


def connect() -> None:
    authenticator_added.connect(on_added, dispatch_uid="controlpanel.mfa_audit.added")
    authenticator_removed.connect(on_removed, dispatch_uid="controlpanel.mfa_audit.removed")
