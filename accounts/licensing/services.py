"""Writes for licensing: register and rotate signing keys, issue and revoke licenses."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.licensing import documents, keys
from accounts.licensing.selectors.caller import LicenseCaller
from accounts.models import (
    AuditKind,
    Contract,
    Environment,
    EnvironmentKind,
    License,
    LicenseKind,
    SigningKey,
    SigningKeyStatus,
    User,
)
from accounts.selectors.api_keys import API_KEY_SHAPE
from accounts.services.audit import Actor, audit_record

log = logging.getLogger(__name__)


class LicensingError(Exception):
    """Licenses cannot be signed right now (a server-side problem: answer 503)."""


class KeyCommandError(Exception):
    """An operator's key request that cannot be done; the message says why."""


# --- signing keys -------------------------------------------------------------------------
def signing_key_register(*, pair: keys.KeyPair) -> SigningKey:
    """The database row of the key this process holds. A key seen for the first time
    becomes the active one and the previous active key is retired (that is how a key
    deployed through the environment completes a rotation)."""
    existing = SigningKey.objects.filter(kid=pair.kid).first()
    if existing is not None:
        return existing
    for _ in range(3):
        try:
            return _signing_key_activate(pair=pair)
        except IntegrityError:
            # Another process registered this kid, or another new key, first: the unique
            # kid and the one-active partial index decide; look again.
            existing = SigningKey.objects.filter(kid=pair.kid).first()
            if existing is not None:
                return existing
    raise LicensingError("Could not register the license signing key; try again.")


