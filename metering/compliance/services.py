"""Writes of the compliance area that people make (jobs live in their own modules)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditKind, Organization, User
from accounts.services.audit import Actor, audit_record
from metering.compliance import webhooks
from metering.compliance.models import (
    Channel,
    Notification,
    NotificationStatus,
    OverageFlag,
    WebhookEndpoint,
)

MAX_ENDPOINTS_PER_ORGANIZATION = 10


class ComplianceError(Exception):
    """A request the caller can fix; `code` names the problem, the message says how."""

    def __init__(self, message: str, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


# The characters of a URI (RFC 3986), %-escapes included: a receiver's URL as any HTTP
# client sends it.
URI_CHAR = r"([A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
URI = re.compile(f"{URI_CHAR}*")
# A receiver in production: https, a DNS name with a top-level domain (at most 253
# characters), an optional port, any path. The API schema publishes this pattern.
HTTPS_URL_PATTERN = (
    r"^https://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,3}[A-Za-z]{2,61}"
    rf"(:[0-9]{{1,5}})?([/?#]{URI_CHAR}*)?$"
)
HTTPS_URL = re.compile(HTTPS_URL_PATTERN)


def _is_internal_host(host: str) -> bool:
    """Literal private, loopback, link-local or reserved addresses, and `localhost`:
    webhooks must not become a way to reach our own network. (Names are not resolved
    here: no network I/O while handling a request.)"""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _check_url(url: str) -> str:
    url = (url or "").strip()
    try:
        # URLValidator lets control characters, `|` and broken %-escapes through.
        if not URI.fullmatch(url):
            raise ValidationError("not a URI")
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ComplianceError(
            "`url` must be an absolute http(s) URL.", "invalid_url", "url"
        ) from exc
    parts = urlsplit(url)
    if settings.WEBHOOK_ALLOW_HTTP:
        return url  # development: plain http and local receivers allowed
    if parts.scheme != "https":
        raise ComplianceError("`url` must use https.", "insecure_url", "url")
    if _is_internal_host(parts.hostname or ""):
        raise ComplianceError(
            "`url` must point to a public host, not a local or private address.",
            "internal_url",
            "url",
        )
    if len(url) > 500:
        raise ComplianceError("`url` is longer than 500 characters.", "invalid_url", "url")
    if not HTTPS_URL.fullmatch(url):
        raise ComplianceError(
            "`url` must name its host by a DNS name (not an address), e.g. "
            "https://hooks.example.com/control-panel.",
            "invalid_url",
            "url",
        )
    return url


def webhook_endpoint_create(
    *, organization: Organization, url: str, description: str = "", created_by: User | None
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret, shown to the caller once."""
    url = _check_url(url)
    if len(description) > 200:
        raise ComplianceError(
            "`description` is longer than 200 characters.", "invalid_description", "description"
        )
    secret = webhooks.new_secret()
    try:
        with transaction.atomic():
            # The organization's row lock serializes creations, so the cap holds under races;
            # the unique (organization, url) constraint refuses a duplicate URL.
            Organization.objects.select_for_update().get(pk=organization.pk)
            if organization.webhook_endpoints.count() >= MAX_ENDPOINTS_PER_ORGANIZATION:
                raise ComplianceError(
                    f"An organization has at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhook "
                    "endpoints.",
                    "too_many_endpoints",
                )
            endpoint = WebhookEndpoint.objects.create(
                organization=organization,
                url=url,
                description=description,
                secret_encrypted=webhooks.encrypt_secret(secret),
                secret_last_four=secret[-4:],
                created_by=created_by,
            )
            audit_record(
                actor=Actor.of_or_system(created_by, "webhook_endpoint_create"),
                kind=AuditKind.WEBHOOK_ADDED,
                organization=organization,
                target=endpoint,
                details={"url": url},
            )
    except IntegrityError as exc:
        raise ComplianceError(
            "This organization already has a webhook endpoint with that URL.",
            "duplicate_url",
            "url",
        ) from exc
    return endpoint, secret


