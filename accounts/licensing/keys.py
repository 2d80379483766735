"""Ed25519 key material and compact JWS (EdDSA only), with `cryptography` directly.

Signing does not go through a JWT library on purpose: the tests verify our tokens with
PyJWT and nothing but the published JWKS, so the verifier shares no code with the signer.

Where the private key comes from (first match wins):
1. LICENSE_SIGNING_KEY: the PEM text itself (PKCS#8; `\\n` escapes are accepted, as env
   files often carry one-line values);
2. LICENSE_SIGNING_KEY_FILE: a path to that PEM;
3. embedded default: DATA_DIR/keys/license-signing-key.pem, generated once (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
EMBEDDED_KEY_NAME = "license-signing-key.pem"


class KeyConfigurationError(Exception):
    """The configured signing key cannot be used; the message says what to fix."""


class MalformedToken(Exception):
    """Not a compact JWS we can even parse."""


# --- encodings -------------------------------------------------------------------------
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: anything else is malformed, not 'close enough'."""
    if not text or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise MalformedToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("not base64url") from exc


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _json_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


# --- keys and JWKs -----------------------------------------------------------------------
def public_jwk_members(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The required members of an Ed25519 JWK (RFC 8037)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace."""
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    return b64url(hashlib.sha256(_json_bytes(required)).digest())


def public_key_from_jwk(jwk: dict[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 JWK")
    return Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))


@dataclass(frozen=True)
class KeyPair:
    private_key: Ed25519PrivateKey
    kid: str
    public_jwk: dict[str, str]  # as published: kty, crv, x, kid, alg, use


def keypair(private_key: Ed25519PrivateKey) -> KeyPair:
    members = public_jwk_members(private_key.public_key())
    kid = thumbprint(members)
    return KeyPair(private_key, kid, {**members, "kid": kid, "alg": ALGORITHM, "use": "sig"})


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pem(pem: bytes, *, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigurationError(f"{source} is not an unencrypted PEM private key.") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigurationError(f"{source} is not an Ed25519 key (license keys are Ed25519).")
    return key


def write_private_key(path: Path, private_key: Ed25519PrivateKey, *, replace: bool) -> bool:
    """Write a PEM with mode 0600, atomically: readers see the old file or the whole new
    one. Without `replace`, an existing file wins (os.link fails if the name exists), so
    two processes generating at once agree on one key. Returns whether this call wrote."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_key_to_pem(private_key))
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- the configured signing key -------------------------------------------------------------
@dataclass(frozen=True)
class KeySource:
    kind: str  # "env", "file" or "embedded"
    path: Path | None

    @property
    def description(self) -> str:
        if self.kind == "env":
            return "LICENSE_SIGNING_KEY"
        return f"{'LICENSE_SIGNING_KEY_FILE' if self.kind == 'file' else 'the embedded key'} ({self.path})"


def key_source() -> KeySource:
    if settings.LICENSE_SIGNING_KEY:
        return KeySource("env", None)
    if settings.LICENSE_SIGNING_KEY_FILE:
        return KeySource("file", Path(settings.LICENSE_SIGNING_KEY_FILE))
    return KeySource("embedded", Path(settings.DATA_DIR) / "keys" / EMBEDDED_KEY_NAME)


_loaded: dict[tuple[object, ...], KeyPair] = {}
_lock = threading.Lock()


def signing_keypair(*, generate_missing: bool = True) -> KeyPair:
    """The private key this process signs with. Loaded once per source; a file's mtime is
    part of the cache key, so `license_keys rotate` on a file is picked up without restart.
    The embedded key is generated at first use unless `generate_missing` is False."""
    source = key_source()
    if source.kind == "env":
        pem = settings.LICENSE_SIGNING_KEY.replace("\\n", "\n").strip().encode()
        cache_key: tuple[object, ...] = ("env", hashlib.sha256(pem).hexdigest())
        with _lock:
            if cache_key not in _loaded:
                _loaded[cache_key] = keypair(private_key_from_pem(pem, source=source.description))
            return _loaded[cache_key]

    assert source.path is not None
    if source.kind == "embedded" and not source.path.exists():
        if not generate_missing:
            raise KeyConfigurationError(f"{source.description} has not been generated yet.")
        if write_private_key(source.path, generate(), replace=False) and not settings.DEBUG:
            log.warning(
                "generated a license signing key in %s: with several web containers, set "
                "LICENSE_SIGNING_KEY or LICENSE_SIGNING_KEY_FILE so they share one key",
                source.path,
            )
    try:
        stat = source.path.stat()
    except FileNotFoundError as exc:
        raise KeyConfigurationError(f"{source.description} does not exist.") from exc
    cache_key = ("file", str(source.path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if cache_key not in _loaded:
            pem = source.path.read_bytes()
            _loaded[cache_key] = keypair(private_key_from_pem(pem, source=source.description))
        return _loaded[cache_key]


# --- compact JWS ------------------------------------------------------------------------------
def sign(*, payload: dict[str, Any], pair: KeyPair) -> str:
    header = {"alg": ALGORITHM, "kid": pair.kid, "typ": "JWT"}
    signing_input = f"{b64url(_json_bytes(header))}.{b64url(_json_bytes(payload))}"
    signature = pair.private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(signature)}"


@dataclass(frozen=True)
class ParsedToken:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


MAX_TOKEN_LENGTH = 16 * 1024


def parse(token: str) -> ParsedToken:
    """Split and decode a compact JWS without trusting anything in it yet."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise MalformedToken("not a compact JWS")
    head, body, signature = token.split(".")
    try:
        header = json.loads(b64url_decode(head))
        payload = json.loads(b64url_decode(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedToken("header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedToken("header and payload must be JSON objects")
    # An empty signature (alg "none") decodes to b"", which no Ed25519 check accepts.
    raw_signature = b64url_decode(signature) if signature else b""
    return ParsedToken(header, payload, f"{head}.{body}".encode("ascii"), raw_signature)


def signature_valid(parsed: ParsedToken, jwk: dict[str, Any]) -> bool:
    try:
        public_key_from_jwk(jwk).verify(parsed.signature, parsed.signing_input)
    except (InvalidSignature, ValueError):
        return False
    return True
