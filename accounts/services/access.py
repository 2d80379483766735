"""Personal access tokens and the device-style CLI login that hands them out."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import CliLoginSession, CliSessionStatus, PersonalAccessToken, User
from accounts.services.last_use import last_use_due, last_use_record

PAT_KIND = "cpt"
CLI_POLL_KIND = "cls"
CLI_CODE_KIND = "clp"
PAT_SHAPE = tokens.shape(PAT_KIND)
CLI_POLL_SHAPE = tokens.shape(CLI_POLL_KIND)
CLI_CODE_SHAPE = tokens.shape(CLI_CODE_KIND)
CLI_SESSION_LIFETIME = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class IssuedToken:
    token: PersonalAccessToken
    plaintext: str  # shown once, never stored


# --- personal access tokens -----------------------------------------------------------------
def pat_issue(*, user: User, name: str = "", expires_in: dt.timedelta | None = None) -> IssuedToken:
    issued = tokens.issue(PAT_KIND)
    lifetime = expires_in or dt.timedelta(days=settings.PAT_EXPIRY_DAYS)
    token = PersonalAccessToken.objects.create(
        user=user,
        name=name[:100],
        prefix=issued.prefix,
        digest=issued.digest,
        last_four=issued.last_four,
        expires_at=timezone.now() + lifetime,
    )
    return IssuedToken(token, issued.plaintext)


def pat_revoke(*, token: PersonalAccessToken) -> PersonalAccessToken:
    # Conditional update: revoking twice keeps the first revocation time.
    PersonalAccessToken.objects.filter(pk=token.pk, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    return token


def pat_authenticate(plaintext: str) -> PersonalAccessToken | None:
    """Shape first (no I/O), one indexed lookup by prefix, then the digest check."""
    match = PAT_SHAPE.match(plaintext or "")
    if match is None:
        return None
    token = PersonalAccessToken.objects.select_related("user").filter(prefix=match.group(1)).first()
    if token is None or not tokens.matches(plaintext, token.digest):
        return None
    now = timezone.now()
    if not token.is_usable(now) or not token.user.is_active:
        return None
    if last_use_due(token.last_used_at, now):
        last_use_record(PersonalAccessToken.objects.filter(pk=token.pk), at=now)
        token.last_used_at = now
    return token


# --- CLI login ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartedCliSession:
    session: CliLoginSession
    poll_id: str  # the CLI keeps this to collect its token
    code: str  # goes into the login URL the person opens


def cli_session_start(*, client_name: str = "") -> StartedCliSession:
    poll = tokens.issue(CLI_POLL_KIND)
    code = tokens.issue(CLI_CODE_KIND)
    session = CliLoginSession.objects.create(
        poll_prefix=poll.prefix,
        poll_digest=poll.digest,
        code_prefix=code.prefix,
        code_digest=code.digest,
        client_name=client_name[:100],
        expires_at=timezone.now() + CLI_SESSION_LIFETIME,
    )
    return StartedCliSession(session, poll.plaintext, code.plaintext)


def _find(plaintext: str, shape, prefix_field: str, digest_field: str) -> CliLoginSession | None:
    match = shape.match(plaintext or "")
    if match is None:
        return None
    session = CliLoginSession.objects.filter(**{prefix_field: match.group(1)}).first()
    if session is None or not tokens.matches(plaintext, getattr(session, digest_field)):
        return None
    return session


def cli_session_by_code(code: str) -> CliLoginSession | None:
    """The session a login URL's `pat` code names (any state; the page says which)."""
    return _find(code, CLI_CODE_SHAPE, "code_prefix", "code_digest")


def cli_session_decide(*, session: CliLoginSession, user: User, approve: bool) -> bool:
    """Approve (bind to `user`) or deny a pending session; False when it is no longer
    pending or has expired."""
    now = timezone.now()
    # Conditional update: only one decision on a pending, unexpired session wins.
    changed = CliLoginSession.objects.filter(
        pk=session.pk, status=CliSessionStatus.PENDING, expires_at__gt=now
    ).update(
        status=CliSessionStatus.APPROVED if approve else CliSessionStatus.DENIED,
        user=user if approve else None,
        decided_at=now,
    )
    session.refresh_from_db()
    return bool(changed)


class PollState(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class PollResult:
    state: PollState
    session: CliLoginSession | None = None
    issued: IssuedToken | None = None


def cli_session_poll(*, poll_id: str) -> PollResult | None:
    """What the CLI sees: pending; then once, the token (minted now, so its plaintext
    never rests in the database); then expired. None when the id is unknown."""
    session = _find(poll_id, CLI_POLL_SHAPE, "poll_prefix", "poll_digest")
    if session is None:
        return None
    now = timezone.now()
    if session.status == CliSessionStatus.PENDING:
        return PollResult(PollState.EXPIRED if session.is_expired(now) else PollState.PENDING)
    if session.status == CliSessionStatus.DENIED:
        return PollResult(PollState.DENIED)
    with transaction.atomic():
        # Conditional update: exactly one poll collects the token.
        claimed = CliLoginSession.objects.filter(
            pk=session.pk, status=CliSessionStatus.APPROVED, expires_at__gt=now
        ).update(status=CliSessionStatus.DELIVERED, delivered_at=now)
        if not claimed:
            return PollResult(PollState.EXPIRED)
        user = User.objects.get(pk=session.user_id)
        name = f"CLI: {session.client_name}" if session.client_name else "CLI login"
        issued = pat_issue(user=user, name=name)
        CliLoginSession.objects.filter(pk=session.pk).update(token=issued.token)
    session.refresh_from_db()
    return PollResult(PollState.APPROVED, session, issued)