@transaction.atomic  # the deletion and its audit record
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor | None = None) -> None:
    audit_record(
        actor=actor or Actor.system("webhook_endpoint_delete"),
        kind=AuditKind.WEBHOOK_REMOVED,
        organization=endpoint.organization,
        target=endpoint,
        details={"url": endpoint.url},
    )
    endpoint.delete()


# --- staff triage -------------------------------------------------------------------------
# Each takes the reason staff gave; it is kept in the audit trail with the change, in one
# transaction. Conditional UPDATEs: of two staff acting at once, one change wins and only
# that one is recorded.


def _flag_audit(flag: OverageFlag, kind: AuditKind, by: User, reason: str) -> None:
    audit_record(
        actor=Actor.of(by),
        kind=kind,
        organization=flag.organization,
        target=flag,
        reason=reason,
        details={"metric": flag.metric, "level": flag.level, "scope": flag.scope},
    )


@transaction.atomic
def flag_acknowledge(*, flag: OverageFlag, by: User, note: str = "", reason: str = "") -> bool:
    """True when this call acknowledged it (the first acknowledgement wins)."""
    changed = OverageFlag.objects.filter(pk=flag.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=by
    )
    if note:
        OverageFlag.objects.filter(pk=flag.pk).update(note=note)
    flag.refresh_from_db()
    if changed:
        _flag_audit(flag, AuditKind.FLAG_ACKNOWLEDGED, by, reason or note)
    return bool(changed)


@transaction.atomic
def flag_resolve(*, flag: OverageFlag, by: User, reason: str) -> bool:
    """Close an open flag by hand. A gauge flag whose condition still holds is raised
    again by the next evaluation (it reopens), so this ends what has really ended."""
    now = timezone.now()
    changed = OverageFlag.objects.filter(pk=flag.pk, resolved_at__isnull=True).update(
        resolved_at=now, resolved_by=by
    )
    flag.refresh_from_db()
    if changed:
        _flag_audit(flag, AuditKind.FLAG_RESOLVED, by, reason)
    return bool(changed)


@transaction.atomic
def flag_waive(*, flag: OverageFlag, by: User, reason: str) -> bool:
    """Accept the overage: the flag stays as the record of it, marked waived."""
    changed = OverageFlag.objects.filter(pk=flag.pk, waived_at__isnull=True).update(
        waived_at=timezone.now(), waived_by=by
    )
    flag.refresh_from_db()
    if changed:
        _flag_audit(flag, AuditKind.FLAG_WAIVED, by, reason)
    return bool(changed)


@transaction.atomic
def notification_resend(*, notification: Notification, by: User, reason: str = "") -> bool:
    """Queue a failed or pending message again, now. A sent one is never sent twice."""
    changed = (
        Notification.objects.filter(pk=notification.pk)
        .exclude(status=NotificationStatus.SENT)
        .update(
            status=NotificationStatus.PENDING, next_attempt_at=timezone.now(), claimed_until=None
        )
    )
    if changed:
        audit_record(
            actor=Actor.of(by),
            kind=AuditKind.NOTIFICATION_RESENT,
            organization=notification.organization,
            target=notification,
            reason=reason,
            details={"attempts": notification.attempts, "status": notification.status},
        )
    return bool(changed)


def webhook_test_enqueue(*, endpoint: WebhookEndpoint, by: User | None) -> Notification:
    """Queue a `test` event for one endpoint. The notification sender delivers it like any
    other (signed, retried), so a test shows what real deliveries will do, and the page
    that asked does no network I/O."""
    now = timezone.now()
    # The topic carries the time: each test is its own outbox row under the unique
    # (topic, channel, recipient) key.
    return Notification.objects.create(
        organization_id=endpoint.organization_id,
        endpoint=endpoint,
        topic=f"test:{endpoint.pk}:{now.timestamp():.6f}"[:64],
        channel=Channel.WEBHOOK,
        recipient=endpoint.url,
        subject=f"[Control Panel] test event for {endpoint.url}"[:300],
        payload={
            "type": "test",
            "organization": endpoint.organization.slug,
            "requested_by": by.email if by is not None else None,
            "at": now.isoformat().replace("+00:00", "Z"),
        },
        next_attempt_at=now,
    )
