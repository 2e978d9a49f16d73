"""Idempotent side effects: an action triggered by a Kafka record happens once, even across crashes.

The key is the record's position (``<topic>-<partition>-<offset>``), stable across redeliveries.
- Idempotent HTTP APIs get it as an ``Idempotency-Key`` header; the API deduplicates.
- Non-idempotent actions are guarded here: the key is claimed in Redis atomically (``SET NX`` with an
  expiry) before acting, and the outcome is recorded after. A redelivered record finds the outcome and
  does not act again. A crash *during* the action leaves the claim until it expires: the action is then
  at most once, and the claim's expiry is how long a half-done action blocks a retry.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Replace (ARGV[2] set) or delete the key only while it still holds *our* claim: a claim that expired and
# was taken by another worker must not be overwritten or released by the first one.
_IF_OURS = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 1
"""


def idempotency_key(topic: str, partition: int, offset: int) -> str:
    return f"{topic}-{partition}-{offset}"


@dataclass(frozen=True)
class Outcome:
    ran: bool  # this call performed the action
    result: Any = None  # the action's result (recorded by whoever ran it)
    pending: bool = False  # claimed by someone whose outcome is not recorded (running, or crashed mid-way)


class IdempotentActions:
    def __init__(
        self,
        redis_client: Any,
        namespace: str = "livectx:action",
        claim_ttl_s: int = 300,
        outcome_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        self._redis = redis_client
        self._namespace = namespace
        self._claim_ttl_s = claim_ttl_s
        self._outcome_ttl_s = outcome_ttl_s
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._if_ours = redis_client.register_script(_IF_OURS)

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    def run_once(self, key: str, action: Callable[[], Any]) -> Outcome:
        """Run ``action`` unless ``key`` was already claimed; record its (JSON-serialisable) result."""
        redis_key = self._key(key)
        claim = json.dumps({"state": "claimed", "owner": self._owner, "claim": uuid.uuid4().hex})
        if not self._redis.set(redis_key, claim, nx=True, ex=self._claim_ttl_s):
            return self.outcome(key)
        try:
            result = action()
        except BaseException:
            self._if_ours(keys=[redis_key], args=[claim, "", 0])  # failed before acting: a retry may claim it
            raise
        done = json.dumps({"state": "done", "result": result})
        if not self._if_ours(keys=[redis_key], args=[claim, done, self._outcome_ttl_s]):
            log.warning("action %s outlived its %ss claim: another worker may have run it too", key, self._claim_ttl_s)
        return Outcome(ran=True, result=result)

    def outcome(self, key: str) -> Outcome:
        raw = self._redis.get(self._key(key))
        if raw is None:
            return Outcome(ran=False)
        record = json.loads(raw)
        if record["state"] == "done":
            return Outcome(ran=False, result=record["result"])
        return Outcome(ran=False, pending=True)


def call_idempotent_api(
    client: Any, method: str, url: str, key: str, **kwargs: Any
) -> Any:  # client: an httpx.Client (or anything with .request)
    """Call an API that deduplicates by ``Idempotency-Key`` (Stripe-style): retries are then safe."""
    headers = {**kwargs.pop("headers", {}), "Idempotency-Key": key}
    return client.request(method, url, headers=headers, **kwargs)
