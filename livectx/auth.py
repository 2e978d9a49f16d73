"""API keys for the product's servers: each bound to one tenant, stored hashed, shown once.

A key is ``lcx_<key id>_<secret>``: 12 hex characters naming the key (safe to log and list) and 32 random
bytes (base64url). The store keeps, per key id, the tenant and the SHA-256 of the whole key, in one Redis
hash (``livectx:api-keys``) that every server replica already reaches. SHA-256 rather than scrypt/argon2:
those exist to slow down guessing of low-entropy passwords; a 256-bit random secret cannot be guessed
however fast the hash, and a slow KDF would add tens of milliseconds to every authenticated call against
a latency budget of a few. The comparison is constant-time; a wrong, unknown or revoked key all fail alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from livectx.errors import LivectxError

KEYS_HASH = "livectx:api-keys"
_TOKEN = re.compile(r"^lcx_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    tenant: str
    created_ms: int


class ApiKeyStore:
    """Issue, check, list and revoke API keys in Redis (any ``redis.Redis``-like client)."""

    def __init__(self, redis: Any, hash_name: str = KEYS_HASH) -> None:
        self._redis = redis
        self._hash = hash_name

    def create(self, tenant: str) -> str:
        """A new key for ``tenant``; the returned string is the only copy of its secret."""
        key_id = secrets.token_hex(6)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        token = f"lcx_{key_id}_{secret}"
        entry = {"tenant": tenant, "sha256": _digest(token), "created_ms": int(time.time() * 1000)}
        if not self._redis.hsetnx(self._hash, key_id, json.dumps(entry)):
            raise LivectxError("API key id collision: run the command again")
        return token

    def authenticate(self, token: str) -> str | None:
        """The tenant ``token`` belongs to, or ``None`` for a malformed, unknown, revoked or wrong key."""
        match = _TOKEN.match(token.strip())
        if match is None:
            return None
        raw = self._redis.hget(self._hash, match.group(1))
        if raw is None:
            return None
        entry = json.loads(raw)
        if not hmac.compare_digest(entry["sha256"], _digest(match.group(0))):
            return None
        return str(entry["tenant"])

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        keys = []
        for key_id, raw in self._redis.hgetall(self._hash).items():
            entry = json.loads(raw)
            name = key_id.decode() if isinstance(key_id, bytes) else str(key_id)
            if tenant is None or entry["tenant"] == tenant:
                keys.append(ApiKey(name, entry["tenant"], int(entry["created_ms"])))
        return sorted(keys, key=lambda k: (k.tenant, k.created_ms))

    def revoke(self, key_id: str) -> bool:
        """Remove a key (by its id, the part after ``lcx_``); ``False`` if there was none."""
        return bool(self._redis.hdel(self._hash, key_id))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
