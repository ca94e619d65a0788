"""API-key format and keyed hashing, and HMAC-signed URLs for local media."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

API_KEY_PREFIX = "msk_"
API_KEY_BODY_LENGTH = 40
DISPLAY_PREFIX_LENGTH = 8
_BASE62 = string.digits + string.ascii_letters


def _subkey(secret: bytes, purpose: str) -> bytes:
    # One configured secret, separate keys per purpose: a leak of one use can't forge another.
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def generate_api_key() -> str:
    """``msk_`` + 40 random base62 characters (≈ 238 bits)."""
    return API_KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(API_KEY_BODY_LENGTH))


def looks_like_api_key(value: str) -> bool:
    body = value[len(API_KEY_PREFIX) :]
    return (
        value.startswith(API_KEY_PREFIX)
        and len(body) == API_KEY_BODY_LENGTH
        and all(c in _BASE62 for c in body)
    )


def api_key_display_prefix(key: str) -> str:
    """What listings show of a key: the first 8 characters after ``msk_``."""
    return key[len(API_KEY_PREFIX) : len(API_KEY_PREFIX) + DISPLAY_PREFIX_LENGTH]


class KeyHasher:
    """HMAC-SHA256 of API keys with the server secret: the database never holds a key."""

    def __init__(self, secret: bytes) -> None:
        self._key = _subkey(secret, "musicstudio/api-key-hash/v1")

    def hash(self, api_key: str) -> str:
        return hmac.new(self._key, api_key.encode(), hashlib.sha256).hexdigest()

    def verify(self, api_key: str, stored_hash: str) -> bool:
        return hmac.compare_digest(self.hash(api_key), stored_hash)


class UrlSigner:
    """Signs ``(method, path, expiry)`` with HMAC-SHA256; the signature names its key id."""

    def __init__(self, secret: bytes) -> None:
        self._key = _subkey(secret, "musicstudio/url-signing/v1")
        self.key_id = hashlib.sha256(self._key).hexdigest()[:8]

    def _mac(self, method: str, path: str, expires: int, key_id: str) -> str:
        message = f"{method.upper()}\n{path}\n{expires}\n{key_id}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, path: str, expires: int, method: str = "GET") -> dict[str, str]:
        """Query parameters that authorise ``method path`` until ``expires`` (epoch seconds)."""
        return {
            "expires": str(expires),
            "kid": self.key_id,
            "sig": self._mac(method, path, expires, self.key_id),
        }

    def verify(
        self, path: str, expires: str, key_id: str, signature: str, now: float, method: str = "GET"
    ) -> bool:
        """True when the signature matches and has not expired."""
        try:
            expires_at = int(expires)
        except ValueError:
            return False
        if key_id != self.key_id or expires_at < now:
            return False
        expected = self._mac(method, path, expires_at, key_id)
        return hmac.compare_digest(expected, signature)
