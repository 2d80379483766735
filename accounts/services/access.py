"""Personal access tokens and the CLI logins that hand them out: this product's
device-style login, and the CMS CLI's pending tokens (GraphQL `GenerateUserPat`)."""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.models import (
    CliLoginKind,
    CliLoginSession,
    CliSessionStatus,
    PersonalAccessToken,
    User,
)
from accounts.services.last_use import last_use_due, last_use_record
from accounts.services.team import TeamError

PAT_KIND = "cpt"
CLI_POLL_KIND = "cls"
CLI_CODE_KIND = "clp"
PAT_SHAPE = tokens.shape(PAT_KIND)
CLI_POLL_SHAPE = tokens.shape(CLI_POLL_KIND)
CLI_CODE_SHAPE = tokens.shape(CLI_CODE_KIND)
CLI_SESSION_LIFETIME = dt.timedelta(minutes=10)
PENDING_PAT_DEFAULT_NAME = "CMS CLI"
META_MAX_BYTES = 4096


@dataclass(frozen=True)
class IssuedToken:
    token: PersonalAccessToken
    plaintext: str  # shown once, never stored


# --- personal access tokens -----------------------------------------------------------------
def pat_issue(
    *, user: User, name: str = "", expires_in: dt.timedelta | None = None, meta: Any = None
) -> IssuedToken:
    issued = tokens.issue(PAT_KIND)
    lifetime = expires_in or dt.timedelta(days=settings.PAT_EXPIRY_DAYS)
    now = timezone.now()
    token = PersonalAccessToken.objects.create(
        user=user,
        name=name[:100],
        prefix=issued.prefix,
        digest=issued.digest,
        last_four=issued.last_four,
        created_at=now,
        expires_at=now + lifetime,
        meta=meta,
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


def user_mark_active(*, user: User) -> User:
    """The CMS's deploy hook reports a developer's activity (`UpdateLastActiveToNow`)."""
    now = timezone.now()
    User.objects.filter(pk=user.pk).update(last_active_at=now)
    user.last_active_at = now
    return user


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


def _find(
    plaintext: str, shape, prefix_field: str, digest_field: str, kind: str
) -> CliLoginSession | None:
    match = shape.match(plaintext or "")
    if match is None:
        return None
    session = CliLoginSession.objects.filter(kind=kind, **{prefix_field: match.group(1)}).first()
    if session is None or not tokens.matches(plaintext, getattr(session, digest_field)):
        return None
    return session


def cli_session_by_code(code: str) -> CliLoginSession | None:
    """The session a login URL's `pat` names, in any state (the page says which): a
    device login's approval code, or a CMS CLI's pending token."""
    if (code or "").startswith(f"{PAT_KIND}_"):
        return _find(code, PAT_SHAPE, "code_prefix", "code_digest", CliLoginKind.PENDING_PAT)
    return _find(code, CLI_CODE_SHAPE, "code_prefix", "code_digest", CliLoginKind.DEVICE)


@transaction.atomic
def cli_session_decide(
    *, session: CliLoginSession, user: User, approve: bool, name: str = ""
) -> bool:
    """Approve (bind to `user`) or deny a pending session; False when it is no longer
    pending or has expired. Approving a pending PAT makes it a token of `user`, named
    `name` (what the CMS CLI put in the login URL's `pat_name`)."""
    now = timezone.now()
    pending_pat = session.kind == CliLoginKind.PENDING_PAT
    changes: dict[str, Any] = {
        "status": CliSessionStatus.APPROVED if approve else CliSessionStatus.DENIED,
        "user": user if approve else None,
        "decided_at": now,
    }
    if pending_pat:
        changes["client_name"] = (name.strip() or PENDING_PAT_DEFAULT_NAME)[:100]
    # Conditional update: only one decision on a pending, unexpired session wins.
    changed = CliLoginSession.objects.filter(
        pk=session.pk, status=CliSessionStatus.PENDING, expires_at__gt=now
    ).update(**changes)
    if changed and approve and pending_pat:
        # The pending token becomes a PAT: same prefix and digest, so the plaintext the
        # CLI holds (and only it) now authenticates. The unique prefix backs the insert.
        token = PersonalAccessToken.objects.create(
            user=user,
            name=changes["client_name"],
            prefix=session.code_prefix,
            digest=session.code_digest,
            last_four=session.code_last_four,
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.PAT_EXPIRY_DAYS),
        )
        CliLoginSession.objects.filter(pk=session.pk).update(token=token)
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
    session = _find(poll_id, CLI_POLL_SHAPE, "poll_prefix", "poll_digest", CliLoginKind.DEVICE)
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
        assert session.user_id is not None  # an approved session names who approved it
        user = User.objects.get(pk=session.user_id)
        name = f"CLI: {session.client_name}" if session.client_name else "CLI login"
        issued = pat_issue(user=user, name=name)
        CliLoginSession.objects.filter(pk=session.pk).update(token=issued.token)
    session.refresh_from_db()
    return PollResult(PollState.APPROVED, session, issued)


