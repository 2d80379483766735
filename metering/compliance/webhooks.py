"""Webhook endpoints: secrets, signatures and delivery.

Signature (see docs/compliance.md for the receiver's recipe):
`X-ControlPanel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.

The secret is stored so we can sign with it (a digest cannot make an HMAC), encrypted at
rest with Fernet under a key derived from SECRET_KEY (SECRET_KEY_FALLBACKS still decrypt
after a key rotation): a database dump alone does not reveal it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

SIGNATURE_HEADER = "X-ControlPanel-Signature"
DELIVERY_HEADER = "X-ControlPanel-Delivery"
SECRET_KIND = "whsec"


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(hashlib.sha256(f"webhook-secret:{k}".encode()).digest())
            )
            for k in keys
        ]
    )


def new_secret() -> str:
    return f"{SECRET_KIND}_{secrets.token_urlsafe(32)}"


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(*, secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """The receiver's side, as documented; used by the tests."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    transient: bool  # worth retrying
    error: str = ""


def deliver(
    *, url: str, secret_encrypted: str, payload: dict, delivery_id: str, timestamp: int
) -> DeliveryResult:
    try:
        secret = decrypt_secret(secret_encrypted)
    except InvalidToken:
        return DeliveryResult(False, False, "secret unreadable (SECRET_KEY changed?)")
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ControlPanel-Webhooks/1",
        SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = httpx.post(
            url,
            content=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return DeliveryResult(False, True, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return DeliveryResult(True, False)
    transient = response.status_code in (408, 425, 429) or response.status_code >= 500
    return DeliveryResult(False, transient, f"HTTP {response.status_code}")