@transaction.atomic
def _signing_key_activate(*, pair: keys.KeyPair, at: dt.datetime | None = None) -> SigningKey:
    at = at or timezone.now()
    # Activation is rare and must be serialized: a self-conflicting table lock (row locks
    # cannot cover a table that may be empty, and two inserts into the one-active partial
    # index can deadlock). The unique kid and `signing_key_one_active` back this up.
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {SigningKey._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
    existing = SigningKey.objects.filter(kid=pair.kid).first()
    if existing is not None:
        return existing  # registered by another process while we waited for the lock
    SigningKey.objects.filter(status=SigningKeyStatus.ACTIVE).update(
        status=SigningKeyStatus.RETIRED, retired_at=at
    )
    key = SigningKey.objects.create(
        kid=pair.kid, public_jwk=pair.public_jwk, status=SigningKeyStatus.ACTIVE, created_at=at
    )
    log.info("license signing key %s is now active", pair.kid)
    return key


@dataclass(frozen=True)
class Rotation:
    key: SigningKey
    written_to: str  # where the new private key went ("-" for the caller's stdout)
    private_pem: bytes | None  # only when written_to == "-"


def signing_key_rotate(*, out: str | None = None) -> Rotation:
    """Make a new key the active one; the previous key is retired and stays published
    while licenses it signed have not expired.

    Where the new private key goes: with the embedded key or LICENSE_SIGNING_KEY_FILE, it
    replaces that file (atomically, mode 0600; processes pick it up at their next
    signature). With LICENSE_SIGNING_KEY (PEM in the environment) the process cannot
    change its own environment: `out` (a new file path, or "-" for stdout) is required,
    and the operator puts the PEM into the secret store and redeploys. Until then the
    running processes sign with the retired key, whose licenses still verify."""
    source = keys.key_source()
    private_key = keys.generate()
    pair = keys.keypair(private_key)
    if out == "-":
        written_to, pem = "-", keys.private_key_to_pem(private_key)
    elif out:
        path = Path(out)
        if not keys.write_private_key(path, private_key, replace=False):
            raise KeyCommandError(f"{path} already exists; choose a new file.")
        written_to, pem = str(path), None
    elif source.kind == "env":
        raise KeyCommandError(
            "The signing key comes from LICENSE_SIGNING_KEY: pass --out FILE (or --out -) to "
            "receive the new private key, then put it into LICENSE_SIGNING_KEY and redeploy."
        )
    else:
        assert source.path is not None
        keys.write_private_key(source.path, private_key, replace=True)
        written_to, pem = str(source.path), None
    key = _signing_key_activate(pair=pair)
    return Rotation(key=key, written_to=written_to, private_pem=pem)


def signing_key_retire(*, kid: str, withdraw: bool = False) -> SigningKey:
    """Retire a key that is not the active one; `withdraw` unpublishes it at once, for a
    compromised key: every license it signed stops verifying."""
    key = SigningKey.objects.filter(kid=kid).first()
    if key is None:
        raise KeyCommandError(f"No signing key with kid {kid}.")
    if key.status == SigningKeyStatus.ACTIVE:
        raise KeyCommandError(
            f"{kid} is the active key: run `license_keys rotate` first, then retire it."
        )
    now = timezone.now()
    if withdraw:
        # Conditional update: withdrawing twice keeps the first time.
        SigningKey.objects.filter(pk=key.pk, withdrawn_at__isnull=True).update(withdrawn_at=now)
    key.refresh_from_db()
    return key


# --- licenses ---------------------------------------------------------------------------------
CACHE_PREFIX = "license:v1:"


def license_cache_key(*, plaintext_key: str) -> str | None:
    """The cached answer is found by the API key's public prefix, which is known before
    any query, so a cache hit needs no lookup to find it."""
    if settings.LICENSE_CACHE_SECONDS <= 0:
        return None  # caching off: neither read nor write the cache
    match = API_KEY_SHAPE.match(plaintext_key or "")
    return f"{CACHE_PREFIX}{match.group(1)}" if match else None


def license_cached(*, cache_key: str | None) -> dict[str, Any] | None:
    return _cache_or(None, cache.get, cache_key) if cache_key else None


def _cache_or(default: Any, operation: Any, *args: Any, **kwargs: Any) -> Any:
    """The cache only saves work: when it is unreachable, sign without it."""
    try:
        return operation(*args, **kwargs)
    except Exception:
        log.warning("license cache unavailable", exc_info=True)
        return default


@dataclass(frozen=True)
class IssuedLicense:
    record: License
    token: str
    answer: dict[str, str]


def _expiry(*, environment: Environment, contract: Contract, at: dt.datetime) -> dt.datetime:
    days = (
        settings.LICENSE_PERSONAL_EXPIRY_DAYS
        if environment.kind == EnvironmentKind.PERSONAL
        else settings.LICENSE_EXPIRY_DAYS
    )
    # A license never outlives its contract.
    contract_end = dt.datetime.combine(contract.ends_on, dt.time(), tzinfo=dt.UTC)
    return min(at + dt.timedelta(days=days), contract_end)


def license_issue(
    *,
    environment: Environment,
    contract: Contract,
    at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> IssuedLicense:
    """Sign a license for `environment` under `contract` and record it. The caller has
    checked the standing (selectors.license_standing)."""
    at = (at or timezone.now()).replace(microsecond=0)
    project = environment.project
    organization = project.organization
    try:
        pair = keys.signing_keypair()
    except keys.KeyConfigurationError as exc:
        raise LicensingError(str(exc)) from exc
    key = signing_key_register(pair=pair)
    if key.withdrawn_at is not None:
        raise LicensingError(f"The configured signing key {key.kid} has been withdrawn.")
    if key.status != SigningKeyStatus.ACTIVE:
        log.warning("signing with retired key %s: deploy the active key", key.kid)

    document = documents.license_document(
        org_id=organization.slug, project_id=project.slug, contract=contract
    )
    personal = environment.kind == EnvironmentKind.PERSONAL
    expires = _expiry(environment=environment, contract=contract, at=at)
    subject = f"{organization.slug}/{project.slug}"
    claims: dict[str, Any] = {
        "iss": settings.LICENSE_ISSUER,
        "sub": f"{subject}/environments/{environment.pk}" if personal else subject,
        "jti": secrets.token_urlsafe(16),
        "iat": int(at.timestamp()),
        "nbf": int(at.timestamp()),
        "exp": int(expires.timestamp()),
        "license": LicenseKind.PERSONAL if personal else LicenseKind.PROJECT,
        "org": organization.slug,
        "project": project.slug,
        "environment": str(environment.pk),
        "environmentKind": environment.kind,
        "features": document["package"]["features"],
        "limits": documents.limits(contract),
    }
    if personal:
        claims["developer"] = str(environment.owner_id)
    token = keys.sign(payload=claims, pair=pair)
    with transaction.atomic():  # the record and its audit event
        record = License.objects.create(
            jti=claims["jti"],
            kind=claims["license"],
            subject=claims["sub"],
            organization=organization,
            project=project,
            environment=environment,
            developer_id=environment.owner_id if personal else None,
            signing_key=key,
            claims=claims,
            issued_at=at,
            expires_at=expires,
        )
        audit_record(
            actor=actor or Actor.system("license_issue"),
            kind=AuditKind.LICENSE_ISSUED,
            organization=organization,
            target=record,
            details={"jti": record.jti, "expires_at": expires.isoformat()},
            at=at,
        )
    answer = {"license": documents.encode_document(document), "token": token}
    return IssuedLicense(record=record, token=token, answer=answer)


SINGLE_FLIGHT_WAIT = 5.0


def _fresh(cached: dict[str, Any] | None, *, caller: LicenseCaller) -> bool:
    """A cached answer serves the environment and contract it was built from, while fresh
    and while its license is not revoked (checked by the caller's query, never cached)."""
    return (
        cached is not None
        and cached["environment"] == caller.environment_id
        and cached["contract"] == caller.contract_id
        # The cache's own TTL runs on the cache server's clock; this is the app's.
        and cached["fresh_until"] > time.time()
        and not caller.cached_license_revoked
    )


def _still_fresh(cached: dict[str, Any] | None, *, caller: LicenseCaller) -> bool:
    """Same, for an answer another request cached after our caller query ran."""
    return (
        cached is not None
        and cached["environment"] == caller.environment_id
        and cached["contract"] == caller.contract_id
        and cached["fresh_until"] > time.time()
        and License.objects.filter(jti=cached["jti"], revoked_at__isnull=True).exists()
    )


def license_answer(
    *, caller: LicenseCaller, cache_key: str | None, cached: dict[str, Any] | None
) -> dict[str, str]:
    """The license endpoint's answer, from the cache when a fresh one is there.

    Only the signed answer is cached (LICENSE_CACHE_SECONDS); every standing check ran in
    `selectors.license_caller` for this very request. A cache hit creates no record: the
    cached token is the recorded one. When all containers of a deployment ask at once,
    one request signs (a cache `add` lock) while the others wait briefly for its answer."""
    if _fresh(cached, caller=caller):
        assert cached is not None
        return cached["answer"]
    if cache_key is None:
        return _issue_for(caller).answer
    seconds = settings.LICENSE_CACHE_SECONDS

    known_stale = cached["jti"] if cached else None
    lock = f"{cache_key}:lock"
    holder = _cache_or(None, cache.add, lock, 1, timeout=10)
    if holder is None:  # no cache at all: sign, as with caching off
        return _issue_for(caller).answer
    if holder:
        # Another request may have signed and released the lock since our first look.
        cached = _cache_or(None, cache.get, cache_key)
        if _still_fresh(cached, caller=caller):
            _cache_or(None, cache.delete, lock)
            assert cached is not None
            return cached["answer"]
    else:
        deadline = time.monotonic() + SINGLE_FLIGHT_WAIT
        while time.monotonic() < deadline:
            time.sleep(0.02)
            cached = _cache_or(None, cache.get, cache_key)
            if cached is None or cached["jti"] == known_stale:
                continue  # the signer has not stored its answer yet: no query
            if _still_fresh(cached, caller=caller):
                return cached["answer"]
            known_stale = cached["jti"]
    try:
        issued = _issue_for(caller)
        ttl = min(seconds, int((issued.record.expires_at - timezone.now()).total_seconds()))
        if ttl > 0:
            _cache_or(
                None,
                cache.set,
                cache_key,
                {
                    "environment": caller.environment_id,
                    "contract": caller.contract_id,
                    "jti": issued.record.jti,
                    "fresh_until": time.time() + ttl,
                    "answer": issued.answer,
                },
                timeout=ttl,
            )
        return issued.answer
    finally:
        if holder:
            _cache_or(None, cache.delete, lock)


def _issue_for(caller: LicenseCaller) -> IssuedLicense:
    environment = Environment.objects.select_related("project__organization").get(
        pk=caller.environment_id
    )
    contract = Contract.objects.get(pk=caller.contract_id)
    # The key's id is all the caller query has; the admin shows the key from it.
    actor = Actor(
        kind="api_key", label=f"API key #{caller.api_key_id}", api_key_id=caller.api_key_id
    )
    return license_issue(environment=environment, contract=contract, actor=actor)


@transaction.atomic  # the revocation and its audit record
def license_revoke(
    *, license: License, by: User | None = None, actor: Actor | None = None, reason: str = ""
) -> License:
    """Revoke a license. A cached answer carrying it stops being served at once: the
    license endpoint checks the cached license's revocation on every request."""
    # Conditional update: revoking twice keeps the first revocation.
    changed = License.objects.filter(pk=license.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=by
    )
    license.refresh_from_db(fields=["revoked_at", "revoked_by"])
    if changed:
        audit_record(
            actor=actor or Actor.of_or_system(by, "license_revoke"),
            kind=AuditKind.LICENSE_REVOKED,
            organization=license.organization,
            target=license,
            reason=reason,
            details={"jti": license.jti},
        )
    return license