# --- the CMS CLI's pending tokens (GraphQL users.generateUserPat / getUserPat / createUserPat)
def pending_pat_start() -> str:
    """A new pending token: a `cpt_` secret that authenticates nothing until a signed-in
    person approves it at `/login/cli?pat=<it>` (within CLI_SESSION_LIFETIME)."""
    issued = tokens.issue(PAT_KIND)
    CliLoginSession.objects.create(
        kind=CliLoginKind.PENDING_PAT,
        code_prefix=issued.prefix,
        code_digest=issued.digest,
        code_last_four=issued.last_four,
        expires_at=timezone.now() + CLI_SESSION_LIFETIME,
    )
    return issued.plaintext


def user_pat_get(*, plaintext: str) -> PersonalAccessToken:
    """The usable token `plaintext` names; else TeamError saying where its login stands
    (the CLI polls this while the person approves in the browser)."""
    token = pat_authenticate(plaintext)
    if token is not None:
        return token
    session = _find(plaintext, PAT_SHAPE, "code_prefix", "code_digest", CliLoginKind.PENDING_PAT)
    if session is None:
        raise TeamError(
            "This personal access token is not valid: it is unknown, revoked or expired. "
            "Log in again (webiny login).",
            code="UNAUTHENTICATED",
            status=401,
        )
    if session.status == CliSessionStatus.DENIED:
        raise TeamError(
            "This login was denied in the browser. Log in again (webiny login).",
            code="LOGIN_DENIED",
            status=403,
        )
    if session.status == CliSessionStatus.PENDING and not session.is_expired():
        raise TeamError(
            "This login is waiting for approval: sign in and approve it in the browser "
            "window the CLI opened.",
            code="LOGIN_PENDING",
            status=403,
        )
    raise TeamError(
        "This login has expired or its token was already exchanged. Log in again (webiny login).",
        code="LOGIN_EXPIRED",
        status=401,
    )


def _meta_checked(meta: Any) -> Any:
    if len(json.dumps(meta, separators=(",", ":"))) > META_MAX_BYTES:
        raise TeamError(
            f"data.meta must be at most {META_MAX_BYTES} bytes of JSON.", code="BAD_USER_INPUT"
        )
    return meta


def _lifetime(expires_in: int | None) -> dt.timedelta:
    longest = settings.PAT_EXPIRY_DAYS * 86400
    if expires_in is None:
        return dt.timedelta(seconds=longest)
    if not 60 <= expires_in <= longest:
        raise TeamError(
            f"expiresIn is a number of seconds from 60 to {longest} "
            f"({settings.PAT_EXPIRY_DAYS} days, PAT_EXPIRY_DAYS).",
            code="BAD_USER_INPUT",
        )
    return dt.timedelta(seconds=expires_in)


@transaction.atomic
def user_pat_create(
    *,
    caller: PersonalAccessToken,
    expires_in: int | None = None,
    pending: str | None = None,
    meta: Any = None,
) -> IssuedToken:
    """A new token of the caller's person, `expires_in` seconds long (at most, and by
    default, PAT_EXPIRY_DAYS). With `pending`, that pending token is approved as it
    instead (what the approval page does)."""
    lifetime = _lifetime(expires_in)
    meta = _meta_checked(meta)
    user = caller.user
    if pending is not None:
        session = cli_session_by_code(pending)
        if session is None or session.kind != CliLoginKind.PENDING_PAT:
            raise TeamError(
                "token is not a pending token from GenerateUserPat.", code="BAD_USER_INPUT"
            )
        if not cli_session_decide(session=session, user=user, approve=True, name=caller.name):
            raise TeamError(
                "That login was already approved, denied or has expired.", code="LOGIN_CLOSED"
            )
        assert session.token_id is not None  # cli_session_decide approved it into a token
        token = PersonalAccessToken.objects.get(pk=session.token_id)
        token.expires_at = token.created_at + lifetime
        token.meta = meta
        token.save(update_fields=["expires_at", "meta"])
        return IssuedToken(token, pending)
    return pat_issue(user=user, name=caller.name, expires_in=lifetime, meta=meta)
