"""Writes of the compliance area that people make (jobs live in their own modules)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization, User
from metering.compliance import webhooks
from metering.compliance.models import Channel, Notification, OverageFlag, WebhookEndpoint

MAX_ENDPOINTS_PER_ORGANIZATION = 10


class ComplianceError(Exception):
    """A request the caller can fix; `code` names the problem, the message says how."""

    def __init__(self, message: str, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


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
    except IntegrityError as exc:
        raise ComplianceError(
            "This organization already has a webhook endpoint with that URL.",
            "duplicate_url",
            "url",
        ) from exc
    return endpoint, secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def flag_acknowledge(*, flag: OverageFlag, by: User, note: str = "") -> OverageFlag:
    # Conditional UPDATE: the first acknowledgement wins.
    OverageFlag.objects.filter(pk=flag.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=by
    )
    if note:
        OverageFlag.objects.filter(pk=flag.pk).update(note=note)
    flag.refresh_from_db()
    return flag


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
